"""Comparing fingerprints: per-signal similarities and a verdict on lineage.

Signals (over the projection types both models have):
- ``sd_cosine`` / ``sd_distance``, ``cv_cosine`` / ``cv_distance``: the paper's vectors;
- ``layer_pearson``: Pearson correlation of the per-layer std profiles (resampled to a common
  depth, or the layers both have, whichever aligns better);
- ``coclustering_agreement``: 1 - mean |C_a - C_b| of the co-clustering matrices;
- ``spectral_distance``: median over same-shaped (layer, type) matrices of ||s_a - s_b|| / ||s_a||;
- ``circuit_distance`` / ``circuit_specificity`` / ``mlp_distance``: the lineage invariants
  (invariants.py): heads matched one-to-one, layers by index or closest; specificity is the
  distance over that to non-corresponding layers.

Verdict (thresholds in THRESHOLDS, calibrated in experiments/ and justified in the README): the
invariants decide (``same-model`` for a rewritten copy, ``same-family/derived``, ``unrelated``,
``undetermined``); fingerprints without them fall back to the matrices' own spectra, which can
confirm a copy or a derivative but not rule one out; a LoRA adapter against a full model gets
``adapter-of``, ``adapter-fits`` or ``adapter-for-other-shapes``. The paper's vectors never
decide alone: a rewritten copy moves them as far as unrelated families are apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from .fingerprint import Fingerprint, FingerprintFileError, fingerprint
from .invariants import Invariants
from .settings import Settings, resolve

# Calibrated on experiments/results (4656 labelled pairs of real models and their derivatives;
# README "Comparing models" gives the measured ranges each threshold sits between).
THRESHOLDS = {
    "same_circuit": 1e-5,  # every matched head's circuit distance at or below: same function
    "same_mlp": 1e-5,  # and the MLP invariants' distance at or below
    "derived_circuit": 0.05,  # median circuit distance at or below: derived,
    "derived_specificity": 0.2,  # if also at most this fraction of the non-corresponding layers' distance
    "unrelated_circuit": 0.35,  # median circuit distance above ...
    "unrelated_specificity": 0.8,  # ... and about as far as non-corresponding layers: not derived
    "same_spectral": 1e-6,  # without invariants: spectral_distance at or below: identical weights
    "same_sd_cosine": 1 - 1e-9,
    "derived_spectral": 0.05,  # without invariants: at or below (and layer profiles correlate): derived
    "derived_layer_pearson": 0.9,
}
VERDICTS = (
    "same-model",
    "same-family/derived",
    "unrelated",
    "undetermined",
    "adapter-of",
    "adapter-fits",
    "adapter-for-other-shapes",
)
RELATED = ("same-model", "same-family/derived", "adapter-of")


@dataclass
class Comparison:
    a: str
    b: str
    types: list[str]
    sd_cosine: float
    sd_distance: float
    cv_cosine: float
    cv_distance: float
    layer_pearson: float
    coclustering_agreement: float
    spectral_distance: Optional[float]
    circuit_distance: Optional[float]
    circuit_distance_max: Optional[float]
    circuit_specificity: Optional[float]
    mlp_distance: Optional[float]
    verdict: str
    reason: str
    merged_spectral_bound: Optional[float] = None  # adapter vs model: bound on the merge's spectral distance

    @property
    def related(self) -> bool:
        return self.verdict in RELATED

    def to_dict(self) -> dict:
        """JSON-ready: NaN and infinite values (an undefined signal) become None."""
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()
        }


def _cosine(x: np.ndarray, y: np.ndarray) -> float:
    nx, ny = np.linalg.norm(x), np.linalg.norm(y)
    if nx == 0 or ny == 0:
        return 1.0 if nx == ny else 0.0
    return float(np.clip(x @ y / (nx * ny), -1.0, 1.0))


def _resample(profile: np.ndarray, depth: int) -> np.ndarray:
    if profile.shape[0] == depth:
        return profile
    src = np.linspace(0.0, 1.0, profile.shape[0])
    dst = np.linspace(0.0, 1.0, depth)
    return np.stack([np.interp(dst, src, profile[:, t]) for t in range(profile.shape[1])], axis=1)


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y = x[ok], y[ok]
    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def _spectral_distance(a: Fingerprint, b: Fingerprint, ia: list[int], ib: list[int]) -> Optional[float]:
    """Median relative distance of matching matrices' spectra over the layers both models have
    (a truncated model is compared on its remaining layers); None unless the matrices have the
    same shapes (spectra of matrices of different shapes say nothing about lineage)."""
    if a.singular_values.shape[2] != b.singular_values.shape[2]:
        return None
    if a.matrix_shapes and b.matrix_shapes:
        types = [a.types[i] for i in ia]
        if any(a.matrix_shapes.get(t) != b.matrix_shapes.get(t) for t in types):
            return None
    depth = min(a.layers, b.layers)
    sa, sb = a.singular_values[:depth, ia], b.singular_values[:depth, ib]
    ok = ~(np.isnan(sa).any(axis=2) | np.isnan(sb).any(axis=2))
    if not ok.any():
        return None
    na = np.linalg.norm(sa[ok], axis=1)
    d = np.linalg.norm(sa[ok] - sb[ok], axis=1) / np.where(na > 0, na, 1.0)
    return float(np.median(d))


def _relative(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """||x - y|| / max(||x||, ||y||) along the last axis (symmetric; 0 where both are 0)."""
    scale = np.maximum(np.linalg.norm(x, axis=-1), np.linalg.norm(y, axis=-1))
    return np.linalg.norm(x - y, axis=-1) / np.where(scale > 0, scale, 1.0)


def _head_costs(a: Invariants, b: Invariants, la: int, lb: int) -> Optional[np.ndarray]:
    """(heads_a, heads_b) distances between the circuits of layer la of a and layer lb of b:
    the mean of the QK and OV spectra's relative distances (QK scale-free under QK norm)."""
    qa, qb, oa, ob = a.qk[la], b.qk[lb], a.ov[la], b.ov[lb]
    if np.isnan(qa).all() or np.isnan(qb).all() or np.isnan(oa).all() or np.isnan(ob).all():
        return None
    if a.qk_norm or b.qk_norm:
        qa = qa / np.linalg.norm(qa, axis=1, keepdims=True).clip(1e-300)
        qb = qb / np.linalg.norm(qb, axis=1, keepdims=True).clip(1e-300)
    qk = _relative(qa[:, None, :], qb[None, :, :])
    ov = _relative(oa[:, None, :], ob[None, :, :])
    return (qk + ov) / 2


