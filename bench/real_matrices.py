"""Projection matrices of the real checkpoints in docs/REAL_MODELS.md, as float32 arrays.

The checkpoints are fetched (once, into the tests' cache) by tests/real_models.py. GGUF weights are
dequantized with the `gguf` package, as `weightprint fingerprint` does.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import real_models

GGUF_TYPES = {
    "q": "attn_q",
    "k": "attn_k",
    "v": "attn_v",
    "o": "attn_output",
    "gate": "ffn_gate",
    "up": "ffn_up",
    "down": "ffn_down",
}
BERT_TYPES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "o": "attention.output.dense",
    "up": "intermediate.dense",
    "down": "output.dense",
}


def _gguf_layer(path: Path) -> tuple[int, dict[str, np.ndarray]]:
    import gguf

    reader = gguf.GGUFReader(str(path))
    tensors = {t.name: t for t in reader.tensors}
    layers = 1 + max(int(n.split(".")[1]) for n in tensors if n.startswith("blk."))
    layer = layers // 2
    out = {}
    for kind, stem in GGUF_TYPES.items():
        t = tensors[f"blk.{layer}.{stem}.weight"]
        shape = tuple(int(x) for x in reversed(t.shape.tolist()))
        out[kind] = np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32).reshape(shape)
    return layer, out


def _bert_layer(path: Path) -> tuple[int, dict[str, np.ndarray]]:
    from safetensors.numpy import load_file

    weights = load_file(str(path / "model.safetensors"))
    layers = 1 + max(int(n.split(".")[2]) for n in weights if n.startswith("encoder.layer."))
    layer = layers // 2
    return layer, {kind: weights[f"encoder.layer.{layer}.{stem}.weight"] for kind, stem in BERT_TYPES.items()}


def real_matrices() -> dict[str, np.ndarray]:
    """The middle layer's projections of SmolLM2-135M, Gemma-3-270M (both GGUF) and all-MiniLM-L6,
    keyed "model layer type"."""
    out = {}
    for model, (layer, mats) in (
        ("smollm2-135m", _gguf_layer(real_models.smollm2_gguf())),
        ("gemma3-270m", _gguf_layer(real_models.gemma3_gguf())),
        ("minilm-l6", _bert_layer(real_models.minilm())),
    ):
        for kind, a in mats.items():
            out[f"{model} L{layer} {kind}"] = np.ascontiguousarray(a)
    return out
