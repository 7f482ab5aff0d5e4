"""Text from files, made safe for a terminal: tensor names, metadata and paths inside a checkpoint
are the file's author's, and a control character in them (an escape sequence) must not reach the
user's terminal as one."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with every control character but tab and newline written as its escape (\\x1b)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
