"""The verdicts of a comparison, the thresholds, and the rules that decide them, in one place.

A :class:`Verdict` carries its meaning, whether it counts as related (families in
``compare_many``, search hits), the CLI's exit status for it, and its rank (search orders hits by
it). :class:`Thresholds` is the frozen parameter object every rule reads; the defaults are
calibrated on the labelled pairs of experiments/results (README "Comparing models" lists the
measured ranges each value sits between). The evidence modules (signals, circuits, adapters)
measure; the three ``decide_*`` functions here turn their evidence into a :class:`Decision`. A new
verdict is one member, one table row and the rule that gives it, all in this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Optional

from .adapters import AdapterEvidence
from .circuits import CircuitEvidence
from .coordinates import CoordinateEvidence
from .signals import VectorSignals
from .tokens import TokenEvidence


class Verdict(str, Enum):
    """What one comparison concludes (the string values are the stable, documented names)."""

    SAME_MODEL = "same-model"
    DERIVED = "same-family/derived"
    UNRELATED = "unrelated"
    UNDETERMINED = "undetermined"
    ADAPTER_OF = "adapter-of"
    ADAPTER_FITS = "adapter-fits"
    ADAPTER_FOR_OTHER_SHAPES = "adapter-for-other-shapes"

    def __str__(self) -> str:
        return self.value

    @property
    def meaning(self) -> str:
        return _TABLE[self][0]

    @property
    def related(self) -> bool:
        """Whether the two are one lineage (a copy, a derivative, or an adapter of the model)."""
        return _TABLE[self][1]

    @property
    def exit_status(self) -> int:
        """The CLI's exit status for this verdict (0 related, 3 not related, 4 cannot tell)."""
        return _TABLE[self][2]

    @property
    def rank(self) -> int:
        """Closeness order for search: higher is closer."""
        return _TABLE[self][3]


EXIT_RELATED, EXIT_NOT_RELATED, EXIT_UNDETERMINED = 0, 3, 4

# verdict -> (meaning, related, exit status, rank)
_TABLE: dict[Verdict, tuple[str, bool, int, int]] = {
    Verdict.SAME_MODEL: (
        "the same function: identical weights, or weights rewritten without changing it",
        True,
        EXIT_RELATED,
        3,
    ),
    Verdict.DERIVED: (
        "one is derived from the other (fine-tuned, quantized, pruned, noised, merged)",
        True,
        EXIT_RELATED,
        2,
    ),
    Verdict.ADAPTER_OF: (
        "a LoRA adapter that fits this model and names it as its base",
        True,
        EXIT_RELATED,
        2,
    ),
    Verdict.UNDETERMINED: ("the evidence cannot tell derived from independent", False, EXIT_UNDETERMINED, 1),
    Verdict.ADAPTER_FITS: (
        "a LoRA adapter whose deltas fit this model's shapes; the weights cannot say whose it is",
        False,
        EXIT_UNDETERMINED,
        1,
    ),
    Verdict.UNRELATED: (
        "independently trained: neither is derived from the other",
        False,
        EXIT_NOT_RELATED,
        0,
    ),
    Verdict.ADAPTER_FOR_OTHER_SHAPES: (
        "a LoRA adapter that does not fit this model",
        False,
        EXIT_NOT_RELATED,
        0,
    ),
}


def exit_status(verdicts: list[Verdict]) -> int:
    """The CLI's status for the first model against the others: that of the closest verdict."""
    return max(verdicts, key=lambda v: v.rank).exit_status if verdicts else EXIT_NOT_RELATED


