"""The two fingerprint vectors of the paper, computed from per-matrix records.

Standard-Deviation Vector: per projection type, the population std of all its weights over all
layers (the engine's exact merge of per-matrix moments), normalized.
Clustering Vector: K-Means over the top-k singular values of every (layer, type) matrix; labels
made canonical by ascending centroid norm; per type, the mean label over layers / (K - 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .engine import Moments

NORMALIZATIONS = ("max", "l2", "sum", "none")
FEATURES = ("raw", "log", "unit")


def pool_moments(moments: Sequence[Moments]) -> Moments:
    """The moments of all the matrices' elements together (the engine's exact merge)."""
    total = Moments()
    for m in moments:
        total.merge(m)
    return total


def summary(m: Moments) -> dict[str, float]:
    """The moments a fingerprint stores per type (NaN where unknown or undefined)."""
    return {
        "count": m.count,
        "mean": m.mean,
        "std": m.std,
        "m2": m.m2 if m.count else math.nan,
        "min": m.min,
        "max": m.max,
        "skewness": m.skewness,
        "kurtosis": m.kurtosis,
    }


def normalize(v: np.ndarray, how: str) -> np.ndarray:
    """``max``: v / max(v); ``l2``: v / ||v||; ``sum``: v / sum(v); ``none``: v."""
    v = np.asarray(v, dtype=np.float64)
    denom = {"max": np.max(v) if v.size else 1.0, "l2": np.linalg.norm(v), "sum": np.sum(v), "none": 1.0}[how]
    return v / denom if denom > 0 else v.copy()


def features(sv: np.ndarray, how: str) -> np.ndarray:
    """Rows of singular values as K-Means features: ``raw``, ``log`` (log s), ``unit`` (s / s_1)."""
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
