"""Every tensor of a checkpoint, measured (:func:`weightprint_fast.scan`): not only the projection
matrices that make the fingerprint, but embeddings, norms and integer tensors too."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..engine import Moments, SvdResult
from ..engine.analyse import Window, analyse
from ..engine.progress import progress_bar, show_progress
from .files import PathLike, open_tensor_files


@dataclass
class TensorRecord:
    """What ``scan`` found for one tensor. Statistics only for floating-point tensors; singular
    values only for 2-D ones."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    shard: str
    moments: Optional[Moments] = None
    svd: Optional[SvdResult] = None
    error: Optional[str] = None  # why singular values are missing

    @property
    def singular_values(self) -> Optional[np.ndarray]:
        """Descending, float64; None where not computed."""
        return None if self.svd is None else self.svd.values


def scan(
    path: PathLike,
    k: int = 16,
    threads: Optional[int] = None,
    method: str = "auto",
    *,
    progress: Optional[bool] = False,
) -> list[TensorRecord]:
    """Every tensor of a checkpoint (safetensors file, directory of shards, index JSON, or GGUF).

    Floating-point and decodable quantized tensors get moments (see :func:`matrix_stats`); 2-D
    ones also their top ``k`` singular values (``k=0`` skips them). Integer and bool tensors, and
    quantized types without a decoder, are listed only.
    """
    shards = open_tensor_files(path)
    windows = []
    for t in shards.tensors:
        if not t.analysed or math.prod(t.shape) == 0:
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
            rec.moments, rec.svd, rec.error = r.moments, r.svd, r.error
        records.append(rec)
    return records
