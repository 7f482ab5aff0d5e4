"""The native engine, handed SciPy's BLAS/LAPACK on first use.

The engine calls the OpenBLAS that SciPy ships, through the function pointers SciPy publishes
for that purpose (``scipy.linalg.cython_blas`` / ``cython_lapack``). So the package links no
BLAS of its own, needs no system OpenBLAS and no compiler-side BLAS discovery, and uses the
same well-tested library as ``scipy.linalg``. OpenBLAS's thread-count functions are located
with threadpoolctl, so that the engine can run small matrices concurrently on single-threaded
BLAS and large ones on all cores without oversubscribing.
"""

from __future__ import annotations

import ctypes
import os

from .. import _core
from .._core import (
    BlockGramSpec,
    EngineError,
    GgufFile,
    Job,
    JobResult,
    Moments,
    ProbeSpec,
    SafetensorsFile,
    SvdResult,
    TensorFile,
    TensorInfo,
    WeightprintFormatError,
)

__all__ = [
    "BlockGramSpec",
    "EngineError",
    "GgufFile",
    "Job",
    "JobResult",
    "Moments",
    "ProbeSpec",
    "SafetensorsFile",
    "SvdResult",
    "TensorFile",
    "TensorInfo",
    "WeightprintFormatError",
    "engine",
]

_BLAS = ("sgemm", "dgemm", "dsyrk")
_LAPACK = ("dsyevr", "sgeqrf", "sorgqr", "dgeqrf", "dorgqr", "dpotrf")


def _openblas_thread_functions() -> tuple[int, int]:
    """Addresses of SciPy's ``openblas_set_num_threads``/``get_num_threads`` (0, 0 if not found)."""
    from threadpoolctl import ThreadpoolController

    candidates = [c for c in ThreadpoolController().lib_controllers if c.internal_api == "openblas"]
    # SciPy's wheels vendor their OpenBLAS in scipy.libs; elsewhere (conda, distro) one is shared.
    own = [c for c in candidates if os.path.basename(os.path.dirname(c.filepath)).startswith("scipy")]
    if not own and len(candidates) == 1:
        own = candidates
    for c in own:
        for prefix in ("scipy_", ""):
            for suffix in ("", "64_", "_64"):
                setter = getattr(c.dynlib, f"{prefix}openblas_set_num_threads{suffix}", None)
                getter = getattr(c.dynlib, f"{prefix}openblas_get_num_threads{suffix}", None)
                if setter is not None and getter is not None:
                    return (
                        ctypes.cast(setter, ctypes.c_void_p).value or 0,
                        ctypes.cast(getter, ctypes.c_void_p).value or 0,
                    )
    return 0, 0


_blas_ready = False


def engine():
    """The engine module, its BLAS/LAPACK entry points set (done once, on first use, so that
    importing the package stays cheap: SciPy's linear algebra takes ~0.3 s to import)."""
    global _blas_ready
    if not _blas_ready:
        import scipy.linalg.cython_blas as cython_blas
        import scipy.linalg.cython_lapack as cython_lapack

        capsules = {name: cython_blas.__pyx_capi__[name] for name in _BLAS}
        capsules.update({name: cython_lapack.__pyx_capi__[name] for name in _LAPACK})
        setter, getter = _openblas_thread_functions()
        _core.init_blas(capsules, setter, getter)
        _blas_ready = True
    return _core
