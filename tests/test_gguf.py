"""GGUF read by the engine: decoders bit-exact against gguf's, split files, fingerprints equal to
the same weights as safetensors, and malformed files as clear errors."""

import struct
import sys

import numpy as np
import pytest

import weightprint_fast as wf
from gguf_files import (
    DECODED,
    GGML,
    dequantize,
    gguf_bytes,
    kv,
    kv_str,
    kv_u32,
    llama_projection_shapes,
    random_blocks,
    tensor_info,
    write_gguf,
)
from weightprint_fast import _core
from weightprint_fast.engine import engine

gguf = pytest.importorskip("gguf")


@pytest.mark.parametrize("dtype", DECODED)
def test_decoder_is_bit_exact_with_gguf(dtype, rng):
    _, elements, _ = GGML[dtype]
    n = 64 * max(elements, 32)
    raw = random_blocks(dtype, n, rng)
    ours = _core.decode(raw, dtype, n)
    ref = dequantize(raw, dtype, (n,)).astype(np.float32)
    np.testing.assert_array_equal(ours.view(np.uint32), ref.view(np.uint32))


@pytest.mark.parametrize("dtype", [t for t in DECODED if GGML[t][1] > 1])
def test_decoder_matches_gguf_on_any_bytes_including_nan_scales(dtype, rng):
    _, elements, size = GGML[dtype]
    raw = rng.integers(0, 256, size=40 * size, dtype=np.uint8)
    ours = _core.decode(raw, dtype, 40 * elements)
    with np.errstate(all="ignore"):
        ref = dequantize(raw, dtype, (-1,)).astype(np.float32)
    np.testing.assert_array_equal(ours.view(np.uint32), ref.view(np.uint32))


@pytest.mark.parametrize("dtype", ["Q4_K", "Q6_K", "Q5_0", "IQ4_XS"])
def test_quantized_statistics_match_numpy_across_threads_and_partial_blocks(dtype, rng):
    rows, cols = 96, 4096 + 512  # > 1M bytes per thread split: ranges start inside blocks
    raw = random_blocks(dtype, rows * cols, rng)
    ref = dequantize(raw, dtype, (rows, cols))
    for threads in (1, 3):
        s = wf.matrix_stats(np.ascontiguousarray(raw.reshape(rows, -1)), dtype=dtype.lower(), threads=threads)
        assert s.mean == pytest.approx(ref.mean(), rel=1e-9, abs=1e-15)
        assert s.std == pytest.approx(ref.std(), rel=1e-9)
        assert s.kurtosis == pytest.approx(((ref - ref.mean()) ** 4).mean() / ref.var() ** 2 - 3, rel=1e-7)
        assert (s.min, s.max) == (ref.min(), ref.max())


@pytest.mark.parametrize("method", ["exact", "auto"])
def test_quantized_singular_values_match_lapack(method, rng):
    rows, cols = 200, 1536  # wide: exact decodes column panels that start inside Q4_K blocks
    raw = random_blocks("Q4_K", rows * cols, rng)
    ref = np.linalg.svd(dequantize(raw, "Q4_K", (rows, cols)), compute_uv=False)[:8]
    got = wf.top_singular_values(np.ascontiguousarray(raw.reshape(rows, -1)), 8, method, dtype="q4_k")
    np.testing.assert_allclose(got, ref, rtol=1e-9 if method == "exact" else 1e-3)


def _model(rng, dtype, layers=2, hidden=256, ffn=512, heads=4, kv_heads=2):
    """A small Llama-shaped GGUF tensor set in one type, and its dequantized weights by HF name."""
    shapes = llama_projection_shapes(hidden, ffn, heads, kv_heads)
    hf = {
        "attn_q": "self_attn.q_proj",
        "attn_k": "self_attn.k_proj",
        "attn_v": "self_attn.v_proj",
        "attn_output": "self_attn.o_proj",
        "ffn_gate": "mlp.gate_proj",
        "ffn_up": "mlp.up_proj",
        "ffn_down": "mlp.down_proj",
    }
    tensors, dense = {}, {}
    for i in range(layers):
        for name, shape in shapes.items():
            raw = random_blocks(dtype, shape[0] * shape[1], rng)
            tensors[f"blk.{i}.{name}.weight"] = (raw, dtype, shape)
            dense[f"model.layers.{i}.{hf[name]}.weight"] = dequantize(raw, dtype, shape).astype(np.float32)
    return tensors, dense


