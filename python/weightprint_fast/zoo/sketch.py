"""Lineage sketches: two fixed-length vectors per fingerprint, for finding a model's relatives
among a million stored ones without comparing it with each.

- ``tokens`` (TOKEN_DIMS): the token probes' patterns (compare/tokens.patterns: double-centred,
  off-diagonal, unit length per layer), averaged within DEPTH_BINS bins of relative depth, laid
  on the grid of all ANCHOR_WORDS (a word the tokenizer lacks contributes zero), and projected by
  a count sketch. The probes cancel rotations, permutations, per-head/neuron/global rescaling,
  widening and slicing, so the sketch does too; relative depth makes it comparable across
  depths. The cosine of two token sketches approximates the correlation of their binned
  patterns: 0.91 median for the evaluation's derived pairs, 0.06 median (0.29 max) for its
  independent ones before projection, about 1/16 more noise after it.
- ``coordinates`` (COORDINATE_DIMS): every matrix's weight sketch (sketches.py), unit length,
  hashed with its layer, type and shape into one count sketch. Linear in the weights, so it
  keeps what the token forms do not see: a 30% share of an average, transplanted layers. Models
  of other shapes, and independent ones, meet it at 0 +- 1/16.

Either may be None (no token probes; no weight sketches). Stored as float16: 512 bytes each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..compare.tokens import patterns
from ..fingerprint import Fingerprint
from ..probes import ANCHOR_WORDS, FORMS

TOKEN_DIMS = 256
COORDINATE_DIMS = 256
DEPTH_BINS = 4
_WORD_INDEX = {w: i for i, w in enumerate(ANCHOR_WORDS)}
_ANCHORS = len(ANCHOR_WORDS)
_OFF_DIAGONAL = ~np.eye(_ANCHORS, dtype=bool)
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix(x: np.ndarray) -> np.ndarray:
    """splitmix64 of each uint64 (a fixed hash: sketches stay comparable across versions and
    machines, unlike a seeded generator's stream)."""
    with np.errstate(over="ignore"):
        z = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return z ^ (z >> np.uint64(31))


def _count_sketch(values: np.ndarray, keys: np.ndarray, dims: int) -> np.ndarray:
    """sum_i sign(key_i) values_i into bucket(key_i): a linear map that keeps inner products
    (to about |x||y| / sqrt(dims)), unit length out (zero stays zero)."""
    h = _splitmix(keys.astype(np.uint64))
    out = np.zeros(dims)
    sign = np.where((h >> np.uint64(63)) == 1, -1.0, 1.0)
    np.add.at(out, (h % np.uint64(dims)).astype(np.int64), sign * values)
    n = np.linalg.norm(out)
    return out / n if n > 0 else out


def _text_key(text: str) -> int:
    """A stable 48-bit key of a short text (FNV-1a)."""
    h = 0xCBF29CE484222325
    for byte in text.encode():
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h >> 16


def token_sketch(fp: Fingerprint) -> Optional[np.ndarray]:
    """(TOKEN_DIMS,) unit vector, or None without token probes."""
    tf = fp.token_forms
    if tf is None or tf.layers == 0:
        return None
    cells = [_WORD_INDEX[w] for w in tf.words if w in _WORD_INDEX]
    if len(cells) < 2:
        return None
    keep = [i for i, w in enumerate(tf.words) if w in _WORD_INDEX]
    grid = np.zeros((len(FORMS), DEPTH_BINS, _ANCHORS, _ANCHORS))
    rows = np.array(cells)[:, None]
    m = len(keep)
    inner = ~np.eye(m, dtype=bool)
    for f_index, f in enumerate(FORMS):
        if f not in tf.forms:
            continue
        p = patterns(tf.forms[f], keep)  # (layers, m * (m - 1)), NaN rows where absent
        layers = p.shape[0]
        for layer in range(layers):
            if not np.isfinite(p[layer]).all():
                continue
            block = np.zeros((m, m))
            block[inner] = p[layer]
            grid[f_index, min(DEPTH_BINS - 1, layer * DEPTH_BINS // layers)][rows, np.array(cells)] += block
    norms = np.linalg.norm(grid, axis=(2, 3), keepdims=True)
    grid = np.divide(grid, norms, out=np.zeros_like(grid), where=norms > 0)
    values = grid[:, :, _OFF_DIAGONAL].ravel()
    if not values.any():
        return None
    return _count_sketch(values, np.arange(values.size, dtype=np.uint64), TOKEN_DIMS)


def coordinate_sketch(fp: Fingerprint) -> Optional[np.ndarray]:
    """(COORDINATE_DIMS,) unit vector, or None without weight sketches."""
    s = fp.weight_sketches
    if s is None:
        return None
    values, keys = [], []
    buckets = np.arange(s.shape[2], dtype=np.uint64)
    for t_index, t in enumerate(fp.types):
        shape = "x".join(str(d) for d in fp.matrix_shapes.get(t, ()))
        for layer in range(s.shape[0]):
            v = s[layer, t_index]
            n = np.linalg.norm(v)
            if not np.isfinite(n) or n == 0:
                continue
            # Layer, type and shape in the key: only equal positions of equal shapes meet.
            base = np.uint64(_text_key(f"{layer}/{t}/{shape}") << 8 & 0xFFFFFFFFFFFFFFFF)
            values.append(v / n)
            keys.append(base ^ buckets)
    if not values:
        return None
    return _count_sketch(np.concatenate(values), np.concatenate(keys), COORDINATE_DIMS)


@dataclass(frozen=True)
class LineageSketch:
    """A fingerprint's two search vectors (unit length, float32), either None where the
    fingerprint lacks its evidence."""

    tokens: Optional[np.ndarray]
    coordinates: Optional[np.ndarray]

    def to_bytes(self) -> tuple[Optional[bytes], Optional[bytes]]:
        """Each vector as little-endian float16 (512 bytes), None where absent."""
        return tuple(
            None if v is None else v.astype("<f2").tobytes() for v in (self.tokens, self.coordinates)
        )  # type: ignore[return-value]

    @classmethod
    def from_bytes(cls, tokens: Optional[bytes], coordinates: Optional[bytes]) -> LineageSketch:
        """The sketch to_bytes wrote; ValueError where a vector has the wrong length."""

        def vector(raw: Optional[bytes], dims: int) -> Optional[np.ndarray]:
            if raw is None:
                return None
            if len(raw) != 2 * dims:
                raise ValueError(f"a stored sketch of {len(raw)} bytes, not {2 * dims}")
            return np.frombuffer(raw, dtype="<f2").astype(np.float32)

        return cls(vector(tokens, TOKEN_DIMS), vector(coordinates, COORDINATE_DIMS))


def lineage_sketch(fp: Fingerprint) -> LineageSketch:
    """The fingerprint's search vectors."""
    t, c = token_sketch(fp), coordinate_sketch(fp)
    return LineageSketch(
        None if t is None else t.astype(np.float32), None if c is None else c.astype(np.float32)
    )
