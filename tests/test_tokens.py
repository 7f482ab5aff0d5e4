"""Token probes: the engine's probe products, the vocabularies they read, the forms a fingerprint
keeps, and the lineage they give across rewrites, widths, averages and transplants (each rewrite
proven function-preserving by test_lineage's forward pass)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import rewrites as rw
import weightprint_fast as wf
from gguf_files import dequantize, random_blocks
from test_lineage import CONFIG, HIDDEN, LAYERS, llama, preserves, save, twice_as_wide
from weightprint_fast.compare.family import architecture_family
from weightprint_fast.engine import engine
from weightprint_fast.errors import FingerprintFileError, WeightprintFormatError
from weightprint_fast.probes import ANCHOR_WORDS, anchor_ids, canonical
from weightprint_fast.readers.resolve import checkpoint_files
from weightprint_fast.readers.vocabulary import read_vocabulary

WORDS = [w.strip() for w in ANCHOR_WORDS]


def byte_level_vocabulary(n: int) -> dict[str, int]:
    """A byte-level BPE vocabulary of n tokens whose first ones are the anchor words (Ġword)."""
    tokens = ["Ġ" + w for w in WORDS] + [f"tok{i}" for i in range(n - len(WORDS))]
    return {t: i for i, t in enumerate(tokens[:n])}


def with_tokenizer(d, vocab: dict[str, int], kind: str = "BPE"):
    (d / "tokenizer.json").write_text(json.dumps({"model": {"type": kind, "vocab": vocab}}))
    return d


def checkpoint(tmp_path, name: str, tensors: dict, config: dict = CONFIG):
    return with_tokenizer(save(tmp_path, name, tensors, config), byte_level_vocabulary(50))


@pytest.fixture(scope="module")
def base_fp(tmp_path_factory):
    d = checkpoint(tmp_path_factory.mktemp("tokens"), "base", llama(0))
    return wf.fingerprint(d, progress=False)


# --- the engine's probe products ---------------------------------------------------------------


@pytest.mark.parametrize("columns", [False, True])
@pytest.mark.parametrize("threads", [1, 3])
def test_probe_product_matches_numpy(rng, columns, threads):
    a = rng.standard_normal((700, 90)).astype(np.float32)
    p = rng.standard_normal((7, 700 if columns else 90))
    got = engine().probe_product(a, "F32", 700, 90, engine().ProbeSpec(p, columns), threads)
    want = p @ a.astype(np.float64) if columns else a.astype(np.float64) @ p.T
    assert_single_precision_product(got, want, np.abs(p) @ np.abs(a) if columns else np.abs(a) @ np.abs(p).T)


def assert_single_precision_product(got, want, terms):
    """The products run in single precision (probe.cpp): each within 1e-5 of the sum of its
    terms' magnitudes (float32 rounding is 6e-8 a step; a missing or misplaced term is far more)."""
    assert got.shape == want.shape
    assert np.all(np.abs(got - want) <= 1e-5 * terms)