@dataclass
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

    @property
    def specificity(self) -> float:
        """median / reference: near 0 for a copy, near 1 when the match says nothing."""
        if not self.reference > 0:
            return 0.0 if self.median == 0 else math.inf
        return self.median / self.reference


def _matched(cost: np.ndarray) -> np.ndarray:
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(cost)
    return cost[rows, cols]


def circuit_match(a: Invariants, b: Invariants) -> Optional[CircuitMatch]:
    """Matches layers (by index at equal depth; else each layer of the shallower model to its
    closest layer of the deeper one, so removed layers anywhere are allowed) and heads."""
    depth_a, depth_b = a.qk.shape[0], b.qk.shape[0]
    if depth_a == depth_b:
        candidates = [[(i, i)] for i in range(depth_a)]
    elif depth_a < depth_b:
        candidates = [[(i, j) for j in range(depth_b)] for i in range(depth_a)]
    else:
        candidates = [[(i, j) for i in range(depth_a)] for j in range(depth_b)]
    per_layer, worst, pairs, reference = [], 0.0, [], []
    for options in candidates:
        best = None
        for la, lb in options:
            cost = _head_costs(a, b, la, lb)
            if cost is None:
                continue
            matched = _matched(cost)
            if best is None or np.median(matched) < np.median(best[0]):
                best = (matched, (la, lb))
        if best is None:
            continue
        per_layer.append(float(np.median(best[0])))
        worst = max(worst, float(best[0].max()))
        pairs.append(best[1])
        la, lb = best[1]
        neighbour = lb + 1 if lb + 1 < depth_b else lb - 1
        cost = _head_costs(a, b, la, neighbour) if neighbour >= 0 else None
        if cost is not None:
            reference.append(float(np.median(_matched(cost))))
    if not per_layer:
        return None
    ref = float(np.median(reference)) if reference else math.nan
    return CircuitMatch(float(np.median(per_layer)), worst, ref, pairs)


