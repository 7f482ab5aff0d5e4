"""Generates sharded bf16 Llama-style checkpoints with realistic spectra, for scale benchmarks.

Every projection is a rank-64 structure plus Gaussian noise. The structure's singular values are
edge * (1 + 2.5 / sqrt(i)), where edge = noise * (sqrt(m) + sqrt(n)) is where the noise's own
spectrum ends: s_16/s_1 ~ 0.46 and s_16/s_64 ~ 1.24, the ratios measured on the real SmolLM2,
Gemma 3 and MiniLM projections (0.43-0.88 and 1.13-1.67). Tensors are generated and written in
row chunks, so memory stays small whatever the size. One shard per layer, with an index and a
config.json.

Usage: python bench/make_checkpoint.py OUT_DIR --preset llama3-70b --layers 2
"""

from __future__ import annotations

import argparse
import json
import struct
from pathlib import Path

import numpy as np

PRESETS = {  # hidden, intermediate, q heads, kv heads
    "llama3-70b": (8192, 28672, 64, 8),
    "llama3-8b": (4096, 14336, 32, 8),
    "small": (1024, 2816, 16, 4),
    "smollm2-135m": (576, 1536, 9, 3),
    "qwen2.5-1.5b": (1536, 8960, 12, 2),
}


def layer_shapes(hidden: int, ffn: int, heads: int, kv: int) -> dict[str, tuple[int, int]]:
    kv_dim = hidden // heads * kv
    return {
        "self_attn.q_proj": (hidden, hidden),
        "self_attn.k_proj": (kv_dim, hidden),
        "self_attn.v_proj": (kv_dim, hidden),
        "self_attn.o_proj": (hidden, hidden),
        "mlp.gate_proj": (ffn, hidden),
        "mlp.up_proj": (ffn, hidden),
        "mlp.down_proj": (hidden, ffn),
    }


def _bf16(a: np.ndarray) -> bytes:
    u = a.view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16).tobytes()


def _write_matrix(
    f, rng: np.random.Generator, m: int, n: int, noise: float, rank: int = 64, chunk: int = 2048
) -> None:
    edge = noise * (np.sqrt(m) + np.sqrt(n))
    s = edge * (1.0 + 2.5 / np.sqrt(np.arange(1, rank + 1, dtype=np.float32)))
    u, _ = np.linalg.qr(rng.standard_normal((m, rank), dtype=np.float32))
    v, _ = np.linalg.qr(rng.standard_normal((n, rank), dtype=np.float32))
    vt = v.T * s[:, None]
    for r0 in range(0, m, chunk):
        rows = min(chunk, m - r0)
        block = rng.standard_normal((rows, n), dtype=np.float32)
        block *= noise
        block += u[r0 : r0 + rows] @ vt
        f.write(_bf16(block))


def write_checkpoint(out: Path, layers: int, preset: str = "llama3-70b", seed: int = 0) -> Path:
    hidden, ffn, heads, kv = PRESETS[preset]
    shapes = layer_shapes(hidden, ffn, heads, kv)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    weight_map = {}
    for layer in range(layers):
        shard = f"model-{layer + 1:05d}-of-{layers:05d}.safetensors"
        header, offset = {}, 0
        for name, (m, n) in shapes.items():
            key = f"model.layers.{layer}.{name}.weight"
            header[key] = {"dtype": "BF16", "shape": [m, n], "data_offsets": [offset, offset + 2 * m * n]}
            offset += 2 * m * n
            weight_map[key] = shard
        raw = json.dumps(header).encode()
        raw += b" " * (-len(raw) % 8)
        with open(out / shard, "wb") as f:
            f.write(struct.pack("<Q", len(raw)) + raw)
            for i, (m, n) in enumerate(shapes.values()):
                _write_matrix(f, rng, m, n, noise=0.01 + 0.004 * i)
    (out / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    (out / "config.json").write_text(
        json.dumps(
            {
                "model_type": "llama",
                "hidden_size": hidden,
                "intermediate_size": ffn,
                "num_hidden_layers": layers,
                "num_attention_heads": heads,
                "num_key_value_heads": kv,
            }
        )
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="llama3-70b")
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    write_checkpoint(args.out, args.layers, args.preset, args.seed)


if __name__ == "__main__":
    main()
