"""Whole-checkpoint analysis: records per tensor, windows, threads, progress."""

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

import weightprint_fast as wf
from conftest import bf16_bits_to_f64, f32_to_bf16_bits, write_tensors


def top(a, k):
    return np.linalg.svd(np.asarray(a, np.float64), compute_uv=False)[:k]


@pytest.fixture
def checkpoint(tmp_path, rng):
    """Two shards with an index: float32 and bf16 matrices, a bias, an integer tensor."""
    w1 = (rng.standard_normal((96, 64)) * 0.02).astype(np.float32)
    w2 = (rng.standard_normal((64, 160)) * 0.05).astype(np.float32)
    save_file(
        {"layer.0.w": w1, "layer.0.b": np.ones(96, np.float32), "ids": np.arange(7, dtype=np.int64)},
        str(tmp_path / "model-00001-of-00002.safetensors"),
    )
    bits = f32_to_bf16_bits(w2)
    write_tensors(
        tmp_path / "model-00002-of-00002.safetensors", {"layer.1.w": ("BF16", w2.shape, bits.tobytes())}
    )
    index = {
        "weight_map": {
            "layer.0.w": "model-00001-of-00002.safetensors",
            "layer.0.b": "model-00001-of-00002.safetensors",
            "ids": "model-00001-of-00002.safetensors",
            "layer.1.w": "model-00002-of-00002.safetensors",
        }
    }
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    return tmp_path, {"layer.0.w": w1.astype(np.float64), "layer.1.w": bf16_bits_to_f64(bits)}


def test_scan_reports_every_tensor(checkpoint):
    path, _ = checkpoint
    assert sorted(r.name for r in wf.scan(path)) == ["ids", "layer.0.b", "layer.0.w", "layer.1.w"]


def test_scan_matrices_match_numpy(checkpoint):
    path, ref = checkpoint
    records = {r.name: r for r in wf.scan(path, k=8, method="exact")}
    for name, a in ref.items():
        r = records[name]
        assert r.moments.std == pytest.approx(a.std(), rel=1e-9)
        assert r.moments.mean == pytest.approx(a.mean(), rel=1e-9, abs=1e-15)
        np.testing.assert_allclose(r.singular_values, top(a, 8), rtol=1e-6)


def test_scan_lists_integer_tensors_without_analysis(checkpoint):
    path, _ = checkpoint
    (ids,) = [r for r in wf.scan(path) if r.name == "ids"]
    assert (ids.dtype, ids.shape, ids.moments, ids.singular_values) == ("I64", (7,), None, None)


def test_scan_gives_vectors_stats_but_no_singular_values(checkpoint):
    path, _ = checkpoint
    (b,) = [r for r in wf.scan(path) if r.name == "layer.0.b"]
    assert b.moments.mean == 1.0 and b.singular_values is None


def test_scan_accepts_index_file_and_single_shard(checkpoint):
    path, _ = checkpoint
    assert len(wf.scan(path / "model.safetensors.index.json", k=0)) == 4
    assert [r.name for r in wf.scan(path / "model-00002-of-00002.safetensors", k=0)] == ["layer.1.w"]


def test_scan_results_do_not_depend_on_thread_count(checkpoint):
    path, _ = checkpoint
    one = {r.name: r for r in wf.scan(path, threads=1)}
    two = {r.name: r for r in wf.scan(path, threads=2)}
    for name in ("layer.0.w", "layer.1.w"):
        assert one[name].moments.std == pytest.approx(two[name].moments.std, rel=1e-12)
        np.testing.assert_allclose(one[name].singular_values, two[name].singular_values, rtol=1e-6)