@dataclass(frozen=True)
class Thresholds:
    """Where the verdicts' boundaries lie (distances are relative, in [0, ~2]).

    - ``same_circuit``: every matched head's circuit distance at or below, and ``same_mlp`` for
      the MLP invariants, and (without sandwich norms) every layer's circuit scale equal to the
      model's to ``same_circuit``: the same function;
    - ``derived_circuit``: median circuit distance at or below: derived, if also at most
      ``derived_specificity`` of the distance between non-corresponding layers (untrained or
      generic weights are close everywhere, which says nothing);
    - ``unrelated_circuit``: median circuit distance above, and at least ``unrelated_specificity``
      of the non-corresponding layers' distance: not derived (on the evaluation, related pairs
      reach 0.099 and specificity 0.64; 0.35 before the comparison became scale-free);
    - ``same_spectral`` / ``same_sd_cosine``: the matrices' own spectra and SD vectors equal to
      these: identical weights;
    - ``derived_spectral`` / ``derived_layer_pearson``: without invariants, spectra this close
      with layer profiles this correlated: derived (and a LoRA merge bound this small keeps the
      merged model derived);
    - ``copied_layer_circuit``: a matched layer whose every head is this close while the model
      as a whole is not: that layer was copied (transplanted, merged);
    - token probes (tokens.py; the median matched-layer correlation r of the forms):
      ``token_derived``: r at or above: derived; ``token_copied_layer``: a matched layer at or
      above while r is lower: that layer copied; ``token_independent``: r at or below, no layer
      copied, and no other evidence of lineage: independent. ``token_null_mean`` /
      ``token_null_std``: r between independently trained models, measured (the README lists
      the pairs), which the z-score and p-value of every token verdict are taken against;
    - weight sketches (coordinates.py; cosines, 0 +- 1/16 per matrix between models that share no
      coordinates): median over layers at or above ``shared_coordinates``: derived (fine-tuned,
      averaged, merged); a layer at or above ``copied_layer_coordinates``: that layer copied.
    """

    same_circuit: float = 1e-5
    same_mlp: float = 1e-5
    derived_circuit: float = 0.05
    derived_specificity: float = 0.2
    unrelated_circuit: float = 0.25
    unrelated_specificity: float = 0.8
    same_spectral: float = 1e-6
    same_sd_cosine: float = 1 - 1e-9
    derived_spectral: float = 0.05
    derived_layer_pearson: float = 0.9
    copied_layer_circuit: float = 0.01
    token_derived: float = 0.42
    token_copied_layer: float = 0.8
    token_independent: float = 0.33
    token_null_mean: float = 0.133
    token_null_std: float = 0.081
    shared_coordinates: float = 0.25
    copied_layer_coordinates: float = 0.9


DEFAULT_THRESHOLDS = Thresholds()


@dataclass(frozen=True)
class Decision:
    """A verdict and the one-line reason for it."""

    verdict: Verdict
    reason: str


def decide_lineage(
    circuits: Optional[CircuitEvidence],
    tokens: Optional[TokenEvidence],
    spectral: Optional[float],
    sd_cos: float,
    t: Thresholds,
    sizes: str = "",
    coordinates: Optional[CoordinateEvidence] = None,
) -> Optional[Decision]:
    """The lineage verdict from the invariants and the token probes (None where neither applies).

    A copy by rewriting is decided by the invariants (every circuit equal). Otherwise the token
    probes, which no rotation, rescaling or width change moves, decide where both models have
    them: derived, a copied block of layers, independent, or in between (undetermined); the
    invariants still make a pair derived where their circuits match, as they would alone, and
    shared coordinates (weight sketches) where the weights are in part the same numbers.
    ``sizes`` says what differs in size, for the reason."""
    c = None if circuits is None else decide_circuits(circuits, spectral, sd_cos, t)
    if c is not None and c.verdict is Verdict.SAME_MODEL:
        return c
    shared = None if coordinates is None else decide_coordinates(coordinates, t)
    if shared is not None:
        return shared
    k = None if tokens is None else decide_tokens(tokens, t, sizes)
    if k is None:
        return c
    if k.verdict is Verdict.DERIVED or c is None:
        return k
    if c.verdict is Verdict.DERIVED:
        return Decision(c.verdict, f"{c.reason}; token probes: {k.reason}")
    return k


def decide_coordinates(e: CoordinateEvidence, t: Thresholds) -> Optional[Decision]:
    """Derived where the weights share coordinates (None: the sketches do not say)."""
    stat = (
        f"median sketch cosine {e.statistic:.3f} over {e.matrices} matrices, z = {e.z:.0f} above none shared"
    )
    if e.statistic >= t.shared_coordinates:
        share = e.statistic**2 / (1 + e.statistic**2) if e.statistic < 1 else 1.0
        return Decision(
            Verdict.DERIVED,
            f"the weights share coordinates ({stat}): fine-tuned, quantized, averaged or merged"
            + (f"; as an average, a share of about {share:.0%}" if e.statistic < 0.9 else ""),
        )
    copied = [i for i, c in enumerate(e.layers) if c >= t.copied_layer_coordinates]
    if copied:
        return Decision(
            Verdict.DERIVED,
            f"partly derived: layers {', '.join(map(str, copied))} hold the same numbers (sketch cosine >= "
            f"{t.copied_layer_coordinates}) while the rest do not ({stat}): transplanted layers",
        )
    return None


