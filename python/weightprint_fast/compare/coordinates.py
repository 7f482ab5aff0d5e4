"""Lineage by shared coordinates: the weight sketches (sketches.py) of matrices of equal shape,
layer by layer at equal depth. A fine-tune or a quantized copy keeps its parent's coordinates
(cosines near 1), an average keeps a share of them (a 30% share: about 0.4), a copied layer keeps
them in that layer only; independently trained models share none (cosines within about
1 / sqrt(256) of 0). Rotated, permuted or resized copies share none either, so this evidence can
make a pair derived but never independent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..fingerprint import Fingerprint
from ..sketches import SKETCH_BUCKETS, sketch_cosines

# A sketch cosine's spread between matrices that share no coordinates.
NULL_STD = 1 / np.sqrt(SKETCH_BUCKETS)


@dataclass(frozen=True)
class CoordinateEvidence:
    """``layers``: per layer, the median sketch cosine over the types both have at equal shape
    (NaN: none); ``statistic`` their median; ``matrices`` how many matrices were compared."""

    layers: list[float]
    statistic: float
    matrices: int

    @property
    def z(self) -> float:
        """The median cosine over its null's spread, per matrix compared (sqrt(n) / NULL_STD)."""
        return self.statistic / NULL_STD * np.sqrt(max(self.matrices, 1)) if self.matrices else 0.0


def coordinate_evidence(a: Fingerprint, b: Fingerprint) -> Optional[CoordinateEvidence]:
    """The sketches' evidence at equal depth, or None where either has none or no type of equal
    shape."""
    sa, sb = a.weight_sketches, b.weight_sketches
    if sa is None or sb is None or sa.shape[0] != sb.shape[0]:
        return None
    types = [t for t in a.types if t in b.types]
    same = [
        a.matrix_shapes.get(t) == b.matrix_shapes.get(t) and a.matrix_shapes.get(t) is not None for t in types
    ]
    if not any(same):
        return None
    ia, ib = [a.types.index(t) for t in types], [b.types.index(t) for t in types]
    c = sketch_cosines(sa[:, ia], sb[:, ib], dict(enumerate(same)))
    with np.errstate(all="ignore"):
        per_layer = [float(np.nanmedian(row)) if np.isfinite(row).any() else float("nan") for row in c]
    finite = [x for x in per_layer if np.isfinite(x)]
    if not finite:
        return None
    return CoordinateEvidence(per_layer, float(np.median(finite)), int(np.isfinite(c).sum()))
