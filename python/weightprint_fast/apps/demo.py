"""A self-contained demonstration: synthetic checkpoints with known lineage, fingerprinted and compared.

Built in a directory (a temporary one by default):
- ``family-a``: a Llama-style model (6 layers) whose projections are low-rank structure plus noise;
- ``family-a-finetune``: family-a plus a small full-rank update (a fine-tune);
- ``family-a-lora-merged``: family-a plus the delta of ``family-a-lora`` (merged LoRA);
- ``family-a-lora``: a PEFT LoRA adapter (rank 8) for family-a, fingerprinted through its deltas;
- ``family-b``: an unrelated model of the same shapes, trained-looking but from another seed and
  other per-type scales.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

LAYERS, HIDDEN, KV, FFN = 6, 128, 32, 344
SHAPES = {
    "self_attn.q_proj": (HIDDEN, HIDDEN),
    "self_attn.k_proj": (KV, HIDDEN),
    "self_attn.v_proj": (KV, HIDDEN),
    "self_attn.o_proj": (HIDDEN, HIDDEN),
    "mlp.gate_proj": (FFN, HIDDEN),
    "mlp.up_proj": (FFN, HIDDEN),
    "mlp.down_proj": (HIDDEN, FFN),
}


def _base(seed: int, scales: dict[str, float]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for layer in range(LAYERS):
        for name, (m, n) in SHAPES.items():
            scale = scales[name] * (1.0 + 0.05 * layer)
            rank = 4 if "attn" in name else 8
            structure = rng.standard_normal((m, rank)) @ rng.standard_normal((rank, n)) / np.sqrt(rank)
            w = scale * (0.6 * structure + rng.standard_normal((m, n)))
            out[f"model.layers.{layer}.{name}.weight"] = w.astype(np.float32)
    return out


def _config() -> dict:
    return {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": HIDDEN,
        "intermediate_size": FFN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": 4,
        "num_key_value_heads": 1,
    }


def build(root: Path) -> dict[str, Path]:
    """Writes the demo checkpoints under ``root``; returns name -> path."""
    from safetensors.numpy import save_file

    scales_a = {
        "self_attn.q_proj": 0.05,
        "self_attn.k_proj": 0.06,
        "self_attn.v_proj": 0.02,
        "self_attn.o_proj": 0.02,
        "mlp.gate_proj": 0.03,
        "mlp.up_proj": 0.03,
        "mlp.down_proj": 0.025,
    }
    scales_b = {
        "self_attn.q_proj": 0.03,
        "self_attn.k_proj": 0.03,
        "self_attn.v_proj": 0.035,
        "self_attn.o_proj": 0.03,
        "mlp.gate_proj": 0.02,
        "mlp.up_proj": 0.025,
        "mlp.down_proj": 0.03,
    }
    rng = np.random.default_rng(7)
    a = _base(1, scales_a)
    finetune = {
        k: (v + 0.05 * v.std() * rng.standard_normal(v.shape)).astype(np.float32) for k, v in a.items()
    }
    lora, merged = {}, {}
    rank, alpha = 8, 16
    for name, w in a.items():
        module = name.removesuffix(".weight")
        la = (rng.standard_normal((rank, w.shape[1])) * 0.02).astype(np.float32)
        lb = (rng.standard_normal((w.shape[0], rank)) * 0.02).astype(np.float32)
        lora[f"base_model.model.{module}.lora_A.weight"] = la
        lora[f"base_model.model.{module}.lora_B.weight"] = lb
        merged[name] = (w + (alpha / rank) * lb @ la).astype(np.float32)
    models = {
        "family-a": a,
        "family-a-finetune": finetune,
        "family-a-lora-merged": merged,
        "family-b": _base(2, scales_b),
    }
    paths = {}
    for name, tensors in models.items():
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(d / "model.safetensors"))
        (d / "config.json").write_text(json.dumps(_config()))
        paths[name] = d
    d = root / "family-a-lora"
    d.mkdir(parents=True, exist_ok=True)
    save_file(lora, str(d / "adapter_model.safetensors"))
    (d / "adapter_config.json").write_text(
        json.dumps(
            {
                "peft_type": "LORA",
                "r": rank,
                "lora_alpha": alpha,
                "base_model_name_or_path": "family-a",
                "target_modules": [
                    "q_proj",
                    "k_proj",
                    "v_proj",
                    "o_proj",
                    "gate_proj",
                    "up_proj",
                    "down_proj",
                ],
            }
        )
    )
    paths["family-a-lora"] = d
    return paths
