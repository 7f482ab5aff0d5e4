"""Hard negatives and their derivatives: small Llama- and Qwen-shaped models trained from scratch on
CPU with several seeds at two sizes (same tokenizer, same data: strangers as alike as independent
models get), and copies of them trained on (continued training on the same text, fine-tunes on
Python source at learning rates up to 1e-3).

Usage: python experiments/scratch.py [--cache DIR] [--steps 600] [--tune-steps 200]
Each model is a Hugging Face style directory (model.safetensors, config.json, tokenizer.json)
under CACHE/scratch; a model already there is not rebuilt. Needs torch and tokenizers.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from derivatives import CACHE, corpus, rewrites


@dataclass(frozen=True)
class Shape:
    family: str  # "llama" (no biases) or "qwen2" (q, k, v biases)
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    ffn: int
    head_dim: int = 0  # 0: hidden // heads

    @property
    def hd(self) -> int:
        return self.head_dim or self.hidden // self.heads


SHAPES = {
    "llama-s": Shape("llama", 128, 4, 4, 2, 344),
    "llama-m": Shape("llama", 192, 6, 6, 2, 512),
    "qwen-s": Shape("qwen2", 128, 4, 4, 2, 344),
}
VOCAB = 2048
SEQ = 64


def tokenizer(cache: Path):
    """One byte-level BPE tokenizer for every model, trained on the prose corpus."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    path = cache / "tokenizer.json"
    if path.exists():
        return Tokenizer.from_file(str(path))
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([corpus("prose")], trainer)
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))
    return tok


