"""The verdicts of a comparison and the thresholds that decide them, each defined once.

A :class:`Verdict` carries its meaning, whether it counts as related (families in
``compare_many``, search hits), the CLI's exit status for it, and its rank (search orders hits by
it). :class:`Thresholds` is the frozen parameter object every decision reads; the defaults are
calibrated on the labelled pairs of experiments/results (README "Comparing models" lists the
measured ranges each value sits between). A new verdict is one member and one table row here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


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
      of the non-corresponding layers' distance: not derived;
    - ``same_spectral`` / ``same_sd_cosine``: the matrices' own spectra and SD vectors equal to
      these: identical weights;
    - ``derived_spectral`` / ``derived_layer_pearson``: without invariants, spectra this close
      with layer profiles this correlated: derived (and a LoRA merge bound this small keeps the
      merged model derived).
    """

    same_circuit: float = 1e-5
    same_mlp: float = 1e-5
    derived_circuit: float = 0.05
    derived_specificity: float = 0.2
    unrelated_circuit: float = 0.35
    unrelated_specificity: float = 0.8
    same_spectral: float = 1e-6
    same_sd_cosine: float = 1 - 1e-9
    derived_spectral: float = 0.05
    derived_layer_pearson: float = 0.9


DEFAULT_THRESHOLDS = Thresholds()


@dataclass(frozen=True)
class Decision:
    """A verdict and the one-line reason for it."""

    verdict: Verdict
    reason: str
