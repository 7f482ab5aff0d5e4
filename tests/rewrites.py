"""Function-preserving rewrites of a checkpoint's weights, and the derivatives a copier makes on
top of them (quantization round trips, noise, width pruning, truncation): the adversary of the
lineage verdict, shared by the tests and experiments/lineage.py.

Tensors are a dict name -> float32 array in the stored layout (out x in). Three layouts are
known: Hugging Face Llama-style (``model.layers.N.self_attn.q_proj.weight``, RMSNorm
``input_layernorm`` / ``post_attention_layernorm``), GGUF names (``blk.N.attn_q.weight``,
``attn_norm``/``ffn_norm``; Gemma 3's own query/key norms and sandwich norms) and BERT
(``encoder.layer.N.attention.self.query.weight``, post-LN, biases).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

import numpy as np

Tensors = dict[str, np.ndarray]

_STYLES = {
    "llama": {
        "q": "model.layers.{}.self_attn.q_proj",
        "k": "model.layers.{}.self_attn.k_proj",
        "v": "model.layers.{}.self_attn.v_proj",
        "o": "model.layers.{}.self_attn.o_proj",
        "gate": "model.layers.{}.mlp.gate_proj",
        "up": "model.layers.{}.mlp.up_proj",
        "down": "model.layers.{}.mlp.down_proj",
        "attn_norm": "model.layers.{}.input_layernorm",
        "mlp_norm": "model.layers.{}.post_attention_layernorm",
    },
    "gguf": {
        "q": "blk.{}.attn_q",
        "k": "blk.{}.attn_k",
        "v": "blk.{}.attn_v",
        "o": "blk.{}.attn_output",
        "gate": "blk.{}.ffn_gate",
        "up": "blk.{}.ffn_up",
        "down": "blk.{}.ffn_down",
        "attn_norm": "blk.{}.attn_norm",
        "mlp_norm": "blk.{}.ffn_norm",
    },
    "bert": {
        "q": "encoder.layer.{}.attention.self.query",
        "k": "encoder.layer.{}.attention.self.key",
        "v": "encoder.layer.{}.attention.self.value",
        "o": "encoder.layer.{}.attention.output.dense",
        "up": "encoder.layer.{}.intermediate.dense",
        "down": "encoder.layer.{}.output.dense",
    },
}
_LAYER = re.compile(r"(?:layers|layer|blk)\.(\d+)\.")


@dataclass
class Layout:
    """Where a model's per-layer tensors are, and its head layout."""

    style: str
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    rope: bool  # rotary queries/keys: only scalars may act on a head's query/key space
    qk_norm: bool  # per-head query/key normalization (a scale on either is free)
    sandwich: bool  # norms on the residual branch outputs (Gemma 2/3): no residual rotation

    def name(self, layer: int, part: str, what: str = "weight") -> str:
        return _STYLES[self.style][part].format(layer) + "." + what

    @property
    def gated(self) -> bool:
        return "gate" in _STYLES[self.style]

    @property
    def pre_norm(self) -> bool:
        return self.style != "bert"


def contiguous(t: Tensors) -> Tensors:
    """The tensors as C-ordered arrays (column gathers give Fortran order, which writers of raw
    bytes such as safetensors.numpy.save_file do not reorder)."""
    return {k: np.ascontiguousarray(v) for k, v in t.items()}


