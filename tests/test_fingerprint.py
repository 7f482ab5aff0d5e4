"""The Fingerprint: vectors as METHOD.md defines them, save/load, non-finite weights."""

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

import weightprint_fast as wf

SHAPES = {
    "self_attn.q_proj": (32, 32),
    "self_attn.k_proj": (16, 32),
    "self_attn.v_proj": (16, 32),
    "self_attn.o_proj": (32, 32),
    "mlp.gate_proj": (48, 32),
    "mlp.up_proj": (48, 32),
    "mlp.down_proj": (32, 48),
}
TYPES = ["q", "k", "v", "o", "gate", "up", "down"]


def llama(tmp_path, rng, layers=5, scale=None):
    tensors = {}
    for layer in range(layers):
        for i, (name, shape) in enumerate(SHAPES.items()):
            s = (scale or {}).get(name, 0.01 * (i + 1))
            tensors[f"model.layers.{layer}.{name}.weight"] = (
                rng.standard_normal(shape) * s + 0.001 * layer
            ).astype(np.float32)
    save_file(tensors, str(tmp_path / "model.safetensors"))
    return tmp_path, tensors


def fp_of(path, **kw):
    return wf.fingerprint(path, progress=False, **kw)


def test_std_vector_equals_numpy_std_of_concatenated_weights(tmp_path, rng):
    path, tensors = llama(tmp_path, rng)
    fp = fp_of(path, normalize="none")
    for i, (name, _) in enumerate(SHAPES.items()):
        allw = np.concatenate([w.astype(np.float64).ravel() for k, w in tensors.items() if name in k])
        assert fp.std_vector[i] == pytest.approx(allw.std(), rel=1e-9)
        assert fp.type_stats[TYPES[i]]["mean"] == pytest.approx(allw.mean(), rel=1e-9)
        assert fp.type_stats[TYPES[i]]["kurtosis"] == pytest.approx(
            ((allw - allw.mean()) ** 4).mean() / allw.var() ** 2 - 3, rel=1e-6, abs=1e-9
        )


@pytest.mark.parametrize(
    "how,check",
    [
        ("max", lambda v: v.max() == pytest.approx(1.0)),
        ("l2", lambda v: np.linalg.norm(v) == pytest.approx(1.0)),
        ("sum", lambda v: v.sum() == pytest.approx(1.0)),
    ],
)
def test_std_vector_normalizations(tmp_path, rng, how, check):
    path, _ = llama(tmp_path, rng)
    raw = fp_of(path, normalize="none").std_vector
    v = fp_of(path, normalize=how).std_vector
    assert check(v)
    np.testing.assert_allclose(v / v[0], raw / raw[0], rtol=1e-12)


def test_types_are_in_canonical_order(tmp_path, rng):
    path, _ = llama(tmp_path, rng)
    assert fp_of(path).types == TYPES


def test_layer_std_is_the_std_of_each_matrix(tmp_path, rng):
    path, tensors = llama(tmp_path, rng, layers=3)
    fp = fp_of(path)
    assert fp.layer_std.shape == (3, 7)
    w = tensors["model.layers.2.mlp.up_proj.weight"].astype(np.float64)
    assert fp.layer_std[2, TYPES.index("up")] == pytest.approx(w.std(), rel=1e-9)


def test_singular_values_have_layers_types_topk_shape(tmp_path, rng):
    path, tensors = llama(tmp_path, rng, layers=2)
    fp = fp_of(path, top_k=8, method="exact")
    assert fp.singular_values.shape == (2, 7, 8)
    w = tensors["model.layers.1.self_attn.k_proj.weight"].astype(np.float64)
    np.testing.assert_allclose(fp.singular_values[1, 1], np.linalg.svd(w, compute_uv=False)[:8], rtol=1e-6)


def test_matrices_smaller_than_top_k_pad_with_zeros(tmp_path, rng):
    save_file(
        {
            "model.layers.0.self_attn.q_proj.weight": rng.standard_normal((4, 6)).astype(np.float32),
            "model.layers.0.self_attn.k_proj.weight": rng.standard_normal((6, 6)).astype(np.float32),
        },
        str(tmp_path / "model.safetensors"),
    )
    fp = fp_of(tmp_path, top_k=6)
    assert np.all(fp.singular_values[0, 0, 4:] == 0) and np.all(fp.singular_values[0, 0, :4] > 0)


def test_clustering_vector_lies_in_unit_interval_and_coclustering_is_symmetric(tmp_path, rng):
    path, _ = llama(tmp_path, rng, layers=6)
    fp = fp_of(path)
    assert np.all((fp.clustering_vector >= 0) & (fp.clustering_vector <= 1))
    np.testing.assert_array_equal(fp.coclustering, fp.coclustering.T)
    np.testing.assert_array_equal(np.diag(fp.coclustering), 1.0)
    assert fp.cluster_labels.min() >= 0 and fp.cluster_labels.max() == 3


def test_clustering_vector_follows_canonical_labels(tmp_path, rng):
    path, _ = llama(tmp_path, rng, layers=6)
    fp = fp_of(path)
    k = fp.meta["settings"]["clusters_used"]
    np.testing.assert_allclose(fp.clustering_vector, fp.cluster_labels.mean(axis=0) / (k - 1))


def test_types_with_clearly_different_spectra_fall_in_different_clusters(tmp_path, rng):
    scale = {name: (0.1 if name in ("self_attn.q_proj", "self_attn.k_proj") else 0.001) for name in SHAPES}
    path, _ = llama(tmp_path, rng, layers=4, scale=scale)
    fp = fp_of(path, n_clusters=2)
    assert fp.coclustering[0, 1] == 1.0 and fp.coclustering[0, 2] == 0.0
    assert fp.clustering_vector[0] == 1.0 and fp.clustering_vector[2] == 0.0  # larger spectra: higher label