def mlp_distance(a: Invariants, b: Invariants, pairs: Sequence[tuple[int, int]]) -> Optional[float]:
    """Median over matched layers of equal width of the relative distance between the MLP
    per-neuron quantiles (None when no matched layer has equal width)."""
    d = []
    for la, lb in pairs:
        if a.neurons[la] == 0 or a.neurons[la] != b.neurons[lb]:
            continue
        x, y = a.mlp[la], b.mlp[lb]
        ok = ~(np.isnan(x).any(axis=0) | np.isnan(y).any(axis=0))
        if ok.any():
            d.append(float(_relative(x[:, ok].T, y[:, ok].T).max()))
    return float(np.median(d)) if d else None


def _comparable(a: Fingerprint, b: Fingerprint) -> bool:
    """Whether both carry circuits of the same head size over the same residual width."""
    ia, ib = a.invariants, b.invariants
    if ia is None or ib is None or ia.geometry is None or ib.geometry is None:
        return False
    width = lambda f: f.matrix_shapes.get("q", [0, 0])[1]  # noqa: E731
    return ia.geometry.head_dim == ib.geometry.head_dim and width(a) == width(b) > 0


def _same_geometry(a: Fingerprint, b: Fingerprint) -> bool:
    ia, ib = a.invariants, b.invariants
    assert ia is not None and ib is not None
    return ia.geometry == ib.geometry and a.layers == b.layers and np.array_equal(ia.neurons, ib.neurons)


def _pruned(a: Fingerprint, b: Fingerprint) -> str:
    ia, ib = a.invariants, b.invariants
    assert ia is not None and ib is not None and ia.geometry is not None and ib.geometry is not None
    parts = []
    if a.layers != b.layers:
        parts.append(f"{a.layers} vs {b.layers} layers")
    if ia.geometry.heads != ib.geometry.heads or ia.geometry.kv_heads != ib.geometry.kv_heads:
        parts.append(
            f"{ia.geometry.heads}/{ia.geometry.kv_heads} vs {ib.geometry.heads}/{ib.geometry.kv_heads} heads"
        )
    if not np.array_equal(ia.neurons[ia.neurons > 0][:1], ib.neurons[ib.neurons > 0][:1]):
        parts.append(f"{int(ia.neurons.max())} vs {int(ib.neurons.max())} MLP neurons")
    return ", ".join(parts)


def _invariant_verdict(
    a: Fingerprint,
    b: Fingerprint,
    match: CircuitMatch,
    mlp: Optional[float],
    spectral: Optional[float],
    sd_cos: float,
) -> tuple[str, str]:
    t = THRESHOLDS
    same_geometry = _same_geometry(a, b)
    if same_geometry and match.worst <= t["same_circuit"] and (mlp is None or mlp <= t["same_mlp"]):
        if spectral is not None and spectral <= t["same_spectral"] and sd_cos >= t["same_sd_cosine"]:
            return "same-model", f"identical weights' spectra (distance {spectral:.2g}) and circuits"
        return "same-model", (
            f"same function, weights rewritten: every head's circuits agree to "
            f"{match.worst:.1g}, MLP invariants to {mlp if mlp is not None else 0:.1g}"
        )
    if match.median <= t["derived_circuit"] and match.specificity > t["derived_specificity"]:
        return "undetermined", (
            f"attention circuits close (median distance {match.median:.3g}) but no closer than "
            f"those of non-corresponding layers ({match.reference:.3g}): weights look untrained "
            "or generic, which says nothing about lineage"
        )
    if match.median <= t["derived_circuit"]:
        shape = "" if same_geometry else f"; pruned or truncated ({_pruned(a, b)})"
        return "same-family/derived", f"attention circuits close (median distance {match.median:.3g}){shape}"
    if match.median > t["unrelated_circuit"] and match.specificity >= t["unrelated_specificity"]:
        if same_geometry:
            return "unrelated", f"attention circuits differ (median distance {match.median:.3g})"
        return "undetermined", (
            f"not derived from one another (circuits differ, median distance {match.median:.3g}); "
            f"different sizes ({_pruned(a, b)}): family not determined"
        )
    return "undetermined", f"attention circuits neither close nor far (median distance {match.median:.3g})"


