"""weightprint-fast: fingerprint LLM checkpoints from their weights alone.

Engine level (this release): strict memory-mapped safetensors reading, per-matrix statistics and
top-k singular values in C++, over whole sharded checkpoints.
"""

from __future__ import annotations

from ._native import WeightprintFormatError
from .kernels import METHODS, matrix_stats, top_singular_values
from .safetensors_files import ShardSet, TensorEntry, open_shards
from .scan import TensorRecord, Window, WindowResult, analyse, scan

__version__ = "0.1.0"

__all__ = [
    "METHODS",
    "ShardSet",
    "TensorEntry",
    "TensorRecord",
    "WeightprintFormatError",
    "Window",
    "WindowResult",
    "analyse",
    "matrix_stats",
    "open_shards",
    "scan",
    "top_singular_values",
    "__version__",
]
