"""The Krylov product kernel, R^T (R x), against numpy in double precision."""

import numpy as np
import pytest

from weightprint_fast._native import engine


def reference(r, x):
    r64 = r.astype(np.float64)
    return r64.T @ (r64 @ x.astype(np.float64))


def relative_error(got, ref):
    return float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))


# Widths cover one partial vector, exact vectors, and more columns than one pass holds (64).
@pytest.mark.parametrize("width", [1, 16, 17, 26, 64, 74, 130])
def test_matches_numpy_for_every_block_width(rng, width):
    r = rng.standard_normal((301, 190)).astype(np.float32)
    x = rng.standard_normal((190, width)).astype(np.float32)
    got = engine().gram_product(r, x, 1)
    assert got.shape == (190, width)
    assert relative_error(got, reference(r, x)) < 1e-5


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
def test_threads_split_rows_without_changing_the_result(rng, threads):
    # 1003 rows: not a multiple of the 4-row tile nor of any thread count.
    r = rng.standard_normal((1003, 257)).astype(np.float32)
    x = rng.standard_normal((257, 26)).astype(np.float32)
    assert relative_error(engine().gram_product(r, x, threads), reference(r, x)) < 1e-5


def test_fewer_rows_than_a_tile(rng):
    r = rng.standard_normal((3, 50)).astype(np.float32)
    x = rng.standard_normal((50, 5)).astype(np.float32)
    assert relative_error(engine().gram_product(r, x, 4), reference(r, x)) < 1e-5


def test_zero_block_gives_zero(rng):
    r = rng.standard_normal((64, 40)).astype(np.float32)
    assert not np.any(engine().gram_product(r, np.zeros((40, 3), np.float32), 2))
