"""GGUF input: names, dequantization, fused tensors, unsupported quantizations."""

import numpy as np
import pytest

import weightprint_fast as wf

gguf = pytest.importorskip("gguf")


def write_gguf(path, tensors, arch="llama", heads=4, kv=2):
    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(2)
    w.add_head_count(heads)
    w.add_head_count_kv(kv)
    for name, value in tensors.items():
        if isinstance(value, tuple):
            raw, qtype, shape = value
            w.add_tensor(name, raw, raw_shape=shape, raw_dtype=qtype)
        else:
            w.add_tensor(name, value)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_gguf_float_tensors_fingerprint_like_numpy(tmp_path, rng):
    tensors = {f"blk.{i}.attn_{t}.weight": rng.standard_normal((16, 16)).astype(np.float32)
               for i in range(2) for t in ("q", "k", "v", "output")}
    tensors["blk.0.ffn_down.weight"] = rng.standard_normal((16, 24)).astype(np.float16)
    tensors["token_embd.weight"] = rng.standard_normal((40, 16)).astype(np.float32)
    fp = wf.fingerprint(write_gguf(tmp_path / "m.gguf", tensors), top_k=4, method="exact", progress=False)
    assert fp.meta["format"] == "gguf" and fp.meta["architecture"] == "llama"
    assert fp.types == ["q", "k", "v", "o", "down"]
    w = tensors["blk.1.attn_output.weight"].astype(np.float64)
    assert fp.layer_std[1, 3] == pytest.approx(w.std(), rel=1e-9)
    np.testing.assert_allclose(fp.singular_values[1, 3], np.linalg.svd(w, compute_uv=False)[:4], rtol=1e-6)
    assert fp.layer_std[0, 4] == pytest.approx(tensors["blk.0.ffn_down.weight"].astype(np.float64).std(), rel=1e-9)


def test_gguf_quantized_tensors_are_dequantized(tmp_path, rng):
    w = rng.standard_normal((32, 64)).astype(np.float32)
    q = gguf.quants.quantize(w, gguf.GGMLQuantizationType.Q8_0)
    path = write_gguf(tmp_path / "m.gguf", {"blk.0.attn_q.weight": (q, gguf.GGMLQuantizationType.Q8_0, q.shape)})
    fp = wf.fingerprint(path, top_k=4, progress=False)
    deq = gguf.quants.dequantize(q, gguf.GGMLQuantizationType.Q8_0).astype(np.float64)
    assert fp.layer_std[0, 0] == pytest.approx(deq.std(), rel=1e-9)
    assert fp.layer_std[0, 0] == pytest.approx(w.std(), rel=1e-2)  # Q8_0 keeps the std


def test_gguf_fused_qkv_is_split_with_head_counts(tmp_path, rng):
    qkv = rng.standard_normal(((4 + 2 * 2) * 4, 16)).astype(np.float32)  # 4 heads, 2 kv, head dim 4
    fp = wf.fingerprint(write_gguf(tmp_path / "m.gguf", {"blk.0.attn_qkv.weight": qkv}), top_k=2, progress=False)
    assert fp.types == ["q", "k", "v"]
    assert fp.layer_std[0, 1] == pytest.approx(qkv[16:24].astype(np.float64).std(), rel=1e-9)


def test_gguf_unsupported_quantization_is_a_clear_error(tmp_path):
    raw = np.zeros((32, 40), dtype=np.uint8)  # Q8_1: 40-byte blocks of 32 values
    path = write_gguf(tmp_path / "m.gguf", {"blk.0.attn_q.weight": (raw, gguf.GGMLQuantizationType.Q8_1, raw.shape)})
    with pytest.raises(wf.WeightprintFormatError, match="unsupported quantization Q8_1"):
        wf.fingerprint(path, progress=False)


def test_not_a_gguf_file_is_a_clear_error(tmp_path):
    (tmp_path / "m.gguf").write_bytes(b"GGUF\x03\x00\x00\x00garbage")
    with pytest.raises(wf.WeightprintFormatError, match="not a readable GGUF"):
        wf.fingerprint(tmp_path / "m.gguf", progress=False)
