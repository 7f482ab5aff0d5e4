"""Weight sketches: each projection matrix's count sketch (the engine's ``count_sketch``), a few
hundred signed sums of its elements hashed by position.

A sketch is linear in the matrix, so the cosine of two sketches estimates the cosine of the two
matrices' elements (to about 1 / sqrt(SKETCH_BUCKETS)): about 1 for a fine-tune or a quantized
copy, w / sqrt(w^2 + (1 - w)^2) for an average that holds a share w of the matrix, and 0 for a
matrix of an independently trained model, which shares no coordinates with it. A rotated or
permuted copy shares no coordinates either: sketches can show lineage, never rule it out (the
token probes and the invariants cover rewrites).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Optional

import numpy as np

from .arrays import decode_int16, encode_int16

SKETCH_BUCKETS = 256


def build_sketches(records: Sequence, layers: int, types: Sequence[str]) -> Optional[np.ndarray]:
    """(layers, types, buckets) sketches from records carrying them (``record.sketch``), NaN where
    a matrix has none; None when no record has one."""
    out = np.full((layers, len(types), SKETCH_BUCKETS), np.nan)
    found = False
    for r in records:
        if getattr(r, "sketch", None) is not None and r.type in types and 0 <= r.layer < layers:
            out[r.layer, list(types).index(r.type)] = r.sketch
            found = True
    return out if found else None


def sketches_to_dict(s: np.ndarray) -> list:
    """Per layer, per type: the sketch as encode_int16 text (None where missing)."""
    return [[encode_int16(m) for m in layer] for layer in s]


def sketches_from_dict(d: Sequence, types: int) -> np.ndarray:
    """The (layers, types, buckets) array sketches_to_dict wrote; ValueError if it is damaged."""
    if any(len(layer) != types for layer in d):
        raise ValueError("a layer of weight sketches does not have one per projection type")
    return np.array([[decode_int16(m, (SKETCH_BUCKETS,)) for m in layer] for layer in d]).reshape(
        len(d), types, SKETCH_BUCKETS
    )


def sketch_cosines(a: np.ndarray, b: np.ndarray, same_shape: Mapping[int, bool]) -> np.ndarray:
    """(layers, types) cosines of two models' sketches, NaN where a matrix is missing or the two
    types' shapes differ (``same_shape``: type index -> whether a's and b's shapes are equal)."""
    na, nb = np.linalg.norm(a, axis=2), np.linalg.norm(b, axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.sum(a * b, axis=2) / (na * nb)
    for t, same in same_shape.items():
        if not same:
            c[:, t] = np.nan
    return c
