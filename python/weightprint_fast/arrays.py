"""Arrays in fingerprint JSON: nested lists, NaN written as null, floats exact (round-trip)."""

from __future__ import annotations

import math

import numpy as np


def encode_array(x):
    """NaN-safe JSON: arrays as nested lists with null for NaN."""
    if isinstance(x, np.ndarray):
        return (
            [encode_array(v) for v in x]
            if x.ndim > 1
            else [None if math.isnan(v) else float(v) for v in x.tolist()]
        )
    if isinstance(x, float) and math.isnan(x):
        return None
    return x


def decode_array(x) -> np.ndarray:
    """Nested lists back to an array; numpy reads null (None) as NaN for float dtypes."""
    return np.array(x, dtype=np.float64)