def _spectral_verdict(
    sd_cos: float, pearson: float, spectral: Optional[float], same_depth: bool
) -> tuple[str, str]:
    """Verdict of fingerprints without comparable invariants (schema 1, no head counts in the
    config) from the matrices' own spectra. Those move under function-preserving rewrites, so
    they can confirm a copy or a derivative but never rule one out."""
    t = THRESHOLDS
    if spectral is None:
        return "undetermined", (
            f"different shapes and no comparable circuits: no matrix-level comparison (SD cosine "
            f"{sd_cos:.4f}, which cannot tell a separately trained sibling from an unrelated model)"
        )
    if spectral <= t["same_spectral"] and not same_depth:
        return (
            "same-family/derived",
            f"spectra of the common layers identical (distance {spectral:.2g}), depths differ",
        )
    if spectral <= t["same_spectral"] and sd_cos >= t["same_sd_cosine"]:
        return "same-model", f"spectra identical (distance {spectral:.2g})"
    if spectral <= t["derived_spectral"]:
        if not math.isnan(pearson) and pearson >= t["derived_layer_pearson"]:
            return (
                "same-family/derived",
                f"spectra close (distance {spectral:.3g}), layer profiles correlate ({pearson:.3f})",
            )
        return (
            "undetermined",
            f"spectra close (distance {spectral:.3g}) but layer profiles do not correlate ({pearson:.3f})",
        )
    return "undetermined", (
        f"spectra differ (distance {spectral:.3g}), but without the lineage invariants (head counts "
        "missing from config.json, or a schema-1 fingerprint) a rewritten copy cannot be ruled out"
    )


def _is_adapter(fp: Fingerprint) -> bool:
    return fp.meta.get("format") == "lora"


def merged_spectral_bound(model: Fingerprint, adapter: Fingerprint, types: Sequence[str]) -> Optional[float]:
    """An upper bound on the spectral distance between the model and the model with the adapter
    merged, without forming the merge: per matrix, ||s(W + dW) - s(W)|| <= ||dW||_F (Mirsky),
    which the adapter's singular values give exactly when its rank is at most top_k, and
    <= sqrt(k) sigma_1(dW) (Weyl, value by value) always; relative to ||s(W)||, median over the
    adapted matrices."""
    if model.singular_values.shape[2] != adapter.singular_values.shape[2]:
        return None
    k = model.singular_values.shape[2]
    rank = adapter.meta.get("rank")
    depth = min(model.layers, adapter.layers)
    sw = model.singular_values[:depth, [model.types.index(t) for t in types]]
    sd = adapter.singular_values[:depth, [adapter.types.index(t) for t in types]]
    ok = ~(np.isnan(sw).any(axis=2) | np.isnan(sd).any(axis=2))
    if not ok.any():
        return None
    bound = np.sqrt(k) * sd[ok][:, 0]
    if isinstance(rank, int) and rank <= k:
        bound = np.minimum(bound, np.linalg.norm(sd[ok], axis=1))
    norm = np.linalg.norm(sw[ok], axis=1)
    return float(np.median(bound / np.where(norm > 0, norm, 1.0)))


def _adapter_verdict(
    model: Fingerprint, adapter: Fingerprint, types: list[str], bound: Optional[float]
) -> tuple[str, str]:
    """A LoRA adapter against a full model: does it fit that model, and what would merging do."""
    if not model.matrix_shapes or not adapter.matrix_shapes:
        return (
            "undetermined",
            "adapter against a model fingerprint without matrix shapes (schema 1): refingerprint it",
        )
    misfit = [
        f"{t} {adapter.matrix_shapes[t]} vs {model.matrix_shapes.get(t)}"
        for t in adapter.types
        if adapter.matrix_shapes.get(t) != model.matrix_shapes.get(t)
    ]
    if adapter.layers > model.layers:
        misfit.append(f"{adapter.layers} adapted layers vs {model.layers}")
    base = str(adapter.meta.get("architecture") or "")
    named = f"; it names its base '{base}'" if base and base != "lora" else ""
    if misfit:
        return (
            "adapter-for-other-shapes",
            f"a LoRA adapter that does not fit this model ({', '.join(misfit)}){named}",
        )
    merge = ""
    if bound is not None:
        effect = (
            "so the merged model stays derived"
            if bound <= THRESHOLDS["derived_spectral"]
            else "a bound too loose to tell what merging does (fingerprint the merged model to know)"
        )
        merge = (
            f"; merged, it moves the model's top singular values by at most {bound:.3g} relative "
            f"(Mirsky/Weyl bound), {effect}"
        )
    if base and _same_name(base, model):
        return "adapter-of", f"a LoRA adapter for this model: its deltas fit every matrix{named}{merge}"
    # Any model of these shapes would fit: the weights alone do not say which one it was trained on.
    return "adapter-fits", (
        f"a LoRA adapter whose deltas fit this model's matrices, but it names "
        f"{'another base' if base else 'no base'}{named}: any model of these shapes fits{merge}"
    )


