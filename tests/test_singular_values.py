"""Top-k singular values against LAPACK's full SVD."""

import numpy as np
import pytest

import weightprint_fast as wf
from conftest import bf16_bits_to_f64, f32_to_bf16_bits


def with_spectrum(rng, m, n, s):
    """An m x n matrix with the given singular values (random singular vectors)."""
    u, _ = np.linalg.qr(rng.standard_normal((m, len(s))))
    v, _ = np.linalg.qr(rng.standard_normal((n, len(s))))
    return (u * s) @ v.T


def exact_top(a, k):
    return np.linalg.svd(np.asarray(a, dtype=np.float64), compute_uv=False)[:k]


SHAPES = {"tall": (700, 300), "wide": (300, 700), "square": (500, 500)}


@pytest.mark.parametrize("shape", SHAPES)
def test_exact_matches_lapack_on_gaussian(rng, shape):
    a = rng.standard_normal(SHAPES[shape])
    np.testing.assert_allclose(wf.top_singular_values(a, 16, "exact"), exact_top(a, 16), rtol=1e-6)


@pytest.mark.parametrize("shape", SHAPES)
def test_exact_matches_lapack_on_float32_input(rng, shape):
    a = rng.standard_normal(SHAPES[shape]).astype(np.float32)
    np.testing.assert_allclose(wf.top_singular_values(a, 16, "exact"), exact_top(a, 16), rtol=1e-6)


def test_exact_matches_lapack_on_heavy_tailed_spectrum(rng):
    s = 10.0 * np.arange(1, 301, dtype=np.float64) ** -1.5  # power law: s_16/s_1 ~ 0.016
    a = with_spectrum(rng, 600, 400, s)
    np.testing.assert_allclose(wf.top_singular_values(a, 16, "exact"), exact_top(a, 16), rtol=1e-6)


def test_exact_on_rank_deficient_matrix_returns_zeros_past_the_rank(rng):
    a = rng.standard_normal((400, 5)) @ rng.standard_normal((5, 300))
    got = wf.top_singular_values(a, 8, "exact")
    ref = exact_top(a, 8)
    np.testing.assert_allclose(got[:5], ref[:5], rtol=1e-6)
    assert np.all(np.abs(got[5:]) <= 1e-6 * ref[0])


def test_k_larger_than_the_short_side_returns_all_values(rng):
    a = rng.standard_normal((6, 40))
    got = wf.top_singular_values(a, 16, "auto")
    assert got.shape == (6,)
    np.testing.assert_allclose(got, exact_top(a, 6), rtol=1e-6)


def test_values_are_descending_float64(rng):
    got = wf.top_singular_values(rng.standard_normal((100, 80)).astype(np.float32), 10)
    assert got.dtype == np.float64
    assert np.all(np.diff(got) <= 0)


@pytest.mark.parametrize("spectrum", ["gaussian", "power_law"])
def test_auto_meets_its_certified_tolerance(rng, spectrum):
    m, n = 1400, 1100
    if spectrum == "gaussian":
        a = rng.standard_normal((m, n)).astype(np.float32)
    else:
        a = with_spectrum(rng, m, n, np.arange(1, n + 1, dtype=np.float64) ** -0.8).astype(np.float32)
    got, info = wf.top_singular_values(a, 16, "auto", details=True)
    err = np.max(np.abs(got - exact_top(a, 16)) / exact_top(a, 16))
    assert info.method in ("krylov", "exact")
    assert err <= 1e-3
    assert err <= max(info.error_bound, 1e-9)