def layout(tensors: Tensors, config: dict) -> Layout:
    names = list(tensors)
    style = (
        "gguf"
        if any(n.startswith("blk.") for n in names)
        else ("bert" if any(".attention.self.query." in n for n in names) else "llama")
    )
    layers = 1 + max(int(m.group(1)) for n in names if (m := _LAYER.search(n)))
    heads = int(config["num_attention_heads"])
    kv = int(config.get("num_key_value_heads") or heads)
    q_rows = tensors[_STYLES[style]["q"].format(0) + ".weight"].shape[0]
    head_dim = int(config.get("head_dim") or q_rows // heads)
    qk_norm = any(re.search(r"(attn_q_norm|q_norm)\.weight$", n) for n in names)
    sandwich = any(
        re.search(r"(post_attention_norm|post_ffw_norm|pre_feedforward_layernorm)", n) for n in names
    )
    return Layout(style, layers, heads, kv, head_dim, style != "bert", qk_norm, sandwich)


def _rows(head: int, hd: int) -> slice:
    return slice(head * hd, (head + 1) * hd)


def _scale(rng: np.random.Generator, size=None, spread: float = 1.5) -> np.ndarray:
    """Scales drawn log-uniformly in e^[-spread, spread], with random signs."""
    return np.exp(rng.uniform(-spread, spread, size)) * rng.choice([-1.0, 1.0], size)


def _invertible(rng: np.random.Generator, n: int) -> np.ndarray:
    """A random invertible map with singular values in e^[-1.5, 1.5]."""
    u, _ = np.linalg.qr(rng.standard_normal((n, n)))
    v, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (u * np.exp(rng.uniform(-1.5, 1.5, n))) @ v.T


def _apply_rows(t: Tensors, name: str, rows: slice, m: np.ndarray) -> None:
    """Left-multiplies the given rows of a weight (and of its bias, if any) by m."""
    w = t[name].astype(np.float64)
    w[rows] = m @ w[rows]
    t[name] = w.astype(np.float32)
    bias = name.removesuffix("weight") + "bias"
    if bias in t:
        b = t[bias].astype(np.float64)
        b[rows] = m @ b[rows]
        t[bias] = b.astype(np.float32)


def _apply_cols(t: Tensors, name: str, cols: slice, m: np.ndarray) -> None:
    w = t[name].astype(np.float64)
    w[:, cols] = w[:, cols] @ m
    t[name] = w.astype(np.float32)


def scale_attention(t: Tensors, lay: Layout, rng: np.random.Generator) -> Tensors:
    """Per kv head: queries x M, keys x M^-T (scalars under RoPE; independent scalars under QK
    norm); values x N, the output columns of every query head of the group x N^-1."""
    t = dict(t)
    hd, group = lay.head_dim, lay.heads // lay.kv_heads
    for i in range(lay.layers):
        for g in range(lay.kv_heads):
            if lay.qk_norm:
                mq = [np.eye(hd) * _scale(rng) for _ in range(group)]
                mk = np.eye(hd) * _scale(rng)
            else:
                m = np.eye(hd) * _scale(rng) if lay.rope else _invertible(rng, hd)
                mq, mk = [m] * group, np.linalg.inv(m).T
            for j in range(group):
                _apply_rows(t, lay.name(i, "q"), _rows(g * group + j, hd), mq[j])
            _apply_rows(t, lay.name(i, "k"), _rows(g, hd), mk)
            n = _invertible(rng, hd)
            _apply_rows(t, lay.name(i, "v"), _rows(g, hd), n)
            n_inv = np.linalg.inv(n)
            for j in range(group):
                _apply_cols(t, lay.name(i, "o"), _rows(g * group + j, hd), n_inv)
    return t


def scale_mlp(t: Tensors, lay: Layout, rng: np.random.Generator) -> Tensors:
    """Per neuron of a gated MLP: up row x e, down column / e (the gate's nonlinearity is not
    homogeneous, so non-gated MLPs have no such rewrite)."""
    if not lay.gated:
        return dict(t)
    t = dict(t)
    for i in range(lay.layers):
        up, down = lay.name(i, "up"), lay.name(i, "down")
        e = _scale(rng, t[up].shape[0])
        t[up] = (t[up].astype(np.float64) * e[:, None]).astype(np.float32)
        t[down] = (t[down].astype(np.float64) / e[None, :]).astype(np.float32)
    return t


def fold_norms(t: Tensors, lay: Layout, rng: Optional[np.random.Generator] = None) -> Tensors:
    """Pre-norm models: norm weights g -> g / s and the columns of every matrix reading the
    norm x s; with ``rng=None``, s = g (the norms become all ones, as before a rotation)."""
    if not lay.pre_norm:
        return dict(t)
    t = dict(t)
    readers = {"attn_norm": ("q", "k", "v"), "mlp_norm": ("gate", "up") if lay.gated else ("up",)}
    for i in range(lay.layers):
        for norm, parts in readers.items():
            g = t[lay.name(i, norm)].astype(np.float64)
            s = np.where(g == 0, 1.0, g) if rng is None else _scale(rng, g.shape)
            t[lay.name(i, norm)] = (g / s).astype(np.float32)
            for p in parts:
                t[lay.name(i, p)] = (t[lay.name(i, p)].astype(np.float64) * s[None, :]).astype(np.float32)
    return t


EMBEDDINGS = {"llama": "model.embed_tokens.weight", "gguf": "token_embd.weight"}
OUTPUT = {"llama": "lm_head.weight", "gguf": "output.weight"}


def scale_residual(t: Tensors, lay: Layout, alpha: float) -> Tensors:
    """Pre-norm models: the whole residual stream x alpha. The embeddings and every matrix that
    writes the stream (o_proj, down_proj) x alpha; every norm reads alpha x h and gives what it
    gave for h once its epsilon is alpha^2 times as large (the caller's config: ``eps_scale``); a
    tied output head is untied first, since it would scale the logits. Post-LN encoders have no
    such freedom."""
    if not lay.pre_norm:
        return dict(t)
    t = dict(t)
    embed = EMBEDDINGS[lay.style]
    if OUTPUT[lay.style] not in t:
        t[OUTPUT[lay.style]] = t[embed].copy()
    t[embed] = (t[embed].astype(np.float64) * alpha).astype(np.float32)
    for i in range(lay.layers):
        for part in ("o", "down"):
            t[lay.name(i, part)] = (t[lay.name(i, part)].astype(np.float64) * alpha).astype(np.float32)
    return t


def scale_layers(t: Tensors, lay: Layout, rng: np.random.Generator) -> Tensors:
    """Models with sandwich norms (a norm on the attention output and on the MLP output, Gemma
    2/3): each layer's o_proj and down_proj by factors of their own, which those norms absorb."""
    if not lay.sandwich:
        return dict(t)
    t = dict(t)
    for i in range(lay.layers):
        for part in ("o", "down"):
            c = float(np.exp(rng.uniform(-1.5, 1.5)))
            t[lay.name(i, part)] = (t[lay.name(i, part)].astype(np.float64) * c).astype(np.float32)
    return t


def rotate_residual(t: Tensors, lay: Layout, rng: np.random.Generator) -> Tensors:
    """Pre-norm models without branch-output norms: norms folded, then an orthogonal Q applied
    to the residual stream (readers W -> W Q^T, writers W -> Q W; embeddings alike)."""
    if not lay.pre_norm or lay.sandwich:
        return dict(t)
    t = fold_norms(t, lay)
    d = t[lay.name(0, "q")].shape[1]
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    for i in range(lay.layers):
        for p in ("q", "k", "v", "gate", "up"):
            t[lay.name(i, p)] = (t[lay.name(i, p)].astype(np.float64) @ q.T).astype(np.float32)
        for p in ("o", "down"):
            t[lay.name(i, p)] = (q @ t[lay.name(i, p)].astype(np.float64)).astype(np.float32)
    # The final norm goes into the output head (a tied head gets its own copy) before rotating.
    final = next((n for n in ("model.norm.weight", "output_norm.weight") if n in t), None)
    embed = next((n for n in ("model.embed_tokens.weight", "token_embd.weight") if n in t), None)
    head = "lm_head.weight" if lay.style == "llama" else "output.weight"
    if final is not None and (head in t or embed is not None):
        w = t.get(head, t[embed] if embed else None)
        t[head] = (w.astype(np.float64) * t[final].astype(np.float64)[None, :]).astype(np.float32)
        t[final] = np.ones_like(t[final])
    for name in list(t):
        if (
            re.search(r"(?:^|\.)(embed_tokens|token_embd|lm_head|output)\.weight$", name)
            and t[name].shape[-1] == d
        ):
            t[name] = (t[name].astype(np.float64) @ q.T).astype(np.float32)
    return t


_READERS = ("q", "k", "v", "gate", "up")
_WRITERS = ("o", "down")


def _fold_for_residual_maps(t: Tensors, lay: Layout) -> tuple[Tensors, str]:
    """Norms folded into their readers and the final norm into the output head (all norms then
    ones), so the residual stream can be changed by any linear map; returns the head's name."""
    t = fold_norms(t, lay)
    final = next((n for n in ("model.norm.weight", "output_norm.weight") if n in t), None)
    embed = EMBEDDINGS[lay.style]
    head = OUTPUT[lay.style]
    if final is not None:
        w = t.get(head, t[embed])
        t[head] = (w.astype(np.float64) * t[final].astype(np.float64)[None, :]).astype(np.float32)
        t[final] = np.ones_like(t[final])
    return t, head


def _map_residual(t: Tensors, lay: Layout, head: str, m: np.ndarray, reader_scale: float) -> Tensors:
    """The residual stream x -> m x (m: new width x old width): writers and embeddings through m,
    readers through m's pseudo-inverse transpose (m orthonormal rows: m^T) times reader_scale,
    every norm of the new width (ones)."""
    out = dict(t)
    width = m.shape[0]
    f64 = lambda name: out[name].astype(np.float64)  # noqa: E731
    for i in range(lay.layers):
        for p in _READERS:
            if lay.name(i, p) in out:
                out[lay.name(i, p)] = (f64(lay.name(i, p)) @ m.T * reader_scale).astype(np.float32)
        for p in _WRITERS:
            out[lay.name(i, p)] = (m @ f64(lay.name(i, p))).astype(np.float32)
        for norm in ("attn_norm", "mlp_norm"):
            out[lay.name(i, norm)] = np.ones(width, np.float32)
    out[head] = (f64(head) @ m.T * reader_scale).astype(np.float32)
    embed = EMBEDDINGS[lay.style]
    out[embed] = (f64(embed) @ m.T).astype(np.float32)
    for name in ("model.norm.weight", "output_norm.weight"):
        if name in out:
            out[name] = np.ones(width, np.float32)
    return out


def widen_residual(t: Tensors, lay: Layout, rng: np.random.Generator, extra: int) -> Tensors:
    """Pre-norm models without branch-output norms: the residual stream widened by ``extra``
    zero dimensions, then rotated. A norm over the wider stream divides by a root mean square
    sqrt(d / d') as large, so every reader is scaled by sqrt(d / d') to keep the function."""
    if not lay.pre_norm or lay.sandwich:
        return dict(t)
    t, head = _fold_for_residual_maps(t, lay)
    d = t[lay.name(0, "q")].shape[1]
    q, _ = np.linalg.qr(rng.standard_normal((d + extra, d + extra)))
    embed = np.vstack([np.eye(d), np.zeros((extra, d))])  # x -> [x; 0]
    return _map_residual(t, lay, head, q @ embed, np.sqrt(d / (d + extra)))


def slice_residual(t: Tensors, lay: Layout, keep: int) -> Tensors:
    """SliceGPT-style: the residual stream rotated onto its principal directions (of the weights
    that write and read it) and all but the first ``keep`` deleted. Not function-preserving: the
    deleted directions carry the least of the weights' energy."""
    t, head = _fold_for_residual_maps(t, lay)
    d = t[lay.name(0, "q")].shape[1]
    energy = np.zeros((d, d))
    for i in range(lay.layers):
        for p in _READERS:
            if lay.name(i, p) in t:
                w = t[lay.name(i, p)].astype(np.float64)
                energy += w.T @ w
        for p in _WRITERS:
            w = t[lay.name(i, p)].astype(np.float64)
            energy += w @ w.T
    _, vectors = np.linalg.eigh(energy)
    m = vectors[:, ::-1][:, :keep].T  # keep x d, orthonormal rows
    return _map_residual(t, lay, head, m, np.sqrt(d / keep))


def prune_residual(t: Tensors, lay: Layout, keep: int) -> Tensors:
    """Minitron-style hidden-size pruning: the ``keep`` residual channels of most weight energy
    (squared norms of the embedding column and of every reader column and writer row) kept, in
    their order, the others deleted. Not function-preserving; a distillation usually follows."""
    t, head = _fold_for_residual_maps(t, lay)
    energy = np.sum(t[EMBEDDINGS[lay.style]].astype(np.float64) ** 2, axis=0)
    for i in range(lay.layers):
        for p in _READERS:
            if lay.name(i, p) in t:
                energy += np.sum(t[lay.name(i, p)].astype(np.float64) ** 2, axis=0)
        for p in _WRITERS:
            energy += np.sum(t[lay.name(i, p)].astype(np.float64) ** 2, axis=1)
    kept = np.sort(np.argsort(-energy)[:keep])
    m = np.eye(len(energy))[kept]  # keep x d: a selection of channels
    return _map_residual(t, lay, head, m, np.sqrt(len(energy) / keep))


def _select(t: Tensors, lay: Layout, layer: int, q_heads, kv_heads, neurons) -> None:
    """Keeps the given query heads, kv heads and MLP neurons of one layer, in the given order
    (rows of q/k/v and of the MLP's input projections, with their biases; columns of o and down)."""
    hd = lay.head_dim
    q_rows = np.concatenate([np.arange(h * hd, (h + 1) * hd) for h in q_heads])
    kv_rows = np.concatenate([np.arange(h * hd, (h + 1) * hd) for h in kv_heads])
    rows_of = {"q": q_rows, "k": kv_rows, "v": kv_rows, "gate": neurons, "up": neurons}
    for p, rows in rows_of.items():
        for what in ("weight", "bias"):
            if p in _STYLES[lay.style] and lay.name(layer, p, what) in t:
                t[lay.name(layer, p, what)] = t[lay.name(layer, p, what)][rows]
    t[lay.name(layer, "o")] = t[lay.name(layer, "o")][:, q_rows]
    t[lay.name(layer, "down")] = t[lay.name(layer, "down")][:, neurons]


def permute(t: Tensors, lay: Layout, rng: np.random.Generator) -> Tensors:
    """Heads (kv groups with their query heads, query heads within groups) and MLP neurons."""
    t = dict(t)
    group = lay.heads // lay.kv_heads
    for i in range(lay.layers):
        kv_order = rng.permutation(lay.kv_heads)
        q_order = [g * group + j for g in kv_order for j in rng.permutation(group)]
        _select(t, lay, i, q_order, kv_order, rng.permutation(t[lay.name(i, "up")].shape[0]))
    return t


def rewrite_all(t: Tensors, lay: Layout, rng: np.random.Generator) -> Tensors:
    """Every rewrite the architecture allows, composed."""
    t = rotate_residual(t, lay, rng)
    t = fold_norms(t, lay, rng)
    t = scale_attention(t, lay, rng)
    t = scale_mlp(t, lay, rng)
    return permute(t, lay, rng)


REWRITES = {
    "attention-scaled": scale_attention,
    "mlp-scaled": scale_mlp,
    "norms-moved": fold_norms,
    "residual-rotated": rotate_residual,
    "permuted": permute,
    "all-rewrites": rewrite_all,
}


def quantized(t: Tensors, qtype: str) -> Tensors:
    """Every projection (2-D, width a multiple of 32) through a GGUF block format and back."""
    import gguf

    q = getattr(gguf.GGMLQuantizationType, qtype)
    out = {}
    for k, v in t.items():
        if v.ndim == 2 and v.shape[1] % 32 == 0 and not re.search(r"embed|embd|lm_head", k):
            v = np.asarray(
                gguf.quants.dequantize(gguf.quants.quantize(v.astype(np.float32), q), q), np.float32
            )
        out[k] = v
    return out


def noised(t: Tensors, rng: np.random.Generator, relative: float = 0.01) -> Tensors:
    """Gaussian noise of `relative` x each matrix's RMS on every 2-D weight (a crude small fine-tune)."""
    return {
        k: (v + relative * np.sqrt(np.mean(v.astype(np.float64) ** 2)) * rng.standard_normal(v.shape)).astype(
            np.float32
        )
        if v.ndim == 2
        else v
        for k, v in t.items()
    }


def width_pruned(
    t: Tensors, lay: Layout, config: dict, keep_kv: int, keep_neurons: float
) -> tuple[Tensors, dict]:
    """Minitron-style width pruning: the kv groups (with their query heads) and MLP neurons of
    least weight norm removed in every layer; returns the tensors and the updated config."""
    t = dict(t)
    hd, group = lay.head_dim, lay.heads // lay.kv_heads
    for i in range(lay.layers):
        v = t[lay.name(i, "v")].reshape(lay.kv_heads, hd, -1)
        kv_keep = np.sort(np.argsort(-np.linalg.norm(v, axis=(1, 2)))[:keep_kv])
        up = t[lay.name(i, "up")]
        n = round(up.shape[0] * keep_neurons)
        importance = np.linalg.norm(up, axis=1) * np.linalg.norm(t[lay.name(i, "down")], axis=0)
        _select(
            t,
            lay,
            i,
            [g * group + j for g in kv_keep for j in range(group)],
            kv_keep,
            np.sort(np.argsort(-importance)[:n]),
        )
    cfg = dict(config, num_attention_heads=keep_kv * group, num_key_value_heads=keep_kv, head_dim=hd)
    return t, cfg


def layers_dropped(t: Tensors, drop: list[int]) -> Tensors:
    """Depth pruning: the given layers removed and the rest renumbered."""
    keep = {}
    for name, v in t.items():
        m = _LAYER.search(name)
        if m is None:
            keep[name] = v
            continue
        i = int(m.group(1))
        if i in drop:
            continue
        new = i - sum(1 for d in drop if d < i)
        keep[name[: m.start(1)] + str(new) + name[m.end(1) :]] = v
    return keep