def test_probe_product_decodes_bf16(rng):
    a = rng.standard_normal((32, 16)).astype(np.float32)
    bits = (a.view(np.uint32) >> 16).astype(np.uint16)
    p = rng.standard_normal((3, 16))
    decoded = (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    got = engine().probe_product(bits, "BF16", 32, 16, engine().ProbeSpec(p), 1)
    assert_single_precision_product(got, decoded @ p.T, np.abs(decoded) @ np.abs(p).T)


def test_probe_product_refuses_probes_of_the_wrong_length(rng):
    a = rng.standard_normal((10, 8)).astype(np.float32)
    with pytest.raises(ValueError, match="probe"):
        engine().probe_product(a, "F32", 10, 8, engine().ProbeSpec(np.ones((2, 10))), 1)


def test_probe_product_refuses_nan(rng):
    a = rng.standard_normal((10, 8)).astype(np.float32)
    a[3, 2] = np.nan
    with pytest.raises(ValueError):
        engine().probe_product(a, "F32", 10, 8, engine().ProbeSpec(np.ones((2, 8))), 1)


def test_read_rows_reads_what_read_reads(tmp_path, rng):
    d = save(tmp_path, "m", llama(0))
    f = engine().SafetensorsFile(str(d / "model.safetensors"))
    rows = [0, 7, 49, 7]
    np.testing.assert_array_equal(
        f.read_rows("model.embed_tokens.weight", rows), f.read("model.embed_tokens.weight")[rows]
    )
    with pytest.raises(ValueError, match="outside"):
        f.read_rows("model.embed_tokens.weight", [50])


# --- vocabularies --------------------------------------------------------------------------------


def test_anchor_words_are_found_however_a_tokenizer_marks_a_word_start():
    assert canonical("Ġthe", False) == canonical("▁the", False) == canonical("the", True) == " the"
    assert canonical("##ing", True) is None
    assert anchor_ids(["x", "▁of", "Ġthe", "▁the"], False) == {" the": 2, " of": 1}


@pytest.mark.parametrize("wordpiece", [False, True])
def test_anchor_ids_are_the_first_token_whose_canonical_spelling_is_the_word(wordpiece):
    rng = np.random.default_rng(7)
    marks = ["", " ", "Ġ", "▁", "##"]
    words = [w[1:] for w in ANCHOR_WORDS] + ["thee", "zz", ""]
    tokens = [str(rng.choice(marks)) + str(rng.choice(words)) for _ in range(3000)]
    expected: dict[str, int] = {}
    for i, t in enumerate(tokens):
        c = canonical(t, wordpiece)
        if c in ANCHOR_WORDS:
            expected.setdefault(c, i)
    assert anchor_ids(tokens, wordpiece) == {w: expected[w] for w in ANCHOR_WORDS if w in expected}


def test_vocabulary_sketch_hashes_are_blake2b_prefixes():
    import hashlib

    from weightprint_fast.readers.vocabulary import _hashes

    tokens = ["the", "Ġof", "▁and", "the", "\udcff"]
    want = sorted(
        {
            int.from_bytes(hashlib.blake2b(t.encode("utf-8", "replace"), digest_size=8).digest(), "little")
            >> 12
            for t in tokens
        }
    )
    assert _hashes(tokens).tolist() == want


def test_tokenizer_json_vocabularies_of_each_model_type_are_read(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    with_tokenizer(tmp_path, {"the": 1, "##s": 0, "of": 2}, "WordPiece")
    v = read_vocabulary(tmp_path, {}, False)
    assert v is not None and v.tokens == ["##s", "the", "of"] and v.wordpiece
    (tmp_path / "tokenizer.json").write_text(
        json.dumps({"model": {"type": "Unigram", "vocab": [["▁a", 0.0]]}})
    )
    v = read_vocabulary(tmp_path, {}, False)
    assert v is not None and v.tokens == ["▁a"] and not v.wordpiece


def test_vocab_txt_is_read_as_wordpiece(tmp_path):
    (tmp_path / "vocab.txt").write_text("[PAD]\nthe\n##s\n")
    v = read_vocabulary(tmp_path, {}, False)
    assert v is not None and v.tokens == ["[PAD]", "the", "##s"] and v.wordpiece


def test_a_damaged_tokenizer_json_is_a_format_error_naming_it(tmp_path):
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(WeightprintFormatError, match="tokenizer.json"):
        read_vocabulary(tmp_path, {}, False)


def test_a_tokenizer_of_an_unknown_kind_gives_no_vocabulary(tmp_path):
    (tmp_path / "tokenizer.json").write_text(json.dumps({"model": {"type": "Mystery"}}))
    assert read_vocabulary(tmp_path, {}, False) is None


def test_the_tokenizer_file_is_part_of_the_checkpoint(tmp_path):
    d = checkpoint(tmp_path, "m", llama(0))
    assert d / "tokenizer.json" in checkpoint_files(d)


# --- the forms -------------------------------------------------------------------------------------


def dense_forms(t: dict, words: list[str]) -> dict[str, np.ndarray]:
    """The QK, OV and MLP forms of every layer, by dense products in float64."""
    vocab = byte_level_vocabulary(50)
    e = t["model.embed_tokens.weight"].astype(np.float64)[[vocab["Ġ" + w.strip()] for w in words]]
    p = e / np.linalg.norm(e, axis=1, keepdims=True)
    heads, kv, hd = CONFIG["num_attention_heads"], CONFIG["num_key_value_heads"], 16
    out: dict[str, list] = {"qk": [], "ov": [], "mlp": []}
    for i in range(LAYERS):

        def w(n: str, i: int = i) -> np.ndarray:
            return t[f"model.layers.{i}.{n}.weight"].astype(np.float64)

        pa, pm = p * w("input_layernorm"), p * w("post_attention_layernorm")
        q, k, v, o = (
            w("self_attn.q_proj"),
            w("self_attn.k_proj"),
            w("self_attn.v_proj"),
            w("self_attn.o_proj"),
        )
        group = heads // kv
        qk = sum(
            (q[h * hd : (h + 1) * hd] @ pa.T).T @ (k[h // group * hd : (h // group + 1) * hd] @ pa.T)
            for h in range(heads)
        )
        ov = sum(
            p @ o[:, h * hd : (h + 1) * hd] @ v[h // group * hd : (h // group + 1) * hd] @ pa.T
            for h in range(heads)
        )
        out["qk"].append(qk)
        out["ov"].append(ov)
        out["mlp"].append(p @ w("mlp.down_proj") @ w("mlp.up_proj") @ pm.T)
    return {f: np.stack(x) for f, x in out.items()}


def test_token_forms_match_the_dense_products(base_fp):
    tf = base_fp.token_forms
    assert tf is not None and tf.words == list(ANCHOR_WORDS)
    want = dense_forms(llama(0), tf.words)
    for f, x in want.items():  # probe products in single precision (probe.cpp)
        np.testing.assert_allclose(tf.forms[f], x, rtol=1e-4, atol=1e-5 * np.abs(x).max())


def test_token_forms_survive_a_json_round_trip(base_fp, tmp_path):
    base_fp.save(tmp_path / "fp.json")
    back = wf.Fingerprint.load(tmp_path / "fp.json").token_forms
    assert back is not None and back.words == base_fp.token_forms.words
    for f, x in base_fp.token_forms.forms.items():
        scaled = x / np.abs(x).max(axis=(1, 2), keepdims=True)  # stored free of scale, in 16 bits
        np.testing.assert_allclose(back.forms[f], scaled, atol=0.5 / 32767 + 1e-12)


def test_a_damaged_token_form_is_a_damaged_fingerprint(base_fp, tmp_path):
    d = base_fp.to_dict()
    d["token_forms"]["qk"][0] = d["token_forms"]["qk"][0][:-8]
    with pytest.raises(FingerprintFileError, match="damaged"):
        wf.Fingerprint.from_dict(json.loads(json.dumps(d)))


def test_a_checkpoint_without_a_vocabulary_has_no_token_forms(tmp_path):
    fp = wf.fingerprint(save(tmp_path, "plain", llama(0)), progress=False)
    assert fp.token_forms is None and "vocabulary" not in fp.meta


# --- lineage from the probes -------------------------------------------------------------------------


def test_a_rotated_rescaled_rewritten_copy_keeps_its_token_forms(tmp_path, base_fp):
    t = llama(0)
    lay = rw.layout(t, CONFIG)
    copy = rw.scale_residual(rw.rewrite_all(t, lay, np.random.default_rng(4)), lay, 30.0)
    assert preserves(t, copy, 900.0)
    c = wf.compare(base_fp, checkpoint(tmp_path, "copy", copy, dict(CONFIG, rms_norm_eps=9e-4)))
    assert c.verdict == "same-model" and c.token_correlation > 0.9999, c.reason


def test_a_widened_copy_keeps_its_token_forms(tmp_path, base_fp):
    t = llama(0)
    wide = rw.widen_residual(t, rw.layout(t, CONFIG), np.random.default_rng(5), 32)
    assert preserves(t, wide)
    c = wf.compare(base_fp, checkpoint(tmp_path, "wide", wide, dict(CONFIG, hidden_size=HIDDEN + 32)))
    assert c.token_correlation > 0.9999, c.reason


def test_a_sliced_copy_is_derived_with_its_parent_named(tmp_path, base_fp):
    t = llama(0)
    keep = HIDDEN * 7 // 10
    sliced = rw.slice_residual(t, rw.layout(t, CONFIG), keep)
    c = wf.compare(base_fp, checkpoint(tmp_path, "sliced", sliced, dict(CONFIG, hidden_size=keep)))
    assert c.verdict == "same-family/derived" and c.token_correlation > 0.6, c.reason
    assert c.parent == "a" and "narrower" in c.parent_reason


def test_an_unrelated_model_with_the_same_tokenizer_is_independent_with_its_p_value(tmp_path, base_fp):
    c = wf.compare(base_fp, checkpoint(tmp_path, "other", llama(7)))
    assert c.verdict == "unrelated", c.reason
    assert c.token_p is not None and c.token_p > 0.05 and "p = " in c.reason
    assert c.family == "same family"


def test_an_average_with_an_unrelated_model_is_derived_from_both(tmp_path, base_fp):
    a, b = llama(0), llama(7)
    soup = {k: ((a[k].astype(np.float64) + b[k]) / 2).astype(np.float32) for k in a}
    d = checkpoint(tmp_path, "soup", soup)
    assert wf.compare(base_fp, d).verdict == "same-family/derived"
    assert wf.compare(checkpoint(tmp_path, "other", b), d).verdict == "same-family/derived"


def transplant(tmp_path) -> wf.Fingerprint:
    """Model 0 with layers 0 and 2 taken from model 7 (layer 1 and the embedding stay)."""
    a, b = llama(0), llama(7)
    mixed = {k: (a[k] if ".layers.1." in k or "layers" not in k else b[k]) for k in a}
    return wf.fingerprint(checkpoint(tmp_path, "mixed", mixed), progress=False)


def test_a_transplanted_layer_is_partly_derived_by_its_shared_numbers(tmp_path, base_fp):
    c = wf.compare(base_fp, transplant(tmp_path))
    assert c.verdict == "same-family/derived" and "partly derived: layers 1 hold the same numbers" in c.reason


def test_a_transplanted_layer_is_partly_derived_by_its_token_forms(tmp_path, base_fp):
    no_sketches = dataclasses.replace(transplant(tmp_path), weight_sketches=None)
    c = wf.compare(base_fp, no_sketches)
    assert c.verdict == "same-family/derived" and "partly derived: layers 1~1" in c.reason


def test_different_tokenizers_meet_on_the_words_both_have(tmp_path, base_fp):
    t = llama(0)
    d = save(tmp_path, "sp", t)
    sentencepiece = {
        ("▁" + t[1:] if t.startswith("Ġ") else t): i for t, i in byte_level_vocabulary(50).items()
    }
    with_tokenizer(d, sentencepiece)
    c = wf.compare(base_fp, d)
    assert c.token_words == len(WORDS) and c.token_correlation > 0.9999
    assert c.family == "different family"  # other token strings: another tokenizer


def test_architecture_names_of_one_family_agree():
    assert architecture_family("Gemma3TextModel") == architecture_family("gemma3_text") == "gemma3"
    assert architecture_family("LlamaForCausalLM") == "llama"


# --- shared coordinates: the weight sketches -----------------------------------------------------


def splitmix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer on uint64 arrays (numpy's uint64 arithmetic wraps, as C's does)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def reference_sketch(a: np.ndarray, buckets: int) -> np.ndarray:
    """The count sketch as sketch.hpp defines it: element (i, j) added, times the product of the
    row and column hashes' top bits as signs, into bucket (row hash ^ column hash) mod buckets."""
    rows = splitmix(np.arange(a.shape[0], dtype=np.uint64) ^ np.uint64(0x5EEDB0B))
    cols = splitmix(np.arange(a.shape[1], dtype=np.uint64) ^ np.uint64(0x5EEDC01))
    bucket = (rows[:, None] ^ cols[None, :]) & np.uint64(buckets - 1)
    sign = np.where(rows >> np.uint64(63), -1.0, 1.0)[:, None] * np.where(cols >> np.uint64(63), -1.0, 1.0)
    out = np.zeros(buckets)
    np.add.at(out, bucket.astype(np.int64).ravel(), (sign * a).ravel())
    return out


def test_the_reference_sketch_hashes_as_splitmix64_does():
    # SplitMix64's first output from seed 0 (its published test value), 0xE220A8397B1DCDAF.
    assert splitmix(np.zeros(1, np.uint64))[0] == 0xE220A8397B1DCDAF


@pytest.mark.parametrize("threads", [1, 3])
def test_count_sketch_matches_its_definition(rng, threads):
    a = rng.standard_normal((40, 24)).astype(np.float32)
    got = engine().count_sketch(a, "F32", 40, 24, 64, threads)
    np.testing.assert_allclose(got, reference_sketch(a, 64), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", ["F32", "BF16", "F16", "Q4_K"])
@pytest.mark.parametrize("threads", [1, 3])
def test_count_sketch_of_many_rows_and_column_tiles_matches_its_definition(rng, dtype, threads):
    # Rows far more than buckets (each bucket's rows summed before they are scattered) and
    # columns over several tiles, each dtype through its own decoding path.
    rows, cols = 700, 2304
    buffer = random_blocks(dtype, rows * cols, rng)
    values = dequantize(buffer, dtype, (rows, cols))
    values = np.asarray(values, np.float64)
    assert np.isfinite(values).all()
    got = engine().count_sketch(buffer, dtype, rows, cols, 64, threads)
    want = reference_sketch(values, 64)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12 * np.abs(values).sum())


def test_count_sketch_refuses_a_bucket_count_that_is_not_a_power_of_two(rng):
    a = rng.standard_normal((4, 4)).astype(np.float32)
    with pytest.raises(ValueError, match="power of two"):
        engine().count_sketch(a, "F32", 4, 4, 100, 1)


def test_sketch_cosines_estimate_the_weights_cosine(rng):
    a, b = (rng.standard_normal((300, 200)).astype(np.float32) for _ in range(2))

    def cos(x, y):
        sx, sy = (
            engine().count_sketch(np.ascontiguousarray(m, np.float32), "F32", 300, 200, 256, 2)
            for m in (x, y)
        )
        return float(sx @ sy / np.linalg.norm(sx) / np.linalg.norm(sy))

    assert abs(cos(a, b)) < 4 / 16  # no shared coordinates: 0 +- 1/sqrt(256)
    assert cos(a, 0.3 * a + 0.7 * b) == pytest.approx(0.3 / np.hypot(0.3, 0.7), abs=4 / 16)
    assert cos(a, a + 0.05 * b) > 0.99


def test_an_average_holding_a_30_percent_share_is_derived_by_shared_coordinates(tmp_path, base_fp):
    a, b = llama(0), llama(7)
    soup = {k: (0.3 * a[k].astype(np.float64) + 0.7 * b[k]).astype(np.float32) for k in a}
    c = wf.compare(base_fp, checkpoint(tmp_path, "soup", soup))
    assert c.verdict == "same-family/derived" and "share coordinates" in c.reason, c.reason
    assert c.sketch_cosine == pytest.approx(0.3 / np.hypot(0.3, 0.7), abs=0.1)


def test_a_rotated_copy_shares_no_coordinates_and_is_still_the_same_model(tmp_path, base_fp):
    t = llama(0)
    rotated = rw.rotate_residual(t, rw.layout(t, CONFIG), np.random.default_rng(2))
    assert preserves(t, rotated)
    c = wf.compare(base_fp, checkpoint(tmp_path, "rotated", rotated))
    assert abs(c.sketch_cosine) < 0.25 and c.verdict == "same-model"


def test_layers_of_different_depths_are_matched_in_order():
    from weightprint_fast.compare.tokens import monotone_alignment

    c = np.array([[0.9, 0.1, 0.2, 0.1], [0.1, 0.2, 0.95, 0.3], [0.0, 0.1, 0.2, 0.8]])
    assert monotone_alignment(c) == [(0, 0), (1, 2), (2, 3)]
    crossed = np.array([[0.1, 0.9, 0.1, 0.9], [0.9, 0.1, 0.9, 0.1]])  # the best per row would cross
    assert monotone_alignment(crossed) == [(0, 1), (1, 2)]


def test_anchor_words_whose_embedding_is_not_finite_are_left_out(tmp_path):
    t = llama(0)
    vocab = byte_level_vocabulary(50)
    t["model.embed_tokens.weight"][vocab["Ġthe"]] = np.nan
    t["model.embed_tokens.weight"][vocab["Ġof"]] = 0.0
    fp = wf.fingerprint(checkpoint(tmp_path, "m", t), progress=False)
    assert (
        fp.token_forms is not None
        and " the" not in fp.token_forms.words
        and " of" not in fp.token_forms.words
    )
    assert np.isfinite(fp.token_forms.forms["qk"]).all()


def test_an_undetermined_verdict_says_which_model_lacks_token_probes(tmp_path, base_fp):
    wide = twice_as_wide(9)
    c = wf.compare(base_fp, save(tmp_path, "wide", wide, dict(CONFIG, hidden_size=2 * HIDDEN)))
    assert c.verdict == "undetermined" and "no token probes for wide" in c.reason, c.reason
