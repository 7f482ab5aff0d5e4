"""Lineage from the invariants (invariants.py): heads matched one-to-one, layers by index or by
closest, distances made free of every scale a rewrite can apply.

Scales that keep the function, and how they cancel here:
- per head (query x c, key / c; value x d, output / d) and per neuron (up x e, down / e): the
  circuit spectra and the up x down products do not move;
- the whole residual stream x alpha (embeddings, o_proj and down_proj x alpha, the norms' epsilon
  x alpha^2): every OV spectrum and every up x down product x alpha, the rest unchanged;
- with sandwich norms (a norm after attention and after the MLP, Gemma 2/3), o_proj and
  down_proj of each layer by its own factor, which that norm absorbs.
So each layer's OV spectra and up x down quantiles are compared as shapes (divided by their
norm), and the ratios of those norms between the models are checked apart: one ratio for the
whole model is a rewrite; ratios that differ by layer are one only with sandwich norms.

Widths: a norm maps the residual stream x (width d) to sqrt(d) x / |x| times its weights, so the
matrices that read it act on the unit direction x / |x| as W diag(g) sqrt(d). The invariants hold
W diag(g); QK spectra (two such factors) are compared times d, gate-row norms times sqrt(d). A
stream widened by zero dimensions and rotated (its norms rescaled to keep the function) then
keeps every circuit, and models of different widths and head sizes are compared on their top
min(k_a, k_b) values.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..fingerprint import Fingerprint
from ..invariants import Invariants


def _relative(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """||x - y|| / max(||x||, ||y||) along the last axis (symmetric; 0 where both are 0)."""
    scale = np.maximum(np.linalg.norm(x, axis=-1), np.linalg.norm(y, axis=-1))
    return np.linalg.norm(x - y, axis=-1) / np.where(scale > 0, scale, 1.0)


def _shape(x: np.ndarray) -> np.ndarray:
    """x divided by its norm (x itself where that is 0): what no scale can move."""
    n = float(np.linalg.norm(x))
    return x / n if n > 0 else x


@dataclass(frozen=True)
class LayerMatch:
    """Layer la of a against layer lb of b: the matched heads' distances and the layer's
    residual-scale ratio (the median over matched heads of |OV_a| / |OV_b|)."""

    distances: np.ndarray
    ratio: float

    @functools.cached_property
    def median(self) -> float:
        return float(np.median(self.distances))


@dataclass(frozen=True)
class _Heads:
    """One model's per-head circuit spectra, prepared once for all its layer matches: QK times the
    width (as rows of unit norm under QK norm), OV as is, as unit rows and their norms, and which
    layers have any."""

    qk: np.ndarray
    ov: np.ndarray
    ov_unit: np.ndarray
    ov_norm: np.ndarray
    present: np.ndarray

    @classmethod
    def of(cls, inv: Invariants, k: int, width: int, qk_norm: bool) -> _Heads:
        qk, ov = inv.qk[:, :, :k] * width, inv.ov[:, :, :k]
        present = ~(np.isnan(qk).all(axis=(1, 2)) | np.isnan(ov).all(axis=(1, 2)))
        norm = np.linalg.norm(ov, axis=2)
        unit = lambda x: x / np.linalg.norm(x, axis=2, keepdims=True).clip(1e-300)  # noqa: E731
        return cls(unit(qk) if qk_norm else qk, ov, unit(ov), norm, present)


def _layer_matches(
    a: _Heads, b: _Heads, pairs: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], Optional[LayerMatch]]:
    """For each pair (la, lb): heads of layer la of a matched one-to-one to heads of layer lb of
    b, on distances that no scale moves (each head's OV spectrum as a shape; QK per head under QK
    norm); then each matched pair's distance with b's OV spectra times the layer's ratio: the
    mean of the QK and OV spectra's relative distances. Removed heads leave the ratio of the
    others unchanged. None where either layer has no circuits. The cost matrices of many pairs
    are computed together (a few MB at a time): one pair at a time, numpy's call overhead was
    most of a comparison's time."""
    from scipy.optimize import linear_sum_assignment

    out: dict[tuple[int, int], Optional[LayerMatch]] = {p: None for p in pairs}
    live = [p for p in pairs if a.present[p[0]] and b.present[p[1]]]
    ha, hb, k = a.qk.shape[1], b.qk.shape[1], a.qk.shape[2]
    chunk = max(1, (1 << 21) // max(1, ha * hb * k))
    for start in range(0, len(live), chunk):
        part = live[start : start + chunk]
        la = np.array([p[0] for p in part])
        lb = np.array([p[1] for p in part])
        qk = _relative(a.qk[la][:, :, None, :], b.qk[lb][:, None, :, :])
        cost = (qk + _relative(a.ov_unit[la][:, :, None, :], b.ov_unit[lb][:, None, :, :])) / 2
        assigned = [linear_sum_assignment(c) for c in cost]
        rows = np.stack([r for r, _ in assigned])  # (pairs, matched heads)
        cols = np.stack([c for _, c in assigned])
        na = np.take_along_axis(a.ov_norm[la], rows, axis=1)
        nb = np.take_along_axis(b.ov_norm[lb], cols, axis=1)
        with np.errstate(all="ignore"):
            quotient = np.where((na > 0) & (nb > 0), na / nb, np.nan)
        has = ~np.isnan(quotient).all(axis=1)
        ratio = np.ones(len(part))
        ratio[has] = np.nanmedian(quotient[has], axis=1)
        ov_a = np.take_along_axis(a.ov[la], rows[:, :, None], axis=1)
        ov_b = np.take_along_axis(b.ov[lb], cols[:, :, None], axis=1)
        ov = _relative(ov_a, ratio[:, None, None] * ov_b)
        matched_qk = qk[np.arange(len(part))[:, None], rows, cols]
        for i, pair in enumerate(part):
            out[pair] = LayerMatch((matched_qk[i] + ov[i]) / 2, float(ratio[i]))
    return out


@dataclass(frozen=True)
class CircuitMatch:
    """How the attention circuits of two models match: per matched layer, the heads' distances
    after the best one-to-one assignment of heads (order is no evidence: heads can be permuted).

    ``reference`` is the same distance between non-corresponding layers (each matched layer of
    b replaced by its neighbour): how far heads of these models are when they are *not* copies
    of each other. Untrained (random) weights have nearly the same spectra everywhere, so a
    small distance is evidence of lineage only when it is also small next to the reference.
    """

    median: float  # median over matched layers of the median matched-head distance
    worst: float  # largest matched-head distance anywhere
    reference: float  # median over matched layers of the distance to b's neighbouring layer
    layer_pairs: list[tuple[int, int]]
    ov_ratios: list[float]  # per matched layer: the residual-scale ratio of its OV circuits, a over b
    null: LayerNull
    layer_worst: list[float]  # per matched layer: its largest matched-head distance

    @property
    def specificity(self) -> float:
        """median / reference: near 0 for a copy, near 1 when the match says nothing."""
        if not self.reference > 0:
            return 0.0 if self.median == 0 else math.inf
        return self.median / self.reference


@dataclass(frozen=True)
class LayerNull:
    """The matched layers' distances against the null that the two models are independent: then
    a layer of b that corresponds to a layer of a is no closer to it than b's other layers are.

    Per matched layer, the distances to up to NULL_LAYERS other layers of b are the null sample; ``p`` is the
    Fisher combination over matched layers of the per-layer ranks (1 + #null <= matched) / (1 +
    #null), a one-sided p-value of "this close by chance" (layers treated as independent, so it is
    optimistic where layers resemble each other); ``z`` the median over layers of (null mean -
    matched) / null std, how many standard deviations the match sits below its null (AWM reports
    such z-scores); ``floor`` the smallest p this many layers could give (few layers cannot give
    strong evidence); ``layers`` the matched layers that had a null sample: none at different
    depths, where each layer is matched to its closest (NaN p and z then)."""

    p: float
    z: float
    floor: float
    layers: int


def layer_null(matched: Sequence[float], samples: Sequence[np.ndarray]) -> LayerNull:
    from scipy.special import chdtrc  # the chi-squared survival function

    ranks, floors, zs = [], [], []
    for d, null in zip(matched, samples):
        if len(null) == 0:
            continue
        ranks.append((1 + np.count_nonzero(null <= d)) / (1 + len(null)))
        floors.append(1 / (1 + len(null)))
        spread = float(np.std(null))
        zs.append(
            (float(np.mean(null)) - d) / spread if spread > 0 else (math.inf if d < np.mean(null) else 0.0)
        )
    if not ranks:
        return LayerNull(math.nan, math.nan, math.nan, 0)
    fisher = lambda ps: float(chdtrc(2 * len(ps), -2 * np.sum(np.log(ps))))  # noqa: E731
    return LayerNull(fisher(ranks), float(np.median(zs)), fisher(floors), len(ranks))


# Non-corresponding layers per matched layer in the null sample: enough for a per-layer p of 1/9
# (Fisher over 30 layers: 1e-7), few enough that a comparison stays O(depth).
NULL_LAYERS = 8


def null_layers(layer: int, depth: int) -> list[int]:
    """Up to NULL_LAYERS layers other than ``layer``, spread evenly over the depth."""
    others = [i for i in range(depth) if i != layer]
    if len(others) <= NULL_LAYERS:
        return others
    return [others[int(i)] for i in np.linspace(0, len(others) - 1, NULL_LAYERS).round()]


def circuit_match(ia: Invariants, ib: Invariants, widths: tuple[int, int]) -> Optional[CircuitMatch]:
    """Matches layers (by index at equal depth; else each layer of the shallower model to its
    closest layer of the deeper one, so removed layers anywhere are allowed) and heads; ``widths``
    are the two residual widths."""
    k, qk_norm = min(ia.qk.shape[2], ib.qk.shape[2]), ia.qk_norm or ib.qk_norm
    a, b = _Heads.of(ia, k, widths[0], qk_norm), _Heads.of(ib, k, widths[1], qk_norm)
    depth_a, depth_b = ia.qk.shape[0], ib.qk.shape[0]
    if depth_a == depth_b:
        candidates = [[(i, i)] for i in range(depth_a)]
        # Every pair the match will look at: itself, its neighbour, its null layers.
        needed = {(i, j) for i in range(depth_a) for j in (i, i + 1, i - 1, *null_layers(i, depth_b))}
    elif depth_a < depth_b:
        candidates = [[(i, j) for j in range(depth_b)] for i in range(depth_a)]
        needed = {p for options in candidates for p in options}
    else:
        candidates = [[(i, j) for i in range(depth_a)] for j in range(depth_b)]
        needed = {p for options in candidates for p in options}
    matches = _layer_matches(a, b, sorted((i, j) for i, j in needed if 0 <= j < depth_b))

    def match(la: int, lb: int) -> Optional[LayerMatch]:
        return matches[(la, lb)]

    per_layer, layer_worst, pairs, ratios, reference = [], [], [], [], []
    for options in candidates:
        best: Optional[tuple[LayerMatch, tuple[int, int]]] = None
        for la, lb in options:
            m = match(la, lb)
            if m is not None and (best is None or m.median < best[0].median):
                best = (m, (la, lb))
        if best is None:
            continue
        per_layer.append(best[0].median)
        layer_worst.append(float(best[0].distances.max()))
        pairs.append(best[1])
        ratios.append(best[0].ratio)
        la, lb = best[1]
        neighbour = lb + 1 if lb + 1 < depth_b else lb - 1
        other = match(la, neighbour) if neighbour >= 0 else None
        if other is not None:
            reference.append(other.median)
    if not per_layer:
        return None
    # The null needs layers matched without looking at distances (by index, at equal depth): a
    # layer chosen as the closest of b's is closer than the others by construction.
    samples = []
    for la, lb in pairs if depth_a == depth_b else []:
        others = [match(la, other) for other in null_layers(lb, depth_b)]
        samples.append(np.array([m.median for m in others if m is not None]))
    ref = float(np.median(reference)) if reference else math.nan
    return CircuitMatch(
        float(np.median(per_layer)),
        max(layer_worst),
        ref,
        pairs,
        ratios,
        layer_null(per_layer, samples),
        layer_worst,
    )


def _mlp_pair(inv: Invariants, layer: int, width: int) -> np.ndarray:
    """The (quantiles, 2) MLP invariants of a layer: gate-row norms times sqrt(width), the up x
    down column as a shape."""
    x = inv.mlp[layer].copy()
    x[:, 0] *= np.sqrt(width)
    if not np.isnan(x[:, 1]).any():
        x[:, 1] = _shape(x[:, 1])
    return x


def mlp_distance(
    a: Invariants, b: Invariants, pairs: Sequence[tuple[int, int]], widths: tuple[int, int]
) -> Optional[float]:
    """Median over matched layers of equal width of the relative distance between the MLP
    per-neuron quantiles (None when no matched layer has equal width)."""
    d = []
    for la, lb in pairs:
        if a.neurons[la] == 0 or a.neurons[la] != b.neurons[lb]:
            continue
        x, y = _mlp_pair(a, la, widths[0]), _mlp_pair(b, lb, widths[1])
        ok = ~(np.isnan(x).any(axis=0) | np.isnan(y).any(axis=0))
        if ok.any():
            d.append(float(_relative(x[:, ok].T, y[:, ok].T).max()))
    return float(np.median(d)) if d else None


def scale_spread(a: Invariants, b: Invariants, match: CircuitMatch) -> float:
    """How far the matched layers' residual-scale ratios (a over b: of the OV circuits, and of the
    up x down quantiles' norm) are from one common ratio: max |ratio / median - 1| (0 for a
    global scale)."""
    ratios = list(match.ov_ratios)
    for la, lb in match.layer_pairs:
        nx, ny = np.linalg.norm(a.mlp[la][:, 1]), np.linalg.norm(b.mlp[lb][:, 1])
        if np.isfinite(nx) and np.isfinite(ny) and nx > 0 and ny > 0 and a.neurons[la] == b.neurons[lb]:
            ratios.append(nx / ny)
    r = np.asarray([x for x in ratios if np.isfinite(x) and x > 0])
    if not r.size:
        return 0.0
    return float(np.max(np.abs(r / np.median(r) - 1.0)))


def residual_width(fp: Fingerprint) -> int:
    """The width of the residual stream the q projection reads (0 where not recorded)."""
    return int(fp.matrix_shapes.get("q", [0, 0])[1])


def comparable(a: Fingerprint, b: Fingerprint) -> bool:
    """Whether both carry attention circuits (and record the widths they read)."""
    ia, ib = a.invariants, b.invariants
    if ia is None or ib is None or ia.geometry is None or ib.geometry is None:
        return False
    return residual_width(a) > 0 and residual_width(b) > 0


def _same_geometry(a: Fingerprint, b: Fingerprint) -> bool:
    ia, ib = a.invariants, b.invariants
    assert ia is not None and ib is not None
    return ia.geometry == ib.geometry and a.layers == b.layers and np.array_equal(ia.neurons, ib.neurons)


def size_difference(a: Fingerprint, b: Fingerprint) -> str:
    """What differs between the two models' sizes, as far as each records it ("" for nothing):
    residual width, head size, layers, heads, MLP neurons."""
    ia, ib = a.invariants, b.invariants
    ga = ia.geometry if ia is not None else None
    gb = ib.geometry if ib is not None else None
    parts = []
    if residual_width(a) and residual_width(b) and residual_width(a) != residual_width(b):
        parts.append(f"residual width {residual_width(a)} vs {residual_width(b)}")
    if ga is not None and gb is not None and ga.head_dim != gb.head_dim:
        parts.append(f"head size {ga.head_dim} vs {gb.head_dim}")
    if a.layers != b.layers:
        parts.append(f"{a.layers} vs {b.layers} layers")
    if ga is not None and gb is not None and (ga.heads != gb.heads or ga.kv_heads != gb.kv_heads):
        parts.append(f"{ga.heads}/{ga.kv_heads} vs {gb.heads}/{gb.kv_heads} heads")
    na = ia.neurons[ia.neurons > 0] if ia is not None else np.zeros(0)
    nb = ib.neurons[ib.neurons > 0] if ib is not None else np.zeros(0)
    if na.size and nb.size and na[0] != nb[0]:
        parts.append(f"{int(na.max())} vs {int(nb.max())} MLP neurons")
    return ", ".join(parts)


@dataclass(frozen=True)
class CircuitEvidence:
    """What the invariants say about a pair: the circuit match, the MLP distance (None: no
    matched layer of equal MLP width), the spread of the layers' residual-scale ratios, whether
    per-layer scales are rewrites (either model has sandwich norms), whether the two have the
    same head, neuron and layer counts, and else what differs."""

    match: CircuitMatch
    mlp: Optional[float]
    scale_spread: float
    sandwich: bool
    same_geometry: bool
    size_difference: str


def circuit_evidence(a: Fingerprint, b: Fingerprint) -> Optional[CircuitEvidence]:
    """The invariants' evidence, or None where the two carry no comparable circuits."""
    if not comparable(a, b):
        return None
    ia, ib = a.invariants, b.invariants
    assert ia is not None and ib is not None
    widths = (residual_width(a), residual_width(b))
    match = circuit_match(ia, ib, widths)
    if match is None:
        return None
    return CircuitEvidence(
        match,
        mlp_distance(ia, ib, match.layer_pairs, widths),
        scale_spread(ia, ib, match),
        ia.sandwich_norms or ib.sandwich_norms,
        _same_geometry(a, b),
        size_difference(a, b),
    )
