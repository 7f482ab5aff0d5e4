"""What every reader returns: one :class:`MatrixRecord` per projection matrix and a
:class:`SourceInfo` about the checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from ..architecture import AttentionGeometry
from ..engine import Moments
from ..errors import ConfigError
from .files import read_json


@dataclass
class MatrixRecord:
    """Measurements of one projection matrix."""

    layer: int
    type: str
    tensor: str
    shape: tuple[int, int]
    moments: Moments
    singular_values: Optional[np.ndarray]  # descending, up to top_k values
    error: Optional[str] = None  # why singular values are missing
    expert: Optional[int] = None
    gram: Optional[np.ndarray] = None  # diagonal Gram blocks for the lineage invariants (invariants.py)
    # Probe products (probes.py), as the logical matrix: readers (out, anchors), writers (anchors, in).
    probe: Optional[np.ndarray] = None
    sketch: Optional[np.ndarray] = None  # the count sketch of the stored window (sketches.py)


@dataclass
class SourceInfo:
    source: str
    format: str  # "safetensors", "gguf" or "lora"
    architecture: str
    families: list[str]
    parameters: int  # elements in all tensors of the checkpoint
    dtypes: dict[str, int] = field(default_factory=dict)  # dtype -> number of tensors
    extra: dict = field(default_factory=dict)
    geometry: Optional[AttentionGeometry] = None  # head layout, where the config gives it
    qk_norm: bool = False  # query/key normalization (per-head QK scale is then free)
    norms_folded: bool = False  # norm weights folded into the invariants' Gram blocks
    sandwich_norms: bool = False  # norms after attention and MLP too: per-layer o/down scales are free
    anchor_words: list[str] = field(default_factory=list)  # the words the token probes read (probes.py)


def config_source(path: Path) -> str:
    """Where a checkpoint's config.json is (or would be): in its directory, or beside its file."""
    return str((path if path.is_dir() else path.parent) / "config.json")


def read_config(path: Path) -> dict:
    """config.json beside the weights (in the directory, or beside a single file), else {}."""
    cfg = Path(config_source(path))
    if not cfg.is_file():
        return {}
    data = read_json(cfg, "config")
    if not isinstance(data, dict):
        raise ConfigError(f"{cfg}: the configuration is not a JSON object")
    return data
