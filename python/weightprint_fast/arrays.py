"""Arrays in fingerprint JSON: nested lists, NaN written as null, floats exact (round-trip); and
scale-free arrays (compared by correlation only) as base64 of 16-bit integers."""

from __future__ import annotations

import base64
import math
from typing import Optional

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


_LEVELS = 32767


def encode_int16(m: np.ndarray) -> Optional[str]:
    """An array divided by its largest magnitude, as base64 of little-endian int16 (None where it
    holds NaN): what is compared by correlation needs neither its scale nor more bits."""
    if np.isnan(m).any():
        return None
    top = float(np.abs(m).max()) if m.size else 0.0
    q = np.rint(m / top * _LEVELS) if top > 0 else np.zeros_like(m)
    return base64.b64encode(q.astype("<i2").tobytes()).decode("ascii")


def decode_int16(text: Optional[str], shape: tuple[int, ...]) -> np.ndarray:
    """The array encode_int16 wrote (scaled to a largest magnitude of 1), NaN for None; ValueError
    where the text is not base64 of that many values."""
    if text is None:
        return np.full(shape, np.nan)
    raw = np.frombuffer(base64.b64decode(text, validate=True), dtype="<i2")
    if raw.size != int(np.prod(shape)):
        raise ValueError(f"{raw.size} encoded values for an array of shape {shape}")
    return raw.reshape(shape).astype(np.float64) / _LEVELS