def build(shape: Shape, seed: int, untied: bool = False):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    hd = shape.hd

    class Norm(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(shape.hidden))

        def forward(self, x):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            bias = shape.family == "qwen2"
            self.q_proj = nn.Linear(shape.hidden, shape.heads * hd, bias=bias)
            self.k_proj = nn.Linear(shape.hidden, shape.kv_heads * hd, bias=bias)
            self.v_proj = nn.Linear(shape.hidden, shape.kv_heads * hd, bias=bias)
            self.o_proj = nn.Linear(shape.heads * hd, shape.hidden, bias=False)

        def forward(self, x, cos, sin):
            b, t, _ = x.shape
            q = self.q_proj(x).view(b, t, shape.heads, hd).transpose(1, 2)
            k = self.k_proj(x).view(b, t, shape.kv_heads, hd).transpose(1, 2)
            v = self.v_proj(x).view(b, t, shape.kv_heads, hd).transpose(1, 2)
            rot = lambda z: torch.cat([-z[..., hd // 2 :], z[..., : hd // 2]], -1)  # noqa: E731
            q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
            rep = shape.heads // shape.kv_heads
            k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
            y = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.o_proj(y.transpose(1, 2).reshape(b, t, -1))

    class Mlp(nn.Module):
        def __init__(self):
            super().__init__()
            self.gate_proj = nn.Linear(shape.hidden, shape.ffn, bias=False)
            self.up_proj = nn.Linear(shape.hidden, shape.ffn, bias=False)
            self.down_proj = nn.Linear(shape.ffn, shape.hidden, bias=False)

        def forward(self, x):
            return self.down_proj(nn.functional.silu(self.gate_proj(x)) * self.up_proj(x))

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.input_layernorm, self.post_attention_layernorm = Norm(), Norm()
            self.self_attn, self.mlp = Attention(), Mlp()

        def forward(self, x, cos, sin):
            x = x + self.self_attn(self.input_layernorm(x), cos, sin)
            return x + self.mlp(self.post_attention_layernorm(x))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed_tokens = nn.Embedding(VOCAB, shape.hidden)
            nn.init.normal_(self.embed_tokens.weight, std=0.02)
            self.layers = nn.ModuleList(Layer() for _ in range(shape.layers))
            self.norm = Norm()
            self.lm_head = nn.Linear(shape.hidden, VOCAB, bias=False) if untied else None
            inv = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))
            ang = torch.outer(torch.arange(SEQ).float(), inv)
            self.register_buffer("cos", torch.cat([ang.cos(), ang.cos()], -1), persistent=False)
            self.register_buffer("sin", torch.cat([ang.sin(), ang.sin()], -1), persistent=False)

        def forward(self, ids):
            x = self.embed_tokens(ids)
            t = ids.shape[1]
            for layer in self.layers:
                x = layer(x, self.cos[:t], self.sin[:t])
            head = self.embed_tokens.weight if self.lm_head is None else self.lm_head.weight
            return self.norm(x) @ head.T

    return Model()


def train(model, ids: np.ndarray, steps: int, lr: float, seed: int) -> float:
    """AdamW on random windows of the token stream, cosine schedule; returns the last loss."""
    import torch

    torch.set_num_threads(2)
    gen = np.random.default_rng(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    data = torch.from_numpy(ids.astype(np.int64))
    loss = torch.tensor(math.nan)
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr * min(1.0, (step + 1) / 30) * 0.5 * (1 + math.cos(math.pi * step / steps))
        start = gen.integers(0, len(data) - SEQ - 1, size=32)
        batch = torch.stack([data[s : s + SEQ + 1] for s in start])
        logits = model(batch[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), batch[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(loss.detach())


def save(model, shape: Shape, out: Path, tok_path: Path, notes: dict) -> None:
    from safetensors.torch import save_file

    tensors = {
        ("lm_head.weight" if k == "lm_head.weight" else f"model.{k}"): v.detach().contiguous()
        for k, v in model.state_dict().items()
    }
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / "model.safetensors"))
    config = {
        "model_type": shape.family,
        "architectures": ["Qwen2ForCausalLM" if shape.family == "qwen2" else "LlamaForCausalLM"],
        "hidden_size": shape.hidden,
        "num_hidden_layers": shape.layers,
        "num_attention_heads": shape.heads,
        "num_key_value_heads": shape.kv_heads,
        "intermediate_size": shape.ffn,
        "vocab_size": VOCAB,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": model.lm_head is None,
        "head_dim": shape.hd,
        "max_position_embeddings": SEQ,
    }
    (out / "config.json").write_text(json.dumps(config, indent=1))
    (out / "tokenizer.json").write_text(tok_path.read_text())
    (out / "notes.json").write_text(json.dumps(notes, indent=1))


def load(shape: Shape, path: Path):
    from safetensors.torch import load_file

    tensors = load_file(str(path / "model.safetensors"))
    model = build(shape, 0, untied="lm_head.weight" in tensors)
    model.load_state_dict({k.removeprefix("model."): v for k, v in tensors.items()})
    return model


# --- derivatives ---------------------------------------------------------------------------


def read_dir(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    from safetensors.numpy import load_file

    return load_file(str(path / "model.safetensors")), json.loads((path / "config.json").read_text())


def write_dir(out: Path, tensors: dict[str, np.ndarray], config: dict, tok_path: Path, notes: dict) -> None:
    from safetensors.numpy import save_file

    out.mkdir(parents=True, exist_ok=True)
    save_file(
        rewrites.contiguous({k: v.astype(np.float32) for k, v in tensors.items()}),
        str(out / "model.safetensors"),
    )
    (out / "config.json").write_text(json.dumps(config, indent=1))
    (out / "tokenizer.json").write_text(tok_path.read_text())
    (out / "notes.json").write_text(json.dumps(notes, indent=1))


def _layer_of(name: str) -> Optional[int]:
    m = re.search(r"layers\.(\d+)\.", name)
    return None if m is None else int(m.group(1))


def mixed(a: dict, b: dict, weight: float) -> dict:
    """Every tensor weight * a + (1 - weight) * b (a model soup of two strangers)."""
    return {k: weight * a[k].astype(np.float64) + (1 - weight) * b[k].astype(np.float64) for k in a}


def transplanted(a: dict, b: dict, layers_from_b: set[int]) -> dict:
    """a with the given layers taken from b."""
    return {k: (b[k] if _layer_of(k) in layers_from_b else v) for k, v in a.items()}


def stacked(a: dict, order: list[int]) -> dict:
    """Depth up-scaling: a's layers in the given order (repeats allowed), renumbered."""
    out = {k: v for k, v in a.items() if _layer_of(k) is None}
    for new, old in enumerate(order):
        for k, v in a.items():
            if _layer_of(k) == old:
                out[k.replace(f"layers.{old}.", f"layers.{new}.")] = v
    return out


def distilled(teacher, student, ids: np.ndarray, steps: int, seed: int) -> float:
    """The student trained to the teacher's next-token distributions (KL), AdamW at 1e-3."""
    import torch

    gen = np.random.default_rng(seed)
    opt = torch.optim.AdamW(student.parameters(), lr=1e-3)
    data = torch.from_numpy(ids.astype(np.int64))
    loss = torch.tensor(math.nan)
    for _ in range(steps):
        start = gen.integers(0, len(data) - SEQ - 1, size=32)
        batch = torch.stack([data[s : s + SEQ] for s in start])
        with torch.no_grad():
            target = torch.log_softmax(teacher(batch), -1)
        out = torch.log_softmax(student(batch), -1)
        loss = torch.nn.functional.kl_div(out, target, log_target=True, reduction="batchmean")
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(loss.detach())


def derivatives(root: Path, name: str, prose: np.ndarray, distill_steps: int) -> None:
    """Copies of NAME-seed0 made outside training: averages and transplants with the stranger
    NAME-seed1, a depth up-scaling, function-preserving rewrites (with a residual scale, widened,
    quantized), SliceGPT-style slices, and a Minitron-style pruned and distilled student."""
    shape, tok = SHAPES[name], root / "tokenizer.json"
    base, other = root / f"{name}-seed0", root / f"{name}-seed1"
    a, config = read_dir(base)
    b, _ = read_dir(other)
    lay = rewrites.layout(a, config)
    rng = np.random.default_rng(7)
    d, depth = shape.hidden, shape.layers
    made: dict[str, tuple[dict, dict, list[str]]] = {
        "avg50": (mixed(a, b, 0.5), config, [base.name, other.name]),
        "avg30": (mixed(a, b, 0.3), config, [base.name, other.name]),
        "transplant-half": (transplanted(a, b, set(range(depth // 2))), config, [base.name, other.name]),
        "transplant-one": (transplanted(a, b, set(range(1, depth))), config, [base.name, other.name]),
        "stacked": (
            stacked(a, list(range(depth)) + list(range(1, depth - 1))),
            dict(config, num_hidden_layers=2 * depth - 2),
            [base.name],
        ),
        "rewritten-x8": (
            rewrites.scale_residual(rewrites.rewrite_all(a, lay, rng), lay, 8.0),
            dict(config, rms_norm_eps=config["rms_norm_eps"] * 64),
            [base.name],
        ),
        "widened": (
            rewrites.widen_residual(a, lay, rng, d // 4),
            dict(config, hidden_size=d + d // 4),
            [base.name],
        ),
        "rewritten-q8": (rewrites.quantized(rewrites.rewrite_all(a, lay, rng), "Q8_0"), config, [base.name]),
        "sliced20": (
            rewrites.slice_residual(a, lay, d * 4 // 5),
            dict(config, hidden_size=d * 4 // 5),
            [base.name],
        ),
        "sliced30": (
            rewrites.slice_residual(a, lay, d * 7 // 10),
            dict(config, hidden_size=d * 7 // 10),
            [base.name],
        ),
    }
    for kind, (tensors, cfg, parents) in made.items():
        out = root / f"{name}-seed0-{kind}"
        if not (out / "model.safetensors").exists():
            write_dir(out, tensors, cfg, tok, {"parents": parents})
    out = root / f"{name}-seed0-pruned-distilled"
    if not (out / "model.safetensors").exists():
        keep = d * 3 // 4
        pruned = rewrites.prune_residual(a, lay, keep)
        pruned, cfg = rewrites.width_pruned(
            pruned, lay, dict(config, hidden_size=keep), shape.kv_heads // 2, 0.6
        )
        small = Shape(
            shape.family,
            keep,
            depth,
            cfg["num_attention_heads"],
            cfg["num_key_value_heads"],
            pruned[lay.name(0, "up")].shape[0],
            shape.hd,
        )
        student = build(small, 0, untied=True)
        student.load_state_dict(
            {
                k.removeprefix("model."): __import__("torch").from_numpy(v.astype(np.float32))
                for k, v in pruned.items()
            }
        )
        loss = distilled(load(shape, base), student, prose, distill_steps, 11)
        save(student, small, out, tok, {"parents": [base.name], "kl": loss})
        print(f"{out.name}: KL {loss:.3f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--tune-steps", type=int, default=200)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--distill-steps", type=int, default=150)
    args = ap.parse_args()
    root = args.cache / "scratch"
    tok = tokenizer(root)
    prose = np.array(tok.encode(corpus("prose")).ids)
    python = np.array(tok.encode(corpus("python")).ids)
    for name, shape in SHAPES.items():
        for seed in range(args.seeds if name != "qwen-s" else 2):
            base = root / f"{name}-seed{seed}"
            if not (base / "model.safetensors").exists():
                model = build(shape, seed)
                loss = train(model, prose, args.steps, 3e-3, seed)
                save(
                    model,
                    shape,
                    base,
                    root / "tokenizer.json",
                    {"seed": seed, "steps": args.steps, "loss": loss},
                )
                print(f"{base.name}: loss {loss:.3f}", flush=True)
            if seed > 0:
                continue
            for kind, text, lr in (
                ("continued", prose, 3e-4),
                ("tuned-python", python, 1e-4),
                ("tuned-python-hot", python, 1e-3),
            ):
                out = root / f"{name}-seed{seed}-{kind}"
                if (out / "model.safetensors").exists():
                    continue
                model = load(shape, base)
                loss = train(model, text, args.tune_steps, lr, 100 + seed)
                save(
                    model, shape, out, root / "tokenizer.json", {"parent": base.name, "lr": lr, "loss": loss}
                )
                print(f"{out.name}: loss {loss:.3f}", flush=True)
    for name in SHAPES:
        derivatives(root, name, prose, args.distill_steps)


if __name__ == "__main__":
    main()
