"""Shared pieces of the benchmarks: timing, test matrices, thread pinning for every library."""

from __future__ import annotations

import os
import statistics
import time
from typing import Callable

import numpy as np


def set_threads(n: int) -> None:
    """Same thread count for torch, numpy/scipy (OpenBLAS) and the engine."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(n)
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass


def median_time(fn: Callable[[], object], repeat: int = 3, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def with_spectrum(rng, m: int, n: int, s: np.ndarray) -> np.ndarray:
    """An m x n float32 matrix with singular values s (random singular vectors), built cheaply:
    Q factors of Gaussian blocks, so large shapes are affordable."""
    r = len(s)
    u, _ = np.linalg.qr(rng.standard_normal((m, r), dtype=np.float32))
    v, _ = np.linalg.qr(rng.standard_normal((n, r), dtype=np.float32))
    return ((u * s.astype(np.float32)) @ v.T).astype(np.float32)


def test_matrix(kind: str, m: int, n: int, seed: int = 0) -> np.ndarray:
    """``gaussian`` (flat spectrum) or ``heavy`` (low-rank power law plus noise, like trained weights)."""
    rng = np.random.default_rng(seed)
    if kind == "gaussian":
        return rng.standard_normal((m, n), dtype=np.float32)
    r = min(m, n, 256)
    low = with_spectrum(rng, m, n, 40.0 * np.arange(1, r + 1, dtype=np.float64) ** -0.7)
    return low + rng.standard_normal((m, n), dtype=np.float32) / np.sqrt(max(m, n))


def bf16_bits(a: np.ndarray) -> np.ndarray:
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def cores() -> int:
    return len(os.sched_getaffinity(0))
