"""The two fingerprint vectors of the paper, computed from per-matrix records.

Standard-Deviation Vector: per projection type, the population std of all its weights over all
layers (pooled exactly from per-matrix counts, means and squared deviations), normalized.
Clustering Vector: K-Means over the top-k singular values of every (layer, type) matrix; labels
made canonical by ascending centroid norm; per type, the mean label over layers / (K - 1).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

NORMALIZATIONS = ("max", "l2", "sum", "none")
FEATURES = ("raw", "log", "unit")


def pool_moments(stats: Sequence[dict]) -> dict:
    """Merges per-matrix moments into those of all their elements together (Chan/Pebay)."""
    n = 0
    mean = m2 = m3 = m4 = 0.0
    lo, hi = math.inf, -math.inf
    nan = float("nan")
    for s in stats:
        nb = s["count"]
        if nb == 0:
            continue
        mb, m2b = s["mean"], s["m2"]
        # Third and fourth central sums recovered from skewness and excess kurtosis.
        m3b = s["skewness"] * m2b**1.5 / math.sqrt(nb) if m2b > 0 else 0.0
        m4b = (s["kurtosis"] + 3.0) * m2b * m2b / nb if m2b > 0 else 0.0
        # NaN extremes (unknown, as for LoRA deltas) make the pooled extremes unknown too.
        lo = nan if math.isnan(s["min"]) or math.isnan(lo) else min(lo, s["min"])
        hi = nan if math.isnan(s["max"]) or math.isnan(hi) else max(hi, s["max"])
        if n == 0:
            n, mean, m2, m3, m4 = nb, mb, m2b, m3b, m4b
            continue
        na, nn = float(n), float(n + nb)
        d = mb - mean
        dn = d / nn
        term = d * dn * na * nb
        m4 = (m4 + m4b + term * dn * dn * (na * na - na * nb + nb * nb)
              + 6.0 * dn * dn * (na * na * m2b + nb * nb * m2) + 4.0 * dn * (na * m3b - nb * m3))
        m3 = m3 + m3b + term * dn * (na - nb) + 3.0 * dn * (na * m2b - nb * m2)
        m2 = m2 + m2b + term
        mean += dn * nb
        n += nb
    if n == 0:
        return {"count": 0, "mean": nan, "std": nan, "m2": nan, "min": nan, "max": nan, "skewness": nan, "kurtosis": nan}
    return {
        "count": n,
        "mean": mean,
        "std": math.sqrt(m2 / n),
        "m2": m2,
        "min": lo,
        "max": hi,
        "skewness": math.sqrt(n) * m3 / m2**1.5 if m2 > 0 else nan,
        "kurtosis": n * m4 / (m2 * m2) - 3.0 if m2 > 0 else nan,
    }


def normalize(v: np.ndarray, how: str) -> np.ndarray:
    """``max``: v / max(v); ``l2``: v / ||v||; ``sum``: v / sum(v); ``none``: v."""
    if how not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {how!r}; expected one of {NORMALIZATIONS}")
    v = np.asarray(v, dtype=np.float64)
    denom = {"max": np.max(v) if v.size else 1.0, "l2": np.linalg.norm(v), "sum": np.sum(v), "none": 1.0}[how]
    return v / denom if denom > 0 else v.copy()


def features(sv: np.ndarray, how: str) -> np.ndarray:
    """Rows of singular values as K-Means features: ``raw``, ``log`` (log s), ``unit`` (s / s_1)."""
    if how not in FEATURES:
        raise ValueError(f"unknown feature {how!r}; expected one of {FEATURES}")
    if how == "log":
        return np.log(np.maximum(sv, np.finfo(np.float64).tiny))
    if how == "unit":
        return sv / np.where(sv[:, :1] > 0, sv[:, :1], 1.0)
    return sv


def clustering(sv: np.ndarray, n_clusters: int, feature: str = "raw", random_state: int = 0):
    """Clustering Vector from singular values of shape (layers, types, top_k) (NaN = absent).

    Returns ``(cv, labels, coclustering, k_used)``: ``cv`` per type in [0, 1]; ``labels``
    (layers x types, canonical cluster numbers, -1 where absent); ``coclustering`` (types x
    types): the fraction of layers where both types are present and share a cluster.
    """
    from sklearn.cluster import KMeans

    layers, types, _ = sv.shape
    present = ~np.isnan(sv).any(axis=2)
    x = features(sv[present], feature)
    labels = np.full((layers, types), -1, dtype=np.int64)
    k = min(n_clusters, len(np.unique(x, axis=0))) if len(x) else 0
    if k >= 2:
        km = KMeans(n_clusters=k, random_state=random_state, n_init=10).fit(x)
        # Canonical numbering: clusters ordered by the norm of their centroid.
        order = np.argsort(np.linalg.norm(km.cluster_centers_, axis=1), kind="stable")
        rank = np.empty(k, dtype=np.int64)
        rank[order] = np.arange(k)
        labels[present] = rank[km.labels_]
    elif len(x):
        labels[present] = 0
    cv = np.full(types, np.nan)
    for t in range(types):
        col = labels[:, t][labels[:, t] >= 0]
        if len(col):
            cv[t] = col.mean() / (k - 1) if k >= 2 else 0.0
    co = np.full((types, types), np.nan)
    for t in range(types):
        for u in range(types):
            both = (labels[:, t] >= 0) & (labels[:, u] >= 0)
            if both.any():
                co[t, u] = float(np.mean(labels[both, t] == labels[both, u]))
    return cv, labels, co, k