@pytest.mark.parametrize("tol", [1e-3, 1e-5])
def test_auto_bound_holds_when_values_cluster_across_the_kth(rng, tol):
    # Near-equal pairs straddle positions 16/17 and 8/9: the gap-based part of the bound must
    # fall back to the residual bound there rather than certify a wrong value.
    s = np.concatenate(
        [
            [30.0, 29.0],
            np.linspace(20.0, 12.0, 6),
            [10.0, 9.999, 9.998],
            np.linspace(9.0, 6.01, 4),
            [6.0, 5.9995, 5.999],
            np.linspace(5.0, 4.0, 30),
        ]
    )
    a = (with_spectrum(rng, 1600, 1400, s) + rng.standard_normal((1600, 1400)) * 0.02).astype(np.float32)
    got, info = wf.top_singular_values(a, 16, "auto", tol=tol, details=True)
    ref = exact_top(a, 16)
    err = np.max(np.abs(got - ref) / ref)
    assert info.method == "krylov"
    assert err <= max(info.error_bound, 1e-6) <= tol


def test_auto_uses_krylov_on_large_matrices(rng):
    a = rng.standard_normal((1500, 1500)).astype(np.float32)
    _, info = wf.top_singular_values(a, 16, "auto", details=True)
    assert info.method == "krylov"
    assert 0 < info.error_bound <= 1e-3


def test_fast_is_within_its_documented_bound_on_a_power_law_spectrum(rng):
    # Documented: fast (8 Krylov blocks, oversample 10) is within 1e-4 on decaying spectra.
    a = with_spectrum(rng, 1200, 1000, np.arange(1, 1001, dtype=np.float64) ** -1.0).astype(np.float32)
    got = wf.top_singular_values(a, 16, "fast")
    np.testing.assert_allclose(got, exact_top(a, 16), rtol=1e-4)


def test_fast_is_within_its_documented_bound_on_a_flat_spectrum(rng):
    # Documented: on Gaussian (flat) spectra fast is within 1e-2; use auto when that is too loose.
    a = rng.standard_normal((1500, 1200)).astype(np.float32)
    np.testing.assert_allclose(wf.top_singular_values(a, 16, "fast"), exact_top(a, 16), rtol=1e-2)


def test_bf16_input_matches_lapack_on_decoded_values(rng):
    bits = f32_to_bf16_bits(rng.standard_normal((300, 200)).astype(np.float32))
    got = wf.top_singular_values(bits, 8, "exact", dtype="bf16")
    np.testing.assert_allclose(got, exact_top(bf16_bits_to_f64(bits), 8), rtol=1e-6)