def _same_name(base: str, model: Fingerprint) -> bool:
    """Whether an adapter's base_model_name_or_path names this model (its last path component
    against the model's name or source directory, case-insensitively)."""
    want = Path(base.rstrip("/")).name.lower()
    source = Path(str(model.meta.get("source", "")))
    names = {model.name.lower(), source.name.lower(), source.parent.name.lower()}
    return want in names


FingerprintLike = Union[Fingerprint, str, Path]


def as_fingerprint(x: FingerprintLike, settings: Optional[Settings] = None, **overrides: Any) -> Fingerprint:
    """A Fingerprint as is; a saved fingerprint JSON loaded; anything else fingerprinted with
    ``settings`` and keyword overrides (see :class:`Settings`)."""
    if isinstance(x, Fingerprint):
        return x
    p = Path(x)
    if p.suffix == ".json" and p.is_file() and not p.name.endswith(".index.json"):
        return Fingerprint.load(p)
    return fingerprint(p, settings, **overrides)


def compare(
    a: FingerprintLike, b: FingerprintLike, settings: Optional[Settings] = None, **overrides: Any
) -> Comparison:
    """Similarities of every signal between two models (paths or Fingerprints) and a verdict.

    ``settings`` (and keyword overrides) fingerprint the paths that must be fingerprinted.
    """
    settings = resolve(settings, overrides)
    fa, fb = as_fingerprint(a, settings), as_fingerprint(b, settings)
    types = [t for t in fa.types if t in fb.types]
    if not types:
        raise ValueError(f"{fa.name} and {fb.name} have no projection type in common")
    ia, ib = [fa.types.index(t) for t in types], [fb.types.index(t) for t in types]
    depth = max(fa.layers, fb.layers)
    pa, pb = _resample(fa.layer_std[:, ia], depth), _resample(fb.layer_std[:, ib], depth)
    pearson = _pearson(pa.ravel(), pb.ravel())
    if fa.layers != fb.layers:
        # Different depths are either a scaled family member (compare stretched profiles) or a
        # truncated copy (compare the layers both have): the better alignment counts.
        common = min(fa.layers, fb.layers)
        prefix = _pearson(fa.layer_std[:common, ia].ravel(), fb.layer_std[:common, ib].ravel())
        pearson = float(np.nanmax([pearson, prefix]))
    co = np.abs(fa.coclustering[np.ix_(ia, ia)] - fb.coclustering[np.ix_(ib, ib)])
    sd_cos = _cosine(fa.std_vector[ia], fb.std_vector[ib])
    spectral = _spectral_distance(fa, fb, ia, ib)
    if _is_adapter(fa) != _is_adapter(fb):
        model, adapter = (fb, fa) if _is_adapter(fa) else (fa, fb)
        bound = merged_spectral_bound(model, adapter, types)
        verdict, reason = _adapter_verdict(model, adapter, types, bound)
        # The matrices' own spectra are not comparable with a delta's.
        return _comparison(fa, fb, types, sd_cos, pearson, co, None, None, None, verdict, reason, bound)
    match = circuit_match(fa.invariants, fb.invariants) if _comparable(fa, fb) else None  # type: ignore[arg-type]
    mlp = None
    if match is not None:
        assert fa.invariants is not None and fb.invariants is not None
        mlp = mlp_distance(fa.invariants, fb.invariants, match.layer_pairs)
        verdict, reason = _invariant_verdict(fa, fb, match, mlp, spectral, sd_cos)
    else:
        verdict, reason = _spectral_verdict(sd_cos, pearson, spectral, fa.layers == fb.layers)
    return _comparison(fa, fb, types, sd_cos, pearson, co, spectral, match, mlp, verdict, reason, None)


