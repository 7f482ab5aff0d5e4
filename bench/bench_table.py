"""Side-by-side benchmark table: the engine against torch, numpy, scipy and scikit-learn, same
thread count, one run, ratios.

Usage:
  python bench/bench_table.py                  # stats + top-16 on 4096x4096 and 4096x11008
  python bench/bench_table.py --llama8b        # the four Llama-3-8B projection shapes
  python bench/bench_table.py --k 64 --skip-torch-svd

torch.linalg.svdvals is given the matrix in its faster orientation (tall), which is the fairest
version of it; torch does not transpose wide matrices by itself. Errors are relative to the
engine's exact method (double-precision Gram + LAPACK), itself checked against LAPACK's full SVD
in the tests.
"""

from __future__ import annotations

import argparse
import platform
import sys

import numpy as np

import weightprint_fast as wf
from common import bf16_bits, cores, median_time, set_threads, test_matrix

SHAPES_DEFAULT = [(4096, 4096), (4096, 11008)]
SHAPES_8B = [(4096, 4096), (1024, 4096), (14336, 4096), (4096, 14336)]


def stats_rows(m: int, n: int, threads: int) -> list[list]:
    import torch

    a = test_matrix("gaussian", m, n) * 0.02
    bits = bf16_bits(a)
    t_bf16 = torch.from_numpy(bits.view(np.int16)).view(torch.bfloat16)
    t_f32 = torch.from_numpy(a)
    rows = []
    # Read ceiling: one pass that only sums the same bytes (reinterpreted as float32).
    for label, raw in (("bf16", bits), ("f32", a)):
        gb = raw.nbytes / 1e9
        flat = torch.from_numpy(raw.reshape(-1).view(np.float32))
        ceiling = gb / min(median_time(lambda: flat.sum()), median_time(lambda: np.add.reduce(raw.reshape(-1).view(np.float32))))
        if label == "bf16":
            ours = gb / median_time(lambda: wf.matrix_stats(bits, dtype="bf16", threads=threads), repeat=7)
            torch_std = gb / median_time(lambda: torch.std(t_bf16))
            np_std = gb / median_time(lambda: (bits.astype(np.uint32) << 16).view(np.float32).std(dtype=np.float64))
        else:
            ours = gb / median_time(lambda: wf.matrix_stats(a, threads=threads), repeat=7)
            torch_std = gb / median_time(lambda: torch.std(t_f32))
            np_std = gb / median_time(lambda: a.std(dtype=np.float64))
        rows.append([f"stats {label} {m}x{n}", f"{ours:.1f} GB/s", f"{ceiling:.1f} GB/s", f"{ours / ceiling:.0%}",
                     f"{torch_std:.2f} GB/s", f"{ours / torch_std:.1f}x", f"{np_std:.2f} GB/s", f"{ours / np_std:.1f}x"])
    return rows


def svd_rows(m: int, n: int, k: int, kind: str, threads: int, skip_torch: bool) -> list[list]:
    import scipy.linalg
    import torch
    from sklearn.utils.extmath import randomized_svd

    a = test_matrix(kind, m, n)
    tall = a if m >= n else a.T
    ref = wf.top_singular_values(a, k, "exact", threads=threads)

    def err(v):
        v = np.asarray(v, dtype=np.float64)[:k]
        return float(np.max(np.abs(v - ref) / ref))

    results = {}
    if not skip_torch:
        ta = torch.from_numpy(np.ascontiguousarray(tall))
        t = median_time(lambda: torch.linalg.svdvals(ta), repeat=1, warmup=0)
        results["torch.linalg.svdvals"] = (t, err(torch.linalg.svdvals(ta).numpy()))
        t = median_time(lambda: scipy.linalg.svdvals(tall, check_finite=False), repeat=1, warmup=0)
        results["scipy.linalg.svdvals"] = (t, err(scipy.linalg.svdvals(tall, check_finite=False)))
    ta = torch.from_numpy(a)
    t = median_time(lambda: torch.svd_lowrank(ta, q=k + 10, niter=7), repeat=3)
    results["torch.svd_lowrank niter=7"] = (t, err(torch.svd_lowrank(ta, q=k + 10, niter=7)[1].numpy()))
    t = median_time(lambda: randomized_svd(a, k, n_oversamples=10, n_iter=7, random_state=0), repeat=3)
    results["sklearn randomized_svd n_iter=7"] = (t, err(randomized_svd(a, k, n_oversamples=10, n_iter=7, random_state=0)[1]))
    for method in wf.METHODS:
        t = median_time(lambda: wf.top_singular_values(a, k, method, threads=threads), repeat=3 if method != "exact" else 1)
        v, info = wf.top_singular_values(a, k, method, threads=threads, details=True)
        results[f"weightprint {method} ({info['method']})"] = (t, err(v))
    base = results.get("torch.linalg.svdvals", (float("nan"),))[0]
    return [[f"top-{k} {kind} {m}x{n}", name, f"{t:.3f} s", f"{base / t:.1f}x" if base == base else "-", f"{e:.1e}"]
            for name, (t, e) in results.items()]


def print_table(headers, rows) -> None:
    print("| " + " | ".join(headers) + " |")
    print("|" + "---|" * len(headers))
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=cores())
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--llama8b", action="store_true", help="the four Llama-3-8B projection shapes")
    ap.add_argument("--kinds", default="gaussian,heavy")
    ap.add_argument("--skip-torch-svd", action="store_true", help="skip the full SVDs (minutes on 2 cores)")
    ap.add_argument("--skip-stats", action="store_true")
    args = ap.parse_args()
    set_threads(args.threads)
    import torch

    print(f"machine: {platform.processor() or platform.machine()}, {cores()} usable cores, threads={args.threads}, "
          f"torch {torch.__version__}, numpy {np.__version__}, python {sys.version.split()[0]}\n")
    shapes = SHAPES_8B if args.llama8b else SHAPES_DEFAULT
    if not args.skip_stats:
        print_table(["pass", "weightprint", "read ceiling", "of ceiling", "torch.std", "vs torch", "numpy std", "vs numpy"],
                    [r for m, n in shapes for r in stats_rows(m, n, args.threads)])
    rows = [r for m, n in shapes for kind in args.kinds.split(",")
            for r in svd_rows(m, n, args.k, kind, args.threads, args.skip_torch_svd)]
    print_table(["matrix", "method", "median time", "vs torch.linalg.svdvals", "max rel. error"], rows)


if __name__ == "__main__":
    main()
