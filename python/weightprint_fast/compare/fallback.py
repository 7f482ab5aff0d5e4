"""The verdict of fingerprints without comparable invariants (schema 1, no head counts in the
config) from the matrices' own spectra. Those move under function-preserving rewrites, so they can
confirm a copy or a derivative but never rule one out."""

from __future__ import annotations

import math

from .signals import VectorSignals
from .verdict import Decision, Thresholds, Verdict


def spectral_decision(s: VectorSignals, same_depth: bool, t: Thresholds) -> Decision:
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
