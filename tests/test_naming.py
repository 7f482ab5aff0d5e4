"""Every supported naming scheme, on small synthetic checkpoints: the right matrices land in the
right (layer, type) cells, with fused tensors split exactly."""

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

import weightprint_fast as wf
from weightprint_fast.naming import map_tensors

K = 4


def make(tmp_path, tensors, config=None):
    save_file(
        {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()},
        str(tmp_path / "model.safetensors"),
    )
    if config is not None:
        (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path


def check(fp, expected):
    """expected: {(layer, type): [matrices]} -> the fingerprint's cells equal numpy on them."""
    assert fp.layers == 1 + max(layer for layer, _ in expected)
    assert set(fp.types) == {t for _, t in expected}
    for (layer, t), mats in expected.items():
        j = fp.types.index(t)
        flat = np.concatenate([m.astype(np.float64).ravel() for m in mats])
        assert fp.layer_std[layer, j] == pytest.approx(flat.std(), rel=1e-9), (layer, t)
        sv = np.mean([np.linalg.svd(m.astype(np.float64), compute_uv=False)[:K] for m in mats], axis=0)
        np.testing.assert_allclose(
            fp.singular_values[layer, j, : len(sv)], sv, rtol=1e-5, err_msg=str((layer, t))
        )


def rnd(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def fp_of(path, **kw):
    return wf.fingerprint(path, top_k=K, method="exact", progress=False, **kw)


@pytest.mark.parametrize("prefix", ["model.", "language_model.model.", "model.language_model."])
def test_llama_style_names(tmp_path, rng, prefix):
    tensors, expected = {}, {}
    for layer in range(2):
        for t, shape in {"q": (16, 16), "k": (8, 16), "v": (8, 16), "o": (16, 16)}.items():
            tensors[f"{prefix}layers.{layer}.self_attn.{t}_proj.weight"] = w = rnd(rng, *shape)
            expected[(layer, t)] = [w]
        for t, shape in {"gate": (24, 16), "up": (24, 16), "down": (16, 24)}.items():
            tensors[f"{prefix}layers.{layer}.mlp.{t}_proj.weight"] = w = rnd(rng, *shape)
            expected[(layer, t)] = [w]
        tensors[f"{prefix}layers.{layer}.self_attn.q_proj.bias"] = rnd(rng, 16)  # Qwen2 biases: ignored
        tensors[f"{prefix}layers.{layer}.input_layernorm.weight"] = rnd(rng, 16)
    tensors[f"{prefix}embed_tokens.weight"] = rnd(rng, 50, 16)
    check(fp_of(make(tmp_path, tensors)), expected)


def test_phi3_fused_qkv_and_gate_up_are_split_by_rows(tmp_path, rng):
    heads, kv, hd, hidden, ffn = 4, 2, 8, 32, 48
    tensors, expected = {}, {}
    for layer in range(2):
        qkv = rnd(rng, (heads + 2 * kv) * hd, hidden)
        gate_up = rnd(rng, 2 * ffn, hidden)
        tensors[f"model.layers.{layer}.self_attn.qkv_proj.weight"] = qkv
        tensors[f"model.layers.{layer}.mlp.gate_up_proj.weight"] = gate_up
        tensors[f"model.layers.{layer}.self_attn.o_proj.weight"] = o = rnd(rng, hidden, hidden)
        tensors[f"model.layers.{layer}.mlp.down_proj.weight"] = d = rnd(rng, hidden, ffn)
        expected.update(
            {
                (layer, "q"): [qkv[:32]],
                (layer, "k"): [qkv[32:48]],
                (layer, "v"): [qkv[48:]],
                (layer, "gate"): [gate_up[:ffn]],
                (layer, "up"): [gate_up[ffn:]],
                (layer, "o"): [o],
                (layer, "down"): [d],
            }
        )
    config = {
        "model_type": "phi3",
        "hidden_size": hidden,
        "num_attention_heads": heads,
        "num_key_value_heads": kv,
    }
    check(fp_of(make(tmp_path, tensors, config)), expected)


def test_phi3_fused_qkv_without_config_is_a_clear_error(tmp_path, rng):
    make(tmp_path, {"model.layers.0.self_attn.qkv_proj.weight": rnd(rng, 48, 16)})
    with pytest.raises(wf.ConfigError, match="config.json: a fused QKV.*needs num_attention_heads"):
        fp_of(tmp_path)


def test_gpt2_conv1d_c_attn_is_split_by_columns(tmp_path, rng):
    d = 16
    tensors, expected = {}, {}
    for layer in range(2):
        c_attn = rnd(rng, d, 3 * d)  # Conv1D stores (in, out)
        tensors[f"transformer.h.{layer}.attn.c_attn.weight"] = c_attn
        tensors[f"transformer.h.{layer}.attn.c_proj.weight"] = o = rnd(rng, d, d)
        tensors[f"transformer.h.{layer}.mlp.c_fc.weight"] = up = rnd(rng, d, 4 * d)
        tensors[f"transformer.h.{layer}.mlp.c_proj.weight"] = down = rnd(rng, 4 * d, d)
        expected.update(
            {
                (layer, "q"): [c_attn[:, :d]],
                (layer, "k"): [c_attn[:, d : 2 * d]],
                (layer, "v"): [c_attn[:, 2 * d :]],
                (layer, "o"): [o],
                (layer, "up"): [up],
                (layer, "down"): [down],
            }
        )
    tensors["transformer.wte.weight"] = rnd(rng, 30, d)
    check(fp_of(make(tmp_path, tensors, {"model_type": "gpt2", "n_head": 2})), expected)


def test_gpt_neox_interleaved_qkv_is_gathered_per_head(tmp_path, rng):
    heads, hd = 4, 8
    hidden = heads * hd
    qkv = rnd(rng, 3 * hidden, hidden)
    per_head = qkv.reshape(heads, 3, hd, hidden)
    tensors = {
        "gpt_neox.layers.0.attention.query_key_value.weight": qkv,
        "gpt_neox.layers.0.attention.dense.weight": (o := rnd(rng, hidden, hidden)),
        "gpt_neox.layers.0.mlp.dense_h_to_4h.weight": (up := rnd(rng, 4 * hidden, hidden)),
        "gpt_neox.layers.0.mlp.dense_4h_to_h.weight": (down := rnd(rng, hidden, 4 * hidden)),
    }
    expected = {(0, t): [per_head[:, i].reshape(hidden, hidden)] for i, t in enumerate("qkv")}
    expected.update({(0, "o"): [o], (0, "up"): [up], (0, "down"): [down]})
    check(
        fp_of(
            make(
                tmp_path,
                tensors,
                {"model_type": "gpt_neox", "num_attention_heads": heads, "hidden_size": hidden},
            )
        ),
        expected,
    )


def test_falcon_new_decoder_architecture_groups_queries_per_kv_head(tmp_path, rng):
    heads, kv, hd = 4, 2, 8
    hidden, per = heads * hd, heads // kv
    qkv = rnd(rng, (heads + 2 * kv) * hd, hidden)
    groups = qkv.reshape(kv, per + 2, hd, hidden)
    tensors = {
        "transformer.h.0.self_attention.query_key_value.weight": qkv,
        "transformer.h.0.self_attention.dense.weight": (o := rnd(rng, hidden, hidden)),
    }
    expected = {
        (0, "q"): [groups[:, :per].reshape(-1, hidden)],
        (0, "k"): [groups[:, per].reshape(-1, hidden)],
        (0, "v"): [groups[:, per + 1].reshape(-1, hidden)],
        (0, "o"): [o],
    }
    config = {
        "model_type": "falcon",
        "num_attention_heads": heads,
        "num_kv_heads": kv,
        "hidden_size": hidden,
        "new_decoder_architecture": True,
    }
    check(fp_of(make(tmp_path, tensors, config)), expected)


def test_bert_encoder_names(tmp_path, rng):
    d = 16
    tensors, expected = {}, {}
    for layer in range(2):
        for name, t, shape in [
            ("attention.self.query", "q", (d, d)),
            ("attention.self.key", "k", (d, d)),
            ("attention.self.value", "v", (d, d)),
            ("attention.output.dense", "o", (d, d)),
            ("intermediate.dense", "up", (4 * d, d)),
            ("output.dense", "down", (d, 4 * d)),
        ]:
            tensors[f"encoder.layer.{layer}.{name}.weight"] = w = rnd(rng, *shape)
            expected[(layer, t)] = [w]
        tensors[f"encoder.layer.{layer}.output.LayerNorm.weight"] = rnd(rng, d)
    check(fp_of(make(tmp_path, tensors, {"model_type": "bert"})), expected)


def test_mpnet_names(tmp_path, rng):
    tensors, expected = {}, {}
    for t in "qkvo":
        tensors[f"encoder.layer.0.attention.attn.{t}.weight"] = w = rnd(rng, 16, 16)
        expected[(0, t)] = [w]
    check(fp_of(make(tmp_path, tensors)), expected)


def test_mixtral_experts_pool_into_their_type(tmp_path, rng):
    tensors, expected = {}, {}
    for w_name, t, shape in [("w1", "gate", (24, 16)), ("w3", "up", (24, 16)), ("w2", "down", (16, 24))]:
        mats = []
        for e in range(3):
            tensors[f"model.layers.0.block_sparse_moe.experts.{e}.{w_name}.weight"] = w = rnd(rng, *shape)
            mats.append(w)
        expected[(0, t)] = mats
    tensors["model.layers.0.self_attn.q_proj.weight"] = q = rnd(rng, 16, 16)
    expected[(0, "q")] = [q]
    check(fp_of(make(tmp_path, tensors)), expected)


def test_stacked_3d_experts_are_one_matrix_each(tmp_path, rng):
    gate = rnd(rng, 3, 24, 16)
    tensors = {"model.layers.0.mlp.experts.gate_proj.weight": gate}
    check(fp_of(make(tmp_path, tensors)), {(0, "gate"): list(gate)})


def test_gguf_names_map_to_types():
    mapped = map_tensors(
        [
            ("blk.3.attn_q.weight", (8, 8)),
            ("blk.3.attn_output.weight", (8, 8)),
            ("blk.0.ffn_down.weight", (8, 16)),
            ("blk.1.ffn_gate_exps.weight", (2, 16, 8)),
            ("token_embd.weight", (100, 8)),
            ("blk.0.attn_norm.weight", (8,)),
        ]
    )
    got = sorted((p.layer, p.type, p.expert) for m in mapped for p in m.parts)
    assert got == [(0, "down", None), (1, "gate", 0), (1, "gate", 1), (3, "o", None), (3, "q", None)]


def test_custom_name_patterns_map_unknown_names(tmp_path, rng):
    make(
        tmp_path,
        {"net.block3.attn_query.w": (q := rnd(rng, 8, 8)), "net.block3.ff_out.w": (d := rnd(rng, 8, 16))},
    )
    fp = fp_of(
        tmp_path,
        name_patterns={r"block(?P<layer>\d+)\.attn_query": "q", r"block(?P<layer>\d+)\.ff_out": "down"},
    )
    assert fp.types == ["q", "down"] and fp.layers == 4
    assert fp.layer_std[3, 0] == pytest.approx(q.astype(np.float64).std(), rel=1e-9)
    assert fp.layer_std[3, 1] == pytest.approx(d.astype(np.float64).std(), rel=1e-9)
    assert np.isnan(fp.layer_std[0, 0])


def test_unknown_architecture_lists_what_was_found(tmp_path, rng):
    make(tmp_path, {"net.block3.attn_query.w": rnd(rng, 8, 8)})
    with pytest.raises(wf.UnknownArchitectureError, match="net.block3.attn_query.w.*name_patterns"):
        fp_of(tmp_path)
