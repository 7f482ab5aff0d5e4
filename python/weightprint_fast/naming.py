"""Tensor names -> (layer, projection type): which matrices of a checkpoint the vectors are made of.

Each architecture family is a list of rules. A rule matches a tensor name and says which
projection matrices it holds: usually one, but fused tensors hold several, given as row ranges
(Phi-3 ``qkv_proj``/``gate_up_proj``, Falcon multi-query), column ranges (GPT-2's transposed
Conv1D ``c_attn``), or per-head row groups (GPT-NeoX ``query_key_value``). Norms, embeddings,
``lm_head`` and biases match no rule and are left out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Callable, Optional

import numpy as np

from .architecture import Architecture
from .errors import ConfigError, UnknownArchitectureError


class ProjectionType(str, Enum):
    """The seven projection types of a decoder layer, in vector order."""

    Q = "q"
    K = "k"
    V = "v"
    O = "o"  # noqa: E741
    GATE = "gate"
    UP = "up"
    DOWN = "down"


TYPE_ORDER: tuple[str, ...] = tuple(t.value for t in ProjectionType)


@dataclass(frozen=True)
class Part:
    """One projection matrix inside a stored tensor (2-D, or 3-D stacked experts).

    Geometry is in the stored tensor's own rows and columns: rows ``row_start`` ..
    ``row_start + rows`` (in groups of ``group_rows`` rows whose starts are ``group_stride`` rows
    apart, when set), columns ``col_start`` .. ``col_start + cols``. ``None`` means all of them.
    ``transposed`` marks storage as (in, out) (GPT-2 Conv1D); it changes no statistic and no
    singular value, only how a LoRA delta (always out x in) is split.
    """

    layer: int
    type: str
    expert: Optional[int] = None
    row_start: int = 0
    rows: Optional[int] = None
    col_start: int = 0
    cols: Optional[int] = None
    group_rows: int = 0
    group_stride: int = 0
    transposed: bool = False


Handler = Callable[[re.Match, Sequence[int], Architecture], list]


def _single(type_of: Mapping[str, str], transposed: bool = False) -> Handler:
    def handler(m: re.Match, shape: Sequence[int], arch: Architecture) -> list:
        expert = m.groupdict().get("expert")
        return [
            Part(
                int(m["layer"]),
                type_of[m["t"]],
                None if expert is None else int(expert),
                transposed=transposed,
            )
        ]

    return handler


def _fused_qkv_rows(m: re.Match, shape: Sequence[int], arch: Architecture) -> list:
    """[q | k | v] stacked by rows (Phi-3, Falcon-7B multi-query, GGUF attn_qkv)."""
    layer = int(m["layer"])
    heads, kv, hd = arch.require_heads(f"a fused QKV tensor of shape {tuple(shape)}", shape[-1])
    q, k = heads * hd, kv * hd
    if q + 2 * k != shape[-2]:
        raise UnknownArchitectureError(f"fused QKV of {shape[-2]} rows does not split as {q} + {k} + {k}")
    return [
        Part(layer, "q", rows=q),
        Part(layer, "k", row_start=q, rows=k),
        Part(layer, "v", row_start=q + k, rows=k),
    ]


def _fused_gate_up_rows(m: re.Match, shape: Sequence[int], arch: Architecture) -> list:
    layer, half = int(m["layer"]), shape[-2] // 2
    return [Part(layer, "gate", rows=half), Part(layer, "up", row_start=half, rows=half)]


def _gpt2_c_attn(m: re.Match, shape: Sequence[int], arch: Architecture) -> list:
    layer, d = int(m["layer"]), shape[1] // 3
    return [Part(layer, t, col_start=i * d, cols=d, transposed=True) for i, t in enumerate(("q", "k", "v"))]


def _interleaved_qkv(m: re.Match, shape: Sequence[int], arch: Architecture) -> list:
    """GPT-NeoX and classic Falcon: rows are [q_h, k_h, v_h] per head h; Falcon's new decoder
    architecture groups [q x heads/kv, k, v] per kv head; Falcon multi-query stacks them."""
    if arch.qkv_layout == "stacked":
        return _fused_qkv_rows(m, shape, arch)
    layer = int(m["layer"])
    heads, kv, hd = arch.require_heads(f"a fused query_key_value tensor of shape {tuple(shape)}", shape[-1])
    if arch.qkv_layout == "grouped":
        per = heads // kv
        stride = (per + 2) * hd
        if kv * stride != shape[0]:
            raise UnknownArchitectureError(
                f"query_key_value of {shape[0]} rows is not {kv} groups of {per} + 2 heads x {hd}"
            )
        return [
            Part(layer, "q", rows=heads * hd, group_rows=per * hd, group_stride=stride),
            Part(layer, "k", row_start=per * hd, rows=kv * hd, group_rows=hd, group_stride=stride),
            Part(layer, "v", row_start=(per + 1) * hd, rows=kv * hd, group_rows=hd, group_stride=stride),
        ]
    if 3 * heads * hd != shape[0]:
        raise UnknownArchitectureError(f"query_key_value of {shape[0]} rows is not 3 x {heads} heads x {hd}")
    return [
        Part(layer, t, row_start=i * hd, rows=heads * hd, group_rows=hd, group_stride=3 * hd)
        for i, t in enumerate(("q", "k", "v"))
    ]


_SAME = {t: t for t in TYPE_ORDER}
_L = r"(?:^|\.)(?:layers|h|layer|blocks)\.(?P<layer>\d+)\."

#: (family, pattern, handler). Patterns are matched against full tensor names with re.search.
RULES: list[tuple[str, str, Handler]] = [
    # Llama, Mistral, SmolLM, Qwen2/3, Gemma/Gemma3, Phi-3 (o/down), DeepSeek/Qwen MoE experts
    ("llama", _L + r"(?:self_attn|attention)\.(?P<t>q|k|v|o)_proj\.weight$", _single(_SAME)),
    (
        "llama",
        _L
        + r"(?:mlp|feed_forward)(?:\.experts(?:\.(?P<expert>\d+))?|\.shared_experts?)?"
        + r"\.(?P<t>gate|up|down)_proj\.weight$",
        _single(_SAME),
    ),
    (
        "mixtral",
        _L + r"block_sparse_moe\.experts\.(?P<expert>\d+)\.(?P<t>w1|w2|w3)\.weight$",
        _single({"w1": "gate", "w2": "down", "w3": "up"}),
    ),
    ("phi3", _L + r"self_attn\.qkv_proj\.weight$", _fused_qkv_rows),
    ("phi3", _L + r"mlp\.gate_up_proj\.weight$", _fused_gate_up_rows),
    ("gpt2", _L + r"attn\.c_attn\.weight$", _gpt2_c_attn),
    (
        "gpt2",
        _L + r"(?P<t>attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$",
        _single({"attn.c_proj": "o", "mlp.c_fc": "up", "mlp.c_proj": "down"}, transposed=True),
    ),
    ("gpt-neox", _L + r"(?:attention|self_attention)\.query_key_value\.weight$", _interleaved_qkv),
    (
        "gpt-neox",
        _L + r"(?P<t>attention\.dense|self_attention\.dense|mlp\.dense_h_to_4h|mlp\.dense_4h_to_h)\.weight$",
        _single(
            {
                "attention.dense": "o",
                "self_attention.dense": "o",
                "mlp.dense_h_to_4h": "up",
                "mlp.dense_4h_to_h": "down",
            }
        ),
    ),
    (
        "bert",
        _L + r"attention\.self\.(?P<t>query|key|value)\.weight$",
        _single({"query": "q", "key": "k", "value": "v"}),
    ),
    (
        "bert",
        _L + r"(?P<t>attention\.output\.dense|intermediate\.dense|output\.dense)\.weight$",
        _single({"attention.output.dense": "o", "intermediate.dense": "up", "output.dense": "down"}),
    ),
    ("mpnet", _L + r"attention\.attn\.(?P<t>q|k|v|o)\.weight$", _single(_SAME)),
    ("gguf", r"^blk\.(?P<layer>\d+)\.attn_(?P<t>q|k|v|output)\.weight$", _single({**_SAME, "output": "o"})),
    ("gguf", r"^blk\.(?P<layer>\d+)\.ffn_(?P<t>gate|up|down)(?:_exps)?\.weight$", _single(_SAME)),
    ("gguf", r"^blk\.(?P<layer>\d+)\.attn_qkv\.weight$", _fused_qkv_rows),
]
_COMPILED = [(family, re.compile(p), h) for family, p, h in RULES]


def _custom_rules(name_patterns: Mapping[str, str]) -> list:
    rules = []
    for pattern, type_name in name_patterns.items():
        if type_name not in TYPE_ORDER:
            raise ConfigError(
                f"name pattern {pattern!r}: unknown projection type {type_name!r}; use one of {TYPE_ORDER}"
            )
        rx = re.compile(pattern)
        if "layer" not in rx.groupindex:
            raise ConfigError(f"name pattern {pattern!r} needs a named group (?P<layer>...)")
        rules.append(("custom", rx, lambda m, s, a, t=type_name: [Part(int(m["layer"]), t)]))
    return rules


@dataclass(frozen=True)
class MappedTensor:
    name: str
    shape: tuple[int, ...]
    family: str
    parts: tuple[Part, ...]


def map_tensors(
    tensors: Sequence[tuple[str, Sequence[int]]],
    architecture: Optional[Architecture] = None,
    name_patterns: Optional[Mapping[str, str]] = None,
) -> list[MappedTensor]:
    """The projection matrices among ``(name, shape)`` pairs.

    ``name_patterns`` maps extra regular expressions (with a ``(?P<layer>\\d+)`` group) to
    projection types; they are tried before the built-in rules. 3-D tensors that match a rule are
    stacked experts: one part per expert. Raises UnknownArchitectureError when nothing matches.
    """
    arch = architecture or Architecture()
    rules = _custom_rules(name_patterns or {}) + _COMPILED
    out = []
    for name, shape in tensors:
        shape = tuple(int(s) for s in shape)
        if len(shape) not in (2, 3) or math.prod(shape) == 0:
            continue
        for family, rx, handler in rules:
            m = rx.search(name)
            if m is None:
                continue
            parts = handler(m, shape[-2:], arch)
            if len(shape) == 3:
                parts = [Part(**{**p.__dict__, "expert": e}) for e in range(shape[0]) for p in parts]
            out.append(MappedTensor(name, shape, family, tuple(parts)))
            break
    if not out:
        matrices = [n for n, s in tensors if len(s) == 2][:12]
        raise UnknownArchitectureError(
            "no tensor matched a known projection naming scheme (Llama/Mistral/Qwen/Gemma/Phi-3/GPT-2/"
            "GPT-NeoX/Falcon/BERT/MPNet/MoE/GGUF). 2-D tensors found: "
            + (", ".join(matrices) if matrices else "none")
            + ". Map them with a JSON file {regex with (?P<layer>\\d+): type}: weightprint --name-map FILE, "
            "or name_patterns={...} in Python."
        )
    return out


def part_shape(part: Part, shape: Sequence[int]) -> tuple[int, int]:
    """(rows, columns) of one part's matrix inside a stored tensor of the given (rows, columns)."""
    rows = part.rows if part.rows is not None else shape[0] - part.row_start
    cols = part.cols if part.cols is not None else shape[1] - part.col_start
    return rows, cols


def part_indices(part: Part, shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices, in the stored tensor, of one part's matrix."""
    n_rows, n_cols = part_shape(part, shape)
    i = np.arange(n_rows)
    if part.group_rows:
        rows = part.row_start + (i // part.group_rows) * part.group_stride + i % part.group_rows
    else:
        rows = part.row_start + i
    return rows, part.col_start + np.arange(n_cols)


# The token embedding (vocabulary x residual width) of each family: Llama-style, BERT, GPT-2,
# Llama 1 (tok_embeddings), GPT-NeoX, GGUF.
_EMBEDDING = re.compile(
    r"(?:^|\.)(?:embed_tokens|word_embeddings|wte|tok_embeddings|embed_in|token_embd)\.weight$"
)


def embedding_tensor(tensors: Sequence[tuple[str, Sequence[int]]], width: int) -> Optional[str]:
    """The name of the token embedding among (name, shape) pairs: 2-D, rows of the residual
    ``width``; None where there is none."""
    for name, shape in tensors:
        if _EMBEDDING.search(name) and len(shape) == 2 and int(shape[1]) == width:
            return name
    return None
