"""Lineage that survives function-preserving rewrites: the engine's Gram blocks, the invariants,
and compare's verdict on rewritten, quantized, pruned and unrelated copies of small models whose
function is checked with a forward pass."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

import rewrites as rw
import weightprint_fast as wf
from weightprint_fast.engine import engine

HIDDEN, HEADS, KV, HEAD_DIM, FFN, LAYERS, VOCAB = 64, 4, 2, 16, 96, 3, 50
CONFIG = {
    "model_type": "llama",
    "hidden_size": HIDDEN,
    "num_attention_heads": HEADS,
    "num_key_value_heads": KV,
    "intermediate_size": FFN,
    "num_hidden_layers": LAYERS,
}


def trained_like(rng: np.random.Generator, m: int, n: int) -> np.ndarray:
    """Low-rank structure plus noise, with a decaying spectrum of its own, as trained weights have."""
    r = min(m, n) // 2
    s = rng.uniform(0.5, 2.0) / np.arange(1, r + 1) ** rng.uniform(0.3, 1.5)
    u, _ = np.linalg.qr(rng.standard_normal((m, r)))
    v, _ = np.linalg.qr(rng.standard_normal((n, r)))
    return ((u * s) @ v.T + 0.02 * rng.standard_normal((m, n))).astype(np.float32)


def llama(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = {
        "model.embed_tokens.weight": rng.standard_normal((VOCAB, HIDDEN)).astype(np.float32),
        "model.norm.weight": (1 + 0.3 * rng.standard_normal(HIDDEN)).astype(np.float32),
        "lm_head.weight": trained_like(rng, VOCAB, HIDDEN),
    }
    shapes = {
        "self_attn.q_proj": (HEADS * HEAD_DIM, HIDDEN),
        "self_attn.k_proj": (KV * HEAD_DIM, HIDDEN),
        "self_attn.v_proj": (KV * HEAD_DIM, HIDDEN),
        "self_attn.o_proj": (HIDDEN, HEADS * HEAD_DIM),
        "mlp.gate_proj": (FFN, HIDDEN),
        "mlp.up_proj": (FFN, HIDDEN),
        "mlp.down_proj": (HIDDEN, FFN),
    }
    for i in range(LAYERS):
        for name, shape in shapes.items():
            t[f"model.layers.{i}.{name}.weight"] = trained_like(rng, *shape)
        for norm in ("input_layernorm", "post_attention_layernorm"):
            t[f"model.layers.{i}.{norm}.weight"] = (1 + 0.3 * rng.standard_normal(HIDDEN)).astype(np.float32)
    return t


def rms_norm(x: np.ndarray, g: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * g


def rope(x: np.ndarray) -> np.ndarray:
    """Rotary embedding on (tokens, heads, head_dim), Hugging Face's rotate-half layout."""
    pos = np.arange(x.shape[0])[:, None, None]
    freq = 10000.0 ** (-np.arange(0, HEAD_DIM, 2) / HEAD_DIM)
    angle = np.concatenate([pos * freq, pos * freq], axis=-1)
    half = np.concatenate([-x[..., HEAD_DIM // 2 :], x[..., : HEAD_DIM // 2]], axis=-1)
    return x * np.cos(angle) + half * np.sin(angle)


def forward(t: dict[str, np.ndarray], tokens: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Logits of a Llama-style decoder (RMSNorm with epsilon ``eps``, RoPE, grouped-query causal
    attention, SwiGLU); with Gemma-2-style sandwich norms where the tensors have them (a norm on
    the attention output, and pre/post norms around the MLP)."""
    w = {k: v.astype(np.float64) for k, v in t.items()}
    h = w["model.embed_tokens.weight"][tokens]
    n = len(tokens)
    mask = np.triu(np.full((n, n), -np.inf), 1)
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        sandwich = p + "pre_feedforward_layernorm.weight" in w
        x = rms_norm(h, w[p + "input_layernorm.weight"], eps)
        q = rope((x @ w[p + "self_attn.q_proj.weight"].T).reshape(n, HEADS, HEAD_DIM))
        k = rope((x @ w[p + "self_attn.k_proj.weight"].T).reshape(n, KV, HEAD_DIM))
        v = (x @ w[p + "self_attn.v_proj.weight"].T).reshape(n, KV, HEAD_DIM)
        group = HEADS // KV
        out = np.empty((n, HEADS, HEAD_DIM))
        for head in range(HEADS):
            s = q[:, head] @ k[:, head // group].T / np.sqrt(HEAD_DIM) + mask
            a = np.exp(s - s.max(axis=1, keepdims=True))
            out[:, head] = (a / a.sum(axis=1, keepdims=True)) @ v[:, head // group]
        attn = out.reshape(n, -1) @ w[p + "self_attn.o_proj.weight"].T
        if sandwich:
            attn = rms_norm(attn, w[p + "post_attention_layernorm.weight"], eps)
        h = h + attn
        x = rms_norm(
            h,
            w[p + ("pre_feedforward_layernorm" if sandwich else "post_attention_layernorm") + ".weight"],
            eps,
        )
        g = x @ w[p + "mlp.gate_proj.weight"].T
        mlp = (g / (1 + np.exp(-g)) * (x @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
        if sandwich:
            mlp = rms_norm(mlp, w[p + "post_feedforward_layernorm.weight"], eps)
        h = h + mlp
    head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    return rms_norm(h, w["model.norm.weight"], eps) @ head.T


def sandwich(seed: int) -> dict[str, np.ndarray]:
    """The llama() model with Gemma-2-style sandwich norms added to every layer."""
    rng = np.random.default_rng(seed + 100)
    t = llama(seed)
    for i in range(LAYERS):
        for norm in ("pre_feedforward_layernorm", "post_feedforward_layernorm"):
            t[f"model.layers.{i}.{norm}.weight"] = (1 + 0.3 * rng.standard_normal(HIDDEN)).astype(np.float32)
    return t


def save(tmp_path, name: str, tensors: dict, config: dict = CONFIG):
    d = tmp_path / name
    d.mkdir()
    save_file(rw.contiguous(tensors), str(d / "model.safetensors"))
    (d / "config.json").write_text(json.dumps(config))
    return d


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    return save(tmp_path_factory.mktemp("base"), "base", llama(0))


@pytest.fixture(scope="module")
def base_fp(base_dir):
    return wf.fingerprint(base_dir, progress=False)


# --- the engine's Gram blocks ---------------------------------------------------------------


@pytest.mark.parametrize("columns", [False, True])
@pytest.mark.parametrize("threads", [1, 3])
def test_block_gram_matches_numpy(rng, columns, threads):
    a = rng.standard_normal((48, 40)).astype(np.float32)
    w = rng.standard_normal(48 if columns else 40)
    g = engine().block_gram(a, "F32", 48, 40, engine().BlockGramSpec(8, columns, list(w)), threads)
    x = a.astype(np.float64)
    x = (x * w[:, None]) if columns else (x * w[None, :])
    blocks = [
        x[:, b * 8 : (b + 1) * 8].T @ x[:, b * 8 : (b + 1) * 8]
        if columns
        else x[b * 8 : (b + 1) * 8] @ x[b * 8 : (b + 1) * 8].T
        for b in range((40 if columns else 48) // 8)
    ]
    np.testing.assert_allclose(g, np.stack(blocks), rtol=1e-12, atol=1e-12)


def test_block_gram_decodes_bf16(rng):
    from conftest import bf16_bits_to_f64, f32_to_bf16_bits

    bits = f32_to_bf16_bits(rng.standard_normal((32, 24)).astype(np.float32))
    g = engine().block_gram(bits, "BF16", 32, 24, engine().BlockGramSpec(4, False, []), 2)
    x = bf16_bits_to_f64(bits)
    np.testing.assert_allclose(g[3], x[12:16] @ x[12:16].T, rtol=1e-12)


@pytest.mark.parametrize("dtype", ["F32", "BF16", "Q4_K"])
@pytest.mark.parametrize("columns", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_blocks_of_one_are_weighted_squared_norms(rng, dtype, columns, weighted):
    # Blocks of one row (gate, up) or one column (down): their own kernel, per dtype path.
    from gguf_files import dequantize, random_blocks

    rows, cols = 90, 512
    buffer = random_blocks(dtype, rows * cols, rng)
    x = dequantize(buffer, dtype, (rows, cols))
    w = rng.uniform(0.5, 1.5, rows if columns else cols) if weighted else np.ones(rows if columns else cols)
    spec = engine().BlockGramSpec(1, columns, list(w) if weighted else [])
    g = engine().block_gram(buffer, dtype, rows, cols, spec, 3)
    want = ((x * w[:, None]) ** 2).sum(axis=0) if columns else ((x * w[None, :]) ** 2).sum(axis=1)
    np.testing.assert_allclose(g.ravel(), want, rtol=1e-12)


@pytest.mark.parametrize("columns", [False, True])
def test_blocks_of_one_refuse_nan_and_inf(rng, columns):
    for bad in (np.nan, np.inf):
        a = rng.standard_normal((70, 16)).astype(np.float32)
        a[65, 3] = bad
        with pytest.raises(ValueError, match="NaN"):
            engine().block_gram(a, "F32", 70, 16, engine().BlockGramSpec(1, columns, []), 2)


def test_block_gram_refuses_a_block_that_does_not_divide(rng):
    a = rng.standard_normal((10, 8)).astype(np.float32)
    with pytest.raises(ValueError, match="does not divide"):
        engine().block_gram(a, "F32", 10, 8, engine().BlockGramSpec(4, False, []), 1)


def test_block_gram_refuses_nan(rng):
    a = rng.standard_normal((8, 8)).astype(np.float32)
    a[5, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        engine().block_gram(a, "F32", 8, 8, engine().BlockGramSpec(2, True, []), 2)


# --- the rewrites are real: the function is preserved ---------------------------------------


@pytest.mark.parametrize("name", list(rw.REWRITES))
def test_rewrite_preserves_the_function(name):
    t = llama(0)
    tokens = np.array([3, 17, 5, 41, 8, 22])
    rewritten = rw.REWRITES[name](t, rw.layout(t, CONFIG), np.random.default_rng(1))
    before, after = forward(t, tokens), forward(rewritten, tokens)
    assert np.abs(after - before).max() <= 1e-4 * np.abs(before).max()
    assert any(not np.array_equal(t[k], rewritten[k]) for k in t)


# --- the verdict -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(rw.REWRITES))
def test_rewritten_copy_is_the_same_model(tmp_path, base_fp, name):
    t = llama(0)
    rewritten = rw.REWRITES[name](t, rw.layout(t, CONFIG), np.random.default_rng(2))
    c = wf.compare(base_fp, save(tmp_path, name, rewritten))
    assert c.verdict == "same-model", c.reason
    assert c.circuit_distance_max <= 1e-6


def test_rewritten_copy_reason_says_weights_were_rewritten(tmp_path, base_fp):
    t = llama(0)
    c = wf.compare(
        base_fp, save(tmp_path, "all", rw.rewrite_all(t, rw.layout(t, CONFIG), np.random.default_rng(3)))
    )
    assert "same function, weights rewritten" in c.reason
    assert c.spectral_distance > 0.01  # the matrices' own spectra moved: only the invariants see through it


def test_rewritten_and_quantized_copy_is_derived(tmp_path, base_fp):
    t = llama(0)
    q = rw.quantized(rw.rewrite_all(t, rw.layout(t, CONFIG), np.random.default_rng(4)), "Q8_0")
    c = wf.compare(base_fp, save(tmp_path, "q8", q))
    assert c.verdict == "same-family/derived", c.reason


def test_noised_rewritten_copy_is_derived(tmp_path, base_fp):
    t = llama(0)
    rng = np.random.default_rng(5)
    c = wf.compare(
        base_fp, save(tmp_path, "noise", rw.noised(rw.rewrite_all(t, rw.layout(t, CONFIG), rng), rng))
    )
    assert c.verdict == "same-family/derived", c.reason


def test_width_pruned_copy_is_derived(tmp_path, base_fp):
    t = llama(0)
    pruned, cfg = rw.width_pruned(t, rw.layout(t, CONFIG), CONFIG, keep_kv=1, keep_neurons=0.75)
    c = wf.compare(base_fp, save(tmp_path, "pruned", pruned, cfg))
    assert c.verdict == "same-family/derived", c.reason
    assert "heads" in c.reason and "MLP neurons" in c.reason


def test_copy_with_a_layer_dropped_is_derived(tmp_path, base_fp):
    t = rw.layers_dropped(llama(0), [1])
    c = wf.compare(base_fp, save(tmp_path, "dropped", t, dict(CONFIG, num_hidden_layers=LAYERS - 1)))
    assert c.verdict == "same-family/derived", c.reason


def test_unrelated_model_of_the_same_shapes_is_unrelated(tmp_path, base_fp):
    c = wf.compare(base_fp, save(tmp_path, "other", llama(1)))
    assert c.verdict == "unrelated", c.reason


def test_two_untrained_models_are_not_called_related(tmp_path):
    def fresh(seed):
        rng = np.random.default_rng(seed)
        return {
            k: (0.02 * rng.standard_normal(v.shape)).astype(np.float32) if v.ndim == 2 else np.ones_like(v)
            for k, v in llama(0).items()
        }

    c = wf.compare(save(tmp_path, "fresh1", fresh(1)), save(tmp_path, "fresh2", fresh(2)))
    assert not c.related, c.reason


def twice_as_wide(seed: int) -> dict[str, np.ndarray]:
    """A model of llama()'s layout and names with its residual axis doubled (the input of q, k, v,
    gate, up; the output of o and down), trained-like weights of its own, norms all ones."""
    rng = np.random.default_rng(seed)

    def widened(name, shape):
        axis = 0 if name.endswith(("o_proj.weight", "down_proj.weight")) else 1
        return tuple(x * 2 if i == axis else x for i, x in enumerate(shape))

    return {
        k: trained_like(rng, *widened(k, v.shape)) if v.ndim == 2 else np.ones(2 * HIDDEN, np.float32)
        for k, v in llama(0).items()
    }


def test_different_widths_without_common_circuits_are_not_called_unrelated(tmp_path, base_fp):
    """A sibling of another size cannot be told from an unrelated model by these signals."""
    wide = twice_as_wide(9)
    c = wf.compare(base_fp, save(tmp_path, "wide", wide, dict(CONFIG, hidden_size=2 * HIDDEN)))
    assert c.verdict == "undetermined", c.reason
    assert c.spectral_distance is None


# --- scales of the residual stream -------------------------------------------------------------

TOKENS = np.array([3, 17, 5, 41, 8, 22])


def preserves(before: dict, after: dict, eps_scale: float = 1.0, eps: float = 1e-6) -> bool:
    """Whether the rewritten model computes the same logits (its norms' epsilon x eps_scale)."""
    a, b = forward(before, TOKENS, eps), forward(after, TOKENS, eps * eps_scale)
    return bool(np.abs(b - a).max() <= 1e-4 * np.abs(a).max())


@pytest.mark.parametrize("alpha", [30.0, 0.1, 4.0])
def test_a_globally_rescaled_residual_stream_is_the_same_model(tmp_path, base_fp, alpha):
    t = llama(0)
    scaled = rw.scale_residual(t, rw.layout(t, CONFIG), alpha)
    assert preserves(t, scaled, alpha**2)
    c = wf.compare(base_fp, save(tmp_path, "scaled", scaled, dict(CONFIG, rms_norm_eps=1e-6 * alpha**2)))
    assert c.verdict == "same-model", c.reason
    assert c.scale_spread <= 1e-6


def test_a_rescaled_stream_composed_with_every_rewrite_is_the_same_model(tmp_path, base_fp):
    t = llama(0)
    lay = rw.layout(t, CONFIG)
    copy = rw.scale_residual(rw.rewrite_all(t, lay, np.random.default_rng(6)), lay, 8.0)
    assert preserves(t, copy, 64.0)
    assert wf.compare(base_fp, save(tmp_path, "copy", copy)).verdict == "same-model"


def test_a_rescaled_stream_through_q8_0_is_derived(tmp_path, base_fp):
    t = llama(0)
    copy = rw.quantized(rw.scale_residual(t, rw.layout(t, CONFIG), 4.0), "Q8_0")
    c = wf.compare(base_fp, save(tmp_path, "q8", copy))
    assert c.verdict == "same-family/derived", c.reason


def test_a_rescaled_and_noised_stream_is_derived(tmp_path, base_fp):
    t = llama(0)
    rng = np.random.default_rng(7)
    copy = rw.noised(
        rw.scale_residual(rw.rewrite_all(t, rw.layout(t, CONFIG), rng), rw.layout(t, CONFIG), 8.0), rng
    )
    c = wf.compare(base_fp, save(tmp_path, "noised", copy))
    assert c.verdict == "same-family/derived", c.reason


def test_per_layer_output_scales_without_sandwich_norms_are_not_the_same_model(tmp_path, base_fp):
    """Without norms on the branch outputs, scaling one layer's o_proj changes the function: the
    circuits still match (a derivative), but it is not a rewrite of the same model."""
    t = llama(0)
    t["model.layers.1.self_attn.o_proj.weight"] = t["model.layers.1.self_attn.o_proj.weight"] * 3
    assert not preserves(llama(0), t)
    c = wf.compare(base_fp, save(tmp_path, "one-layer", t))
    assert c.verdict == "same-family/derived" and c.scale_spread > 0.5, c.reason


def test_per_layer_scales_that_sandwich_norms_absorb_are_the_same_model(tmp_path):
    t = sandwich(0)
    scaled = rw.scale_layers(t, rw.layout(t, CONFIG), np.random.default_rng(8))
    # Exact while the norms' epsilon is small next to the branch outputs' mean square (here
    # ~1e-4 at a factor of e^-1.5, so a model with epsilon 1e-6 would move by ~1%).
    assert preserves(t, scaled, eps=1e-12)
    base = wf.fingerprint(save(tmp_path, "base", t), progress=False)
    c = wf.compare(base, save(tmp_path, "scaled", scaled))
    assert base.invariants.sandwich_norms
    assert c.verdict == "same-model", c.reason
    assert c.scale_spread > 0.1  # the layers' scales differ: only the sandwich norms make it a rewrite


def test_a_widened_and_rotated_residual_stream_is_the_same_model(tmp_path, base_fp):
    t = llama(0)
    wide = rw.widen_residual(t, rw.layout(t, CONFIG), np.random.default_rng(9), extra=16)
    assert wide["model.layers.0.self_attn.q_proj.weight"].shape[1] == HIDDEN + 16
    assert preserves(t, wide)
    c = wf.compare(base_fp, save(tmp_path, "wide", wide, dict(CONFIG, hidden_size=HIDDEN + 16)))
    assert c.verdict == "same-model", c.reason


def test_a_widened_copy_through_q8_0_is_derived(tmp_path, base_fp):
    t = llama(0)
    wide = rw.quantized(
        rw.widen_residual(t, rw.layout(t, CONFIG), np.random.default_rng(10), extra=32), "Q8_0"
    )
    c = wf.compare(base_fp, save(tmp_path, "wide-q8", wide, dict(CONFIG, hidden_size=HIDDEN + 32)))
    assert c.verdict == "same-family/derived", c.reason
    assert "residual width 64 vs 96" in c.reason


def test_a_sliced_residual_stream_is_derived_and_says_what_was_kept(tmp_path, base_fp):
    t = llama(0)
    keep = int(HIDDEN * 0.9)
    sliced = rw.slice_residual(t, rw.layout(t, CONFIG), keep)
    c = wf.compare(base_fp, save(tmp_path, "sliced", sliced, dict(CONFIG, hidden_size=keep)))
    assert c.verdict == "same-family/derived", c.reason
    assert f"residual width {HIDDEN} vs {keep}" in c.reason


def test_an_unrelated_model_of_another_width_is_unrelated(tmp_path, base_fp):
    rng = np.random.default_rng(11)

    def widened(name, shape):
        axis = 0 if name.endswith(("o_proj.weight", "down_proj.weight")) else 1
        return tuple(x + 32 if i == axis and x == HIDDEN else x for i, x in enumerate(shape))

    other = {
        k: trained_like(rng, *widened(k, v.shape))
        if v.ndim == 2
        else (1 + 0.3 * rng.standard_normal(v.shape[0] + 32)).astype(np.float32)
        for k, v in llama(5).items()
    }
    c = wf.compare(base_fp, save(tmp_path, "other-width", other, dict(CONFIG, hidden_size=HIDDEN + 32)))
    assert c.verdict == "unrelated", c.reason
    assert "sizes differ" in c.reason


def test_sandwich_models_of_different_seeds_stay_unrelated(tmp_path):
    a = wf.fingerprint(save(tmp_path, "a", sandwich(0)), progress=False)
    assert wf.compare(a, save(tmp_path, "b", sandwich(1))).verdict == "unrelated"


# --- fingerprints carry shapes and invariants ------------------------------------------------


def test_fingerprint_stores_shapes_and_invariants(base_fp, tmp_path):
    assert base_fp.matrix_shapes["k"] == [KV * HEAD_DIM, HIDDEN]
    inv = base_fp.invariants
    assert inv.geometry == wf.AttentionGeometry(HEADS, KV, HEAD_DIM) and inv.norms_folded
    assert inv.qk.shape == (LAYERS, HEADS, min(16, HEAD_DIM)) and inv.neurons.tolist() == [FFN] * LAYERS
    base_fp.save(tmp_path / "f.json")
    loaded = wf.Fingerprint.load(tmp_path / "f.json")
    np.testing.assert_array_equal(loaded.invariants.ov, inv.ov)
    np.testing.assert_array_equal(loaded.invariants.mlp, inv.mlp)


def test_circuit_spectra_match_the_dense_products(base_dir, base_fp):
    from safetensors.numpy import load_file

    t = {k: v.astype(np.float64) for k, v in load_file(str(base_dir / "model.safetensors")).items()}
    p = "model.layers.1."
    g = t[p + "input_layernorm.weight"]
    wq, wk = t[p + "self_attn.q_proj.weight"] * g, t[p + "self_attn.k_proj.weight"] * g
    head, kv = 3, 3 // (HEADS // KV)
    qk = wq[head * HEAD_DIM : (head + 1) * HEAD_DIM].T @ wk[kv * HEAD_DIM : (kv + 1) * HEAD_DIM]
    np.testing.assert_allclose(
        base_fp.invariants.qk[1, head], np.linalg.svd(qk, compute_uv=False)[:16], rtol=1e-7
    )
    wv, wo = t[p + "self_attn.v_proj.weight"] * g, t[p + "self_attn.o_proj.weight"]
    ov = wo[:, head * HEAD_DIM : (head + 1) * HEAD_DIM] @ wv[kv * HEAD_DIM : (kv + 1) * HEAD_DIM]
    np.testing.assert_allclose(
        base_fp.invariants.ov[1, head], np.linalg.svd(ov, compute_uv=False)[:16], rtol=1e-7
    )


def test_schema_1_fingerprint_still_loads_and_compares(base_fp, tmp_path):
    d = base_fp.to_dict()
    d["schema"] = 1
    del d["invariants"], d["matrix_shapes"]
    (tmp_path / "old.json").write_text(json.dumps(d))
    old = wf.Fingerprint.load(tmp_path / "old.json")
    assert old.invariants is None and old.matrix_shapes == {}
    c = wf.compare(old, base_fp)
    assert c.verdict == "same-model" and c.circuit_distance is None


def test_gguf_and_safetensors_copies_have_the_same_invariants(tmp_path, base_fp):
    """llama.cpp permutes q and k rows within each head; the circuits do not move."""
    gguf = pytest.importorskip("gguf")
    t = llama(0)
    names = {
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
        "input_layernorm": "attn_norm",
        "post_attention_layernorm": "ffn_norm",
    }

    def llama_cpp_permute(w, heads):
        return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)

    w = gguf.GGUFWriter(str(tmp_path / "m.gguf"), "llama")
    w.add_block_count(LAYERS)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV)
    for i in range(LAYERS):
        for hf, gg in names.items():
            x = t[f"model.layers.{i}.{hf}.weight"]
            if gg in ("attn_q", "attn_k"):
                x = llama_cpp_permute(x, HEADS if gg == "attn_q" else KV)
            w.add_tensor(f"blk.{i}.{gg}.weight", np.ascontiguousarray(x))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    c = wf.compare(base_fp, tmp_path / "m.gguf", progress=False)
    assert c.verdict == "same-model", c.reason