def test_fingerprint_is_deterministic(tmp_path, rng):
    path, _ = llama(tmp_path, rng)
    a, b = fp_of(path), fp_of(path, threads=1)
    np.testing.assert_array_equal(a.cluster_labels, b.cluster_labels)
    np.testing.assert_allclose(a.singular_values, b.singular_values, rtol=1e-6)


def test_save_load_round_trip_is_exact(tmp_path, rng):
    path, _ = llama(tmp_path, rng)
    fp = fp_of(path)
    fp.save(tmp_path / "fp.json")
    back = wf.Fingerprint.load(tmp_path / "fp.json")
    assert back.types == fp.types and back.meta == json.loads(json.dumps(fp.meta))
    for field in (
        "std_vector",
        "layer_std",
        "singular_values",
        "clustering_vector",
        "cluster_labels",
        "coclustering",
    ):
        np.testing.assert_array_equal(getattr(back, field), getattr(fp, field))
    assert back.type_stats == fp.type_stats


def test_save_load_keeps_nan_cells(tmp_path, rng):
    save_file(
        {"model.layers.1.self_attn.q_proj.weight": rng.standard_normal((8, 8)).astype(np.float32)},
        str(tmp_path / "model.safetensors"),
    )
    fp = fp_of(tmp_path, top_k=4)
    fp.save(tmp_path / "fp.json")
    back = wf.Fingerprint.load(tmp_path / "fp.json")
    assert np.isnan(back.layer_std[0, 0]) and not np.isnan(back.layer_std[1, 0])


def test_loading_a_newer_schema_is_a_clear_error(tmp_path, rng):
    path, _ = llama(tmp_path, rng, layers=2)
    d = fp_of(path).to_dict()
    d["schema"] = 99
    (tmp_path / "fp.json").write_text(json.dumps(d))
    with pytest.raises(wf.FingerprintFileError, match="newer"):
        wf.Fingerprint.load(tmp_path / "fp.json")


@pytest.mark.parametrize(
    "damage",
    [
        lambda s: s[: len(s) // 2],
        lambda s: s.replace('"std_vector"', '"x"'),
        lambda s: "{}",
        lambda s: "\xff",
    ],
)
def test_loading_a_damaged_file_is_a_clear_error(tmp_path, rng, damage):
    path, _ = llama(tmp_path, rng, layers=2)
    fp_of(path).save(tmp_path / "fp.json")
    (tmp_path / "fp.json").write_text(damage((tmp_path / "fp.json").read_text()))
    with pytest.raises(wf.FingerprintFileError):
        wf.Fingerprint.load(tmp_path / "fp.json")


def test_meta_describes_the_source_and_settings(tmp_path, rng):
    path, _ = llama(tmp_path, rng, layers=2)
    m = fp_of(path, top_k=8).meta
    assert m["format"] == "safetensors" and m["layers"] == 2 and m["matrices"] == 14
    assert m["parameters"] == 2 * sum(a * b for a, b in SHAPES.values())
    assert m["dtypes"] == {"F32": 14} and m["settings"]["top_k"] == 8
    assert m["version"] == wf.__version__ and m["elapsed_seconds"] > 0


def test_nan_weights_are_reported_and_left_out_of_the_clustering(tmp_path, rng):
    path, tensors = llama(tmp_path, rng, layers=3)
    tensors["model.layers.1.self_attn.v_proj.weight"][0, 0] = np.nan
    save_file(tensors, str(path / "model.safetensors"))
    fp = fp_of(path)
    assert fp.meta["issues"] == [
        {"tensor": "model.layers.1.self_attn.v_proj.weight", "layer": 1, "type": "v", "nan": 1, "inf": 0}
    ]
    assert np.isnan(fp.singular_values[1, 2]).all() and fp.cluster_labels[1, 2] == -1
    assert np.isfinite(fp.std_vector).all()


def test_nan_weights_can_be_refused(tmp_path, rng):
    path, tensors = llama(tmp_path, rng, layers=2)
    tensors["model.layers.0.mlp.up_proj.weight"][1, 1] = np.inf
    save_file(tensors, str(path / "model.safetensors"))
    with pytest.raises(ValueError, match="mlp.up_proj.*1 Inf"):
        fp_of(path, nonfinite="refuse")


def test_tol_reaches_the_certified_singular_values(tmp_path, rng):
    # A flat spectrum large enough for the Krylov method: at the default tolerance its values
    # are ~1e-6 off; with tol=1e-8 they must be within 1e-8 of the exact ones.
    a = rng.standard_normal((1300, 1100)).astype(np.float32)
    save_file({"model.layers.0.mlp.up_proj.weight": a}, str(tmp_path / "model.safetensors"))
    exact = fp_of(tmp_path, method="exact").singular_values
    default = fp_of(tmp_path).singular_values
    tight = fp_of(tmp_path, tol=1e-8)
    assert np.max(np.abs(default - exact) / exact) > 1e-8
    assert np.max(np.abs(tight.singular_values - exact) / exact) <= 1e-8
    assert tight.meta["settings"]["tol"] == 1e-8


def test_tol_outside_zero_one_is_refused(tmp_path, rng):
    path, _ = llama(tmp_path, rng, layers=1)
    with pytest.raises(ValueError, match="tol"):
        fp_of(path, tol=0)