def test_row_and_column_windows_equal_their_slices(tmp_path, rng):
    a = rng.standard_normal((30, 24)).astype(np.float32)
    save_file({"fused": a}, str(tmp_path / "m.safetensors"))
    shards = wf.open_shards(tmp_path / "m.safetensors")
    t = shards.tensors[0]
    windows = [
        wf.Window(t, rows=10, cols=24, offset=10 * 24, k=5),  # rows 10..20
        wf.Window(t, rows=30, cols=8, offset=16, row_stride=24, k=5),  # columns 16..24
    ]
    rows, cols = wf.analyse(shards, windows, threads=2, method="exact")
    for res, ref in ((rows, a[10:20]), (cols, a[:, 16:24])):
        ref = ref.astype(np.float64)
        assert res.moments.std == pytest.approx(ref.std(), rel=1e-9)
        assert res.moments.min == ref.min() and res.moments.max == ref.max()
        np.testing.assert_allclose(res.svd.values, top(ref, 5), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_krylov_reads_strided_and_grouped_windows_in_place(tmp_path, rng, dtype):
    # Large enough for the Krylov path, which reads F32 rows where they lie and decodes others.
    # Rank 20 with distinct row scales: every window has its own spectrum, which fast resolves.
    low = (rng.standard_normal((1200, 20)) * np.linspace(3, 0.5, 1200)[:, None]) @ rng.standard_normal(
        (20, 1100)
    )
    a = (low + 0.01 * rng.standard_normal((1200, 1100))).astype(dtype)
    save_file({"fused": a}, str(tmp_path / "m.safetensors"))
    shards = wf.open_shards(tmp_path / "m.safetensors")
    t = shards.tensors[0]
    windows = [
        wf.Window(t, rows=1200, cols=800, offset=300, row_stride=1100, k=8),  # columns 300..1100
        # rows 0..300 and 600..900 of the first 800 columns: two groups of 300 rows, 600 rows apart
        wf.Window(
            t, rows=600, cols=800, offset=0, row_stride=1100, group_rows=300, group_stride=600 * 1100, k=8
        ),
    ]
    cols, groups = wf.analyse(shards, windows, threads=3, method="fast")
    a64 = a.astype(np.float64)
    for res, ref in ((cols, a64[:, 300:]), (groups, np.vstack([a64[:300, :800], a64[600:900, :800]]))):
        assert res.svd.method == "fast"
        np.testing.assert_allclose(res.svd.values, top(ref, 8), rtol=1e-4)


def test_window_outside_its_tensor_is_a_format_error(tmp_path):
    save_file({"w": np.ones((4, 4), np.float32)}, str(tmp_path / "m.safetensors"))
    shards = wf.open_shards(tmp_path)
    with pytest.raises(wf.WeightprintFormatError, match="outside the tensor"):
        wf.analyse(shards, [wf.Window(shards.tensors[0], rows=4, cols=4, offset=4)])


def test_nan_matrix_gets_stats_and_an_error_instead_of_singular_values(tmp_path):
    a = np.ones((8, 8), np.float32)
    a[2, 3] = np.nan
    save_file({"w": a}, str(tmp_path / "m.safetensors"))
    (r,) = wf.scan(tmp_path, k=4)
    assert r.moments.nan == 1
    assert r.singular_values is None and "NaN" in r.error


def test_progress_callback_reaches_the_total(checkpoint):
    path, _ = checkpoint
    shards = wf.open_shards(path)
    calls = []
    windows = [wf.Window(t, t.shape[0], t.shape[1], k=4) for t in shards.tensors if len(t.shape) == 2]
    wf.analyse(shards, windows, progress=lambda *a: calls.append(a))
    jobs_done, jobs_total, bytes_done, bytes_total = calls[-1]
    assert jobs_done == jobs_total == 2 and bytes_done == bytes_total == 96 * 64 * 4 + 64 * 160 * 2


def test_exception_in_progress_callback_stops_the_run(checkpoint):
    path, _ = checkpoint
    shards = wf.open_shards(path)

    def stop(*_):
        raise RuntimeError("stop here")

    (w,) = [t for t in shards.tensors if t.name == "layer.0.w"]
    windows = [wf.Window(w, 96, 64, k=4)]
    with pytest.raises(RuntimeError, match="stop here"):
        wf.analyse(shards, windows, progress=stop)
