"""Comparing fingerprints: per-signal similarities and a verdict on lineage.

Signals (over the projection types both models have):
- ``sd_cosine`` / ``sd_distance``, ``cv_cosine`` / ``cv_distance``: the paper's vectors;
- ``layer_pearson``: Pearson correlation of the per-layer std profiles (resampled to a common
  depth, or the layers both have, whichever aligns better);
- ``coclustering_agreement``: 1 - mean |C_a - C_b| of the co-clustering matrices;
- ``spectral_distance``: median over same-shaped (layer, type) matrices of ||s_a - s_b|| / ||s_a||;
- ``circuit_distance`` / ``circuit_specificity`` / ``mlp_distance`` / ``scale_spread``: the lineage
  invariants (circuits.py): heads matched one-to-one, layers by index or closest, every scale a
  rewrite can apply divided out; specificity is the distance over that to non-corresponding
  layers.

The verdict (verdict.py: :class:`Verdict`, its rules, and the frozen :class:`Thresholds` they
read): the invariants decide where both fingerprints carry comparable ones (their evidence:
circuits.py); fingerprints without them fall back to the matrices' own spectra, which can confirm
a copy or a derivative but not rule one out; a LoRA adapter against a full model is judged by
fit (adapters.py). The paper's vectors never decide alone: a rewritten copy moves them as far as
unrelated families are apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from ..errors import InputError
from ..fingerprint import Fingerprint, fingerprint
from ..settings import Settings, resolve
from .adapters import adapter_evidence, is_adapter
from .circuits import CircuitEvidence, circuit_evidence, size_difference
from .coordinates import CoordinateEvidence, coordinate_evidence
from .direction import direction
from .family import FamilyEvidence, family_evidence
from .signals import VectorSignals, vector_signals
from .tokens import TokenEvidence, token_evidence
from .verdict import (
    DEFAULT_THRESHOLDS,
    Decision,
    Thresholds,
    Verdict,
    decide_adapter,
    decide_lineage,
    decide_spectra,
    token_p,
)


@dataclass(frozen=True)
class Comparison(VectorSignals):
    """One comparison of model ``a`` with model ``b``: every signal (the paper's, from
    :class:`VectorSignals`, and the invariants'), the verdict and its reason.

    Distances are relative (0 identical; None where the signal does not apply), cosines and
    correlations in [-1, 1] (NaN where undefined). ``scale_spread``: how far the matched layers'
    residual-scale ratios are from one ratio (0 for a global rescaling). ``merged_spectral_bound``:
    for an adapter against a model, a bound on what merging it moves the model's spectra.
    ``null_p`` / ``null_z``: the circuit distance against the null of independent models (matched
    layers no closer than non-corresponding ones; circuits.LayerNull): a p-value and the match's
    distance below the null's mean in standard deviations; ``null_p_floor`` the smallest p-value
    the models' depth allows. ``token_correlation`` / ``token_correlation_min``: the token
    probes' median and lowest matched-layer correlation over ``token_words`` shared anchor words
    (tokens.py), ``token_z`` / ``token_p`` that median against independently trained models.
    ``family``: "same family", "different family" or "family unknown" (family.py: tokenizer and
    architecture; a question apart from lineage), ``vocabulary_overlap`` the token strings'
    Jaccard index. ``parent``: for a derived pair, which of ``a`` / ``b`` the evidence names the
    parent (None: it does not say), and why. ``sketch_cosine``: the median over layers of the
    weight sketches' cosines at equal shapes (coordinates.py: near 1 for a fine-tune, about 0
    between models that share no coordinates).
    """

    a: str
    b: str
    circuit_distance: Optional[float]
    circuit_distance_max: Optional[float]
    circuit_specificity: Optional[float]
    mlp_distance: Optional[float]
    verdict: Verdict
    reason: str
    merged_spectral_bound: Optional[float] = None
    scale_spread: Optional[float] = None
    null_p: Optional[float] = None
    null_z: Optional[float] = None
    null_p_floor: Optional[float] = None
    token_correlation: Optional[float] = None
    token_correlation_min: Optional[float] = None
    token_words: Optional[int] = None
    token_z: Optional[float] = None
    token_p: Optional[float] = None
    family: Optional[str] = None
    family_reason: Optional[str] = None
    vocabulary_overlap: Optional[float] = None
    parent: Optional[str] = None
    parent_reason: Optional[str] = None
    sketch_cosine: Optional[float] = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "verdict", Verdict(self.verdict))

    @property
    def related(self) -> bool:
        return self.verdict.related

    @classmethod
    def of(
        cls,
        a: str,
        b: str,
        signals: VectorSignals,
        decision: Decision,
        circuits: Optional[CircuitEvidence] = None,
        merged_bound: Optional[float] = None,
        spectral: bool = True,
        tokens: Optional[TokenEvidence] = None,
        family: Optional[FamilyEvidence] = None,
        parent: Optional[tuple[str, str]] = None,
        thresholds: Thresholds = DEFAULT_THRESHOLDS,
        coordinates: Optional[CoordinateEvidence] = None,
    ) -> Comparison:
        """From its parts (``spectral=False``: the matrices' spectra are not comparable, as a
        delta's with a model's)."""
        m = circuits.match if circuits is not None else None
        z = None if tokens is None else tokens.z(thresholds.token_null_mean, thresholds.token_null_std)
        paper = {f.name: getattr(signals, f.name) for f in fields(VectorSignals)}
        if not spectral:
            paper["spectral_distance"] = None
        return cls(
            **paper,
            a=a,
            b=b,
            circuit_distance=None if m is None else m.median,
            circuit_distance_max=None if m is None else m.worst,
            circuit_specificity=None if m is None else m.specificity,
            mlp_distance=None if circuits is None else circuits.mlp,
            verdict=decision.verdict,
            reason=decision.reason,
            merged_spectral_bound=merged_bound,
            scale_spread=None if circuits is None else circuits.scale_spread,
            null_p=None if m is None else m.null.p,
            null_z=None if m is None else m.null.z,
            null_p_floor=None if m is None else m.null.floor,
            token_correlation=None if tokens is None else tokens.statistic,
            token_correlation_min=None if tokens is None else tokens.weakest,
            token_words=None if tokens is None else tokens.shared,
            token_z=z,
            token_p=None if z is None else token_p(z),
            family=None if family is None else family.label,
            family_reason=None if family is None else family.reason,
            vocabulary_overlap=None if family is None else family.vocabulary_overlap,
            parent=None if parent is None else parent[0],
            parent_reason=None if parent is None else parent[1],
            sketch_cosine=None if coordinates is None else coordinates.statistic,
        )

    def to_dict(self) -> dict:
        """JSON-ready: the verdict by name; NaN and infinite values (an undefined signal) become None."""
        out = {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()
        }
        out["verdict"] = self.verdict.value
        return out

    def to_frame(self) -> Any:
        """One row (pandas DataFrame) of every field of :meth:`to_dict`, so that many comparisons
        concatenate into one table. Needs pandas."""
        from ..display import pandas

        return pandas().DataFrame([self.to_dict()])

    def _repr_html_(self) -> str:
        """What a notebook shows: the verdict and its reason, family and parent, then the
        signals with what each means."""
        from ..display import html_table
        from .legend import COMPARISON_COLUMNS

        values = {
            "SD cos": self.sd_cosine,
            "CV cos": self.cv_cosine,
            "spectral d": self.spectral_distance,
            "circuit d": self.circuit_distance,
            "token r": self.token_correlation,
            "token z": self.token_z,
            "family": self.family,
            "lineage": self.verdict.value,
            "parent": {"a": self.a, "b": self.b}.get(self.parent or ""),
        }
        title = f"{self.a} vs {self.b}: {self.verdict.value} ({self.reason})"
        if self.family is not None:
            title += f"; family: {self.family} ({self.family_reason})"
        if self.parent is not None:
            title += f"; parent: {self.a if self.parent == 'a' else self.b} ({self.parent_reason})"
        rows = [[h, values[h], text] for h, text in COMPARISON_COLUMNS]
        return html_table(["signal", "value", "what it means"], rows, title)


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
    a: FingerprintLike,
    b: FingerprintLike,
    settings: Optional[Settings] = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    **overrides: Any,
) -> Comparison:
    """Similarities of every signal between two models (paths or Fingerprints) and a verdict.

    ``settings`` (and keyword overrides) fingerprint the paths that must be fingerprinted;
    ``thresholds`` decide the verdict.
    """
    settings = resolve(settings, overrides)
    fa, fb = as_fingerprint(a, settings), as_fingerprint(b, settings)
    types = [t for t in fa.types if t in fb.types]
    if not types:
        raise InputError(f"{fa.name} and {fb.name} have no projection type in common")
    signals = vector_signals(fa, fb, types)
    if is_adapter(fa) != is_adapter(fb):
        model, adapter = (fb, fa) if is_adapter(fa) else (fa, fb)
        fit = adapter_evidence(model, adapter, types)
        decision = decide_adapter(fit, thresholds)
        return Comparison.of(fa.name, fb.name, signals, decision, merged_bound=fit.bound, spectral=False)
    circuits = circuit_evidence(fa, fb)
    tokens = token_evidence(fa.token_forms, fb.token_forms)
    sizes = size_difference(fa, fb)
    coordinates = coordinate_evidence(fa, fb)
    spectra = decide_spectra(signals, fa.layers == fb.layers, thresholds)
    # Without invariants, identical spectra are the one proof of the same model.
    decision = (
        spectra
        if circuits is None and spectra.verdict is Verdict.SAME_MODEL
        else decide_lineage(
            circuits, tokens, signals.spectral_distance, signals.sd_cosine, thresholds, sizes, coordinates
        )
        or spectra
    )
    if tokens is None and decision.verdict is Verdict.UNDETERMINED:
        missing = [fp.name for fp in (fa, fb) if fp.token_forms is None]
        decision = Decision(
            decision.verdict,
            decision.reason
            + (
                f"; no token probes for {' and '.join(missing)} (no vocabulary read: tokenizer.json, "
                "vocab.txt or GGUF tokens), which would tell more"
                if missing
                else "; the two vocabularies share too few anchor words for token probes"
            ),
        )
    parent = direction(fa, fb) if decision.verdict is Verdict.DERIVED else None
    return Comparison.of(
        fa.name,
        fb.name,
        signals,
        decision,
        circuits,
        tokens=tokens,
        family=family_evidence(fa, fb),
        parent=parent,
        thresholds=thresholds,
        coordinates=coordinates,
    )


@dataclass
class ComparisonMatrix:
    names: list[str]
    signals: dict[str, np.ndarray]  # signal -> (N, N) matrix
    verdicts: list[list[Verdict]]
    linkage: np.ndarray  # scipy hierarchical clustering of 1 - SD cosine, (N-1, 4)
    families: list[int]  # flat cluster id per model (related models share one)

    def to_frame(self) -> Any:
        """One row per pair (pandas DataFrame): ``a``, ``b``, ``verdict``, ``related``, the
        lineage ``group`` of each, and every signal of MATRIX_SIGNALS. Needs pandas."""
        from ..display import pandas

        records = []
        for i, a in enumerate(self.names):
            for j in range(i + 1, len(self.names)):
                v = self.verdicts[i][j]
                row: dict[str, Any] = {"a": a, "b": self.names[j], "verdict": v.value, "related": v.related}
                row.update(group_a=self.families[i], group_b=self.families[j])
                row.update({k: float(m[i, j]) for k, m in self.signals.items()})
                records.append(row)
        return pandas().DataFrame.from_records(records)

    def nearest(self) -> list[tuple[str, str, float]]:
        """Per model, the other model with the highest SD-vector cosine."""
        s = self.signals["sd_cosine"].copy()
        np.fill_diagonal(s, -np.inf)
        return [(n, self.names[int(np.argmax(s[i]))], float(np.max(s[i]))) for i, n in enumerate(self.names)]


MATRIX_SIGNALS = (
    "sd_cosine",
    "sd_distance",
    "cv_cosine",
    "cv_distance",
    "layer_pearson",
    "coclustering_agreement",
    "spectral_distance",
    "circuit_distance",
    "mlp_distance",
    "token_correlation",
)


def compare_many(
    models: Sequence[FingerprintLike],
    settings: Optional[Settings] = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    **overrides: Any,
) -> ComparisonMatrix:
    """All pairwise comparisons of a model set, with a hierarchical clustering into families.

    Each pair is compared once (model i as ``a`` for i < j) and the matrices are symmetric.
    Families are the connected groups of pairs judged related; the linkage (average, on
    1 - SD cosine) orders them for display.
    """
    from scipy.cluster.hierarchy import linkage
    from scipy.spatial.distance import squareform

    settings = resolve(settings, overrides)
    fps = [as_fingerprint(m, settings) for m in models]
    n = len(fps)
    signals = {k: np.full((n, n), np.nan) for k in MATRIX_SIGNALS}
    verdicts = [[Verdict.SAME_MODEL] * n for _ in range(n)]
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            c = compare(fps[i], fps[j], thresholds=thresholds)
            for k in MATRIX_SIGNALS:
                v = getattr(c, k)
                signals[k][i, j] = signals[k][j, i] = np.nan if v is None else v
            verdicts[i][j] = verdicts[j][i] = c.verdict
            if c.related:
                parent[root(i)] = root(j)
    for k in MATRIX_SIGNALS:
        np.fill_diagonal(signals[k], 0.0 if "distance" in k else 1.0)
    dist = np.clip(1.0 - np.nan_to_num(signals["sd_cosine"], nan=0.0), 0.0, None)
    np.fill_diagonal(dist, 0.0)
    link = linkage(squareform(dist, checks=False), method="average") if n > 1 else np.zeros((0, 4))
    roots: dict[int, int] = {}
    families = [roots.setdefault(root(i), len(roots)) for i in range(n)]
    return ComparisonMatrix([f.name for f in fps], signals, verdicts, link, families)


__all__ = [
    "DEFAULT_THRESHOLDS",
    "Comparison",
    "ComparisonMatrix",
    "Thresholds",
    "Verdict",
    "as_fingerprint",
    "compare",
    "compare_many",
]