def token_p(z: float) -> float:
    """One-sided p-value of a z-score under a normal null."""
    return 0.5 * math.erfc(z / math.sqrt(2)) if math.isfinite(z) else (0.0 if z > 0 else 1.0)


def decide_tokens(e: TokenEvidence, t: Thresholds, sizes: str = "") -> Decision:
    """The token probes' verdict, with the statistic against independently trained models."""
    z = e.z(t.token_null_mean, t.token_null_std)
    stat = (
        f"median r = {e.statistic:.3f} over {len(e.correlations)} matched layers, {e.shared} shared "
        f"words; independent models r = {t.token_null_mean:.2f} +- {t.token_null_std:.2f}: "
        f"z = {z:.1f}, p = {token_p(z):.2g}"
    )
    if e.statistic >= t.token_derived:
        kept = f"; kept: {sizes}" if sizes else ""
        return Decision(Verdict.DERIVED, f"what the layers do to shared words agrees ({stat}){kept}")
    copied = [p for p, r in zip(e.layer_pairs, e.correlations) if r >= t.token_copied_layer]
    if copied:
        where = ", ".join(f"{i}~{j}" for i, j in copied)
        return Decision(
            Verdict.DERIVED,
            f"partly derived: layers {where} (a~b) agree on shared words (r >= {t.token_copied_layer}) "
            f"while the rest do not ({stat}): transplanted or merged layers",
        )
    if e.statistic <= t.token_independent:
        return Decision(
            Verdict.UNRELATED,
            f"independently trained: what the layers do to shared words agrees no more than between "
            f"independent models ({stat})" + (f"; sizes differ ({sizes})" if sizes else ""),
        )
    return Decision(
        Verdict.UNDETERMINED,
        f"what the layers do to shared words agrees more than between most independent models but "
        f"less than for derivatives ({stat}): a small share of one in the other (an average), or "
        "unusually alike strangers",
    )


def decide_circuits(ev: CircuitEvidence, spectral: Optional[float], sd_cos: float, t: Thresholds) -> Decision:
    """The verdict of two fingerprints with comparable lineage invariants, its reason followed
    by the evidence against the null of independent models."""
    d = _decide_circuits(ev, spectral, sd_cos, t)
    null = ev.match.null
    if null.layers == 0:
        return d
    return Decision(
        d.verdict,
        f"{d.reason}; against independent models: p = {null.p:.2g} (floor {null.floor:.1g} at "
        f"{null.layers} layers), z = {null.z:.1f}",
    )


def _decide_circuits(
    ev: CircuitEvidence, spectral: Optional[float], sd_cos: float, t: Thresholds
) -> Decision:
    match, mlp = ev.match, ev.mlp
    sizes = f" ({ev.size_difference})" if ev.size_difference else ""
    one_scale = ev.sandwich or ev.scale_spread <= t.same_circuit
    if (
        ev.same_geometry
        and match.worst <= t.same_circuit
        and (mlp is None or mlp <= t.same_mlp)
        and one_scale
    ):
        if spectral is not None and spectral <= t.same_spectral and sd_cos >= t.same_sd_cosine:
            return Decision(
                Verdict.SAME_MODEL, f"identical weights' spectra (distance {spectral:.2g}) and circuits"
            )
        return Decision(
            Verdict.SAME_MODEL,
            f"same function, weights rewritten: every head's circuits agree to {match.worst:.1g}, "
            f"MLP invariants to {mlp if mlp is not None else 0:.1g}, residual scales "
            + ("absorbed by sandwich norms" if ev.sandwich else f"one common ratio to {ev.scale_spread:.1g}")
            + (f"; widened or narrowed{sizes}" if sizes else ""),
        )
    if match.median <= t.derived_circuit and match.specificity > t.derived_specificity:
        return Decision(
            Verdict.UNDETERMINED,
            f"attention circuits close (median distance {match.median:.3g}) but no closer than "
            f"those of non-corresponding layers ({match.reference:.3g}): weights look untrained "
            "or generic, which says nothing about lineage",
        )
    if match.median <= t.derived_circuit:
        shape = f"; pruned, sliced, widened or truncated{sizes}" if sizes else ""
        return Decision(
            Verdict.DERIVED, f"attention circuits close (median distance {match.median:.3g}){shape}"
        )
    copied = [p for p, w in zip(match.layer_pairs, match.layer_worst) if w <= t.copied_layer_circuit]
    if copied:
        where = ", ".join(f"{i}~{j}" for i, j in copied)
        return Decision(
            Verdict.DERIVED,
            f"partly derived: every head of layers {where} (a~b) has the same circuits (to "
            f"{t.copied_layer_circuit}) while the rest differ (median distance {match.median:.3g}): "
            "transplanted layers",
        )
    if match.median > t.unrelated_circuit and match.specificity >= t.unrelated_specificity:
        # A difference in size is no reason to abstain: the circuits are compared free of width.
        return Decision(
            Verdict.UNRELATED,
            f"attention circuits differ (median distance {match.median:.3g}) and are no closer than "
            f"those of non-corresponding layers (specificity {match.specificity:.2f})"
            + (f"; sizes differ{sizes}" if sizes else ""),
        )
    return Decision(
        Verdict.UNDETERMINED, f"attention circuits neither close nor far (median distance {match.median:.3g})"
    )


