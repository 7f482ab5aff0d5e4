"""The lineage evaluation across widths, vocabularies and training runs: every model scratch.py
trained (strangers of several seeds and shapes, their fine-tunes, averages, transplants,
stackings, rewritten, widened, sliced and pruned-and-distilled copies), the real checkpoints of
docs/REAL_MODELS.md and copies of them made here. Each derivative is compared with each of its
parents, and every pair of models with no common ancestor is a negative.

Usage: python experiments/scratch.py && python experiments/lineage.py
Writes experiments/results/lineage/: fingerprints/*.json, labels.json, pairs.json, summary.json
and REPORT.md (per class: verdicts, ROC AUC, TPR at FPR <= 1%, z-scores; the token null).
"""

from __future__ import annotations

import itertools
import json
import math
import sys
from pathlib import Path

import numpy as np

import weightprint_fast as wf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from derivatives import CACHE, real_models, rewrites, save_dir

OUT = Path(__file__).resolve().parent / "results" / "lineage"


# --- real checkpoints and copies of them ------------------------------------------------------


def gguf_as_safetensors(gguf_path: Path, out: Path, config: dict) -> Path:
    """Every tensor of a GGUF file dequantized to float32 under its GGUF name, with a
    tokenizer.json holding the GGUF vocabulary (the reader's other source of token strings)."""
    if (out / "model.safetensors").exists():
        return out
    import gguf

    r = gguf.GGUFReader(str(gguf_path))
    tensors = {
        t.name: np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32) for t in r.tensors
    }
    field = r.fields["tokenizer.ggml.tokens"]
    tokens = [bytes(field.parts[i]).decode("utf-8", "replace") for i in field.data]
    save_dir(out, tensors, config)
    vocab = {t: i for i, t in reversed(list(enumerate(tokens)))}
    (out / "tokenizer.json").write_text(json.dumps({"model": {"type": "BPE", "vocab": vocab}}))
    return out


