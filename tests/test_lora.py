"""LoRA adapters: vectors from the factors equal those of the dense deltas."""

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

import weightprint_fast as wf
from weightprint_fast.readers.lora import delta_moments, delta_singular_values

MODULES = {"self_attn.q_proj": (32, 24), "self_attn.v_proj": (16, 24), "mlp.down_proj": (24, 40)}


def adapter_and_dense(tmp_path, rng, rank=4, alpha=8, rslora=False, layers=3):
    adapter, dense = {}, {}
    scale = alpha / (np.sqrt(rank) if rslora else rank)
    for layer in range(layers):
        for name, (m, n) in MODULES.items():
            a = rng.standard_normal((rank, n)).astype(np.float32)
            b = rng.standard_normal((m, rank)).astype(np.float32)
            module = f"model.layers.{layer}.{name}"
            adapter[f"base_model.model.{module}.lora_A.weight"] = a
            adapter[f"base_model.model.{module}.lora_B.weight"] = b
            dense[f"{module}.weight"] = (scale * b.astype(np.float64) @ a.astype(np.float64)).astype(
                np.float32
            )
    ad = tmp_path / "adapter"
    ad.mkdir()
    save_file(adapter, str(ad / "adapter_model.safetensors"))
    (ad / "adapter_config.json").write_text(
        json.dumps({"r": rank, "lora_alpha": alpha, "use_rslora": rslora})
    )
    dd = tmp_path / "dense"
    dd.mkdir()
    save_file(dense, str(dd / "model.safetensors"))
    return ad, dd


def assert_same_vectors(fa, fd):
    assert fa.types == fd.types == ["q", "v", "down"]
    np.testing.assert_allclose(fa.std_vector, fd.std_vector, rtol=1e-5)
    np.testing.assert_allclose(fa.layer_std, fd.layer_std, rtol=1e-5)
    np.testing.assert_allclose(
        fa.singular_values, fd.singular_values, rtol=1e-5, atol=1e-4 * np.nanmax(fd.singular_values)
    )
    np.testing.assert_array_equal(fa.cluster_labels, fd.cluster_labels)


@pytest.mark.parametrize("rslora", [False, True])
def test_adapter_vectors_equal_those_of_dense_deltas(tmp_path, rng, rslora):
    ad, dd = adapter_and_dense(tmp_path, rng, rslora=rslora)
    fa = wf.fingerprint(ad, top_k=8, method="exact", progress=False)
    fd = wf.fingerprint(dd, top_k=8, method="exact", progress=False)
    assert fa.meta["format"] == "lora"
    assert_same_vectors(fa, fd)


def test_delta_moments_are_exact(rng):
    a, b = rng.standard_normal((5, 30)), rng.standard_normal((20, 5)) + 0.3
    dense = 1.7 * b @ a
    m = delta_moments(a, b, 1.7)
    assert m.count == dense.size
    assert m.mean == pytest.approx(dense.mean(), rel=1e-12)
    assert m.std == pytest.approx(dense.std(), rel=1e-12)


def test_delta_singular_values_are_exact(rng):
    a, b = rng.standard_normal((6, 50)), rng.standard_normal((40, 6))
    np.testing.assert_allclose(
        delta_singular_values(a, b, -2.0, 10), np.linalg.svd(-2.0 * b @ a, compute_uv=False)[:6], rtol=1e-10
    )


def test_gpt2_adapter_with_fan_in_fan_out_splits_c_attn_rows_of_the_delta(tmp_path, rng):
    d, rank = 12, 3
    a = rng.standard_normal((rank, d))
    b = rng.standard_normal((3 * d, rank))
    ad = tmp_path / "adapter"
    ad.mkdir()
    save_file(
        {
            "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight": a.astype(np.float32),
            "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight": b.astype(np.float32),
        },
        str(ad / "adapter_model.safetensors"),
    )
    (ad / "adapter_config.json").write_text(
        json.dumps({"r": rank, "lora_alpha": rank, "fan_in_fan_out": True})
    )
    fp = wf.fingerprint(ad, top_k=3, progress=False)
    delta = b.astype(np.float32).astype(np.float64) @ a.astype(np.float32).astype(np.float64)
    for i, t in enumerate("qkv"):
        part = delta[i * d : (i + 1) * d]
        assert fp.layer_std[0, fp.types.index(t)] == pytest.approx(part.std(), rel=1e-6)


def test_adapter_with_a_missing_factor_is_a_format_error(tmp_path, rng):
    ad = tmp_path / "adapter"
    ad.mkdir()
    save_file(
        {"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": np.ones((2, 4), np.float32)},
        str(ad / "adapter_model.safetensors"),
    )
    (ad / "adapter_config.json").write_text(json.dumps({"r": 2, "lora_alpha": 2}))
    with pytest.raises(wf.WeightprintFormatError, match="not both"):
        wf.fingerprint(ad, progress=False)


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"r": 4, "lora_alpha": "eight"}, "lora_alpha"),
        ({"r": 4, "lora_alpha": float("inf")}, "lora_alpha"),
        ({"r": 4, "alpha_pattern": {"q_proj": None}}, "alpha_pattern"),
        ({"r": 4, "alpha_pattern": {"(": 2}}, "alpha_pattern"),
        ({"r": 4, "alpha_pattern": [1]}, "alpha_pattern"),
    ],
)
def test_an_impossible_adapter_config_value_is_a_config_error_naming_the_key(tmp_path, rng, config, key):
    ad, _ = adapter_and_dense(tmp_path, rng)
    (ad / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(wf.ConfigError, match=f"adapter_config.json: .*{key}"):
        wf.fingerprint(ad, progress=False)


def test_an_adapter_config_that_is_not_an_object_is_a_config_error(tmp_path, rng):
    ad, _ = adapter_and_dense(tmp_path, rng)
    (ad / "adapter_config.json").write_text("[4]")
    with pytest.raises(wf.ConfigError, match="not a JSON object"):
        wf.fingerprint(ad, progress=False)
