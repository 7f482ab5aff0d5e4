"""Comparing fingerprints: per-signal similarities and a verdict that needs the signals to agree.

Signals (over the projection types both models have):
- ``sd_cosine`` / ``sd_distance``: cosine similarity / Euclidean distance of the SD vectors;
- ``cv_cosine`` / ``cv_distance``: the same for the Clustering Vectors;
- ``layer_pearson``: Pearson correlation of the per-layer std profiles; when the depths differ,
  the better of the profiles resampled to a common depth and of the layers both have;
- ``coclustering_agreement``: 1 - mean |C_a - C_b| of the co-clustering matrices;
- ``spectral_distance``: median over matching (layer, type) matrices of ||s_a - s_b|| / ||s_a||
  for their top singular values, over the layers both models have (same top_k needed).

Verdict (thresholds in THRESHOLDS, justified in the README from measurements on real models):
- ``same-model``: the spectra agree to float precision, the SD vectors coincide, same depth;
- ``same-family/derived``: the spectra are close (fine-tune, LoRA merge, quantized copy) and the
  layer profile correlates;
- ``unrelated``: the spectra (or, without spectra, the SD vectors) clearly differ;
- ``undetermined``: the signals disagree. A per-layer std correlation alone is known to reach
  0.91 between unrelated 7B models, so no verdict rests on it alone.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from .fingerprint import Fingerprint, FingerprintFileError, fingerprint

THRESHOLDS = {
    "same_spectral": 1e-6,     # spectral_distance at or below: identical weights
    "same_sd_cosine": 1 - 1e-9,
    "derived_spectral": 0.05,  # at or below: derived
    "derived_layer_pearson": 0.9,
    "unrelated_spectral": 0.15,  # above: unrelated
    "unrelated_sd_cosine": 0.99,  # without spectra: below is unrelated
}
VERDICTS = ("same-model", "same-family/derived", "unrelated", "undetermined")


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
    verdict: str
    reason: str

    @property
    def related(self) -> bool:
        return self.verdict in ("same-model", "same-family/derived")

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


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
    (a truncated model is compared on its remaining layers)."""
    if a.singular_values.shape[2] != b.singular_values.shape[2]:
        return None
    depth = min(a.layers, b.layers)
    sa, sb = a.singular_values[:depth, ia], b.singular_values[:depth, ib]
    ok = ~(np.isnan(sa).any(axis=2) | np.isnan(sb).any(axis=2))
    if not ok.any():
        return None
    na = np.linalg.norm(sa[ok], axis=1)
    d = np.linalg.norm(sa[ok] - sb[ok], axis=1) / np.where(na > 0, na, 1.0)
    return float(np.median(d))


def _verdict(sd_cos: float, pearson: float, spectral: Optional[float], same_depth: bool = True) -> tuple[str, str]:
    t = THRESHOLDS
    if spectral is not None:
        if spectral <= t["same_spectral"] and not same_depth:
            return "same-family/derived", f"spectra of the common layers identical (distance {spectral:.2g}), depths differ"
        if spectral <= t["same_spectral"] and sd_cos >= t["same_sd_cosine"]:
            return "same-model", f"spectra identical (distance {spectral:.2g})"
        if spectral <= t["derived_spectral"]:
            if not math.isnan(pearson) and pearson >= t["derived_layer_pearson"]:
                return "same-family/derived", f"spectra close (distance {spectral:.3g}), layer profiles correlate ({pearson:.3f})"
            return "undetermined", f"spectra close (distance {spectral:.3g}) but layer profiles do not correlate ({pearson:.3f})"
        if spectral > t["unrelated_spectral"]:
            return "unrelated", f"spectra differ (distance {spectral:.3g})"
        return "undetermined", f"spectra neither close nor far (distance {spectral:.3g})"
    if sd_cos < t["unrelated_sd_cosine"]:
        return "unrelated", f"different shapes and SD vectors differ (cosine {sd_cos:.4f})"
    return "undetermined", "different shapes (no matrix-level comparison) and similar SD vectors"


FingerprintLike = Union[Fingerprint, str, Path]


def as_fingerprint(x: FingerprintLike, **kwargs) -> Fingerprint:
    """A Fingerprint as is; a saved fingerprint JSON loaded; anything else fingerprinted."""
    if isinstance(x, Fingerprint):
        return x
    p = Path(x)
    if p.suffix == ".json" and p.is_file() and not p.name.endswith(".index.json"):
        return Fingerprint.load(p)
    return fingerprint(p, **kwargs)


def compare(a: FingerprintLike, b: FingerprintLike, **kwargs) -> Comparison:
    """Similarities of every signal between two models (paths or Fingerprints) and a verdict.

    Extra keyword arguments go to :func:`fingerprint` for paths that must be fingerprinted.
    """
    fa, fb = as_fingerprint(a, **kwargs), as_fingerprint(b, **kwargs)
    types = [t for t in fa.types if t in fb.types]
    if not types:
        raise ValueError(f"{fa.name} and {fb.name} have no projection type in common")
    ia, ib = [fa.types.index(t) for t in types], [fb.types.index(t) for t in types]
    sda, sdb = fa.std_vector[ia], fb.std_vector[ib]
    cva, cvb = fa.clustering_vector[ia], fb.clustering_vector[ib]
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
    sd_cos = _cosine(sda, sdb)
    spectral = _spectral_distance(fa, fb, ia, ib)
    verdict, reason = _verdict(sd_cos, pearson, spectral, fa.layers == fb.layers)
    return Comparison(
        a=fa.name, b=fb.name, types=types,
        sd_cosine=sd_cos, sd_distance=float(np.linalg.norm(sda - sdb)),
        cv_cosine=_cosine(np.nan_to_num(cva), np.nan_to_num(cvb)), cv_distance=float(np.linalg.norm(np.nan_to_num(cva - cvb))),
        layer_pearson=pearson, coclustering_agreement=float(1.0 - np.nanmean(co)) if not np.isnan(co).all() else float("nan"),
        spectral_distance=spectral, verdict=verdict, reason=reason,
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


def compare_many(models: Sequence[FingerprintLike], **kwargs) -> ComparisonMatrix:
    """All pairwise comparisons of a model set, with a hierarchical clustering into families.

    Families are the connected groups of pairs judged related (same-model or derived); the
    linkage (average, on 1 - SD cosine) orders them for display.
    """
    from scipy.cluster.hierarchy import linkage
    from scipy.spatial.distance import squareform

    fps = [as_fingerprint(m, **kwargs) for m in models]
    n = len(fps)
    keys = ("sd_cosine", "sd_distance", "cv_cosine", "cv_distance", "layer_pearson", "coclustering_agreement",
            "spectral_distance")
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
    roots = {}
    families = [roots.setdefault(root(i), len(roots)) for i in range(n)]
    return ComparisonMatrix([f.name for f in fps], signals, verdicts, link, families)


__all__ = ["Comparison", "ComparisonMatrix", "FingerprintFileError", "THRESHOLDS", "VERDICTS", "compare", "compare_many"]
