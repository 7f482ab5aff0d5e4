"""Side-by-side benchmark table: the engine against torch, numpy, scipy and scikit-learn, same
thread count, one run, ratios.

Usage:
  python bench/bench_table.py                        # stats + top-16 on 4096x4096 and 4096x11008
  python bench/bench_table.py --shapes 8b            # the four Llama-3-8B projection shapes
  python bench/bench_table.py --shapes 70b --skip-stats --extrapolate-above 100000000
  python bench/bench_table.py --real --skip-stats    # the real checkpoints' matrices (one layer each)
  python bench/bench_table.py --k 64

torch.linalg.svdvals is given the matrix in its faster orientation (tall), which is the fairest
version of it; torch does not transpose wide matrices by itself. Errors are relative to the
engine's exact method (double-precision Gram, certified Krylov or LAPACK), itself checked
against LAPACK's full SVD in the tests. `auto tol=T` rows certify T instead of the default 1e-3.

--extrapolate-above N: full SVDs (torch.linalg.svdvals, scipy) of matrices with more than N
elements are not run; their time is extrapolated from the largest one measured in the same run,
scaled by the flops of a bidiagonalization, 4 m n^2 - 4/3 n^3 (m >= n), and marked as such.
"""

from __future__ import annotations

import argparse
import platform
import sys

import numpy as np

import weightprint_fast as wf
from common import bf16_bits, cores, median_time, set_threads, test_matrix

SHAPES = {
    "default": [(4096, 4096), (4096, 11008)],
    "8b": [(4096, 4096), (1024, 4096), (14336, 4096), (4096, 14336)],
    "70b": [(8192, 8192), (1024, 8192), (28672, 8192), (8192, 28672)],
}


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
        ceiling = gb / min(
            median_time(lambda flat=flat: flat.sum()),
            median_time(lambda raw=raw: np.add.reduce(raw.reshape(-1).view(np.float32))),
        )
        if label == "bf16":
            ours = gb / median_time(lambda: wf.matrix_stats(bits, dtype="bf16", threads=threads), repeat=7)
            torch_std = gb / median_time(lambda: torch.std(t_bf16))
            np_std = gb / median_time(
                lambda: (bits.astype(np.uint32) << 16).view(np.float32).std(dtype=np.float64)
            )
        else:
            ours = gb / median_time(lambda: wf.matrix_stats(a, threads=threads), repeat=7)
            torch_std = gb / median_time(lambda: torch.std(t_f32))
            np_std = gb / median_time(lambda: a.std(dtype=np.float64))
        rows.append(
            [
                f"stats {label} {m}x{n}",
                f"{ours:.1f} GB/s",
                f"{ceiling:.1f} GB/s",
                f"{ours / ceiling:.0%}",
                f"{torch_std:.2f} GB/s",
                f"{ours / torch_std:.1f}x",
                f"{np_std:.2f} GB/s",
                f"{ours / np_std:.1f}x",
            ]
        )
    return rows


def svd_flops(m: int, n: int) -> float:
    m, n = max(m, n), min(m, n)
    return 4.0 * m * n * n - 4.0 / 3.0 * n**3


class FullSvdClock:
    """Times full SVDs, or extrapolates them past a size from the largest one measured with the
    same library and spectrum (a full SVD's time depends on the spectrum, not only the shape)."""

    def __init__(self, limit: float):
        self.limit = limit
        self.rate: dict[str, tuple[float, float]] = {}  # key -> (elements, seconds per flop)

    def time(self, key: str, a: np.ndarray, fn) -> tuple[float, bool]:
        if a.size > self.limit:
            if key not in self.rate:
                raise SystemExit(
                    f"--extrapolate-above: no smaller matrix was measured for {key}; list one first"
                )
            return self.rate[key][1] * svd_flops(*a.shape), True
        small = a.size < 1 << 22  # milliseconds: worth repeating
        t = median_time(fn, repeat=5 if small else 1, warmup=1 if small else 0)
        if a.size >= self.rate.get(key, (0, 0))[0]:
            self.rate[key] = (a.size, t / svd_flops(*a.shape))
        return t, False