def real_derivatives(root: Path) -> dict[str, tuple[Path, list[str], str]]:
    """name -> (path, parents, kind) of the real checkpoints and the copies made of them."""
    smol_cfg = {
        "model_type": "llama",
        "num_attention_heads": 9,
        "num_key_value_heads": 3,
        "hidden_size": 576,
        "rms_norm_eps": 1e-5,
    }
    gemma_cfg = {"model_type": "gemma3", "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 256}
    smol = gguf_as_safetensors(real_models.smollm2_gguf(), root / "smollm2-f32", smol_cfg)
    gemma = gguf_as_safetensors(real_models.gemma3_gguf(), root / "gemma3-f32", gemma_cfg)
    models: dict[str, tuple[Path, list[str], str]] = {
        "smollm2-q4_1": (real_models.smollm2_gguf(), [], "base"),
        "smollm2-f32": (smol, ["smollm2-q4_1"], "dequantized"),
        "gemma3-q4_k_m": (real_models.gemma3_gguf(), [], "base"),
        "gemma3-f32": (gemma, ["gemma3-q4_k_m"], "dequantized"),
        "minilm": (real_models.minilm(), [], "base"),
        "embeddinggemma": (real_models.embeddinggemma(), [], "base"),
    }
    rng = np.random.default_rng(3)
    for base, cfg, path in (("smollm2-f32", smol_cfg, smol), ("gemma3-f32", gemma_cfg, gemma)):
        from safetensors.numpy import load_file

        t = load_file(str(path / "model.safetensors"))
        lay = rewrites.layout(t, cfg)
        d = t[lay.name(0, "q")].shape[1]
        copies = {
            "noised-1pct": (rewrites.noised(t, rng, 0.01), cfg),
            "q8_0": (rewrites.quantized(t, "Q8_0"), cfg),
            "width-pruned": rewrites.width_pruned(t, lay, cfg, max(1, lay.kv_heads - 1), 0.75),
        }
        if lay.sandwich:
            copies["layers-scaled"] = (rewrites.scale_layers(t, lay, rng), cfg)
        else:
            copies["rewritten-x8"] = (
                rewrites.scale_residual(rewrites.rewrite_all(t, lay, rng), lay, 8.0),
                dict(cfg, rms_norm_eps=cfg["rms_norm_eps"] * 64),
            )
            copies["widened"] = (
                rewrites.widen_residual(t, lay, rng, d // 4),
                dict(cfg, hidden_size=d + d // 4),
            )
            for kind, keep in (("sliced20", d * 4 // 5), ("sliced30", d * 7 // 10)):
                copies[kind] = (rewrites.slice_residual(t, lay, keep), dict(cfg, hidden_size=keep))
        for kind, (tensors, c) in copies.items():
            name = f"{base.split('-')[0]}-{kind}"
            out = root / name
            if not (out / "model.safetensors").exists():
                save_dir(out, rewrites.contiguous(tensors), c)
                (out / "tokenizer.json").write_text((path / "tokenizer.json").read_text())
            models[name] = (out, [base], kind)
    return models


# --- scratch models ---------------------------------------------------------------------------

SCRATCH_KINDS = {
    "continued": "fine-tune (same text, lr 3e-4)",
    "tuned-python": "fine-tune (Python, lr 1e-4)",
    "tuned-python-hot": "fine-tune (Python, lr 1e-3)",
    "avg50": "average 50/50 with a stranger",
    "avg30": "average 30/70 with a stranger",
    "transplant-half": "transplant: half the layers from a stranger",
    "transplant-one": "transplant: all but layer 0 from a stranger",
    "stacked": "layer stacking (depth up-scaling)",
    "rewritten-x8": "rewritten, residual x8",
    "rewritten-q8": "rewritten + Q8_0",
    "widened": "widened by 25%, rotated",
    "sliced20": "sliced: 20% of the residual deleted",
    "sliced30": "sliced: 30% of the residual deleted",
    "pruned-distilled": "hidden, heads, neurons pruned + distilled",
}


def scratch_models(root: Path) -> dict[str, tuple[Path, list[str], str]]:
    models = {}
    for d in sorted(p for p in root.iterdir() if (p / "notes.json").exists()):
        notes = json.loads((d / "notes.json").read_text())
        parents = notes.get("parents") or ([notes["parent"]] if "parent" in notes else [])
        kind = next((v for k, v in SCRATCH_KINDS.items() if d.name.endswith("-" + k)), "trained from scratch")
        models[d.name] = (d, parents, kind)
    return models


# --- the evaluation ---------------------------------------------------------------------------


def roots(name: str, labels: dict) -> set[str]:
    parents = labels[name]["parents"]
    return {name} if not parents else set().union(*(roots(p, labels) for p in parents))


def share(child: str, parent: str) -> str:
    """How much of the parent the child holds, where the construction says (averages)."""
    if child.endswith("-avg30"):
        return " (parent's share 30%)" if parent.endswith("seed0") else " (parent's share 70%)"
    if "transplant" in child:
        return " (the embedding's parent)" if parent.endswith("seed0") else " (under a foreign embedding)"
    return ""


def pair_class(a: str, b: str, labels: dict) -> tuple[str, bool]:
    """(class, related) of a pair of models without a common ancestor, or of a child and parent."""
    la, lb = labels[a], labels[b]
    if b in la["parents"]:
        return la["kind"] + share(a, b), True
    if a in lb["parents"]:
        return lb["kind"] + share(b, a), True
    shape = lambda n: n.split("-seed")[0]  # noqa: E731
    scratch = [la["source"] == "scratch", lb["source"] == "scratch"]
    if all(scratch):
        return (
            "strangers: same shape, data, tokenizer" if shape(a) == shape(b) else "strangers: other shape"
        ), False
    if any(scratch):
        return "scratch vs real", False
    if {a, b} <= {"gemma3-q4_k_m", "gemma3-f32", "embeddinggemma"} or (
        "embeddinggemma" in (a, b) and "gemma3" in a + b
    ):
        return "siblings: EmbeddingGemma / Gemma 3", False
    return "real: different families", False


def auc(pos: list[float], neg: list[float]) -> float:
    if not pos or not neg:
        return math.nan
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def main() -> None:
    fps_dir = OUT / "fingerprints"
    fps_dir.mkdir(parents=True, exist_ok=True)
    models = {**real_derivatives(CACHE / "real"), **scratch_models(CACHE / "scratch")}
    labels, fps = {}, {}
    for name, (path, parents, kind) in models.items():
        labels[name] = {
            "parents": parents,
            "kind": kind,
            "source": "scratch" if CACHE / "scratch" in path.parents else "real",
        }
        out = fps_dir / f"{name}.json"
        if not out.exists():
            wf.fingerprint(path, progress=False).renamed(name).save(out)
        fps[name] = wf.Fingerprint.load(out)
        print(f"{name}: {fps[name].meta.get('elapsed_seconds', 0):.1f} s", flush=True)
    pairs = []
    for a, b in itertools.combinations(sorted(fps), 2):
        related_by_root = bool(roots(a, labels) & roots(b, labels))
        direct = b in labels[a]["parents"] or a in labels[b]["parents"]
        if related_by_root and not direct:
            continue  # two copies of one model: not a question the evaluation asks
        cls, related = pair_class(a, b, labels)
        c = wf.compare(fps[a], fps[b])
        parent = b if b in labels[a]["parents"] else (a if a in labels[b]["parents"] else None)
        pairs.append({"a": a, "b": b, "class": cls, "related": related, "true_parent": parent, **c.to_dict()})
    negatives = [
        p["token_correlation"] for p in pairs if not p["related"] and p["token_correlation"] is not None
    ]
    cut = float(np.quantile(negatives, 0.99))
    summary: dict = {
        "pairs": len(pairs),
        "token_null": {
            "pairs": len(negatives),
            "mean": float(np.mean(negatives)),
            "std": float(np.std(negatives)),
            "q99": cut,
            "max": max(negatives),
        },
        "classes": {},
    }
    for cls in sorted({p["class"] for p in pairs}):
        rows = [p for p in pairs if p["class"] == cls]
        related = rows[0]["related"]
        r = [p["token_correlation"] for p in rows if p["token_correlation"] is not None]
        verdicts: dict[str, int] = {}
        for p in rows:
            verdicts[p["verdict"]] = verdicts.get(p["verdict"], 0) + 1
        summary["classes"][cls] = {
            "related": related,
            "pairs": len(rows),
            "verdicts": verdicts,
            "token_r": [min(r), float(np.median(r)), max(r)] if r else None,
            "token_z": [min(p["token_z"] for p in rows if p["token_z"] is not None)] if r else None,
            "sketch_cosine": float(np.median(s))
            if (s := [p["sketch_cosine"] for p in rows if p["sketch_cosine"] is not None])
            else None,
            "auc": auc(r, negatives) if related else None,
            "tpr_at_fpr_1pct": (sum(x > cut for x in r) / len(r)) if related and r else None,
            "wrong": [
                (p["a"], p["b"], p["verdict"])
                for p in rows
                if (related and p["verdict"] == "unrelated")
                or (not related and p["verdict"] in ("same-model", "same-family/derived"))
            ],
        }
    (OUT / "labels.json").write_text(json.dumps(labels, indent=1))
    (OUT / "pairs.json").write_text(json.dumps(pairs, indent=1))
    (OUT / "summary.json").write_text(json.dumps(summary, indent=1))
    (OUT / "REPORT.md").write_text(report(summary))
    print(report(summary))


def report(s: dict) -> str:
    n = s["token_null"]
    lines = [
        "# Lineage across widths and training runs (experiments/lineage.py)",
        "",
        f"{s['pairs']} pairs: each derivative with each parent, every two models without a common ancestor. "
        f"Token null (independent pairs): {n['pairs']} pairs, r = {n['mean']:.3f} +- {n['std']:.3f}, "
        f"99th percentile {n['q99']:.3f}, max {n['max']:.3f}. Token r: the median matched-layer "
        "correlation of the token probes; min z: the class's lowest r against that null; sketch cos: the "
        "median weight-sketch cosine (equal shapes only; 0 +- 1/16 without shared coordinates); AUC and "
        "TPR at FPR 1% of token r against every independent pair; wrong: derivatives called unrelated, "
        "or independent pairs called related.",
        "",
        "| class | related | pairs | verdicts | token r (min / median / max) | min z | sketch cos | AUC "
        "| TPR @ FPR 1% | wrong |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for cls, c in s["classes"].items():
        r = "-" if c["token_r"] is None else " / ".join(f"{x:.3f}" for x in c["token_r"])
        z = "-" if c["token_z"] is None else f"{c['token_z'][0]:.1f}"
        fmt = lambda x: "-" if x is None else f"{x:.3f}"  # noqa: E731
        verdicts = ", ".join(f"{k} {v}" for k, v in sorted(c["verdicts"].items()))
        lines.append(
            f"| {cls} | {'yes' if c['related'] else 'no'} | {c['pairs']} | {verdicts} | {r} | {z} | "
            f"{fmt(c['sketch_cosine'])} | {fmt(c['auc'])} | {fmt(c['tpr_at_fpr_1pct'])} | {len(c['wrong'])} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
