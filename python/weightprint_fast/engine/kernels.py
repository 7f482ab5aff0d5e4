"""The engine's kernels on in-memory numpy arrays."""

from __future__ import annotations

from typing import Optional

import numpy as np

from .. import _core
from .._core import InputError
from . import engine

_NUMPY_DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64", np.dtype(np.float16): "F16"}

#: Singular-value methods: ``"exact"`` (Gram matrix in double; its top eigenvalues from a Krylov
#: run proven within 1e-9 relative, or from LAPACK; ~1e-13 measured),
#: ``"fast"`` (fixed-size block Krylov, no accuracy check), ``"auto"`` (block Krylov grown until an
#: error bound certifies ``tol``; exact below a 1024 short side or when not certified).
METHODS: tuple[str, ...] = ("auto", "exact", "fast")


def _as_matrix(a: np.ndarray, dtype: Optional[str]) -> tuple[np.ndarray, str, int, int]:
    a = np.asarray(a)
    if a.ndim == 1:
        a = a.reshape(1, -1)
    if a.ndim != 2:
        raise InputError(f"expected a 1-D or 2-D array, got shape {a.shape}")
    a = np.ascontiguousarray(a)
    if dtype is None:
        if a.dtype not in _NUMPY_DTYPES:
            raise InputError(f"unsupported array dtype {a.dtype} (float16/32/64, or raw bits with dtype=)")
        return a, _NUMPY_DTYPES[a.dtype], a.shape[0], a.shape[1]
    name = dtype.upper()
    elements, size = engine().dtype_block(name)  # ValueError for a type the engine does not decode
    if a.dtype.kind != "u":
        raise InputError(
            f"dtype={dtype!r} needs its raw bits as an unsigned integer array (uint8, or uint16 "
            f"for 16-bit types), got {a.dtype}"
        )
    row_bytes = a.shape[1] * a.dtype.itemsize
    if row_bytes % size:
        raise InputError(f"rows of {row_bytes} bytes do not hold whole {name} blocks of {size} bytes")
    return a, name, a.shape[0], row_bytes // size * elements


def matrix_stats(a: np.ndarray, *, dtype: Optional[str] = None, threads: int = 1) -> _core.Moments:
    """Moments of every element of ``a`` (1-D or 2-D), accumulated in double.

    Returns a :class:`Moments`: ``count`` (finite elements), ``mean``, ``std`` (population),
    ``min``, ``max``, ``skewness``, ``kurtosis`` (excess), ``nan`` and ``inf`` (counts; those are
    excluded from the moments), ``m2``/``m3``/``m4`` (central sums, for exact merging). With
    ``dtype`` the array holds raw encoded bits, one row per matrix row: ``"bf16"`` (uint16),
    ``"f8_e4m3"``/``"f8_e5m2"`` (uint8), or a GGUF type such as ``"q4_k"`` (uint8, whole blocks
    per row).
    """
    m, name, rows, cols = _as_matrix(a, dtype)
    return engine().matrix_stats(m, name, rows, cols, threads)


def top_singular_values(
    a: np.ndarray,
    k: int,
    method: str = "auto",
    *,
    dtype: Optional[str] = None,
    tol: float = 1e-3,
    oversample: int = 10,
    krylov_blocks: int = 8,
    threads: int = 1,
    details: bool = False,
):
    """The ``k`` largest singular values of the 2-D matrix ``a``, descending, as float64.

    Returns ``min(k, *a.shape)`` values. ``method``: see :data:`METHODS`. ``tol`` is the relative
    error that ``"auto"`` certifies on every value (under 2e-6, the float32 rounding floor, it runs
    the exact method); ``oversample`` widens ``"fast"``'s Krylov block (k + oversample, rounded
    up to a multiple of 16; ``"auto"`` and ``"exact"`` grow blocks of k rounded up to 16 until
    certified); ``krylov_blocks`` is the number of Krylov blocks ``"fast"`` builds. With
    ``details=True`` returns ``(values, info)``, info an :class:`SvdResult`: the ``method`` used,
    the certified ``error_bound`` (relative; 0 where LAPACK computed the values, NaN for fast), the
    Krylov ``blocks`` and the seconds per ``phases``.
    Raises ValueError if ``a`` holds NaN or Inf.
    """
    m, name, rows, cols = _as_matrix(a, dtype)
    info = engine().top_singular_values(
        m, name, rows, cols, k, method, oversample, krylov_blocks, tol, threads
    )
    return (info.values, info) if details else info.values
