"""Where a layer's time goes: per matrix type and per phase, from the engine's own timers.

Writes (or reuses) one Llama-3-70B-shaped bf16 layer (make_checkpoint.py: low-rank plus noise,
like trained weights), plans it as `fingerprint` does (lineage invariants included) and runs it
through the engine once, then reports for every matrix the wall time of its job and how it
splits: the moments pass, the Krylov products (where the matrix is read and decoded), basis
orthogonalization, the projection's new columns, Rayleigh-Ritz checks with the certificate, the
exact method's Gram matrix and eigensolver (fallbacks marked), the Gram blocks of the
invariants, and what is left (scheduling, page-ins, idle threads).

Usage: python bench/bench_breakdown.py [--preset llama3-70b] [--threads N] [--method auto]
"""

from __future__ import annotations

import argparse
import platform
import time
from collections import defaultdict
from pathlib import Path

import weightprint_fast as wf
from common import cores
from make_checkpoint import write_checkpoint
from weightprint_fast.engine.analyse import analyse
from weightprint_fast.readers.tensor_files import plan_checkpoint

PHASES = (
    "moments",
    "products",
    "orthogonalization",
    "projection",
    "checks",
    "exact gram",
    "exact certificate",
    "exact eigen",
    "gram blocks",
    "other",
)


def phases_of(r) -> dict[str, float]:
    p = r.svd.phases if r.svd is not None else None
    out = {
        "moments": r.stats_seconds,
        "products": p.products if p else 0.0,
        "orthogonalization": p.orthogonalization if p else 0.0,
        "projection": p.projection if p else 0.0,
        "checks": p.checks if p else 0.0,
        "exact gram": p.gram if p else 0.0,
        "exact certificate": p.certificate if p else 0.0,
        "exact eigen": p.eigen if p else 0.0,
        "gram blocks": r.gram_seconds,
    }
    out["other"] = max(0.0, r.seconds - sum(out.values()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="llama3-70b")
    ap.add_argument("--threads", type=int, default=cores())
    ap.add_argument("--method", default="auto")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/wpf-breakdown"))
    args = ap.parse_args()
    root = args.dir / args.preset
    if not (root / "config.json").is_file():
        write_checkpoint(root, 1, args.preset)
    settings = wf.Settings(method=args.method, threads=args.threads)
    cp = plan_checkpoint(root, settings)
    t = time.perf_counter()
    results = analyse(cp.shards, cp.windows, threads=args.threads, method=args.method, tol=settings.tol)
    wall = time.perf_counter() - t

    print(
        f"{args.preset}, 1 layer, bf16, {args.threads} threads, method={args.method}, "
        f"{platform.processor() or platform.machine()}; engine call {wall:.2f} s\n"
    )
    print("| matrix | shape | method | blocks | " + " | ".join(PHASES) + " | job |")
    print("|---" * (len(PHASES) + 5) + "|")
    totals: dict[str, float] = defaultdict(float)
    for (_, part), w, r in zip(cp.parts, cp.windows, results):
        ph = phases_of(r)
        for k, v in ph.items():
            totals[k] += v
        method = r.svd.method + (" (fallback)" if r.svd.phases.fallback else "") if r.svd else "-"
        blocks = r.svd.blocks if r.svd else 0
        print(
            f"| {part.type} | {w.rows}x{w.cols} | {method} | {blocks} | "
            + " | ".join(f"{ph[k]:.2f}" for k in PHASES)
            + f" | {r.seconds:.2f} |"
        )
    total = sum(r.seconds for r in results)
    print("| **all** | | | | " + " | ".join(f"**{totals[k]:.2f}**" for k in PHASES) + f" | **{total:.2f}** |")
    print("\nshares: " + ", ".join(f"{k} {100 * totals[k] / total:.0f}%" for k in PHASES if totals[k] > 0))


if __name__ == "__main__":
    main()