@pytest.mark.parametrize("dtype", ["Q4_K", "Q6_K", "Q8_0", "Q2_K", "Q3_K", "Q5_K", "IQ4_NL", "F16"])
def test_gguf_fingerprint_equals_float32_safetensors_of_the_same_weights(tmp_path, rng, dtype):
    from safetensors.numpy import save_file

    tensors, dense = _model(rng, dtype)
    g = wf.fingerprint(write_gguf(tmp_path / "m.gguf", tensors), top_k=8, method="exact", progress=False)
    save_file(dense, str(tmp_path / "m.safetensors"))
    s = wf.fingerprint(tmp_path / "m.safetensors", top_k=8, method="exact", progress=False)
    assert g.types == s.types == ["q", "k", "v", "o", "gate", "up", "down"]
    np.testing.assert_allclose(g.std_vector, s.std_vector, rtol=1e-12)
    np.testing.assert_allclose(g.layer_std, s.layer_std, rtol=1e-12)
    np.testing.assert_allclose(g.singular_values, s.singular_values, rtol=1e-9)
    assert g.meta["format"] == "gguf" and g.meta["dtypes"] == {dtype: 14}


def test_gguf_is_read_without_the_gguf_package(tmp_path, rng, monkeypatch):
    tensors, _ = _model(rng, "Q4_K", layers=1)
    path = write_gguf(tmp_path / "m.gguf", tensors)
    monkeypatch.setitem(sys.modules, "gguf", None)  # any import of it now fails
    fp = wf.fingerprint(path, top_k=4, progress=False)
    assert fp.meta["format"] == "gguf" and fp.layer_std.shape == (1, 7)


def test_gguf_fused_qkv_is_split_with_head_counts(tmp_path, rng):
    qkv = rng.standard_normal(((4 + 2 * 2) * 4, 16)).astype(np.float32)  # 4 heads, 2 kv, head dim 4
    fp = wf.fingerprint(
        write_gguf(tmp_path / "m.gguf", {"blk.0.attn_qkv.weight": qkv}), top_k=2, progress=False
    )
    assert fp.types == ["q", "k", "v"]
    assert fp.layer_std[0, 1] == pytest.approx(qkv[16:24].astype(np.float64).std(), rel=1e-9)


def test_gguf_unsupported_quantization_names_the_type(tmp_path):
    raw = np.zeros(32 * 40, dtype=np.uint8)  # Q8_1: 40-byte blocks of 32 values
    path = write_gguf(tmp_path / "m.gguf", {"blk.0.attn_q.weight": (raw, "Q8_1", (32, 32))})
    with pytest.raises(
        wf.WeightprintFormatError, match=r"blk\.0\.attn_q\.weight.*unsupported quantization Q8_1"
    ):
        wf.fingerprint(path, progress=False)


def test_gguf_metadata_keeps_scalars_numeric_arrays_and_the_vocabulary_only(tmp_path, rng):
    def extra(w):
        w.add_array("tokenizer.ggml.tokens", ["a", "bc", "def"])
        w.add_array("tokenizer.ggml.merges", ["a b", "bc d"])
        w.add_array("llama.attention.head_count_kv_per_layer", [2, 2])
        w.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5)
        w.add_name("tiny")

    path = write_gguf(
        tmp_path / "m.gguf",
        {"blk.0.attn_q.weight": rng.standard_normal((8, 8)).astype(np.float32)},
        extra=extra,
    )
    f = _core.GgufFile(str(path))
    assert f.version == 3 and f.alignment == 32 and f.format == "gguf"
    assert f.metadata["general.architecture"] == "llama" and f.metadata["general.name"] == "tiny"
    assert f.metadata["llama.attention.head_count"] == 4
    assert f.metadata["llama.attention.layer_norm_rms_epsilon"] == pytest.approx(1e-5)
    assert f.metadata["llama.attention.head_count_kv_per_layer"] == [2.0, 2.0]
    assert f.metadata["tokenizer.ggml.tokens"] == ["a", "bc", "def"]
    assert f.metadata["tokenizer.ggml.merges"] is None
    reader = gguf.GGUFReader(str(path))
    ours = {t.name: (t.dtype, t.shape, t.data_offsets[0]) for t in f.tensors}
    assert ours == {
        t.name: (
            t.tensor_type.name,
            tuple(int(x) for x in reversed(t.shape.tolist())),
            int(t.data_offset) - int(reader.data_offset),
        )
        for t in reader.tensors
    }


def test_scan_and_inspect_list_gguf_tensors(tmp_path, rng):
    raw = random_blocks("Q4_0", 64 * 64, rng)
    path = write_gguf(
        tmp_path / "m.gguf",
        {
            "blk.0.attn_q.weight": (raw, "Q4_0", (64, 64)),
            "blk.0.attn_norm.weight": np.ones(64, dtype=np.float32),
        },
    )
    records = {r.name: r for r in wf.scan(path, k=4)}
    assert records["blk.0.attn_q.weight"].dtype == "Q4_0"
    assert records["blk.0.attn_q.weight"].moments.std == pytest.approx(
        dequantize(raw, "Q4_0", (64, 64)).std(), rel=1e-9
    )
    assert len(records["blk.0.attn_q.weight"].singular_values) == 4


