"""End to end: `weightprint fingerprint` against the fairest torch loop, same checkpoint, same threads.

The torch loop reads each projection with safetensors (framework "pt"), converts it to float32,
and computes its mean, population std and torch.linalg.svdvals in the fast (tall) orientation:
what a user would write instead of this package. Both results are compared: per-type pooled std
and every matrix's top-k singular values.

The fingerprint runs with and without the lineage invariants, so their cost is measured in the
same run.

Usage: python bench/bench_end_to_end.py [--preset llama3-8b] [--layers 2] [--threads N]
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

import weightprint_fast as wf
from common import cores, set_threads
from make_checkpoint import write_checkpoint

TYPES = {
    "q_proj": "q",
    "k_proj": "k",
    "v_proj": "v",
    "o_proj": "o",
    "gate_proj": "gate",
    "up_proj": "up",
    "down_proj": "down",
}


def torch_loop(root: Path, k: int) -> tuple[dict, dict]:
    """Per-type pooled std and per-(layer, type) singular values, the plain torch way."""
    import torch
    from safetensors import safe_open

    pooled: dict[str, list] = {}
    svals = {}
    for shard in sorted(root.glob("model-*.safetensors")):
        with safe_open(str(shard), framework="pt") as f:
            for name in f.keys():  # noqa: SIM118 - safe_open is not iterable
                layer, kind = int(name.split(".")[2]), TYPES[name.split(".")[-2]]
                w = f.get_tensor(name).float()
                std, mean = torch.std_mean(w, correction=0)
                pooled.setdefault(kind, []).append((w.numel(), float(mean), float(std) ** 2 * w.numel()))
                tall = w if w.shape[0] >= w.shape[1] else w.T
                svals[(layer, kind)] = torch.linalg.svdvals(tall)[:k].double().numpy()
    stds = {}
    for kind, parts in pooled.items():
        n = sum(p[0] for p in parts)
        mean = sum(p[0] * p[1] for p in parts) / n
        m2 = sum(p[2] + p[0] * (p[1] - mean) ** 2 for p in parts)
        stds[kind] = math.sqrt(m2 / n)
    return stds, svals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/wpf-e2e"))
    ap.add_argument("--preset", default="llama3-8b")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=cores())
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each auto fingerprint (median reported)")
    args = ap.parse_args()
    set_threads(args.threads)
    root = args.dir / f"{args.preset}-{args.layers}"
    if not (root / "config.json").exists():
        write_checkpoint(root, args.layers, args.preset)
    size = sum(p.stat().st_size for p in root.glob("*.safetensors")) / 1e9
    t = time.perf_counter()
    stds, svals = torch_loop(root, args.k)
    t_torch = time.perf_counter() - t
    print(f"{args.preset}, {args.layers} layers, {size:.1f} GB bf16, threads={args.threads}\n")
    print("| run | seconds | vs torch loop | max rel. diff of type std | max rel. diff of singular values |")
    print("|---|---|---|---|---|")
    print(f"| torch loop (std_mean + svdvals) | {t_torch:.1f} | 1.0x | - | - |")
    seconds = {}
    for method, invariants in (("auto", False), ("auto", True), ("exact", True)):
        times = []
        for _ in range(args.repeat if method == "auto" else 1):
            t = time.perf_counter()
            fp = wf.fingerprint(
                root,
                method=method,
                threads=args.threads,
                top_k=args.k,
                normalize="none",
                progress=False,
                invariants=invariants,
            )
            times.append(time.perf_counter() - t)
        dt = seconds[method, invariants] = float(np.median(times))
        dstd = max(abs(fp.type_stats[kd]["std"] - s) / s for kd, s in stds.items())
        dsv = max(
            float(np.max(np.abs(fp.singular_values[layer, fp.types.index(kd)] - v) / v))
            for (layer, kd), v in svals.items()
        )
        label = f"{method}{'' if invariants else ', no lineage invariants'}"
        print(
            f"| weightprint fingerprint, {label} | {dt:.1f} | {t_torch / dt:.1f}x | {dstd:.1e} | {dsv:.1e} |"
        )
    print(
        f"\nlineage invariants cost (auto): {seconds['auto', True] / seconds['auto', False]:.2f}x "
        "the fingerprint without them"
    )


if __name__ == "__main__":
    main()
