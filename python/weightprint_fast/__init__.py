"""weightprint-fast: fingerprint LLM checkpoints from their weights alone.

Fingerprints (Ye et al., arXiv 2509.19122): the Standard-Deviation Vector (per projection type,
the std of its weights over all layers) and the Clustering Vector (K-Means over the top singular
values of every projection matrix), computed by a C++ engine over memory-mapped checkpoints.

Main entry points: :func:`fingerprint`, :func:`compare`, :func:`compare_many`, and the engine's
:func:`scan`, :func:`matrix_stats` and :func:`top_singular_values`.
"""

from __future__ import annotations

__version__ = "0.2.0"

from ._native import WeightprintFormatError
from .batch import BatchReport, SearchHit, batch, search
from .compare import RELATED, THRESHOLDS, VERDICTS, Comparison, ComparisonMatrix, compare, compare_many
from .fingerprint import Fingerprint, FingerprintFileError, fingerprint
from .invariants import AttentionGeometry, Invariants
from .kernels import METHODS, matrix_stats, top_singular_values
from .naming import TYPE_ORDER, ProjectionType, UnknownArchitectureError
from .safetensors_files import ShardSet, TensorEntry, open_shards
from .scan import TensorRecord, Window, WindowResult, analyse, scan
from .store import FingerprintStore

__all__ = [
    "AttentionGeometry",
    "Invariants",
    "RELATED",
    "VERDICTS",
    "BatchReport",
    "FingerprintStore",
    "SearchHit",
    "batch",
    "search",
    "METHODS",
    "THRESHOLDS",
    "TYPE_ORDER",
    "Comparison",
    "ComparisonMatrix",
    "Fingerprint",
    "FingerprintFileError",
    "ProjectionType",
    "ShardSet",
    "TensorEntry",
    "TensorRecord",
    "UnknownArchitectureError",
    "WeightprintFormatError",
    "Window",
    "WindowResult",
    "analyse",
    "compare",
    "compare_many",
    "fingerprint",
    "matrix_stats",
    "open_shards",
    "scan",
    "top_singular_values",
    "__version__",
]