# --- split files -------------------------------------------------------------------------------


def _split(tmp_path, rng, parts=3):
    """A checkpoint in `parts` GGUF files named NAME-0000K-of-0000N.gguf."""
    names = [f"blk.{i}.attn_{t}.weight" for i in range(parts) for t in ("q", "k")]
    tensors = {n: rng.standard_normal((16, 32)).astype(np.float32) for n in names}
    paths = []
    for k in range(parts):

        def extra(w, k=k):
            w.add_uint16("split.no", k)
            w.add_uint16("split.count", parts)
            w.add_int32("split.tensors.count", len(names))

        mine = {n: v for n, v in tensors.items() if n.startswith(f"blk.{k}.")}
        p = tmp_path / f"m-{k + 1:05d}-of-{parts:05d}.gguf"
        paths.append(write_gguf(p, mine, kv_heads=4, blocks=parts, extra=extra))
    return paths, tensors


def test_split_gguf_reads_as_one_checkpoint_from_any_part(tmp_path, rng):
    paths, tensors = _split(tmp_path, rng)
    for p in (paths[0], paths[2], tmp_path):
        fp = wf.fingerprint(p, top_k=4, method="exact", progress=False)
        assert fp.layer_std.shape == (3, 2) and fp.meta["files"] == 3
        assert fp.layer_std[2, 1] == pytest.approx(
            tensors["blk.2.attn_k.weight"].astype(np.float64).std(), rel=1e-9
        )


def test_split_gguf_with_a_missing_part_is_an_error(tmp_path, rng):
    paths, _ = _split(tmp_path, rng)
    paths[1].unlink()
    with pytest.raises(wf.WeightprintFormatError, match="incomplete: missing m-00002-of-00003.gguf"):
        wf.open_gguf(paths[0])


def test_split_gguf_whose_numbers_disagree_with_its_names_is_an_error(tmp_path, rng):
    paths, _ = _split(tmp_path, rng)
    paths[1].rename(tmp_path / "x")
    paths[2].rename(paths[1])
    (tmp_path / "x").rename(paths[2])
    with pytest.raises(wf.WeightprintFormatError, match="split.no is 2, its name says 1"):
        wf.open_gguf(paths[0])


def test_split_gguf_with_a_wrong_tensor_total_is_an_error(tmp_path, rng):
    paths, _ = _split(tmp_path, rng, parts=2)
    # The second part rewritten with one of its two tensors: the set now holds 3, declares 4.
    write_gguf(
        paths[1],
        {"blk.1.attn_q.weight": rng.standard_normal((16, 32)).astype(np.float32)},
        blocks=2,
        extra=lambda w: (
            w.add_uint16("split.no", 1),
            w.add_uint16("split.count", 2),
            w.add_int32("split.tensors.count", 4),
        ),
    )
    with pytest.raises(
        wf.WeightprintFormatError, match="split.tensors.count is 4 but the 2 files hold 3 tensors"
    ):
        wf.open_gguf(paths[0])


def test_a_split_part_renamed_as_a_whole_file_is_an_error(tmp_path, rng):
    paths, _ = _split(tmp_path, rng)
    whole = tmp_path / "alone.gguf"
    paths[0].rename(whole)
    with pytest.raises(wf.WeightprintFormatError, match="part of a 3-file split GGUF"):
        wf.open_gguf(whole)


# --- format rules, each broken on purpose ------------------------------------------------------


def _valid_parts():
    data = np.arange(64, dtype=np.float32).tobytes()
    kvs = [kv_str("general.architecture", "llama"), kv_u32("llama.block_count", 1)]
    infos = [tensor_info("blk.0.attn_q.weight", (8, 8), 0, 0)]
    return kvs, infos, data


def _open(tmp_path, data: bytes):
    p = tmp_path / "m.gguf"
    p.write_bytes(data)
    return _core.GgufFile(str(p))


def test_hand_built_file_is_valid_and_read_like_gguf_reads_it(tmp_path):
    kvs, infos, data = _valid_parts()
    f = _open(tmp_path, gguf_bytes(kvs, infos, data))
    assert [t.name for t in f.tensors] == ["blk.0.attn_q.weight"] and f.tensors[0].shape == (8, 8)
    np.testing.assert_array_equal(f.read("blk.0.attn_q.weight").ravel(), np.arange(64))
    r = gguf.GGUFReader(str(tmp_path / "m.gguf"))
    np.testing.assert_array_equal(r.tensors[0].data.ravel(), np.arange(64))


