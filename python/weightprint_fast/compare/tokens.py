"""Lineage from the token probes (probes.py): the forms of two models over the anchor words both
have, correlated layer by layer.

A form is compared as a pattern, not a size: both are double-centred over the shared anchors
(what one anchor does to every other, and every anchor to one, is generic: frequent words, the
diagonal of a token attending to itself), the diagonal is dropped, and the rest is correlated.
A layer pair's correlation is the mean over the forms both have. Layers are matched by index at
equal depth; otherwise the shallower model's layers are matched to layers of the deeper one in
order, with the largest total correlation (a dynamic program: layers removed anywhere or repeated
by stacking keep their order; a free best match per layer lifted the evaluation's strangers of
different depths from 0.318 to 0.354).

The statistic is the median matched-layer correlation. Two nulls stand beside it: the
non-corresponding layers of the same pair (circuits.LayerNull, at equal depth), and the
independently trained pairs measured in experiments/ (Thresholds.token_null_*): independent
models with the same tokenizer and data share some of the words' structure, so the statistic's
null is measured, not assumed zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..probes import TokenForms
from .circuits import LayerNull, layer_null, null_layers

# Fewer shared anchor words than this: too few pairs of words for a pattern to mean anything.
MIN_SHARED = 12


def patterns(forms: np.ndarray, keep: list[int]) -> np.ndarray:
    """(layers, anchors, anchors) forms restricted to ``keep``, double-centred, off-diagonal,
    unit length: (layers, m * (m - 1)); rows of NaN where a layer lacks the form."""
    x = forms[:, keep][:, :, keep]
    x = x - x.mean(axis=1, keepdims=True) - x.mean(axis=2, keepdims=True) + x.mean(axis=(1, 2), keepdims=True)
    m = len(keep)
    v = x[:, ~np.eye(m, dtype=bool)]
    v = v - v.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norm > 0, norm, np.nan)


def layer_correlations(a: TokenForms, b: TokenForms) -> Optional[tuple[np.ndarray, int]]:
    """(layers of a, layers of b) correlations, averaged over the forms both have, and the number
    of shared anchor words; None with fewer than MIN_SHARED shared words or no common form."""
    shared = [w for w in a.words if w in set(b.words)]
    forms = [f for f in a.forms if f in b.forms]
    if len(shared) < MIN_SHARED or not forms:
        return None
    ia, ib = [a.words.index(w) for w in shared], [b.words.index(w) for w in shared]
    total = np.zeros((a.layers, b.layers))
    count = np.zeros((a.layers, b.layers))
    for f in forms:
        c = patterns(a.forms[f], ia) @ patterns(b.forms[f], ib).T
        ok = np.isfinite(c)
        total[ok] += c[ok]
        count[ok] += 1
    with np.errstate(invalid="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan), len(shared)


def monotone_alignment(c: np.ndarray) -> list[tuple[int, int]]:
    """Each row of c (rows <= columns) matched to a column, in order (pruned and stacked models
    keep their layers' order), maximizing the sum of c over the matches: a dynamic program over
    (rows x columns). Rows or columns with no finite value are left out."""
    rows = [i for i in range(c.shape[0]) if np.isfinite(c[i]).any()]
    x = np.nan_to_num(c[rows], nan=-2.0)
    m, n = x.shape
    best = np.full((m + 1, n + 1), -np.inf)
    best[0, :] = 0.0
    for i in range(1, m + 1):
        for j in range(i, n + 1):
            best[i, j] = max(best[i, j - 1], best[i - 1, j - 1] + x[i - 1, j - 1])
    pairs, j = [], n
    for i in range(m, 0, -1):
        while best[i, j] == best[i, j - 1]:
            j -= 1
        pairs.append((rows[i - 1], j - 1))
        j -= 1
    return pairs[::-1]


@dataclass(frozen=True)
class TokenEvidence:
    """What the token probes say about a pair: ``shared`` anchor words, the matched
    ``layer_pairs`` and their ``correlations``; ``statistic`` their median; ``null`` the
    non-corresponding layers' null (equal depth; else none); ``weakest`` the lowest matched
    correlation (a partial copy: transplanted or averaged layers show as a spread)."""

    shared: int
    layer_pairs: list[tuple[int, int]]
    correlations: list[float]
    statistic: float
    null: LayerNull

    @property
    def weakest(self) -> float:
        return min(self.correlations)

    def z(self, mean: float, std: float) -> float:
        """The statistic's distance above a null of this mean and std, in standard deviations."""
        return (self.statistic - mean) / std if std > 0 else math.inf


def token_evidence(a: Optional[TokenForms], b: Optional[TokenForms]) -> Optional[TokenEvidence]:
    """The token probes' evidence, or None where either model lacks probes or they share too few
    anchor words."""
    if a is None or b is None or a.layers == 0 or b.layers == 0:
        return None
    found = layer_correlations(a, b)
    if found is None:
        return None
    c, shared = found
    la, lb = c.shape
    if la == lb:
        pairs = [(i, i) for i in range(la) if np.isfinite(c[i, i])]
    elif la < lb:
        pairs = monotone_alignment(c)
    else:
        pairs = [(i, j) for j, i in monotone_alignment(c.T)]
    if not pairs:
        return None
    matched = [float(c[i, j]) for i, j in pairs]
    # The layer null as circuits.LayerNull counts it, on distances: 1 - correlation.
    samples = []
    for i, j in pairs if la == lb else []:
        others = np.array([c[i, k] for k in null_layers(j, lb)])
        samples.append(1.0 - others[np.isfinite(others)])
    null = layer_null([1.0 - m for m in matched], samples)
    return TokenEvidence(shared, pairs, matched, float(np.median(matched)), null)
