"""weightprint-fast: fingerprint LLM checkpoints from their weights alone.

Fingerprints (Ye et al., arXiv 2509.19122): the Standard-Deviation Vector (per projection type,
the std of its weights over all layers) and the Clustering Vector (K-Means over the top singular
values of every projection matrix), computed by a C++ engine over memory-mapped checkpoints.

Main entry points: :func:`fingerprint`, :func:`compare`, :func:`compare_many`, and the engine's
:func:`scan`, :func:`matrix_stats` and :func:`top_singular_values`.
"""

from __future__ import annotations

from ._version import __version__
from .apps.batch import BatchReport, batch
from .architecture import Architecture, AttentionGeometry, read_architecture
from .compare import (
    DEFAULT_THRESHOLDS,
    Comparison,
    ComparisonMatrix,
    Thresholds,
    Verdict,
    compare,
    compare_many,
)
from .engine import JobResult, Moments, SvdResult
from .engine.analyse import TensorEntry, TensorFileSet, Window, analyse
from .engine.kernels import METHODS, matrix_stats, top_singular_values
from .errors import (
    CheckpointNotFoundError,
    ConfigError,
    EngineError,
    FingerprintFileError,
    InputError,
    MissingExtraError,
    StoreError,
    UnknownArchitectureError,
    WeightprintError,
    WeightprintFormatError,
)
from .fingerprint import Fingerprint, fingerprint
from .invariants import Invariants
from .naming import TYPE_ORDER, ProjectionType
from .readers import open_gguf, open_shards, open_tensor_files
from .readers.scan import TensorRecord, scan
from .settings import Settings
from .zoo import FingerprintStore, LineageSketch, SearchHit, lineage_sketch, search

__all__ = [
    "DEFAULT_THRESHOLDS",
    "METHODS",
    "TYPE_ORDER",
    "Architecture",
    "AttentionGeometry",
    "BatchReport",
    "CheckpointNotFoundError",
    "Comparison",
    "ComparisonMatrix",
    "ConfigError",
    "EngineError",
    "Fingerprint",
    "FingerprintFileError",
    "FingerprintStore",
    "InputError",
    "Invariants",
    "JobResult",
    "LineageSketch",
    "MissingExtraError",
    "Moments",
    "ProjectionType",
    "SearchHit",
    "Settings",
    "StoreError",
    "SvdResult",
    "TensorEntry",
    "TensorFileSet",
    "TensorRecord",
    "Thresholds",
    "UnknownArchitectureError",
    "Verdict",
    "WeightprintError",
    "WeightprintFormatError",
    "Window",
    "__version__",
    "analyse",
    "batch",
    "compare",
    "compare_many",
    "fingerprint",
    "lineage_sketch",
    "matrix_stats",
    "open_gguf",
    "open_shards",
    "open_tensor_files",
    "read_architecture",
    "scan",
    "search",
    "top_singular_values",
]
