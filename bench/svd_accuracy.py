"""Relative error of each singular-value method against LAPACK's full SVD in double.

Usage: python bench/svd_accuracy.py [--size 2048]
Prints one row per (matrix, method): the method actually used, the worst relative error over the
top 16 values, the certified bound (auto), and the Krylov blocks used.
"""

from __future__ import annotations

import argparse

import numpy as np

import weightprint_fast as wf


def with_spectrum(rng, m, n, s):
    u, _ = np.linalg.qr(rng.standard_normal((m, len(s))))
    v, _ = np.linalg.qr(rng.standard_normal((n, len(s))))
    return ((u * s) @ v.T).astype(np.float32)


def matrices(size: int, rng) -> dict[str, np.ndarray]:
    idx = np.arange(1, size + 1, dtype=np.float64)
    return {
        f"gaussian {size}x{size} (flat)": rng.standard_normal((size, size)).astype(np.float32),
        f"gaussian {size // 2}x{2 * size} (flat)": rng.standard_normal((size // 2, 2 * size)).astype(
            np.float32
        ),
        f"power law s_i = 1/i {size}x{size}": with_spectrum(rng, size, size, idx**-1.0),
        f"heavy tail s_i = i^-0.5 {size}x{size}": with_spectrum(rng, size, size, idx**-0.5),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--k", type=int, default=16)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print("| matrix | method | used | max rel. error | certified bound | Krylov blocks |")
    print("|---|---|---|---|---|---|")
    for name, a in matrices(args.size, rng).items():
        ref = np.linalg.svd(a.astype(np.float64), compute_uv=False)[: args.k]
        for method in wf.METHODS:
            got, info = wf.top_singular_values(a, args.k, method, details=True)
            err = float(np.max(np.abs(got - ref) / ref))
            print(
                f"| {name} | {method} | {info.method} | {err:.1e} | {info.error_bound:.1e} | {info.blocks} |"
            )


if __name__ == "__main__":
    main()
