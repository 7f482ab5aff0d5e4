"""Programs of the operating system the tests drive (PostgreSQL's server, ``runuser``, a
headless browser). The wheel's test run narrows PATH to its virtual environment (no compiler
reachable), so a program is looked for on PATH first, then in the system's own directories."""

from __future__ import annotations

import os
import shutil
from typing import Optional

SYSTEM_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


def find(*names: str) -> Optional[str]:
    """The full path of the first of ``names`` found on PATH or in :data:`SYSTEM_DIRS`, else None."""
    search = os.pathsep.join([os.environ.get("PATH", ""), *SYSTEM_DIRS])
    return next((found for name in names if (found := shutil.which(name, path=search))), None)


def environment() -> dict[str, str]:
    """The environment to run a system program in: the system's directories on PATH (its own
    scripts call other programs) and no sanitizer runtime preloaded (tools/check.sh preloads
    one for the engine, the code under test; the programs are not)."""
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS")}
    env["PATH"] = os.pathsep.join([env.get("PATH", ""), *SYSTEM_DIRS])
    return env
