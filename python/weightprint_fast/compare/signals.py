"""The signals two fingerprints give without the lineage invariants: the paper's vectors, the
per-layer std profiles, co-clustering and the matrices' own spectra."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..fingerprint import Fingerprint


def cosine(x: np.ndarray, y: np.ndarray) -> float:
    nx, ny = np.linalg.norm(x), np.linalg.norm(y)
    if nx == 0 or ny == 0:
        return 1.0 if nx == ny else 0.0
    return float(np.clip(x @ y / (nx * ny), -1.0, 1.0))


def resample(profile: np.ndarray, depth: int) -> np.ndarray:
    """A (layers, types) profile linearly resampled to ``depth`` layers."""
    if profile.shape[0] == depth:
        return profile
    src = np.linspace(0.0, 1.0, profile.shape[0])
    dst = np.linspace(0.0, 1.0, depth)
    return np.stack([np.interp(dst, src, profile[:, t]) for t in range(profile.shape[1])], axis=1)


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y = x[ok], y[ok]
    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def spectral_distance(a: Fingerprint, b: Fingerprint, ia: list[int], ib: list[int]) -> Optional[float]:
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


@dataclass(frozen=True)
class VectorSignals:
    """The paper's signals over the projection types both models have (``types``)."""

    types: list[str]
    sd_cosine: float
    sd_distance: float
    cv_cosine: float
    cv_distance: float
    layer_pearson: float
    coclustering_agreement: float
    spectral_distance: Optional[float]


def vector_signals(fa: Fingerprint, fb: Fingerprint, types: list[str]) -> VectorSignals:
    ia, ib = [fa.types.index(t) for t in types], [fb.types.index(t) for t in types]
    depth = max(fa.layers, fb.layers)
    profile = pearson(
        resample(fa.layer_std[:, ia], depth).ravel(), resample(fb.layer_std[:, ib], depth).ravel()
    )
    if fa.layers != fb.layers:
        # Different depths are either a scaled family member (compare stretched profiles) or a
        # truncated copy (compare the layers both have): the better alignment counts.
        common = min(fa.layers, fb.layers)
        prefix = pearson(fa.layer_std[:common, ia].ravel(), fb.layer_std[:common, ib].ravel())
        profile = float(np.nanmax([profile, prefix]))
    co = np.abs(fa.coclustering[np.ix_(ia, ia)] - fb.coclustering[np.ix_(ib, ib)])
    sda, sdb = fa.std_vector[ia], fb.std_vector[ib]
    cva, cvb = np.nan_to_num(fa.clustering_vector[ia]), np.nan_to_num(fb.clustering_vector[ib])
    return VectorSignals(
        types=types,
        sd_cosine=cosine(sda, sdb),
        sd_distance=float(np.linalg.norm(sda - sdb)),
        cv_cosine=cosine(cva, cvb),
        cv_distance=float(np.linalg.norm(cva - cvb)),
        layer_pearson=profile,
        coclustering_agreement=float(1.0 - np.nanmean(co)) if not np.isnan(co).all() else float("nan"),
        spectral_distance=spectral_distance(fa, fb, ia, ib),
    )
