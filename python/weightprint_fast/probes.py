"""Token probes: what each layer does to a few anchor words, in a form that no rewrite of the
residual stream moves and that models of different widths share.

The residual stream has no fixed basis: a copier can rotate it, permute or rescale it, widen it by
zero dimensions, or delete the least used ones (SliceGPT, width pruning), and every matrix
changes. What stays is how the model's own maps act on the model's own token embeddings. With
P the anchor words' embedding rows (anchors x width, each scaled to unit length) and P~ = P
diag(g) the rows as the layer's input norm (weights g) hands them on:

- QK form  sum_h (W_q^h P~^T)^T (W_k^h P~^T): how much anchor i's query attends to anchor j's key;
- OV form  sum_h P W_o^h W_v^h P~^T: how much attending to anchor j writes anchor i's direction;
- MLP form (P W_down)(W_up P~^T): the same for the MLP's up x down path.

Each is an anchors x anchors matrix. A rotation R of the residual (P -> P R, W -> W R, or R^T W
for the writers) cancels in every product; per-head maps inside query/key or value/output and
per-neuron scales of up x down cancel as in the invariants; a global or per-layer residual
scale multiplies a form, and forms are compared by correlation. Deleted dimensions remove only
their share. Anchors are words, so two tokenizers meet on the words both have as single tokens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .architecture import AttentionGeometry
from .arrays import decode_int16, encode_int16

# Common English words that nearly every tokenizer keeps as one word-initial token.
_WORDS = """
the of and to in is that for it with as was on be by at this are from or have an which not but
they his had we has you were their one all been can would there more new time people
"""
ANCHOR_WORDS = tuple(" " + w for w in _WORDS.split())
FORMS = ("qk", "ov", "mlp")
READERS = ("q", "k", "v", "up")  # probed from the input side: W P~^T
WRITERS = ("o", "down")  # probed from the output side: P W


def canonical(token: str, wordpiece: bool) -> Optional[str]:
    """A token as text with its word-initial space written as " " (None: a word continuation)."""
    if wordpiece:
        return None if token.startswith("##") else " " + token
    if token[:1] in ("\u0120", "\u2581"):  # byte-level BPE's Ġ, SentencePiece's ▁
        return " " + token[1:]
    return token


def anchor_ids(tokens: Sequence[str], wordpiece: bool) -> dict[str, int]:
    """Anchor word -> the first token id that spells it, for the anchors the vocabulary has."""
    # Every spelling whose canonical() is an anchor word: one set lookup per token, not a
    # canonical() call (a 150k-token vocabulary is scanned in milliseconds).
    if wordpiece:
        spelling = {w[1:]: w for w in ANCHOR_WORDS}
    else:
        spelling = {m + w[1:]: w for w in ANCHOR_WORDS for m in (" ", "\u0120", "\u2581")}
    found: dict[str, int] = {}
    for i, t in enumerate(tokens):
        w = spelling.get(t)
        if w is not None and w not in found:
            found[w] = i
            if len(found) == len(ANCHOR_WORDS):
                break
    return {w: found[w] for w in ANCHOR_WORDS if w in found}


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero)."""
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n > 0, n, 1.0)


def layer_forms(
    products: Mapping[str, np.ndarray], geometry: Optional[AttentionGeometry]
) -> dict[str, np.ndarray]:
    """One layer's forms (anchors x anchors) from its probe products: readers (out, anchors),
    writers (anchors, in). Forms whose products are missing or inconsistent are left out."""
    out: dict[str, np.ndarray] = {}
    if geometry is not None:
        h, kv, hd = geometry.heads, geometry.kv_heads, geometry.head_dim
        groups = np.array([geometry.kv_of(i) for i in range(h)])
        q, k, v, o = (products.get(t) for t in ("q", "k", "v", "o"))
        if q is not None and k is not None and q.shape[0] == h * hd and k.shape[0] == kv * hd:
            n = q.shape[1]
            out["qk"] = np.einsum("hdi,hdj->ij", q.reshape(h, hd, n), k.reshape(kv, hd, n)[groups])
        if o is not None and v is not None and o.shape[1] == h * hd and v.shape[0] == kv * hd:
            n = o.shape[0]
            out["ov"] = np.einsum("ihd,hdj->ij", o.reshape(n, h, hd), v.reshape(kv, hd, n)[groups])
    up, down = products.get("up"), products.get("down")
    if up is not None and down is not None and down.shape[1] == up.shape[0]:
        out["mlp"] = down @ up
    return out


@dataclass
class TokenForms:
    """A model's token probes: the anchor ``words`` it has and, per form, (layers, anchors,
    anchors) arrays (NaN where a layer lacks it). Stored scale-free (each matrix divided by its
    largest magnitude, as 16-bit integers), as the comparison is."""

    words: list[str]
    forms: dict[str, np.ndarray]

    @property
    def layers(self) -> int:
        return next(iter(self.forms.values())).shape[0] if self.forms else 0

    def to_dict(self) -> dict:
        return {"words": self.words, **{f: [encode_int16(m) for m in x] for f, x in self.forms.items()}}

    @classmethod
    def from_dict(cls, d: Mapping) -> TokenForms:
        words = [str(w) for w in d["words"]]
        n = len(words)
        forms = {f: np.stack([decode_int16(m, (n, n)) for m in d[f]]) for f in FORMS if d.get(f)}
        return cls(words, forms)


def build_token_forms(
    records: Sequence, layers: int, geometry: Optional[AttentionGeometry], words: Sequence[str]
) -> Optional[TokenForms]:
    """Token forms from per-matrix records carrying probe products (``record.probe``); None
    when no layer has any form."""
    by_layer: dict[int, dict[str, np.ndarray]] = {}
    for r in records:
        if getattr(r, "probe", None) is not None:
            by_layer.setdefault(r.layer, {})[r.type] = r.probe
    n = len(words)
    forms = {f: np.full((layers, n, n), np.nan) for f in FORMS}
    for layer, products in by_layer.items():
        for f, m in layer_forms(products, geometry).items():
            if 0 <= layer < layers:
                forms[f][layer] = m
    kept = {f: x for f, x in forms.items() if not np.isnan(x).all()}
    return TokenForms(list(words), kept) if kept else None
