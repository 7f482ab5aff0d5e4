"""A PEFT LoRA adapter against a full model: does it fit, is it named for it, and what would
merging it do to the model's spectra."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import numpy as np

from ..fingerprint import Fingerprint
from .verdict import Decision, Thresholds, Verdict


def is_adapter(fp: Fingerprint) -> bool:
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


def _same_name(base: str, model: Fingerprint) -> bool:
    """Whether an adapter's base_model_name_or_path names this model (its last path component
    against the model's name or source directory, case-insensitively)."""
    want = Path(base.rstrip("/")).name.lower()
    source = Path(str(model.meta.get("source", "")))
    names = {model.name.lower(), source.name.lower(), source.parent.name.lower()}
    return want in names


def adapter_decision(
    model: Fingerprint, adapter: Fingerprint, bound: Optional[float], t: Thresholds
) -> Decision:
    """A LoRA adapter against a full model: does it fit that model, and what would merging do."""
    if not model.matrix_shapes or not adapter.matrix_shapes:
        return Decision(
            Verdict.UNDETERMINED,
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
        return Decision(
            Verdict.ADAPTER_FOR_OTHER_SHAPES,
            f"a LoRA adapter that does not fit this model ({', '.join(misfit)}){named}",
        )
    merge = ""
    if bound is not None:
        effect = (
            "so the merged model stays derived"
            if bound <= t.derived_spectral
            else "a bound too loose to tell what merging does (fingerprint the merged model to know)"
        )
        merge = (
            f"; merged, it moves the model's top singular values by at most {bound:.3g} relative "
            f"(Mirsky/Weyl bound), {effect}"
        )
    if base and _same_name(base, model):
        return Decision(
            Verdict.ADAPTER_OF, f"a LoRA adapter for this model: its deltas fit every matrix{named}{merge}"
        )
    # Any model of these shapes would fit: the weights alone do not say which one it was trained on.
    return Decision(
        Verdict.ADAPTER_FITS,
        f"a LoRA adapter whose deltas fit this model's matrices, but it names "
        f"{'another base' if base else 'no base'}{named}: any model of these shapes fits{merge}",
    )
