"""Derivatives of the real checkpoints, made here: LoRA fine-tunes (adapter + merged), precision
round trips, truncated, permuted and freshly initialised copies, and rewritten copies (the same
function with other weights) alone and composed with quantization, noise and pruning.

Usage: python experiments/derivatives.py [--cache DIR] [--steps-smollm 100] [--steps-minilm 100]
Everything is written under the cache (default ~/.cache/weightprint-fast/experiments), never into
git; a model already there is not rebuilt. Needs: torch, transformers, peft, gguf, safetensors.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import real_models
import rewrites  # noqa: F401  (function-preserving rewrites, shared with the tests)

CACHE = Path(
    os.environ.get("WEIGHTPRINT_EXPERIMENTS", Path.home() / ".cache" / "weightprint-fast" / "experiments")
)


# --- corpora --------------------------------------------------------------------------------


def corpus(kind: str, limit: int = 400_000) -> str:
    """``python``: source files of the standard library; ``prose``: English licence and doc texts."""
    if kind == "python":
        import logging

        files = sorted(glob.glob(os.path.join(os.path.dirname(logging.__file__), "..", "*.py")))
    else:
        files = sorted(glob.glob("/usr/share/common-licenses/*")) + sorted(
            glob.glob("/usr/share/doc/*/copyright")
        )
    text, size = [], 0
    for f in files:
        try:
            t = Path(f).read_text(encoding="utf-8", errors="ignore")
        except (OSError, IsADirectoryError):
            continue
        text.append(t)
        size += len(t)
        if size > limit:
            break
    return "\n".join(text)[:limit]


# --- safetensors helpers --------------------------------------------------------------------


def load_dir(d: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    out = {}
    for f in sorted(d.glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


def save_dir(d: Path, tensors: dict[str, np.ndarray], config: dict | None = None) -> Path:
    from safetensors.numpy import save_file

    d.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(d / "model.safetensors"))
    if config is not None:
        (d / "config.json").write_text(json.dumps(config))
    return d


# --- bases as safetensors -------------------------------------------------------------------


def smollm2_base(out: Path) -> Path:
    """SmolLM2-135M dequantized from its Q4_1 GGUF by transformers (which also undoes llama.cpp's
    q/k row permutation), saved as float32 safetensors with its tokenizer."""
    d = out / "smollm2-f32"
    if (d / "config.json").exists():
        return d
    from transformers import AutoModelForCausalLM, AutoTokenizer

    g = real_models.smollm2_gguf()
    model = AutoModelForCausalLM.from_pretrained(str(g.parent), gguf_file=g.name, torch_dtype="float32")
    tok = AutoTokenizer.from_pretrained(str(g.parent), gguf_file=g.name)
    # transformers marks GGUF-loaded models as quantized and will not save them: write the
    # (already dequantized) weights and the config without its quantization entry.
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    state = {k: v.detach().float().contiguous().numpy() for k, v in model.state_dict().items()}
    save_dir(d, state, config)
    tok.save_pretrained(str(d))
    return d


def gemma3_f32(out: Path) -> Path:
    """Gemma-3-270M's layer tensors (projections and norms) dequantized from Q4_K_M, kept under
    their GGUF names."""
    d = out / "gemma3-f32"
    if (d / "model.safetensors").exists():
        return d
    import gguf

    r = gguf.GGUFReader(str(real_models.gemma3_gguf()))
    tensors = {}
    for t in r.tensors:
        # Norm weights (1-D) too: the lineage invariants fold them into the projections.
        if t.name.startswith("blk.") and t.name.endswith(".weight"):
            tensors[t.name] = np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32)
    return save_dir(
        d,
        tensors,
        {"model_type": "gemma3", "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 256},
    )


# --- weight-level derivatives ---------------------------------------------------------------


def roundtrip(src: Path, out: Path, qtype: str) -> Path:
    """Every 2-D projection quantized to a GGUF block format (or cast) and back to float32."""
    d = out / f"{src.name.removesuffix('-f32')}-{qtype.lower()}"
    if (d / "model.safetensors").exists():
        return d
    import gguf

    t = getattr(gguf.GGMLQuantizationType, qtype)
    tensors = {}
    for k, v in load_dir(src).items():
        if v.ndim == 2 and v.shape[1] % 32 == 0 and "embed" not in k and "embd" not in k:
            v = np.asarray(
                gguf.quants.dequantize(gguf.quants.quantize(v.astype(np.float32), t), t), np.float32
            )
        tensors[k] = v
    cfg = json.loads((src / "config.json").read_text()) if (src / "config.json").exists() else None
    return save_dir(d, tensors, cfg)


def truncated(src: Path, out: Path, keep: int) -> Path:
    """The first `keep` layers only."""
    import re

    d = out / f"{src.name.removesuffix('-f32')}-first{keep}"
    if (d / "model.safetensors").exists():
        return d
    layer = re.compile(r"(?:layers|layer|blk)\.(\d+)\.")
    tensors = {k: v for k, v in load_dir(src).items() if not (m := layer.search(k)) or int(m.group(1)) < keep}
    cfg = json.loads((src / "config.json").read_text()) if (src / "config.json").exists() else None
    return save_dir(d, tensors, cfg)


def head_rows(order, head_dim: int) -> np.ndarray:
    """Row indices that put attention heads in the given order."""
    return np.concatenate([np.arange(h * head_dim, (h + 1) * head_dim) for h in order])


def permute_neurons(w: dict, rows_of: list[str], cols_of: str, rng: np.random.Generator) -> None:
    """Reorders an MLP's hidden neurons: rows of its input projections (and biases), columns of
    its output projection."""
    order = rng.permutation(w[rows_of[0]].shape[0])
    for name in rows_of:
        w[name] = w[name][order]
    w[cols_of] = w[cols_of][:, order]


def permuted_llama(src: Path, out: Path, seed: int = 0) -> Path:
    """Same function, reordered weights: MLP neurons and attention heads permuted per layer
    (kv heads with their query groups, query heads within groups, o_proj columns alike)."""
    d = out / "smollm2-permuted"
    if (d / "model.safetensors").exists():
        return d
    cfg = json.loads((src / "config.json").read_text())
    heads, kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg["hidden_size"] // heads
    group = heads // kv
    rng = np.random.default_rng(seed)
    w = load_dir(src)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        permute_neurons(
            w, [p + "mlp.up_proj.weight", p + "mlp.gate_proj.weight"], p + "mlp.down_proj.weight", rng
        )
        kv_order = rng.permutation(kv)
        q_order = [g * group + h for g in kv_order for h in rng.permutation(group)]
        q_rows, kv_rows = head_rows(q_order, hd), head_rows(kv_order, hd)
        w[p + "self_attn.q_proj.weight"] = w[p + "self_attn.q_proj.weight"][q_rows]
        w[p + "self_attn.k_proj.weight"] = w[p + "self_attn.k_proj.weight"][kv_rows]
        w[p + "self_attn.v_proj.weight"] = w[p + "self_attn.v_proj.weight"][kv_rows]
        w[p + "self_attn.o_proj.weight"] = w[p + "self_attn.o_proj.weight"][:, q_rows]
    return save_dir(d, w, cfg)


def permuted_bert(src: Path, out: Path, seed: int = 0) -> Path:
    d = out / "minilm-permuted"
    if (d / "model.safetensors").exists():
        return d
    cfg = json.loads((src / "config.json").read_text())
    heads, hd = cfg["num_attention_heads"], cfg["hidden_size"] // cfg["num_attention_heads"]
    rng = np.random.default_rng(seed)
    w = load_dir(src)
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        permute_neurons(
            w,
            [p + "intermediate.dense.weight", p + "intermediate.dense.bias"],
            p + "output.dense.weight",
            rng,
        )
        rows = head_rows(rng.permutation(heads), hd)
        for name in ("query", "key", "value"):
            w[p + f"attention.self.{name}.weight"] = w[p + f"attention.self.{name}.weight"][rows]
            w[p + f"attention.self.{name}.bias"] = w[p + f"attention.self.{name}.bias"][rows]
        w[p + "attention.output.dense.weight"] = w[p + "attention.output.dense.weight"][:, rows]
    return save_dir(d, w, cfg)


def fresh(src: Path, out: Path, name: str, std: float = 0.02, seed: int = 1) -> Path:
    """Same shapes, freshly initialised N(0, std) weights (the usual Transformer initialisation)."""
    d = out / name
    if (d / "model.safetensors").exists():
        return d
    rng = np.random.default_rng(seed)
    tensors = {
        k: (rng.standard_normal(v.shape) * std).astype(np.float32) if v.ndim == 2 else v
        for k, v in load_dir(src).items()
    }
    cfg = json.loads((src / "config.json").read_text()) if (src / "config.json").exists() else None
    return save_dir(d, tensors, cfg)


# --- LoRA fine-tunes ------------------------------------------------------------------------


def lora_finetune(
    kind: str, base: Path, out: Path, text: str, corpus_name: str, rank: int, steps: int, seed: int = 0
) -> tuple[Path, Path]:
    """A PEFT LoRA fine-tune on one corpus (causal LM for SmolLM2, masked LM for MiniLM); returns
    (adapter directory, merged model directory)."""
    name = f"{base.name.removesuffix('-f32')}-lora-{corpus_name}-r{rank}"
    adapter, merged = out / name, out / f"{name}-merged"
    if (merged / "config.json").exists() and (adapter / "adapter_config.json").exists():
        return adapter, merged
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    if kind == "causal":
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(base))
        model = AutoModelForCausalLM.from_pretrained(str(base), torch_dtype=torch.float32)
        targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        seq, batch, lr = 64, 4, 1e-3
    else:
        from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

        tok = AutoTokenizer.from_pretrained(str(base))
        cfg = BertConfig.from_pretrained(str(base))
        model = BertForMaskedLM(cfg)
        state = {f"bert.{k}": torch.from_numpy(v) for k, v in load_dir(base).items()}
        model.load_state_dict(state, strict=False)
        targets = ["query", "key", "value", "dense"]
        seq, batch, lr = 64, 4, 1e-3
    lcfg = LoraConfig(
        r=rank,
        lora_alpha=2 * rank,
        target_modules=targets,
        lora_dropout=0.0,
        bias="none",
        task_type="CAUSAL_LM" if kind == "causal" else None,
    )
    model = get_peft_model(model, lcfg)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    ids = torch.tensor(
        tok(text, return_tensors=None, truncation=False)["input_ids"][:200_000], dtype=torch.long
    )
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        starts = torch.randint(0, len(ids) - seq - 1, (batch,), generator=gen)
        x = torch.stack([ids[s : s + seq] for s in starts])
        if kind == "causal":
            loss = model(input_ids=x, labels=x).loss
        else:
            labels = x.clone()
            mask = torch.rand(x.shape, generator=gen) < 0.15
            labels[~mask] = -100
            inp = x.clone()
            inp[mask] = tok.mask_token_id
            loss = model(input_ids=inp, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.save_pretrained(str(adapter))
    merged_model = model.merge_and_unload()
    if kind == "causal":
        merged_model.save_pretrained(str(merged), safe_serialization=True)
    else:
        state = {
            k.removeprefix("bert."): v.detach().numpy()
            for k, v in merged_model.state_dict().items()
            if k.startswith("bert.")
        }
        save_dir(merged, state, json.loads((base / "config.json").read_text()))
    (adapter / "final_loss.txt").write_text(f"{float(loss):.4f}\n")
    return adapter, merged


# --- function-preserving rewrites and what a copier does on top (tests/rewrites.py) ----------


def fresh_init(src: Path, out: Path, name: str, seed: int) -> Path:
    """An untrained model of the same shapes as it is initialised for training: N(0, 0.02)
    matrices, norm weights one, biases zero (nothing of the source's values kept)."""
    d = out / name
    if (d / "model.safetensors").exists():
        return d
    rng = np.random.default_rng(seed)
    tensors = {
        k: (rng.standard_normal(v.shape) * 0.02).astype(np.float32)
        if v.ndim == 2
        else (np.ones_like(v) if "norm" in k.lower() and k.endswith("weight") else np.zeros_like(v))
        for k, v in load_dir(src).items()
    }
    return save_dir(d, tensors, json.loads((src / "config.json").read_text()))


def rewritten(src: Path, out: Path, prefix: str, seed: int = 0) -> dict[str, Path]:
    """Rewritten copies of one model: each function-preserving rewrite alone, all composed, and
    all composed with a Q8_0 or Q4_0 round trip (before or after), 1% noise, width pruning and
    dropped layers."""
    import rewrites as rw

    cfg = json.loads((src / "config.json").read_text())
    made: dict[str, Path] = {}
    todo = [
        f"{prefix}-rw-{n}"
        for n in [
            *list(rw.REWRITES),
            "all-q8_0",
            "all-q4_0",
            "q4_0-all",
            "all-noise1pct",
            "pruned",
            "pruned-all",
            "dropped-all",
        ]
    ]
    if all((out / n / "model.safetensors").exists() for n in todo):
        return {n: out / n for n in todo}
    base = load_dir(src)
    lay = rw.layout(base, cfg)
    for i, (name, rewrite) in enumerate(rw.REWRITES.items()):
        made[f"{prefix}-rw-{name}"] = save_dir(
            out / f"{prefix}-rw-{name}", rewrite(base, lay, np.random.default_rng(seed + i)), cfg
        )
    rng = np.random.default_rng(seed + 100)
    every = rw.rewrite_all(base, lay, rng)
    derived = {
        "all-q8_0": (rw.quantized(every, "Q8_0"), cfg),
        "all-q4_0": (rw.quantized(every, "Q4_0"), cfg),
        "q4_0-all": (rw.rewrite_all(rw.quantized(base, "Q4_0"), lay, rng), cfg),
        "all-noise1pct": (rw.noised(every, rng), cfg),
    }
    pruned, pruned_cfg = rw.width_pruned(base, lay, cfg, max(1, (2 * lay.kv_heads) // 3), 0.75)
    derived["pruned"] = (pruned, pruned_cfg)
    derived["pruned-all"] = (rw.rewrite_all(pruned, rw.layout(pruned, pruned_cfg), rng), pruned_cfg)
    middle = [lay.layers // 2 - 1, lay.layers // 2]
    dropped = rw.layers_dropped(base, middle)
    dropped_cfg = dict(cfg, num_hidden_layers=lay.layers - len(middle))
    derived["dropped-all"] = (rw.rewrite_all(dropped, rw.layout(dropped, dropped_cfg), rng), dropped_cfg)
    for name, (tensors, c) in derived.items():
        made[f"{prefix}-rw-{name}"] = save_dir(out / f"{prefix}-rw-{name}", tensors, c)
    return made


def build_all(cache: Path, steps_smollm: int, steps_minilm: int) -> dict[str, Path]:
    cache.mkdir(parents=True, exist_ok=True)
    m: dict[str, Path] = {
        "smollm2-q4_1.gguf": real_models.smollm2_gguf(),
        "gemma3-q4_k_m.gguf": real_models.gemma3_gguf(),
        "minilm": real_models.minilm(),
        "minilm-copy": real_models.minilm_copy(),
    }
    smol = m["smollm2-f32"] = smollm2_base(cache)
    gem = m["gemma3-f32"] = gemma3_f32(cache)
    mini = m["minilm"]
    for q in ("Q8_0", "Q4_0", "F16"):
        m[f"smollm2-{q.lower()}"] = roundtrip(smol, cache, q)
    m["gemma3-q8_0"] = roundtrip(gem, cache, "Q8_0")
    m["minilm-f16"] = roundtrip(mini, cache, "F16")
    m["minilm-q8_0"] = roundtrip(mini, cache, "Q8_0")
    m["smollm2-first20"] = truncated(smol, cache, 20)
    m["minilm-first4"] = truncated(mini, cache, 4)
    m["smollm2-permuted"] = permuted_llama(smol, cache)
    m["minilm-permuted"] = permuted_bert(mini, cache)
    m["smollm2-fresh"] = fresh(smol, cache, "smollm2-fresh")
    m["minilm-fresh"] = fresh(mini, cache, "minilm-fresh", seed=2)
    texts = {"python": corpus("python"), "prose": corpus("prose")}
    for corpus_name, text in texts.items():
        for rank in (16, 64):
            a, mg = lora_finetune("causal", smol, cache, text, corpus_name, rank, steps_smollm)
            m[a.name], m[mg.name] = a, mg
            a, mg = lora_finetune("masked", mini, cache, text, corpus_name, rank, steps_minilm)
            m[a.name], m[mg.name] = a, mg
    for prefix, src in (
        ("smollm2", smol),
        ("gemma3", gem),
        ("minilm", mini),
        ("smollm2-lora-python-r64-merged", m["smollm2-lora-python-r64-merged"]),
        ("minilm-l6-lora-python-r64-merged", m["minilm-l6-lora-python-r64-merged"]),
    ):
        m.update(rewritten(src, cache, prefix))
    for prefix, src in (("smollm2", smol), ("gemma3", gem), ("minilm", mini)):
        for seed in (11, 12):
            name = f"{prefix}-fresh-init{seed - 10}"
            m[name] = fresh_init(src, cache, name, seed)
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--steps-smollm", type=int, default=100)
    ap.add_argument("--steps-minilm", type=int, default=100)
    args = ap.parse_args()
    models = build_all(args.cache, args.steps_smollm, args.steps_minilm)
    (args.cache / "models.json").write_text(json.dumps({k: str(v) for k, v in models.items()}, indent=1))
    for k, v in models.items():
        print(f"{k:32s} {v}")


if __name__ == "__main__":
    main()
