"""A PEFT LoRA adapter against a full model: does it fit, is it named for it, and what would
merging it do to the model's spectra."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..fingerprint import Fingerprint


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
    """Whether an adapter's base_model_name_or_path names this model: the whole name as the model
    was typed (a Hub reference), or its last path component against the model's name or source
    directory, case-insensitively."""
    if base.rstrip("/").lower() == model.name.lower():
        return True
    want = Path(base.rstrip("/")).name.lower()
    source = Path(str(model.meta.get("source", "")))
    names = {Path(model.name).name.lower(), source.name.lower(), source.parent.name.lower()}
    return want in names


@dataclass(frozen=True)
class AdapterEvidence:
    """A LoRA adapter against a full model: ``shapes_known`` (both fingerprints record matrix
    shapes), ``misfit`` (what does not fit: types of other shapes, more layers), ``base`` (the
    base model it names, "" for none), ``names_model`` (that name is this model's) and the
    Mirsky/Weyl ``bound`` on what merging it moves the model's spectra (None: not computable)."""

    shapes_known: bool
    misfit: list[str]
    base: str
    names_model: bool
    bound: Optional[float]


def adapter_evidence(model: Fingerprint, adapter: Fingerprint, types: Sequence[str]) -> AdapterEvidence:
    shapes_known = bool(model.matrix_shapes and adapter.matrix_shapes)
    misfit = [
        f"{t} {adapter.matrix_shapes[t]} vs {model.matrix_shapes.get(t)}"
        for t in adapter.types
        if shapes_known and adapter.matrix_shapes.get(t) != model.matrix_shapes.get(t)
    ]
    if adapter.layers > model.layers:
        misfit.append(f"{adapter.layers} adapted layers vs {model.layers}")
    base = str(adapter.meta.get("architecture") or "")
    base = "" if base == "lora" else base
    return AdapterEvidence(
        shapes_known,
        misfit,
        base,
        bool(base) and _same_name(base, model),
        merged_spectral_bound(model, adapter, types),
    )