RULES = {
    "not a GGUF file": lambda k, i, d: b"GGML" + gguf_bytes(k, i, d)[4:],
    "GGUF version 1 is not supported": lambda k, i, d: gguf_bytes(k, i, d, version=1),
    "big-endian GGUF is not supported": lambda k, i, d: gguf_bytes(k, i, d, version=0x03000000),
    "the tensor table declares 4611686018427387904 entries": lambda k, i, d: gguf_bytes(
        k, i, d, tensor_count=1 << 62
    ),
    "the metadata table declares 1152921504606846976 entries": lambda k, i, d: gguf_bytes(
        k, i, d, kv_count=1 << 60
    ),
    "metadata 'x' \\(18446744073709551615 bytes\\)": lambda k, i, d: gguf_bytes(
        [*k, kv("x", 8, struct.pack("<Q", 2**64 - 1))], i, d
    ),
    "metadata 'x': unknown value type 13": lambda k, i, d: gguf_bytes([*k, kv("x", 13, b"")], i, d),
    "metadata 'x' declares 1099511627776 entries": lambda k, i, d: gguf_bytes(
        [*k, kv("x", 9, struct.pack("<IQ", 8, 1 << 40))], i, d
    ),
    "metadata 'x': bool value 7": lambda k, i, d: gguf_bytes([*k, kv("x", 7, b"\x07")], i, d),
    "metadata key 'general.architecture' appears twice": lambda k, i, d: gguf_bytes(k + k[:1], i, d),
    "general.alignment must be a power of two": lambda k, i, d: gguf_bytes(
        [*k, kv_u32("general.alignment", 48)], i, d
    ),
    "unknown ggml type 99": lambda k, i, d: gguf_bytes(
        k, [tensor_info("blk.0.attn_q.weight", (8, 8), 99, 0)], d
    ),
    "5 dimensions": lambda k, i, d: gguf_bytes(k, [tensor_info("t", (1, 1, 1, 8, 8), 0, 0)], d),
    "row length 8 is not a multiple of Q4_K's block of 256": lambda k, i, d: gguf_bytes(
        k, [tensor_info("t", (8, 8), 12, 0)], d
    ),
    "data offset 4 is not a multiple of the alignment 32": lambda k, i, d: gguf_bytes(
        k, [tensor_info("t", (8, 8), 0, 4)], d
    ),
    "data offset 256, expected 0": lambda k, i, d: gguf_bytes(
        k, [tensor_info("t", (8, 8), 0, 256)], d + b"\0" * 512
    ),
    "runs past the end of the file": lambda k, i, d: gguf_bytes(k, i, d[:100]),
    "element count overflows": lambda k, i, d: gguf_bytes(
        k, [tensor_info("t", (1 << 32, 1 << 32, 4), 0, 0)], d
    ),
    "tensor 't': appears twice": lambda k, i, d: gguf_bytes(
        k, [tensor_info("t", (8, 8), 0, 0), tensor_info("t", (8, 8), 0, 256)], d + d
    ),
    "metadata key 2 is not valid UTF-8": lambda k, i, d: gguf_bytes(
        [*k, struct.pack("<Q", 1) + b"\x80" + struct.pack("<II", 4, 1)], i, d
    ),
    "tensor 0 has an empty name": lambda k, i, d: gguf_bytes(k, [tensor_info("", (8, 8), 0, 0)], d),
}


@pytest.mark.parametrize("rule", list(RULES))
def test_each_broken_rule_is_a_clear_format_error(tmp_path, rule):
    kvs, infos, data = _valid_parts()
    with pytest.raises(wf.WeightprintFormatError, match=rule):
        _open(tmp_path, RULES[rule](kvs, infos, data))


def test_every_truncation_of_a_valid_file_is_a_format_error(tmp_path):
    kvs, infos, data = _valid_parts()
    whole = gguf_bytes(kvs, infos, data)
    for n in range(len(whole)):
        with pytest.raises(wf.WeightprintFormatError):
            _open(tmp_path, whole[:n])


def test_scheduler_refuses_a_window_that_splits_a_quantized_block(tmp_path, rng):
    raw = random_blocks("Q4_K", 4 * 512, rng)
    path = write_gguf(tmp_path / "m.gguf", {"blk.0.attn_q.weight": (raw, "Q4_K", (4, 512))})
    f = _core.GgufFile(str(path))
    job = _core.Job(file=0, tensor="blk.0.attn_q.weight", offset=100, rows=2, cols=256, row_stride=512)
    with pytest.raises(wf.WeightprintFormatError, match="block boundaries"):
        engine().analyse([f], [job], 1, "exact", 10, 8, 1e-3, None)
