"""The one reader of a checkpoint's architecture: what its configuration says about layers, heads
and norms, validated once, with an error that names the key.

Sources are Hugging Face ``config.json`` (nested ``text_config`` of multimodal models included),
GGUF metadata (``{arch}.attention.head_count`` and friends, given here without the ``{arch}.``
prefix by :func:`gguf_config`) and the ``config.json`` a PEFT adapter's base would have. Tensor
names add what configurations do not say: which norms a layer has (pre, post, sandwich,
query/key) and whether the embeddings are tied.

Naming (splitting fused QKV tensors), the lineage invariants (head layout, norm folding) and the
comparison all read a model's architecture from here and nowhere else; a new architecture's
configuration rule is added in this module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Optional

from .errors import ConfigError

# Every spelling of a value, in the order tried: Hugging Face (Llama, GPT-2, Falcon, GPT-NeoX),
# then GGUF (prefix removed).
_KEYS: dict[str, tuple[str, ...]] = {
    "layers": ("num_hidden_layers", "n_layer", "num_layers", "block_count"),
    "hidden": ("hidden_size", "n_embd", "d_model", "embedding_length"),
    "heads": ("num_attention_heads", "n_head", "num_heads", "attention.head_count"),
    "kv_heads": ("num_key_value_heads", "num_kv_heads", "n_head_kv", "attention.head_count_kv"),
    "head_dim": ("head_dim", "attention.key_length"),
}
# Far above any real model (Llama-3-405B: 126 layers, 128 heads, d = 16384), far below overflow.
_LIMIT = 1 << 20
# Post-LN encoders (BERT, MPNet) normalize the residual stream itself after each block.
POST_NORM_MODEL_TYPES = frozenset({"bert", "mpnet", "roberta", "xlm-roberta", "distilbert", "electra"})
_SANDWICH = re.compile(r"(?:^|\.)(?:post_feedforward_layernorm|post_ffw_norm|ffn_post_norm)\.weight$")
_PRE_FFN = re.compile(r"(?:^|\.)(?:pre_feedforward_layernorm|ln_2|ln_mlp|ffn_norm)\.weight$")
_QK_NORM = re.compile(r"(?:^|\.)(?:q_norm|k_norm|attn_q_norm|attn_k_norm|q_layernorm|k_layernorm)\.weight$")
_LM_HEAD = re.compile(r"(?:^|\.)(?:lm_head|output)\.weight$")


def _lookup(config: Mapping, key: str) -> tuple[Optional[str], object]:
    """(the key found, its value) for one of ``_KEYS[key]``, top level first, then
    ``text_config``; (None, None) when absent."""
    scopes = [("", config)]
    text = config.get("text_config")
    if isinstance(text, Mapping):
        scopes.append(("text_config.", text))
    for prefix, scope in scopes:
        for k in _KEYS[key]:
            if scope.get(k) is not None:
                return prefix + k, scope[k]
    return None, None


def _count(config: Mapping, key: str, source: str, minimum: int = 1) -> Optional[int]:
    """A count from the config: an integer in [minimum, 2^20], or ConfigError naming the key."""
    name, value = _lookup(config, key)
    if name is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{source}: '{name}' is {value!r}; expected a whole number")
    if not minimum <= value <= _LIMIT:
        raise ConfigError(f"{source}: '{name}' is {value}; expected {minimum} to {_LIMIT}")
    return value


def _flag(config: Mapping, key: str, source: str) -> bool:
    value = config.get(key)
    if value is None:
        text = config.get("text_config")
        value = text.get(key) if isinstance(text, Mapping) else None
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ConfigError(f"{source}: '{key}' is {value!r}; expected true or false")
    return value


@dataclass(frozen=True)
class AttentionGeometry:
    """Head layout of a model's attention: ``heads`` query heads of ``head_dim`` rows each,
    sharing ``kv_heads`` key/value heads in consecutive groups."""

    heads: int
    kv_heads: int
    head_dim: int

    def kv_of(self, head: int) -> int:
        return head // (self.heads // self.kv_heads)


@dataclass(frozen=True)
class Architecture:
    """What a checkpoint's configuration says about its shape, validated.

    ``model_type``: config ``model_type`` or GGUF ``general.architecture`` ("" if neither);
    ``layers``, ``hidden``, ``heads``, ``kv_heads`` (multi-query: 1), ``head_dim``: None where the
    configuration does not say; ``qkv_layout``: how a GPT-NeoX/Falcon ``query_key_value`` tensor
    stores its heads ("interleaved" [q_h k_h v_h] per head; "stacked" [q | k | v]: Falcon
    multi-query; "grouped" [q.. k v] per kv head: Falcon's new decoder architecture);
    ``post_norm``: the norms act on the residual stream itself (BERT-style encoders), so their
    weights cannot be moved into the projections;
    ``norm_offset``: the stored norm weight w multiplies by w + offset (Hugging Face Gemma: 1);
    ``source``: where the configuration came from, for messages.
    """

    model_type: str = ""
    layers: Optional[int] = None
    hidden: Optional[int] = None
    heads: Optional[int] = None
    kv_heads: Optional[int] = None
    head_dim: Optional[int] = None
    qkv_layout: str = "stacked"
    post_norm: bool = False
    norm_offset: float = 0.0
    source: str = "config"

    def require_heads(self, what: str, width: int) -> tuple[int, int, int]:
        """(heads, kv heads, head dim) for splitting ``what``, a tensor reading a residual stream
        of ``width`` (head dim defaults to hidden_size / heads, that width when the config has no
        hidden_size); ConfigError if the heads are unknown or do not divide it."""
        if self.heads is None:
            raise ConfigError(
                f"{self.source}: {what} needs num_attention_heads (or the GGUF attention.head_count) "
                "to be split, and the configuration does not give it"
            )
        kv = self.kv_heads if self.kv_heads is not None else self.heads
        head_dim = self.head_dim
        if head_dim is None:
            hidden = self.hidden if self.hidden is not None else width
            if hidden % self.heads:
                raise ConfigError(
                    f"{self.source}: {what} needs head_dim, or a hidden_size ({hidden}) that "
                    f"{self.heads} heads divide"
                )
            head_dim = hidden // self.heads
        return self.heads, kv, head_dim

    def geometry(
        self, q_shape: Optional[Sequence[int]], k_shape: Optional[Sequence[int]]
    ) -> Optional[AttentionGeometry]:
        """The head layout, checked against the q and k matrices' shapes (out x in); None when
        the configuration gives no head count or there are no q/k matrices. A kv head count the
        configuration leaves out is read off the k matrix; values it gives that contradict the
        shapes are a ConfigError naming them."""
        if self.heads is None or q_shape is None or k_shape is None:
            return None
        heads = self.heads
        head_dim = self.head_dim if self.head_dim is not None else q_shape[0] // heads
        if head_dim < 1 or q_shape[0] != heads * head_dim:
            raise ConfigError(
                f"{self.source}: {heads} attention heads of {head_dim} rows do not make the q "
                f"projection's {q_shape[0]} rows (num_attention_heads / head_dim)"
            )
        kv = self.kv_heads
        if kv is None:
            kv = k_shape[0] // head_dim if k_shape[0] % head_dim == 0 else 0
        if kv < 1 or k_shape[0] != kv * head_dim or heads % kv:
            raise ConfigError(
                f"{self.source}: {kv} key/value heads of {head_dim} rows do not make the k "
                f"projection's {k_shape[0]} rows for {heads} query heads (num_key_value_heads)"
            )
        return AttentionGeometry(heads, kv, head_dim)


def read_architecture(config: Mapping, source: str = "config") -> Architecture:
    """The validated architecture of a configuration (config.json, or :func:`gguf_config`)."""
    if not isinstance(config, Mapping):
        raise ConfigError(f"{source}: the configuration is not a JSON object")
    model_type = config.get("model_type") or config.get("general.architecture") or ""
    if not isinstance(model_type, str):
        raise ConfigError(f"{source}: 'model_type' is {model_type!r}; expected a string")
    heads = _count(config, "heads", source)
    kv = _count(config, "kv_heads", source)
    multi_query = _flag(config, "multi_query", source)
    grouped = _flag(config, "new_decoder_architecture", source)
    if multi_query and not grouped:
        kv = 1  # Falcon-7B: one key/value head, whatever else the config says
    if heads is not None and kv is not None and heads % kv:
        raise ConfigError(
            f"{source}: {heads} attention heads cannot share {kv} key/value heads "
            "(num_key_value_heads must divide num_attention_heads)"
        )
    family = model_type.lower()
    # Hugging Face Gemma stores RMSNorm weights as w with the multiplier 1 + w (GGUF stores 1 + w).
    offset = 1.0 if family.startswith("gemma") and "general.architecture" not in config else 0.0
    return Architecture(
        model_type=model_type,
        layers=_count(config, "layers", source),
        hidden=_count(config, "hidden", source),
        heads=heads,
        kv_heads=kv,
        head_dim=_count(config, "head_dim", source),
        qkv_layout="grouped" if grouped else "stacked" if multi_query else "interleaved",
        post_norm=family in POST_NORM_MODEL_TYPES,
        norm_offset=offset,
        source=source,
    )


def gguf_config(metadata: Mapping) -> dict:
    """A GGUF file's architecture keys as a config: ``{arch}.attention.head_count`` becomes
    ``attention.head_count``; arrays are left out (per-layer values are not used)."""
    arch = metadata.get("general.architecture") or "unknown"
    config = {
        k[len(arch) + 1 :]: v
        for k, v in metadata.items()
        if k.startswith(f"{arch}.") and v is not None and not isinstance(v, list)
    }
    config["general.architecture"] = arch
    return config


@dataclass(frozen=True)
class NormLayout:
    """Which norms a model's layers have, from its tensor names: ``placement`` "pre" (Llama),
    "sandwich" (norms after attention and MLP too: Gemma 2/3, so a per-layer scale of o_proj and
    down_proj is absorbed) or "post" (BERT-style encoders); ``qk_norm``: queries and keys are
    normalized per head (Gemma 3, Qwen3, OLMo 2); ``tied_embeddings``: no separate output matrix."""

    placement: str
    qk_norm: bool
    tied_embeddings: bool


# Naming families (naming.py) whose tensor names alone say the model is a post-norm encoder.
POST_NORM_FAMILIES = frozenset({"bert", "mpnet"})


def norm_layout(names: Sequence[str], architecture: Architecture, families: Sequence[str] = ()) -> NormLayout:
    """The norms of a model with these tensor names (``families``: its naming families)."""
    sandwich = any(_SANDWICH.search(n) for n in names) and any(_PRE_FFN.search(n) for n in names)
    post = architecture.post_norm or bool(POST_NORM_FAMILIES.intersection(families))
    placement = "post" if post else "sandwich" if sandwich else "pre"
    return NormLayout(
        placement,
        any(_QK_NORM.search(n) for n in names),
        not any(_LM_HEAD.search(n) for n in names),
    )