def svd_results(
    a: np.ndarray, k: int, threads: int, clock: FullSvdClock, tols: list[float], spectrum: str
) -> dict:
    """name -> (seconds, max relative error or None, extrapolated, method used) for every method."""
    import scipy.linalg
    import torch
    from sklearn.utils.extmath import randomized_svd

    m, n = a.shape
    tall = a if m >= n else a.T
    ref = wf.top_singular_values(a, k, "exact", threads=threads)

    def err(v):
        v = np.asarray(v, dtype=np.float64)[: len(ref)]
        return float(np.max(np.abs(v - ref) / ref))

    results = {}
    if clock is not None:
        ta = torch.from_numpy(np.ascontiguousarray(tall))
        t, ext = clock.time(f"torch {spectrum}", a, lambda: torch.linalg.svdvals(ta))
        results["torch.linalg.svdvals"] = (t, None if ext else err(torch.linalg.svdvals(ta).numpy()), ext, "")
        # float64: the reference for `exact`, which accumulates in double.
        ta64 = ta.double()
        t, ext = clock.time(f"torch64 {spectrum}", a, lambda: torch.linalg.svdvals(ta64))
        results["torch.linalg.svdvals f64"] = (
            t,
            None if ext else err(torch.linalg.svdvals(ta64).numpy()),
            ext,
            "",
        )
        t, ext = clock.time(f"scipy {spectrum}", a, lambda: scipy.linalg.svdvals(tall, check_finite=False))
        results["scipy.linalg.svdvals"] = (
            t,
            None if ext else err(scipy.linalg.svdvals(tall, check_finite=False)),
            ext,
            "",
        )
    q = min(k + 10, min(m, n))
    ta = torch.from_numpy(a)
    t = median_time(lambda: torch.svd_lowrank(ta, q=q, niter=7), repeat=3)
    results["torch.svd_lowrank niter=7"] = (t, err(torch.svd_lowrank(ta, q=q, niter=7)[1].numpy()), False, "")
    over = q - k
    t = median_time(lambda: randomized_svd(a, k, n_oversamples=over, n_iter=7, random_state=0), repeat=3)
    results["sklearn randomized_svd n_iter=7"] = (
        t,
        err(randomized_svd(a, k, n_oversamples=over, n_iter=7, random_state=0)[1]),
        False,
        "",
    )
    runs = [(f"weightprint {method}", method, 1e-3) for method in wf.METHODS]
    runs += [(f"weightprint auto tol={tol:g}", "auto", tol) for tol in tols]
    for label, method, tol in runs:

        def call(method=method, tol=tol):
            return wf.top_singular_values(a, k, method, tol=tol, threads=threads, details=True)

        t = median_time(call, repeat=3 if method != "exact" else 1)
        v, info = call()
        results[label] = (t, err(v), False, info.method)
    return results


def svd_rows(label: str, results: dict) -> list[list]:
    base = results.get("torch.linalg.svdvals", (float("nan"),))[0]
    base64 = results.get("torch.linalg.svdvals f64", (float("nan"),))[0]
    return [
        [
            label,
            name + (f" ({used})" if used else "") + (" (extrapolated)" if ext else ""),
            f"{t:.3f} s",
            f"{base / t:.1f}x" if base == base else "-",
            f"{base64 / t:.1f}x" if base64 == base64 else "-",
            "-" if e is None else f"{e:.1e}",
        ]
        for name, (t, e, ext, used) in results.items()
    ]


def real_row(label: str, shape: tuple, results: dict) -> list:
    """One matrix per row: torch's time, then each method's speedup, error and (engine) method used."""
    base = results["torch.linalg.svdvals"][0]
    cells = [
        f"{base / t:.1f}x, {e:.0e}" + (f" ({used})" if used else "")
        for name, (t, e, _, used) in results.items()
        if not name.startswith("torch.linalg.svdvals")
    ]
    return [label, f"{shape[0]}x{shape[1]}", f"{base * 1000.0:.1f} ms", *cells]


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
    ap.add_argument("--shapes", choices=sorted(SHAPES), default="default")
    ap.add_argument("--kinds", default="gaussian,heavy")
    ap.add_argument("--tols", default="1e-5", help="extra tolerances for auto, comma-separated ('' for none)")
    ap.add_argument(
        "--real", action="store_true", help="the real checkpoints' matrices instead of synthetic ones"
    )
    ap.add_argument("--skip-torch-svd", action="store_true", help="skip the full SVDs (minutes on 2 cores)")
    ap.add_argument("--extrapolate-above", type=float, default=float("inf"), metavar="ELEMENTS")
    ap.add_argument("--skip-stats", action="store_true")
    args = ap.parse_args()
    set_threads(args.threads)
    import torch

    print(
        f"machine: {platform.processor() or platform.machine()}, {cores()} usable cores, "
        f"threads={args.threads}, "
        f"torch {torch.__version__}, numpy {np.__version__}, python {sys.version.split()[0]}\n"
    )
    shapes = SHAPES[args.shapes]
    tols = [float(t) for t in args.tols.split(",") if t]
    clock = None if args.skip_torch_svd else FullSvdClock(args.extrapolate_above)
    if not args.skip_stats:
        print_table(
            [
                "pass",
                "weightprint",
                "read ceiling",
                "of ceiling",
                "torch.std",
                "vs torch",
                "numpy std",
                "vs numpy",
            ],
            [r for m, n in shapes for r in stats_rows(m, n, args.threads)],
        )
    if args.real:
        from real_matrices import real_matrices

        rows, names = [], None
        for label, a in real_matrices().items():
            results = svd_results(a, args.k, args.threads, clock or FullSvdClock(float("inf")), tols, "real")
            names = [n for n in results if n != "torch.linalg.svdvals"]
            rows.append(real_row(label, a.shape, results))
        print_table(
            ["matrix", "shape", "torch.linalg.svdvals"] + [f"{n}: vs torch, error (used)" for n in names],
            rows,
        )
        return
    rows = [
        r
        for m, n in shapes
        for kind in args.kinds.split(",")
        for r in svd_rows(
            f"top-{args.k} {kind} {m}x{n}",
            svd_results(test_matrix(kind, m, n), args.k, args.threads, clock, tols, kind),
        )
    ]
    print_table(["matrix", "method", "median time", "vs torch f32", "vs torch f64", "max rel. error"], rows)


if __name__ == "__main__":
    main()
