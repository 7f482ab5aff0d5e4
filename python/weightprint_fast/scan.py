"""Running the engine over the tensors of a checkpoint."""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from . import _core
from ._native import engine
from .kernels import METHODS
from .safetensors_files import PathLike, ShardSet, TensorEntry, open_shards

FLOAT_DTYPES = frozenset({"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2"})


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


@dataclass
class WindowResult:
    stats: Optional[dict]
    singular_values: Optional[np.ndarray]  # descending, float64
    svd_method: Optional[str]
    error_bound: Optional[float]
    error: Optional[str]
    seconds: float
    gram: Optional[np.ndarray] = None  # (blocks, block, block) when the window asked for them


def usable_cores() -> int:
    """Cores this process may run on (affinity-aware)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def analyse(
    shards: ShardSet,
    windows: Sequence[Window],
    *,
    threads: Optional[int] = None,
    method: str = "auto",
    tol: float = 1e-3,
    oversample: int = 10,
    krylov_blocks: int = 8,
    progress: Optional[Callable[[int, int, int, int], None]] = None,
) -> list[WindowResult]:
    """Statistics and top-k singular values of every window, in one multithreaded engine call.

    ``progress(jobs_done, jobs_total, bytes_done, bytes_total)`` is called about every 100 ms.
    Ctrl-C stops the engine and raises KeyboardInterrupt.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    jobs = [
        _core.Job(file=w.tensor.shard, tensor=w.tensor.name, offset=w.offset, rows=w.rows, cols=w.cols,
                  row_stride=w.row_stride or w.cols, stats=w.stats, k=w.k, group_rows=w.group_rows,
                  group_stride=w.group_stride, gram=w.gram or _core.BlockGramSpec())
        for w in windows
    ]
    raw = engine().analyse(
        shards.files, jobs, threads or usable_cores(), method, oversample, krylov_blocks, tol, progress
    )
    out = []
    for w, r in zip(windows, raw):
        svd = r["svd"]
        out.append(
            WindowResult(
                stats=r["stats"],
                singular_values=None if svd is None else np.asarray(svd["values"], dtype=np.float64),
                svd_method=None if svd is None else svd["method"],
                error_bound=None if svd is None else svd["error_bound"],
                error=r["error"],
                seconds=r["seconds"],
                gram=None if r["gram"] is None or w.gram is None
                else np.asarray(r["gram"]).reshape(-1, w.gram.block, w.gram.block),
            )
        )
    return out


@dataclass
class TensorRecord:
    """What ``scan`` found for one tensor. Statistics only for floating-point tensors; singular
    values only for 2-D ones."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    shard: str
    stats: Optional[dict] = None
    singular_values: Optional[np.ndarray] = None
    svd_method: Optional[str] = None
    error_bound: Optional[float] = None
    error: Optional[str] = None


class _Bar:
    """A tqdm bar over bytes, fed by the engine's progress callback. It is made on the first
    report, when the total is known, and shown only if the work lasts over half a second."""

    def __init__(self, desc: str):
        self._desc = desc
        self._bar = None

    def __call__(self, done: int, total: int, bytes_done: int, bytes_total: int) -> None:
        if self._bar is None:
            if bytes_total == 0:
                return
            from tqdm.auto import tqdm

            self._bar = tqdm(total=bytes_total, unit="B", unit_scale=True, desc=self._desc, leave=False, delay=0.5)
        self._bar.update(bytes_done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def progress_bar(desc: str) -> _Bar:
    """A progress bar on stderr to pass as ``analyse(progress=...)``; close() it when done."""
    return _Bar(desc)


def show_progress(progress: Optional[bool]) -> bool:
    """Whether to draw progress bars: as asked, else only when stderr is a terminal (bars in logs
    and pipes are noise)."""
    return sys.stderr.isatty() if progress is None else progress


def scan(
    path: PathLike,
    k: int = 16,
    threads: Optional[int] = None,
    method: str = "auto",
    *,
    progress: Optional[bool] = False,
) -> list[TensorRecord]:
    """Every tensor of a safetensors checkpoint (file, directory of shards, or index JSON).

    Floating-point tensors get statistics (see :func:`matrix_stats`); 2-D ones also their top
    ``k`` singular values (``k=0`` skips them). Integer and bool tensors are listed only.
    """
    shards = open_shards(path)
    windows = []
    for t in shards.tensors:
        if t.dtype not in FLOAT_DTYPES or math.prod(t.shape) == 0:
            continue
        cols = t.shape[-1] if t.shape else 1
        rows = math.prod(t.shape) // cols
        windows.append(Window(t, rows, cols, k=k if len(t.shape) == 2 else 0))
    bar = progress_bar(f"scan {Path(path).name}") if show_progress(progress) else None
    try:
        results = analyse(shards, windows, threads=threads, method=method, progress=bar)
    finally:
        if bar:
            bar.close()
    by_name = {w.tensor.name: r for w, r in zip(windows, results)}
    records = []
    for t in shards.tensors:
        rec = TensorRecord(t.name, t.dtype, t.shape, str(shards.paths[t.shard]))
        r = by_name.get(t.name)
        if r is not None:
            rec.stats, rec.singular_values, rec.svd_method = r.stats, r.singular_values, r.svd_method
            rec.error_bound, rec.error = r.error_bound, r.error
        records.append(rec)
    return records
