"""One frozen object for every choice a fingerprint depends on and how it is computed: its
defaults, its allowed values and their validation live here and nowhere else. Readers, the
fingerprint, compare, the CLI and the fleet all take it."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Optional

from .engine.kernels import METHODS
from .errors import InputError
from .vectors import FEATURES, NORMALIZATIONS

NONFINITE = ("exclude", "refuse")
PEFT = ("merged", "adapter")


@dataclass(frozen=True)
class Settings:
    """How to fingerprint a checkpoint.

    ``top_k``: singular values per matrix (the Clustering Vector's features); ``n_clusters``: K
    of K-Means; ``normalize``: SD-vector normalization (max, l2, sum, none); ``feature``: CV
    features (raw, log, unit); ``method``: singular-value method (auto, exact, fast); ``tol``:
    the relative error ``auto`` certifies on every singular value (1e-5 took 0-40% longer on
    heavy-tailed matrices in bench/RESULTS.md; under 2e-6 it runs the exact method);
    ``nonfinite``: what a matrix holding NaN/Inf does: ``"exclude"`` (its finite values count in
    the SD vector, it is left out of the CV, and it is listed in ``meta["issues"]``) or
    ``"refuse"`` (ValueError); ``threads``: engine threads (None: usable cores);
    ``invariants``: also measure the lineage invariants (without them compare falls back to the
    matrices' own spectra); ``name_patterns``: extra naming rules {regex with
    ``(?P<layer>\\d+)``: type}; ``progress``: a progress bar on stderr (None: only when stderr
    is a terminal or in a Jupyter kernel); ``download``: fetch a Hub reference that is not in the
    local cache (weights, config and tokenizer only; never by default); ``peft``: what a PEFT
    model in memory is fingerprinted as: ``"merged"`` (the base with its LoRA deltas merged) or
    ``"adapter"`` (the deltas alone, as its saved adapter directory would be).
    """

    top_k: int = 16
    n_clusters: int = 4
    normalize: str = "max"
    feature: str = "raw"
    method: str = "auto"
    tol: float = 1e-3
    nonfinite: str = "exclude"
    threads: Optional[int] = None
    invariants: bool = True
    name_patterns: Optional[Mapping[str, str]] = None
    progress: Optional[bool] = None
    download: bool = False
    peft: str = "merged"

    #: Allowed values of the string settings (the CLI's choices).
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        "normalize": NORMALIZATIONS,
        "feature": FEATURES,
        "method": METHODS,
        "nonfinite": NONFINITE,
        "peft": PEFT,
    }

    def __post_init__(self) -> None:
        for name, allowed in self.CHOICES.items():
            if getattr(self, name) not in allowed:
                raise InputError(f"{name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}")
        for name in ("top_k", "n_clusters") + (("threads",) if self.threads is not None else ()):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive whole number, not {value!r}")
        if isinstance(self.tol, bool) or not isinstance(self.tol, (int, float)) or not 0 < self.tol < 1:
            raise InputError(f"tol must be a number between 0 and 1, not {self.tol!r}")
        for name in ("invariants", "download") + (("progress",) if self.progress is not None else ()):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"{name} must be True or False, not {getattr(self, name)!r}")
        patterns = self.name_patterns
        if patterns is not None and (
            not isinstance(patterns, Mapping)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in patterns.items())
        ):
            raise InputError(
                f"name_patterns must map regular expressions to projection types, not {patterns!r}"
            )

    def replace(self, **changes: Any) -> Settings:
        """A copy with some settings changed (validated again). Unknown names are a TypeError."""
        return dataclasses.replace(self, **changes) if changes else self

    def recorded(self) -> dict[str, Any]:
        """What a fingerprint records in ``meta["settings"]``: the settings its values depend on."""
        return {
            "top_k": self.top_k,
            "n_clusters": self.n_clusters,
            "normalize": self.normalize,
            "feature": self.feature,
            "method": self.method,
            "tol": self.tol,
            "nonfinite": self.nonfinite,
            "invariants": self.invariants,
            "name_patterns": dict(self.name_patterns) if self.name_patterns else None,
            "peft": self.peft,
        }


def resolve(settings: Optional[Settings], overrides: Mapping[str, Any]) -> Settings:
    """``settings`` (default: the defaults) with keyword overrides applied."""
    return (settings or Settings()).replace(**overrides)
