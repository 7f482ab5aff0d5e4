"""Progress bars for long engine calls: drawn on a terminal only, named after the checkpoint."""

from __future__ import annotations

import sys
from typing import Any, Optional


class _Bar:
    """A tqdm bar over bytes, fed by the engine's progress callback. It is made on the first
    report, when the total is known, and shown only if the work lasts over half a second."""

    def __init__(self, desc: str):
        self._desc = desc
        self._bar: Optional[Any] = None  # a tqdm bar, once the total is known

    def __call__(self, done: int, total: int, bytes_done: int, bytes_total: int) -> None:
        bar = self._bar
        if bar is None:
            if bytes_total == 0:
                return
            from tqdm.auto import tqdm

            bar = self._bar = tqdm(
                total=bytes_total, unit="B", unit_scale=True, desc=self._desc, leave=False, delay=0.5
            )
        bar.update(bytes_done - bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def progress_bar(desc: str) -> _Bar:
    """A progress bar on stderr to pass as ``analyse(progress=...)``; close() it when done."""
    return _Bar(desc)


def show_progress(progress: Optional[bool]) -> bool:
    """Whether to draw progress bars: as asked, else when stderr is a terminal or the code runs in
    a Jupyter kernel (tqdm.auto then draws notebook bars); bars in logs and pipes are noise."""
    if progress is not None:
        return progress
    return sys.stderr.isatty() or in_notebook()


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (IPython's ZMQ shell), without importing IPython."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return type(shell).__name__ == "ZMQInteractiveShell"
