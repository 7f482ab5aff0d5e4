"""The Krylov product kernel, C x with C = A^T A (A tall) or A A^T (A wide), against numpy."""

import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import bf16_bits_to_f64, f32_to_bf16_bits
from weightprint_fast.engine import engine


def product(a, x, threads=1, dtype="F32"):
    return engine().gram_product(a, dtype, a.shape[0], a.shape[1], x, threads)


def reference(a, x):
    a = np.asarray(a, dtype=np.float64)
    c = a.T @ a if a.shape[0] >= a.shape[1] else a @ a.T
    return c @ x.astype(np.float64)


def relative_error(got, ref):
    return float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))


# Widths cover one partial vector, exact vectors, and more columns than one pass holds (64).
@pytest.mark.parametrize("width", [1, 16, 17, 26, 64, 74, 130])
@pytest.mark.parametrize("shape", [(301, 190), (190, 301)], ids=["tall", "wide"])
def test_matches_numpy_for_every_block_width(rng, shape, width):
    a = rng.standard_normal(shape).astype(np.float32)
    x = rng.standard_normal((min(shape), width)).astype(np.float32)
    got = product(a, x)
    assert got.shape == x.shape
    assert relative_error(got, reference(a, x)) < 1e-5


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
@pytest.mark.parametrize("shape", [(1003, 257), (257, 5003)], ids=["tall", "wide"])
def test_threads_split_the_work_without_changing_the_result(rng, shape, threads):
    # Not multiples of the 16-row panel, the 4-row tile, the 128-column chunk, any thread count,
    # or (wide) the 2048-column slice.
    a = rng.standard_normal(shape).astype(np.float32)
    x = rng.standard_normal((min(shape), 26)).astype(np.float32)
    assert relative_error(product(a, x, threads), reference(a, x)) < 1e-5


@pytest.mark.parametrize("shape", [(200, 90), (90, 2100)], ids=["tall", "wide"])
def test_reads_bf16_in_place(rng, shape):
    bits = f32_to_bf16_bits(rng.standard_normal(shape).astype(np.float32))
    x = rng.standard_normal((min(shape), 20)).astype(np.float32)
    got = product(bits, x, 2, dtype="BF16")
    assert relative_error(got, reference(bf16_bits_to_f64(bits), x)) < 1e-5


def test_fewer_rows_than_a_tile(rng):
    a = rng.standard_normal((3, 50)).astype(np.float32)
    x = rng.standard_normal((3, 5)).astype(np.float32)
    assert relative_error(product(a, x, 4), reference(a, x)) < 1e-5


@pytest.mark.parametrize("shape", [(120, 40), (40, 120)], ids=["tall", "wide"])
def test_non_finite_matrix_is_refused(rng, shape):
    a = rng.standard_normal(shape).astype(np.float32)
    a[7, 9] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        product(a, np.ones((min(shape), 4), np.float32))


_BOTH_WIDTHS = """
import numpy as np
from weightprint_fast.engine import engine

rng = np.random.default_rng(3)
for shape in [(301, 190), (190, 301), (1003, 257), (257, 5003)]:
    a = rng.standard_normal(shape).astype(np.float32)
    for width in [1, 16, 17, 32, 64, 74]:
        x = rng.standard_normal((min(shape), width)).astype(np.float32)
        got = engine().gram_product(a, "F32", shape[0], shape[1], x, 2)
        a64 = a.astype(np.float64)
        c = a64.T @ a64 if shape[0] >= shape[1] else a64 @ a64.T
        ref = c @ x.astype(np.float64)
        err = np.max(np.abs(got - ref)) / np.max(np.abs(ref))
        assert err < 1e-5, (shape, width, err)
"""


@pytest.mark.parametrize("floats", ["8", "16"])
def test_both_vector_widths_match_numpy(floats):
    # The CPU picks the kernels' vectors (16 floats with AVX-512, else 8); WPF_VECTOR_FLOATS
    # forces either, so both families, with their tiles of 4 and 8 rows, run on any machine.
    env = {**os.environ, "WPF_VECTOR_FLOATS": floats}
    subprocess.run([sys.executable, "-c", _BOTH_WIDTHS], env=env, check=True, timeout=300)