def decide_spectra(s: VectorSignals, same_depth: bool, t: Thresholds) -> Decision:
    """The verdict of fingerprints without comparable invariants (schema 1, no head counts in the
    config) from the matrices' own spectra. Those move under function-preserving rewrites, so they
    can confirm a copy or a derivative but never rule one out."""
    spectral, sd_cos, pearson = s.spectral_distance, s.sd_cosine, s.layer_pearson
    if spectral is None:
        return Decision(
            Verdict.UNDETERMINED,
            f"different shapes and no comparable circuits: no matrix-level comparison (SD cosine "
            f"{sd_cos:.4f}, which cannot tell a separately trained sibling from an unrelated model)",
        )
    if spectral <= t.same_spectral and not same_depth:
        return Decision(
            Verdict.DERIVED,
            f"spectra of the common layers identical (distance {spectral:.2g}), depths differ",
        )
    if spectral <= t.same_spectral and sd_cos >= t.same_sd_cosine:
        return Decision(Verdict.SAME_MODEL, f"spectra identical (distance {spectral:.2g})")
    if spectral <= t.derived_spectral:
        if not math.isnan(pearson) and pearson >= t.derived_layer_pearson:
            return Decision(
                Verdict.DERIVED,
                f"spectra close (distance {spectral:.3g}), layer profiles correlate ({pearson:.3f})",
            )
        return Decision(
            Verdict.UNDETERMINED,
            f"spectra close (distance {spectral:.3g}) but layer profiles do not correlate ({pearson:.3f})",
        )
    return Decision(
        Verdict.UNDETERMINED,
        f"spectra differ (distance {spectral:.3g}), but without the lineage invariants (head counts "
        "missing from config.json, or a schema-1 fingerprint) a rewritten copy cannot be ruled out",
    )


def decide_adapter(ev: AdapterEvidence, t: Thresholds) -> Decision:
    """A LoRA adapter against a full model: does it fit that model, and what would merging do."""
    if not ev.shapes_known:
        return Decision(
            Verdict.UNDETERMINED,
            "adapter against a model fingerprint without matrix shapes (schema 1): refingerprint it",
        )
    named = f"; it names its base '{ev.base}'" if ev.base else ""
    if ev.misfit:
        return Decision(
            Verdict.ADAPTER_FOR_OTHER_SHAPES,
            f"a LoRA adapter that does not fit this model ({', '.join(ev.misfit)}){named}",
        )
    merge = ""
    if ev.bound is not None:
        effect = (
            "so the merged model stays derived"
            if ev.bound <= t.derived_spectral
            else "a bound too loose to tell what merging does (fingerprint the merged model to know)"
        )
        merge = (
            f"; merged, it moves the model's top singular values by at most {ev.bound:.3g} relative "
            f"(Mirsky/Weyl bound), {effect}"
        )
    if ev.names_model:
        return Decision(
            Verdict.ADAPTER_OF, f"a LoRA adapter for this model: its deltas fit every matrix{named}{merge}"
        )
    # Any model of these shapes would fit: the weights alone do not say which one it was trained on.
    return Decision(
        Verdict.ADAPTER_FITS,
        f"a LoRA adapter whose deltas fit this model's matrices, but it names "
        f"{'another base' if ev.base else 'no base'}{named}: any model of these shapes fits{merge}",
    )