def _comparison(
    fa: Fingerprint,
    fb: Fingerprint,
    types: list[str],
    sd_cos: float,
    pearson: float,
    co: np.ndarray,
    spectral: Optional[float],
    match: Optional[CircuitMatch],
    mlp: Optional[float],
    verdict: str,
    reason: str,
    bound: Optional[float],
) -> Comparison:
    ia, ib = [fa.types.index(t) for t in types], [fb.types.index(t) for t in types]
    sda, sdb = fa.std_vector[ia], fb.std_vector[ib]
    cva, cvb = np.nan_to_num(fa.clustering_vector[ia]), np.nan_to_num(fb.clustering_vector[ib])
    return Comparison(
        a=fa.name,
        b=fb.name,
        types=types,
        sd_cosine=sd_cos,
        sd_distance=float(np.linalg.norm(sda - sdb)),
        cv_cosine=_cosine(cva, cvb),
        cv_distance=float(np.linalg.norm(cva - cvb)),
        layer_pearson=pearson,
        coclustering_agreement=float(1.0 - np.nanmean(co)) if not np.isnan(co).all() else float("nan"),
        spectral_distance=spectral,
        circuit_distance=None if match is None else match.median,
        circuit_distance_max=None if match is None else match.worst,
        circuit_specificity=None if match is None else match.specificity,
        mlp_distance=mlp,
        verdict=verdict,
        reason=reason,
        merged_spectral_bound=bound,
    )


@dataclass
class ComparisonMatrix:
    names: list[str]
    signals: dict[str, np.ndarray]  # signal -> (N, N) matrix
    verdicts: list[list[str]]
    linkage: np.ndarray  # scipy hierarchical clustering of 1 - SD cosine, (N-1, 4)
    families: list[int]  # flat cluster id per model (related models share one)

    def nearest(self) -> list[tuple[str, str, float]]:
        """Per model, the other model with the highest SD-vector cosine."""
        s = self.signals["sd_cosine"].copy()
        np.fill_diagonal(s, -np.inf)
        return [(n, self.names[int(np.argmax(s[i]))], float(np.max(s[i]))) for i, n in enumerate(self.names)]


def compare_many(
    models: Sequence[FingerprintLike], settings: Optional[Settings] = None, **overrides: Any
) -> ComparisonMatrix:
    """All pairwise comparisons of a model set, with a hierarchical clustering into families.

    Families are the connected groups of pairs judged related (same-model or derived); the
    linkage (average, on 1 - SD cosine) orders them for display.
    """
    from scipy.cluster.hierarchy import linkage
    from scipy.spatial.distance import squareform

    settings = resolve(settings, overrides)
    fps = [as_fingerprint(m, settings) for m in models]
    n = len(fps)
    keys = (
        "sd_cosine",
        "sd_distance",
        "cv_cosine",
        "cv_distance",
        "layer_pearson",
        "coclustering_agreement",
        "spectral_distance",
        "circuit_distance",
        "mlp_distance",
    )
    signals = {k: np.full((n, n), np.nan) for k in keys}
    verdicts = [["same-model" if i == j else "" for j in range(n)] for i in range(n)]
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            c = compare(fps[i], fps[j])
            for k in keys:
                v = getattr(c, k)
                signals[k][i, j] = np.nan if v is None else v
            verdicts[i][j] = c.verdict
            if c.related:
                parent[root(i)] = root(j)
    for k in keys:
        np.fill_diagonal(signals[k], 0.0 if "distance" in k else 1.0)
    dist = np.clip(1.0 - np.nan_to_num(signals["sd_cosine"], nan=0.0), 0.0, None)
    dist = (dist + dist.T) / 2
    np.fill_diagonal(dist, 0.0)
    link = linkage(squareform(dist, checks=False), method="average") if n > 1 else np.zeros((0, 4))
    roots: dict[int, int] = {}
    families = [roots.setdefault(root(i), len(roots)) for i in range(n)]
    return ComparisonMatrix([f.name for f in fps], signals, verdicts, link, families)


__all__ = [
    "RELATED",
    "THRESHOLDS",
    "VERDICTS",
    "Comparison",
    "ComparisonMatrix",
    "FingerprintFileError",
    "compare",
    "compare_many",
]
