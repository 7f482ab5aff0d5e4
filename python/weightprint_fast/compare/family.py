"""Family, apart from lineage: whether two models share a tokenizer and an architecture. Sizes of
one family are trained independently (lineage: independent) and still one family; the paper's
vectors are reported beside this, not as its proof (they move under rewrites, docs/METHOD.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from ..fingerprint import Fingerprint
from ..readers.vocabulary import overlap

# Vocabularies whose token strings overlap this much (Jaccard) are one tokenizer, perhaps with
# tokens added or removed; separately built tokenizers of today's models overlap far less.
SAME_TOKENIZER = 0.8


def architecture_family(name: str) -> str:
    """An architecture name without the class suffixes that name one family several ways
    (``Gemma3TextModel``, ``gemma3_text``, ``gemma3`` -> ``gemma3``)."""
    base = re.sub(r"[^a-z0-9]", "", name.lower())
    return re.sub(r"(forcausallm|formaskedlm|model|text)+$", "", base) or base


@dataclass(frozen=True)
class FamilyEvidence:
    """``tokenizer``: "identical" (the same tokens in the same order), "overlapping" (Jaccard
    ``vocabulary_overlap`` at least SAME_TOKENIZER), "different" or "unknown" (a model without a
    vocabulary); ``architectures`` the two families' names; ``same_family`` None where the
    tokenizer is unknown."""

    tokenizer: str
    vocabulary_overlap: Optional[float]
    architectures: tuple[str, str]
    same_family: Optional[bool]

    @property
    def label(self) -> str:
        return {True: "same family", False: "different family", None: "family unknown"}[self.same_family]

    @property
    def reason(self) -> str:
        arch = (
            f"architecture {self.architectures[0]}"
            if self.architectures[0] == self.architectures[1]
            else f"architectures {self.architectures[0]} vs {self.architectures[1]}"
        )
        if self.tokenizer == "unknown":
            return f"no vocabulary to compare; {arch}"
        tok = {"identical": "identical tokenizer", "overlapping": "overlapping vocabularies"}.get(
            self.tokenizer, "different vocabularies"
        )
        return f"{tok} (token overlap {self.vocabulary_overlap:.2f}); {arch}"


def family_evidence(a: Fingerprint, b: Fingerprint) -> FamilyEvidence:
    va, vb = a.meta.get("vocabulary"), b.meta.get("vocabulary")
    archs = (
        architecture_family(str(a.meta.get("architecture", "?"))),
        architecture_family(str(b.meta.get("architecture", "?"))),
    )
    if not va or not vb:
        return FamilyEvidence("unknown", None, archs, None)
    j = 1.0 if va["sha256"] == vb["sha256"] else overlap(va, vb)
    tokenizer = (
        "identical"
        if va["sha256"] == vb["sha256"]
        else ("overlapping" if j >= SAME_TOKENIZER else "different")
    )
    return FamilyEvidence(tokenizer, j, archs, tokenizer != "different" and archs[0] == archs[1])