def test_nan_in_matrix_raises_value_error(rng):
    a = rng.standard_normal((50, 40))
    a[1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        wf.top_singular_values(a, 4, "exact")


def test_unknown_method_raises_value_error(rng):
    with pytest.raises(ValueError, match="unknown method"):
        wf.top_singular_values(rng.standard_normal((4, 4)), 2, "magic")


@pytest.mark.parametrize("shape", [(600, 2401), (2401, 600)])
def test_krylov_on_bf16_input_matches_lapack_in_both_orientations(rng, shape):
    # bf16 rows are decoded tile by tile; wide matrices go by 2048-column slices (2401: one partial).
    s = 5.0 * np.arange(1, 601, dtype=np.float64) ** -1.0
    bits = f32_to_bf16_bits(with_spectrum(rng, *shape, s).astype(np.float32))
    got, info = wf.top_singular_values(bits, 16, "fast", dtype="bf16", threads=3, details=True)
    assert info.method == "fast"
    np.testing.assert_allclose(got, exact_top(bf16_bits_to_f64(bits), 16), rtol=1e-4)


def test_fast_falls_back_to_exact_when_its_basis_would_fill_the_short_side(rng):
    # 9 blocks of 32 vectors would exceed the 200-dimensional space: no orthonormal basis exists.
    a = rng.standard_normal((200, 900)).astype(np.float32)
    got, info = wf.top_singular_values(a, 16, "fast", details=True)
    assert info.method == "exact"
    np.testing.assert_allclose(got, exact_top(a, 16), rtol=1e-6)


def test_auto_tolerance_under_the_float32_rounding_floor_runs_exact(rng):
    # float32 products leave ~1e-7 on the Ritz values; certificates below 2e-6 are not offered.
    a = rng.standard_normal((1500, 1200)).astype(np.float32)
    got, info = wf.top_singular_values(a, 16, "auto", tol=1e-7, details=True)
    assert info.method == "exact"
    np.testing.assert_allclose(got, exact_top(a, 16), rtol=1e-9)
    _, loose = wf.top_singular_values(a, 16, "auto", details=True)
    assert loose.method == "krylov" and loose.error_bound >= 1e-6


# From a 2048 short side on, exact runs a Krylov method on the Gram matrix in double and proves
# its values (residual bounds plus an inertia count) to 1e-9, or hands over to LAPACK.
EXACT_TOL = 1e-9


def gram_top(a, k):
    """LAPACK's top k singular values via the Gram matrix in double (dsyevr), for large a."""
    import scipy.linalg

    a = np.asarray(a, dtype=np.float64)
    g = a @ a.T if a.shape[0] <= a.shape[1] else a.T @ a
    n = g.shape[0]
    w = scipy.linalg.eigh(g, eigvals_only=True, subset_by_index=[n - k, n - 1], driver="evr")
    return np.sqrt(np.maximum(w[::-1], 0))


@pytest.mark.parametrize("shape", [(2048, 2048), (2600, 2048), (2048, 3000)])
def test_exact_certifies_a_large_flat_spectrum_within_its_tolerance(rng, shape):
    a = rng.standard_normal(shape).astype(np.float32)
    got, info = wf.top_singular_values(a, 16, "exact", details=True)
    ref = np.linalg.svd(a.astype(np.float64), compute_uv=False)[:16]
    assert info.blocks > 0 and info.phases.eigen == 0 and info.phases.certificate > 0
    assert 0 < info.error_bound <= EXACT_TOL
    assert np.max(np.abs(got - ref) / ref) <= info.error_bound


def test_exact_certifies_a_large_heavy_tailed_spectrum(rng):
    s = 10.0 * np.arange(1, 2049, dtype=np.float64) ** -0.5
    a = with_spectrum(rng, 2048, 2300, s)
    got, info = wf.top_singular_values(a, 24, "exact", details=True)
    assert info.blocks > 0 and info.error_bound <= EXACT_TOL
    np.testing.assert_allclose(got, s[:24], rtol=EXACT_TOL)


def test_exact_hands_a_tie_across_the_kth_value_to_lapack(rng):
    # sigma_16 == sigma_17: no gap separates the top 16 from the rest, so nothing is certified.
    s = np.concatenate([np.linspace(10, 5, 16), [5.0], np.linspace(4, 1, 2031)])
    a = with_spectrum(rng, 2048, 2048, s)
    got, info = wf.top_singular_values(a, 16, "exact", details=True)
    assert info.blocks == 0 and info.phases.eigen > 0
    np.testing.assert_allclose(got, s[:16], rtol=1e-12)


def test_exact_hands_a_top_value_repeated_past_the_block_to_lapack(rng):
    # 20 equal top values, a block of 16: the inertia count finds more than 16 above the gap.
    s = np.concatenate([np.full(20, 10.0), np.linspace(5, 1, 2028)])
    a = with_spectrum(rng, 2048, 2048, s)
    got, info = wf.top_singular_values(a, 16, "exact", details=True)
    assert info.phases.certificate > 0  # the count ran, and refuted the run
    assert info.blocks == 0 and info.phases.eigen > 0
    np.testing.assert_allclose(got, s[:16], rtol=1e-12)


def test_exact_on_large_rank_deficient_matrix_returns_zeros_past_the_rank(rng):
    a = rng.standard_normal((2048, 10)) @ rng.standard_normal((10, 2048))
    got, info = wf.top_singular_values(a, 16, "exact", details=True)
    ref = gram_top(a, 16)
    assert info.blocks == 0  # values at the rounding level have no relative certificate
    np.testing.assert_allclose(got[:10], ref[:10], rtol=1e-12)
    assert np.all(got[10:] <= 1e-6 * ref[0])
