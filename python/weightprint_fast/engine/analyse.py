"""The engine over opened checkpoint files: one call measures many windows of many tensors.

Readers open files (``readers/``) and hand a :class:`TensorFileSet` and a list of
:class:`Window` to :func:`analyse`; the engine's scheduler does the rest (threads, page
release, progress, Ctrl-C).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from .. import _core
from . import EngineError, WeightprintFormatError, engine


@dataclass(frozen=True)
class TensorEntry:
    """One tensor as its file's table describes it."""

    name: str
    dtype: str  # safetensors or ggml type name, e.g. "BF16", "Q4_K"
    shape: tuple[int, ...]  # row-major (GGUF's dimension order reversed)
    shard: int  # index into TensorFileSet.paths
    analysed: bool  # whether the engine decodes this dtype
    quantized: bool  # blocks of values with shared scales (GGUF's Q and IQ types)


class TensorFileSet:
    """The validated, memory-mapped files of one checkpoint (safetensors shards or GGUF splits).

    Every file's table was checked against its format before this set exists; a tensor name
    may appear in one file only.
    """

    def __init__(self, paths: Sequence[Path], files: Sequence[_core.TensorFile]):
        self.paths = list(paths)
        self.files = list(files)
        self.tensors: list[TensorEntry] = []
        seen: dict[str, Path] = {}
        for i, f in enumerate(self.files):
            for t in f.tensors:
                if t.name in seen:
                    raise WeightprintFormatError(
                        f"{self.paths[i]}: tensor '{t.name}' also appears in {seen[t.name]}"
                    )
                seen[t.name] = self.paths[i]
                self.tensors.append(TensorEntry(t.name, t.dtype, tuple(t.shape), i, t.analysed, t.quantized))

    @property
    def format(self) -> str:
        return self.files[0].format if self.files else "safetensors"

    @property
    def total_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.paths)

    def read(self, entry: TensorEntry) -> np.ndarray:
        """A (small) tensor decoded to float64."""
        return self.files[entry.shard].read(entry.name)

    def read_rows(self, entry: TensorEntry, rows: Sequence[int]) -> np.ndarray:
        """Rows of a 2-D tensor decoded to float64, (len(rows), cols); only their bytes are read."""
        return self.files[entry.shard].read_rows(entry.name, list(rows))


@dataclass(frozen=True)
class Window:
    """A 2-D block of one tensor, in elements: rows x cols starting at ``offset``.

    Fused projections are analysed as row ranges (or, for transposed storage, column ranges via
    ``row_stride``) of their tensor, without copying. Rows may come in groups of ``group_rows``
    whose starts are ``group_stride`` elements apart (per-head interleaved fused QKV).
    """

    tensor: TensorEntry
    rows: int
    cols: int
    offset: int = 0
    row_stride: int = 0  # 0: equal to cols
    stats: bool = True
    k: int = 0  # singular values wanted
    group_rows: int = 0  # 0: one group
    group_stride: int = 0
    gram: Optional[_core.BlockGramSpec] = None  # diagonal Gram blocks wanted (lineage invariants)
    probe: Optional[_core.ProbeSpec] = None  # probe products wanted (token probes)
    sketch: int = 0  # count-sketch buckets wanted (weight sketches; 0: none)


def usable_cores() -> int:
    """Cores this process may run on (affinity-aware)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


# Address space one engine thread may need: OpenBLAS's work buffer (32 MiB on x86-64, which its
# allocator retries forever when it cannot get), glibc's arena reservation for a new thread (64
# MiB), and the engine's own panels.
_PER_THREAD = 160 << 20


def address_space_limit() -> Optional[int]:
    """This process's address-space limit in bytes (``ulimit -v``); None without one."""
    try:
        import resource
    except ImportError:  # not POSIX
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft == resource.RLIM_INFINITY else int(soft)


class Beside:
    """``fn(*args)`` on a thread of its own, while the engine (which releases the GIL) runs;
    :meth:`result` waits for it and returns its value or raises its error. Under an
    address-space limit it runs in :meth:`result` instead: there a thread's stack may not fit,
    and two threads that import at once can deadlock in importlib when one runs out of memory."""

    def __init__(self, fn: Callable[..., Any], *args: Any):
        self._fn, self._args = fn, args
        self._value: Any = None
        self._error: Optional[BaseException] = None
        self._thread: Optional[threading.Thread] = None
        if address_space_limit() is None:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._fn(*self._args)
        except BaseException as e:  # raised again by result(), in the caller's thread
            self._error = e

    def result(self) -> Any:
        if self._thread is None:
            return self._fn(*self._args)
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def _address_space_left() -> Optional[int]:
    """Bytes left under the address-space limit; None without one (or without /proc to tell)."""
    limit = address_space_limit()
    if limit is None:
        return None
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            size = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    except (OSError, StopIteration, ValueError):
        return None
    return limit - size


def threads_that_fit(threads: int) -> int:
    """``threads``, or fewer where an address-space limit leaves room for fewer; EngineError when
    it leaves room for none (OpenBLAS would then spin forever in its allocator)."""
    left = _address_space_left()
    if left is None:
        return threads
    fit = left // _PER_THREAD
    if fit < 1:
        raise EngineError(
            f"the address-space limit (ulimit -v) leaves {max(left, 0) >> 20} MiB, and the engine needs "
            f"about {_PER_THREAD >> 20} MiB per thread for its BLAS buffers: raise the limit"
        )
    return int(min(threads, fit))


def analyse(
    shards: TensorFileSet,
    windows: Sequence[Window],
    *,
    threads: Optional[int] = None,
    method: str = "auto",
    tol: float = 1e-3,
    oversample: int = 10,
    krylov_blocks: int = 8,
    progress: Optional[Callable[[int, int, int, int], None]] = None,
) -> list[_core.JobResult]:
    """Moments, top-k singular values and Gram blocks of every window, in one multithreaded
    engine call; one :class:`JobResult` per window, in order.

    ``progress(jobs_done, jobs_total, bytes_done, bytes_total)`` is called about every 100 ms.
    Ctrl-C stops the engine and raises KeyboardInterrupt.
    """
    jobs = [
        _core.Job(
            file=w.tensor.shard,
            tensor=w.tensor.name,
            offset=w.offset,
            rows=w.rows,
            cols=w.cols,
            row_stride=w.row_stride or w.cols,
            stats=w.stats,
            k=w.k,
            group_rows=w.group_rows,
            group_stride=w.group_stride,
            gram=w.gram or _core.BlockGramSpec(),
            probe=w.probe or _core.ProbeSpec(),
            sketch=w.sketch,
        )
        for w in windows
    ]
    workers = threads_that_fit(threads or usable_cores())
    return engine().analyse(shards.files, jobs, workers, method, oversample, krylov_blocks, tol, progress)
