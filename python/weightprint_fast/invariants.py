"""Measurements that function-preserving rewrites of the weights cannot move (lineage invariants).

A copier can change every weight without changing what the model computes: scale a head's query
rows by c and its key rows by 1/c, a head's value rows by d and the matching output columns by
1/d, an MLP neuron's up row by e and its down column by 1/e, move norm weights into the matrices
that read the norm, permute heads and neurons, rotate the residual stream. The paper's vectors
move under all of these (docs/METHOD.md). These do not:

- QK circuit of head h: the singular values of W_q^h^T W_k^h (d x d, rank <= head_dim), with the
  input norm's weights folded into both factors. A map M inside the head's query/key space
  (W_q^h -> M W_q^h, W_k^h -> M^-T W_k^h) and an orthogonal rotation of the residual cancel.
- OV circuit of head h: the singular values of W_o^h W_v^h, invariant under W_v^h -> M W_v^h,
  W_o^h -> W_o^h M^-1 and residual rotations.
- MLP: per neuron, the norm of its (norm-folded) gate row, and the product of the norms of its
  up row and down column; summarized per layer by quantiles, which neuron order cannot move.

Neither d x d product is formed: sigma^2(A^T B) are the eigenvalues of (A A^T)(B B^T), products
of head_dim x head_dim Gram blocks that the engine accumulates in double during its pass over
the weights (``_core.block_gram``).

Models with query/key normalization (Gemma 3, Qwen3, OLMo 2) normalize each head's query and key
vectors, so a per-head scale of either is a rewrite on its own; their QK spectra are compared
scale-free (``qk_norm``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .architecture import Architecture, AttentionGeometry, NormLayout
from .arrays import encode_array

QUANTILES = np.linspace(0.0, 1.0, 33)

# (pattern, role): role "attn" feeds q, k, v; "mlp" feeds gate and up; "post_attn" is the
# Llama-style norm before the MLP unless the layer also has a pre-feed-forward norm (Gemma 2/3,
# where post_attention_layernorm normalizes the attention output instead).
_NORM_RULES = [
    (
        re.compile(
            r"(?:^|\.)(?:layers|h|layer|blocks)\.(?P<layer>\d+)\.(?:input_layernorm|ln_1|ln_attn)\.weight$"
        ),
        "attn",
    ),
    (
        re.compile(r"(?:^|\.)(?:layers|h|layer|blocks)\.(?P<layer>\d+)\.post_attention_layernorm\.weight$"),
        "post_attn",
    ),
    (
        re.compile(
            r"(?:^|\.)(?:layers|h|layer|blocks)\.(?P<layer>\d+)\.(?:pre_feedforward_layernorm|ln_2|ln_mlp)"
            r"\.weight$"
        ),
        "mlp",
    ),
    (re.compile(r"^blk\.(?P<layer>\d+)\.attn_norm\.weight$"), "attn"),
    (re.compile(r"^blk\.(?P<layer>\d+)\.ffn_norm\.weight$"), "mlp"),
]


def norm_tensors(
    names: Sequence[str], architecture: Architecture, layout: NormLayout
) -> dict[tuple[int, str], tuple[str, float]]:
    """(layer, "attn" | "mlp") -> (norm weight tensor, offset to add): the norms whose weights
    are folded into the projections that read them. Empty for post-norm encoders (BERT, MPNet),
    whose norms act on the residual stream itself and cannot be moved into the projections."""
    if layout.placement == "post":
        return {}
    found: dict[tuple[int, str], str] = {}
    for name in names:
        for rx, role in _NORM_RULES:
            m = rx.search(name)
            if m:
                found[(int(m["layer"]), role)] = name
                break
    out = {}
    for (layer, role), name in found.items():
        if role == "post_attn":
            if (layer, "mlp") in found:
                continue
            role = "mlp"
        # GGUF names carry GGUF's convention (Gemma's 1 + w already stored), whatever the file.
        out[(layer, role)] = (name, 0.0 if name.startswith("blk.") else architecture.norm_offset)
    return out


# Which Gram blocks each projection type contributes: (rows of a head or neuron, blocks of columns?).
# q, k, v: row blocks of head_dim; o: column blocks of head_dim; gate, up: rows; down: columns.
def gram_layout(ptype: str, geometry: Optional[AttentionGeometry]) -> Optional[tuple[int, bool]]:
    if ptype in ("q", "k", "v"):
        return None if geometry is None else (geometry.head_dim, False)
    if ptype == "o":
        return None if geometry is None else (geometry.head_dim, True)
    if ptype in ("gate", "up"):
        return 1, False
    if ptype == "down":
        return 1, True
    return None


def norm_role(ptype: str) -> Optional[str]:
    return {"q": "attn", "k": "attn", "v": "attn", "gate": "mlp", "up": "mlp"}.get(ptype)


def _circuit_spectra(ga: np.ndarray, gb: np.ndarray, k: int) -> np.ndarray:
    """Top-k singular values of A^T B for stacks of Gram blocks ga = A A^T, gb = B B^T:
    sigma^2 = eig(gb^1/2 ga gb^1/2) = eig(L^T ga L) with gb = L L^T. The Cholesky factor costs a
    third of the eigendecomposition the square root needs (measured on 9 heads of 64: 13.5 ms
    against 37.9, equal to 2e-15); a singular gb (a pruned head) takes the square root."""
    try:
        root = np.linalg.cholesky(gb)
        m = np.swapaxes(root, 1, 2) @ ga @ root
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(gb)
        root = (v * np.sqrt(np.clip(w, 0.0, None))[:, None, :]) @ np.swapaxes(v, 1, 2)
        m = root @ ga @ root
    ev = np.linalg.eigvalsh((m + np.swapaxes(m, 1, 2)) / 2)[:, ::-1]
    return np.sqrt(np.clip(ev[:, :k], 0.0, None))


def layer_invariants(
    grams: Mapping[str, np.ndarray], geometry: Optional[AttentionGeometry], k: int
) -> dict[str, Optional[np.ndarray]]:
    """One layer's invariants from its types' Gram blocks (type -> (blocks, b, b)).

    ``qk``, ``ov``: (heads, min(k, head_dim)) circuit singular values; ``mlp``: (quantiles, 2):
    quantiles of the per-neuron gate-row norm (NaN without a gate) and of the up-row x
    down-column norm product. Missing parts give None."""
    out: dict[str, Optional[np.ndarray]] = {"qk": None, "ov": None, "mlp": None}
    if geometry is not None:
        kv = np.array([geometry.kv_of(h) for h in range(geometry.heads)])
        kk = min(k, geometry.head_dim)
        if "q" in grams and "k" in grams:
            out["qk"] = _circuit_spectra(grams["q"], grams["k"][kv], kk)
        if "o" in grams and "v" in grams:
            out["ov"] = _circuit_spectra(grams["o"], grams["v"][kv], kk)
    if "up" in grams and "down" in grams and len(grams["up"]) == len(grams["down"]):
        pair = np.sqrt(grams["up"][:, 0, 0] * grams["down"][:, 0, 0])
        gate = np.sqrt(grams["gate"][:, 0, 0]) if "gate" in grams else None
        out["mlp"] = np.stack(
            [
                np.quantile(gate, QUANTILES) if gate is not None else np.full(len(QUANTILES), np.nan),
                np.quantile(pair, QUANTILES),
            ],
            axis=1,
        )
    return out


@dataclass
class Invariants:
    """A model's lineage invariants, per layer (NaN where a layer lacks the part).

    - ``qk``, ``ov`` (layers, heads, k): singular values of each head's QK and OV circuits;
    - ``mlp`` (layers, 33, 2): quantiles of the per-neuron gate-row norm and up x down norm product;
    - ``neurons`` (layers,): MLP width (0 where absent);
    - ``geometry``: the head layout (None: the config did not give it; no circuits then);
    - ``qk_norm``: the model normalizes queries and keys; ``norms_folded``: norm weights were
      folded into the Gram blocks; ``sandwich_norms``: norms after attention and after the MLP
      too (Gemma 2/3), so each layer's o_proj and down_proj scale is free.
    """

    qk: np.ndarray
    ov: np.ndarray
    mlp: np.ndarray
    neurons: np.ndarray
    geometry: Optional[AttentionGeometry]
    qk_norm: bool
    norms_folded: bool
    sandwich_norms: bool = False

    def to_dict(self) -> dict:
        g = self.geometry
        return {
            "qk": encode_array(self.qk),
            "ov": encode_array(self.ov),
            "mlp": encode_array(self.mlp),
            "neurons": self.neurons.tolist(),
            "geometry": None
            if g is None
            else {"heads": g.heads, "kv_heads": g.kv_heads, "head_dim": g.head_dim},
            "qk_norm": self.qk_norm,
            "norms_folded": self.norms_folded,
            "sandwich_norms": self.sandwich_norms,
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> Invariants:
        g = d["geometry"]
        geometry = (
            None if g is None else AttentionGeometry(int(g["heads"]), int(g["kv_heads"]), int(g["head_dim"]))
        )
        neurons = np.asarray(d["neurons"], dtype=np.int64)
        layers = len(neurons)

        def arr(x, shape_tail: tuple) -> np.ndarray:
            a = np.array(x, dtype=np.float64)
            return a.reshape((layers, *shape_tail)) if a.size else np.full((layers, *shape_tail), np.nan)

        heads = geometry.heads if geometry else 0
        k = np.array(d["qk"], dtype=np.float64).size // max(1, layers * heads) if heads else 0
        return cls(
            arr(d["qk"], (heads, k)),
            arr(d["ov"], (heads, k)),
            arr(d["mlp"], (len(QUANTILES), 2)),
            neurons,
            geometry,
            bool(d["qk_norm"]),
            bool(d["norms_folded"]),
            bool(d.get("sandwich_norms", False)),
        )


def build_invariants(
    records: Sequence,
    layers: int,
    geometry: Optional[AttentionGeometry],
    k: int,
    qk_norm: bool,
    norms_folded: bool,
    sandwich_norms: bool = False,
    progress: bool = False,
) -> Optional[Invariants]:
    """Invariants from per-matrix records carrying Gram blocks (``record.gram``); None when no
    record has any (LoRA adapters, MoE-only models). ``progress``: a bar of layers done.

    The layers' many small eigenproblems (heads x head_dim^2) run one BLAS thread each, spread
    over the usable cores by a thread pool (numpy's linear algebra releases the GIL): on all BLAS
    threads at once they contended with each other and with any other work on the machine."""
    by_layer: dict[int, dict[str, np.ndarray]] = {}
    for r in records:
        if r.gram is not None:
            by_layer.setdefault(r.layer, {})[r.type] = r.gram
    if not by_layer:
        return None
    heads = geometry.heads if geometry else 0
    kk = min(k, geometry.head_dim) if geometry else 0
    qk = np.full((layers, heads, kk), np.nan)
    ov = np.full((layers, heads, kk), np.nan)
    mlp = np.full((layers, len(QUANTILES), 2), np.nan)
    neurons = np.zeros(layers, dtype=np.int64)
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    from .engine.analyse import usable_cores

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(by_layer), desc="invariants", unit="layer", leave=False, delay=0.5)
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(usable_cores()) as pool:
        futures = {
            layer: pool.submit(layer_invariants, grams, geometry, k) for layer, grams in by_layer.items()
        }
        results = {}
        for layer, future in futures.items():
            results[layer] = future.result()
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    for layer, grams in by_layer.items():
        inv = results[layer]
        if inv["qk"] is not None:
            qk[layer] = inv["qk"]
        if inv["ov"] is not None:
            ov[layer] = inv["ov"]
        if inv["mlp"] is not None:
            mlp[layer] = inv["mlp"]
            neurons[layer] = len(grams["up"])
    return Invariants(qk, ov, mlp, neurons, geometry, qk_norm, norms_folded, sandwich_norms)
