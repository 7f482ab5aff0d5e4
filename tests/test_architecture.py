"""The one architecture reader: each family's configuration gives the head layout the invariants
use, and impossible configuration values are one ConfigError that names the key."""

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

import weightprint_fast as wf
from gguf_files import write_gguf


def write(tmp_path, tensors, config):
    save_file(
        {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()},
        str(tmp_path / "model.safetensors"),
    )
    (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path


def rnd(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def llama_layer(rng, heads=4, kv=2, hd=8, hidden=32, ffn=48, prefix="model.layers.0."):
    return {
        prefix + "input_layernorm.weight": 1 + 0.1 * rnd(rng, hidden),
        prefix + "self_attn.q_proj.weight": rnd(rng, heads * hd, hidden),
        prefix + "self_attn.k_proj.weight": rnd(rng, kv * hd, hidden),
        prefix + "self_attn.v_proj.weight": rnd(rng, kv * hd, hidden),
        prefix + "self_attn.o_proj.weight": rnd(rng, hidden, heads * hd),
        prefix + "post_attention_layernorm.weight": 1 + 0.1 * rnd(rng, hidden),
        prefix + "mlp.gate_proj.weight": rnd(rng, ffn, hidden),
        prefix + "mlp.up_proj.weight": rnd(rng, ffn, hidden),
        prefix + "mlp.down_proj.weight": rnd(rng, hidden, ffn),
    }


LLAMA = {"model_type": "llama", "hidden_size": 32, "num_attention_heads": 4, "num_key_value_heads": 2}


def geometry_of(path):
    fp = wf.fingerprint(path, top_k=4, progress=False)
    assert fp.invariants is not None
    return fp.invariants.geometry


def test_llama_grouped_query_config_gives_its_head_layout(tmp_path, rng):
    assert geometry_of(write(tmp_path, llama_layer(rng), LLAMA)) == wf.AttentionGeometry(4, 2, 8)


def test_multimodal_text_config_is_read(tmp_path, rng):
    config = {"model_type": "gemma3", "text_config": {k: v for k, v in LLAMA.items() if k != "model_type"}}
    assert geometry_of(write(tmp_path, llama_layer(rng), config)) == wf.AttentionGeometry(4, 2, 8)


def test_missing_kv_head_count_is_read_off_the_k_matrix(tmp_path, rng):
    config = {k: v for k, v in LLAMA.items() if k != "num_key_value_heads"}
    assert geometry_of(write(tmp_path, llama_layer(rng), config)) == wf.AttentionGeometry(4, 2, 8)


def test_explicit_head_dim_is_used(tmp_path, rng):
    tensors = llama_layer(rng, heads=2, kv=1, hd=16, hidden=24)
    config = {"model_type": "llama", "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 16}
    assert geometry_of(write(tmp_path, tensors, config)) == wf.AttentionGeometry(2, 1, 16)


def test_falcon_multi_query_gets_its_geometry_and_invariants(tmp_path, rng):
    heads, hd, hidden = 4, 8, 32
    tensors = {
        "transformer.h.0.input_layernorm.weight": 1 + 0.1 * rnd(rng, hidden),
        "transformer.h.0.self_attention.query_key_value.weight": rnd(rng, (heads + 2) * hd, hidden),
        "transformer.h.0.self_attention.dense.weight": rnd(rng, hidden, heads * hd),
        "transformer.h.0.mlp.dense_h_to_4h.weight": rnd(rng, 4 * hidden, hidden),
        "transformer.h.0.mlp.dense_4h_to_h.weight": rnd(rng, hidden, 4 * hidden),
    }
    config = {"model_type": "falcon", "n_head": heads, "hidden_size": hidden, "multi_query": True}
    fp = wf.fingerprint(write(tmp_path, tensors, config), top_k=4, progress=False)
    assert fp.invariants.geometry == wf.AttentionGeometry(heads, 1, hd)
    assert fp.invariants.qk.shape == (1, heads, 4) and not np.isnan(fp.invariants.qk).any()
    assert fp.matrix_shapes["k"] == [hd, hidden]


def test_falcon_new_decoder_architecture_layout(tmp_path, rng):
    heads, kv, hd, hidden = 4, 2, 8, 32
    tensors = {
        "transformer.h.0.self_attention.query_key_value.weight": rnd(rng, (heads + 2 * kv) * hd, hidden),
        "transformer.h.0.self_attention.dense.weight": rnd(rng, hidden, heads * hd),
    }
    config = {
        "model_type": "falcon",
        "num_attention_heads": heads,
        "num_kv_heads": kv,
        "hidden_size": hidden,
        "new_decoder_architecture": True,
    }
    assert geometry_of(write(tmp_path, tensors, config)) == wf.AttentionGeometry(heads, kv, hd)


def test_phi3_fused_qkv_geometry(tmp_path, rng):
    tensors = {
        "model.layers.0.self_attn.qkv_proj.weight": rnd(rng, (4 + 2 * 2) * 8, 32),
        "model.layers.0.self_attn.o_proj.weight": rnd(rng, 32, 32),
    }
    assert geometry_of(write(tmp_path, tensors, dict(LLAMA, model_type="phi3"))) == wf.AttentionGeometry(
        4, 2, 8
    )


def test_gpt2_conv1d_geometry(tmp_path, rng):
    tensors = {
        "h.0.attn.c_attn.weight": rnd(rng, 32, 96),
        "h.0.attn.c_proj.weight": rnd(rng, 32, 32),
    }
    assert geometry_of(write(tmp_path, tensors, {"model_type": "gpt2", "n_head": 4})) == wf.AttentionGeometry(
        4, 4, 8
    )


def test_gpt_neox_geometry(tmp_path, rng):
    tensors = {
        "gpt_neox.layers.0.attention.query_key_value.weight": rnd(rng, 96, 32),
        "gpt_neox.layers.0.attention.dense.weight": rnd(rng, 32, 32),
    }
    config = {"model_type": "gpt_neox", "num_attention_heads": 4, "hidden_size": 32}
    assert geometry_of(write(tmp_path, tensors, config)) == wf.AttentionGeometry(4, 4, 8)


def test_bert_is_post_norm_and_its_norms_are_not_folded(tmp_path, rng):
    tensors = {}
    for name, shape in [
        ("attention.self.query", (32, 32)),
        ("attention.self.key", (32, 32)),
        ("attention.self.value", (32, 32)),
        ("attention.output.dense", (32, 32)),
        ("intermediate.dense", (64, 32)),
        ("output.dense", (32, 64)),
    ]:
        tensors[f"encoder.layer.0.{name}.weight"] = rnd(rng, *shape)
    fp = wf.fingerprint(
        write(tmp_path, tensors, {"model_type": "bert", "num_attention_heads": 4}), top_k=4, progress=False
    )
    assert fp.invariants.geometry == wf.AttentionGeometry(4, 4, 8) and not fp.invariants.norms_folded
    assert wf.read_architecture({"model_type": "bert"}).post_norm


def test_sandwich_norms_are_recognised(tmp_path, rng):
    tensors = llama_layer(rng)
    for name in ("pre_feedforward_layernorm", "post_feedforward_layernorm"):
        tensors[f"model.layers.0.{name}.weight"] = 1 + 0.1 * rnd(rng, 32)
    fp = wf.fingerprint(write(tmp_path, tensors, dict(LLAMA, model_type="gemma2")), top_k=4, progress=False)
    assert fp.invariants.sandwich_norms


def test_mixtral_attention_geometry_beside_its_experts(tmp_path, rng):
    tensors = {
        "model.layers.0.self_attn.q_proj.weight": rnd(rng, 32, 32),
        "model.layers.0.self_attn.k_proj.weight": rnd(rng, 16, 32),
        "model.layers.0.block_sparse_moe.experts.0.w1.weight": rnd(rng, 48, 32),
        "model.layers.0.block_sparse_moe.experts.1.w1.weight": rnd(rng, 48, 32),
    }
    assert geometry_of(write(tmp_path, tensors, dict(LLAMA, model_type="mixtral"))) == wf.AttentionGeometry(
        4, 2, 8
    )


def test_mpnet_is_post_norm_with_its_head_layout(tmp_path, rng):
    tensors = {f"encoder.layer.0.attention.attn.{t}.weight": rnd(rng, 32, 32) for t in "qkvo"}
    fp = wf.fingerprint(
        write(tmp_path, tensors, {"model_type": "mpnet", "num_attention_heads": 4}), top_k=4, progress=False
    )
    assert fp.invariants.geometry == wf.AttentionGeometry(4, 4, 8) and not fp.invariants.norms_folded


def test_gguf_metadata_gives_the_head_layout(tmp_path, rng):
    tensors = {"blk.0.attn_q.weight": rnd(rng, 32, 32), "blk.0.attn_k.weight": rnd(rng, 16, 32)}
    path = write_gguf(tmp_path / "m.gguf", tensors, heads=4, kv_heads=2, blocks=1)
    assert geometry_of(path) == wf.AttentionGeometry(4, 2, 8)


def test_gemma_norm_offset_is_one_in_hugging_face_layout_only():
    assert wf.read_architecture({"model_type": "gemma3"}).norm_offset == 1.0
    assert wf.read_architecture({"general.architecture": "gemma3"}).norm_offset == 0.0


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("num_attention_heads", 0.5),
        ("num_attention_heads", [8]),
        ("num_attention_heads", float("inf")),
        ("num_attention_heads", 0),
        ("num_attention_heads", -4),
        ("num_attention_heads", "4"),
        ("num_attention_heads", True),
        ("num_attention_heads", 2**40),
        ("num_key_value_heads", 0),
        ("num_key_value_heads", 3),
        ("head_dim", -8),
        ("hidden_size", "big"),
        ("num_hidden_layers", 1.5),
        ("multi_query", "yes"),
    ],
)
def test_impossible_config_value_is_a_config_error_naming_the_key(tmp_path, rng, key, value):
    write(tmp_path, llama_layer(rng), dict(LLAMA, **{key: value}))
    with pytest.raises(wf.ConfigError, match=f"config.json: .*{key}"):
        wf.fingerprint(tmp_path, top_k=4, progress=False)


def test_falcon_kv_count_of_zero_is_a_config_error(tmp_path, rng):
    config = {
        "model_type": "falcon",
        "num_attention_heads": 4,
        "num_kv_heads": 0,
        "new_decoder_architecture": True,
    }
    with pytest.raises(wf.ConfigError, match="num_kv_heads"):
        wf.read_architecture(config)


def test_head_counts_that_contradict_the_shapes_are_a_config_error(tmp_path, rng):
    write(tmp_path, llama_layer(rng), dict(LLAMA, num_attention_heads=3))
    with pytest.raises(wf.ConfigError, match="num_attention_heads"):
        wf.fingerprint(tmp_path, top_k=4, progress=False)


def test_gguf_head_count_stored_as_a_float_is_a_config_error(tmp_path, rng):
    tensors = {"blk.0.attn_q.weight": rnd(rng, 32, 32), "blk.0.attn_k.weight": rnd(rng, 16, 32)}

    def float_heads(w):
        w.add_float32("llama.attention.head_count_kv", 2.0)

    path = write_gguf(tmp_path / "m.gguf", tensors, heads=4, kv_heads=2, blocks=1, extra=float_heads)
    with pytest.raises(wf.ConfigError, match=r"GGUF metadata.*attention.head_count_kv"):
        wf.fingerprint(path, top_k=4, progress=False)


def test_config_that_is_not_an_object_is_a_config_error(tmp_path, rng):
    write(tmp_path, llama_layer(rng), LLAMA)
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(wf.ConfigError, match="not a JSON object"):
        wf.fingerprint(tmp_path, top_k=4, progress=False)
