"""pytest-benchmark: the engine's kernels next to torch and numpy on the same data, same threads.

Run: python -m pytest bench/test_bench_kernels.py --benchmark-group-by=group
Each group holds the engine and its baselines; pytest-benchmark prints them side by side.
"""

from __future__ import annotations

import numpy as np
import pytest

import weightprint_fast as wf
from common import bf16_bits, cores, set_threads, test_matrix

torch = pytest.importorskip("torch")
THREADS = cores()
set_threads(THREADS)

SHAPES = [(4096, 4096), (4096, 11008)]


@pytest.fixture(scope="module", params=SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def weights(request):
    m, n = request.param
    a = test_matrix("gaussian", m, n) * 0.02
    return a, bf16_bits(a)


def test_stats_bf16_weightprint(benchmark, weights):
    benchmark.group = f"stats bf16 {weights[0].shape}"
    benchmark(wf.matrix_stats, weights[1], dtype="bf16", threads=THREADS)


def test_stats_bf16_torch_std(benchmark, weights):
    benchmark.group = f"stats bf16 {weights[0].shape}"
    t = torch.from_numpy(weights[1].view(np.int16)).view(torch.bfloat16)
    benchmark(torch.std, t)


def test_stats_bf16_read_ceiling(benchmark, weights):
    benchmark.group = f"stats bf16 {weights[0].shape}"
    t = torch.from_numpy(weights[1].reshape(-1).view(np.float32))
    benchmark(t.sum)


def test_stats_f32_weightprint(benchmark, weights):
    benchmark.group = f"stats f32 {weights[0].shape}"
    benchmark(wf.matrix_stats, weights[0], threads=THREADS)


def test_stats_f32_numpy_std(benchmark, weights):
    benchmark.group = f"stats f32 {weights[0].shape}"
    benchmark(np.std, weights[0], dtype=np.float64)


def test_stats_f32_torch_std(benchmark, weights):
    benchmark.group = f"stats f32 {weights[0].shape}"
    benchmark(torch.std, torch.from_numpy(weights[0]))


@pytest.mark.parametrize("method", wf.METHODS)
def test_top16_weightprint(benchmark, weights, method):
    benchmark.group = f"top-16 {weights[0].shape}"
    benchmark.pedantic(
        wf.top_singular_values,
        args=(weights[0], 16, method),
        kwargs={"threads": THREADS},
        rounds=3 if method != "exact" else 1,
    )


def test_top16_torch_svdvals(benchmark, weights):
    benchmark.group = f"top-16 {weights[0].shape}"
    a = weights[0]
    tall = torch.from_numpy(np.ascontiguousarray(a if a.shape[0] >= a.shape[1] else a.T))
    benchmark.pedantic(torch.linalg.svdvals, args=(tall,), rounds=1)


def test_top16_torch_svd_lowrank(benchmark, weights):
    benchmark.group = f"top-16 {weights[0].shape}"
    benchmark.pedantic(
        torch.svd_lowrank, args=(torch.from_numpy(weights[0]),), kwargs={"q": 26, "niter": 7}, rounds=3
    )


# One Krylov step: C x with C = A^T A (A tall) or A A^T, x of 32 columns (the block of top-16).
@pytest.fixture(scope="module")
def krylov_block(weights):
    a = weights[0]
    return np.random.default_rng(1).standard_normal((min(a.shape), 32)).astype(np.float32)


def gram_reference(a, x):
    return a.T @ (a @ x) if a.shape[0] >= a.shape[1] else a @ (a.T @ x)


def test_krylov_step_weightprint(benchmark, weights, krylov_block):
    from weightprint_fast.engine import engine

    benchmark.group = f"krylov step {weights[0].shape}"
    a = weights[0]
    benchmark(engine().gram_product, a, "F32", a.shape[0], a.shape[1], krylov_block, THREADS)


def test_krylov_step_weightprint_bf16(benchmark, weights, krylov_block):
    from weightprint_fast.engine import engine

    benchmark.group = f"krylov step {weights[0].shape}"
    bits = weights[1]
    benchmark(engine().gram_product, bits, "BF16", bits.shape[0], bits.shape[1], krylov_block, THREADS)


def test_krylov_step_numpy(benchmark, weights, krylov_block):
    benchmark.group = f"krylov step {weights[0].shape}"
    benchmark(gram_reference, weights[0], krylov_block)


def test_krylov_step_torch(benchmark, weights, krylov_block):
    benchmark.group = f"krylov step {weights[0].shape}"
    benchmark(gram_reference, torch.from_numpy(weights[0]), torch.from_numpy(krylov_block))


# --- the lineage invariants' element-wise kernels --------------------------------------------


def _sketch_indices(m: int, n: int, buckets: int = 256):
    """The count sketch's bucket and sign per element, as sketch.hpp defines them (for the
    library baseline, which scatters with them)."""

    def splitmix(x):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))

    r = splitmix(np.arange(m, dtype=np.uint64) ^ np.uint64(0x5EEDB0B))
    c = splitmix(np.arange(n, dtype=np.uint64) ^ np.uint64(0x5EEDC01))
    bucket = ((r[:, None] ^ c[None, :]) & np.uint64(buckets - 1)).astype(np.int64).ravel()
    row_sign, col_sign = (np.where(h >> np.uint64(63), -1.0, 1.0) for h in (r, c))
    sign = (row_sign[:, None] * col_sign[None, :]).ravel()
    return torch.from_numpy(bucket), torch.from_numpy(sign)


def test_count_sketch_bf16_weightprint(benchmark, weights):
    benchmark.group = f"count sketch bf16 {weights[0].shape}"
    from weightprint_fast.engine import engine

    m, n = weights[0].shape
    benchmark(engine().count_sketch, weights[1], "BF16", m, n, 256, THREADS)


def test_count_sketch_bf16_torch_index_add(benchmark, weights):
    benchmark.group = f"count sketch bf16 {weights[0].shape}"
    bucket, sign = _sketch_indices(*weights[0].shape)
    t = torch.from_numpy(weights[1].view(np.int16)).view(torch.bfloat16).reshape(-1)
    benchmark(lambda: torch.zeros(256, dtype=torch.float64).index_add_(0, bucket, t.double() * sign))


def test_row_norms_bf16_weightprint(benchmark, weights):
    benchmark.group = f"weighted row norms bf16 {weights[0].shape}"
    from weightprint_fast.engine import BlockGramSpec, engine

    m, n = weights[0].shape
    spec = BlockGramSpec(1, False, list(np.linspace(0.5, 1.5, n)))
    benchmark(engine().block_gram, weights[1], "BF16", m, n, spec, THREADS)


def test_row_norms_bf16_torch(benchmark, weights):
    benchmark.group = f"weighted row norms bf16 {weights[0].shape}"
    n = weights[0].shape[1]
    w = torch.linspace(0.5, 1.5, n, dtype=torch.float64)
    t = torch.from_numpy(weights[1].view(np.int16)).view(torch.bfloat16)
    benchmark(lambda: (t.double() * w).square().sum(dim=1))
