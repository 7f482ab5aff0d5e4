"""Per-matrix statistics against numpy/scipy in double precision."""

import numpy as np
import pytest
import scipy.stats

import weightprint_fast as wf
from conftest import bf16_bits_to_f64, f32_to_bf16_bits

DISTRIBUTIONS = {
    "gaussian": lambda r, n: r.standard_normal(n) * 0.02,
    "offset_uniform": lambda r, n: 3.0 + r.uniform(-0.05, 0.05, n),  # small spread on a large mean
    "laplace": lambda r, n: r.laplace(0.0, 0.05, n),
    "lognormal": lambda r, n: r.lognormal(0.0, 1.0, n),
}


def reference(x: np.ndarray) -> dict:
    x = x.astype(np.float64).ravel()
    return {
        "mean": x.mean(),
        "std": x.std(),
        "min": x.min(),
        "max": x.max(),
        "skewness": scipy.stats.skew(x),
        "kurtosis": scipy.stats.kurtosis(x),
    }


def assert_matches(got: wf.Moments, ref: dict, n: int):
    assert got.count == n
    assert got.mean == pytest.approx(ref["mean"], rel=1e-9, abs=1e-15)
    assert got.std == pytest.approx(ref["std"], rel=1e-9)
    assert got.min == ref["min"]
    assert got.max == ref["max"]
    assert got.skewness == pytest.approx(ref["skewness"], rel=1e-6, abs=1e-9)
    assert got.kurtosis == pytest.approx(ref["kurtosis"], rel=1e-6, abs=1e-9)
    assert got.nan == 0 and got.inf == 0


@pytest.mark.parametrize("dist", DISTRIBUTIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_stats_equal_numpy(rng, dist, dtype):
    a = DISTRIBUTIONS[dist](rng, 257 * 1031).reshape(257, 1031).astype(dtype)
    assert_matches(wf.matrix_stats(a), reference(a), a.size)


@pytest.mark.parametrize("dist", DISTRIBUTIONS)
def test_stats_of_bf16_equal_numpy_on_decoded_values(rng, dist):
    bits = f32_to_bf16_bits(DISTRIBUTIONS[dist](rng, 300 * 500).astype(np.float32)).reshape(300, 500)
    assert_matches(wf.matrix_stats(bits, dtype="bf16"), reference(bf16_bits_to_f64(bits)), bits.size)


def test_stats_over_many_threads_equal_single_thread(rng):
    a = (rng.standard_normal((2048, 1024)) * 0.02).astype(np.float32)
    one = wf.matrix_stats(a, threads=1)
    many = wf.matrix_stats(a, threads=4)
    for key in ("mean", "std", "skewness", "kurtosis"):
        assert getattr(many, key) == pytest.approx(getattr(one, key), rel=1e-10, abs=1e-16)
    assert (many.min, many.max, many.count) == (one.min, one.max, one.count)


def test_nan_and_inf_are_counted_and_excluded(rng):
    a = rng.standard_normal((64, 64))
    a[3, 4] = np.nan
    a[5, 6] = np.inf
    a[7, 8] = -np.inf
    s = wf.matrix_stats(a)
    finite = a[np.isfinite(a)]
    assert (s.nan, s.inf, s.count) == (1, 2, finite.size)
    assert s.mean == pytest.approx(finite.mean(), rel=1e-12)
    assert s.std == pytest.approx(finite.std(), rel=1e-12)


def test_precision_holds_over_ten_million_values():
    # A sum of 10^7 values near 1 in float32 would lose ~3 digits; double merging keeps ~all.
    a = np.full(10_000_000, 1.0, dtype=np.float32)
    a[::2] = np.float32(1.0 + 2**-20)
    s = wf.matrix_stats(a)
    assert s.mean == pytest.approx(1.0 + 2**-21, rel=1e-14)
    assert s.std == pytest.approx(2**-21, rel=1e-9)


def test_f8_values_decode_per_the_ocp_spec():
    e4m3 = np.array([0x38, 0x7E, 0x01, 0xB8, 0x00], dtype=np.uint8)  # 1, 448, 2^-9, -1, 0
    s = wf.matrix_stats(e4m3, dtype="f8_e4m3")
    assert (s.max, s.min, s.count) == (448.0, -1.0, 5)
    assert s.mean == pytest.approx((1 + 448 + 2**-9 - 1) / 5)
    assert wf.matrix_stats(np.array([0x7F, 0xFF], dtype=np.uint8), dtype="f8_e4m3").nan == 2
    e5m2 = np.array([0x3C, 0x7B, 0x7C, 0x7D], dtype=np.uint8)  # 1, 57344, inf, nan
    s = wf.matrix_stats(e5m2, dtype="f8_e5m2")
    assert (s.max, s.inf, s.nan) == (57344.0, 1, 1)


def test_bf16_needs_raw_uint16_bits():
    with pytest.raises(wf.InputError, match="unsigned integer array"):
        wf.matrix_stats(np.zeros(4, dtype=np.float32), dtype="bf16")


def test_merged_moments_equal_the_moments_of_all_elements(rng):
    a = rng.standard_normal(3000) * 2 + 1
    b = rng.gamma(2.0, size=5000)
    merged = wf.matrix_stats(a)
    merged.merge(wf.matrix_stats(b))
    assert_matches(merged, reference(np.concatenate([a, b])), a.size + b.size)


def test_merging_unknown_extremes_leaves_them_unknown():
    known = wf.matrix_stats(np.array([1.0, 2.0]))
    known.merge(wf.Moments(count=2, mean=0.0, m2=2.0, m3=np.nan, m4=np.nan, min=np.nan, max=np.nan))
    assert known.count == 4 and known.std == pytest.approx(np.sqrt((0.5 + 2.0 + 1.5**2 * 2 * 2 / 4) / 4))
    assert np.isnan(known.min) and np.isnan(known.max) and np.isnan(known.skewness)


def test_empty_moments_are_nan_not_zero():
    m = wf.matrix_stats(np.array([np.nan, np.inf]))
    assert (m.count, m.nan, m.inf) == (0, 1, 1)
    assert all(np.isnan(v) for v in (m.mean, m.std, m.min, m.max, m.skewness, m.kurtosis))
