"""Every rule of the safetensors format, each broken by a handcrafted file."""

import json
import struct

import numpy as np
import pytest
from safetensors.numpy import save_file

import weightprint_fast as wf
from conftest import write_raw, write_tensors
from weightprint_fast import _core as core


def entry(dtype="F32", shape=(2,), offsets=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


def expect_error(path, match):
    with pytest.raises(wf.WeightprintFormatError, match=match) as info:
        core.SafetensorsFile(str(path))
    assert str(path) in str(info.value)
    return info.value


def test_valid_file_lists_tensors_and_metadata(tmp_path):
    p = tmp_path / "m.safetensors"
    save_file(
        {"a": np.ones((2, 3), np.float32), "b": np.arange(4, dtype=np.int64)}, str(p), metadata={"k": "v"}
    )
    f = core.SafetensorsFile(str(p))
    assert {t.name: (t.dtype, t.shape) for t in f.tensors} == {"a": ("F32", (2, 3)), "b": ("I64", (4,))}
    assert f.metadata == {"k": "v"}


def test_format_error_is_a_value_error():
    assert issubclass(wf.WeightprintFormatError, ValueError)


def test_file_shorter_than_header_length_field(tmp_path):
    p = tmp_path / "t.safetensors"
    p.write_bytes(b"\x01\x02\x03")
    expect_error(p, "truncated file")


def test_empty_file(tmp_path):
    p = tmp_path / "t.safetensors"
    p.write_bytes(b"")
    expect_error(p, "truncated file")


def test_header_length_beyond_end_of_file(tmp_path):
    expect_error(write_raw(tmp_path / "t.safetensors", {}, header_len=1000), "past the end of the file")


def test_header_length_above_limit(tmp_path):
    p = tmp_path / "t.safetensors"
    p.write_bytes(struct.pack("<Q", 100_000_001) + b"{}")
    expect_error(p, "exceeds the limit")


def test_truncated_data_section(tmp_path):
    p = tmp_path / "t.safetensors"
    save_file({"a": np.ones((4, 4), np.float32)}, str(p))
    p.write_bytes(p.read_bytes()[:-10])
    expect_error(p, "out of range")


def test_header_not_json(tmp_path):
    expect_error(write_raw(tmp_path / "t.safetensors", b"{not json"), "not valid JSON")


def test_header_not_utf8(tmp_path):
    expect_error(write_raw(tmp_path / "t.safetensors", b'{"\xff\xfe": 1}'), "UTF-8")


def test_header_not_an_object(tmp_path):
    expect_error(write_raw(tmp_path / "t.safetensors", b"[1, 2]"), "not a JSON object")


def test_header_nested_too_deeply(tmp_path):
    expect_error(write_raw(tmp_path / "t.safetensors", b"[" * 10000 + b"]" * 10000), "nested too deeply")


def test_metadata_values_must_be_strings(tmp_path):
    expect_error(write_raw(tmp_path / "t.safetensors", {"__metadata__": {"k": 1}}), "__metadata__")


def test_unknown_dtype(tmp_path):
    expect_error(
        write_raw(tmp_path / "t.safetensors", {"w": entry(dtype="F12")}, b"\0" * 8), "unknown dtype 'F12'"
    )


def test_negative_shape(tmp_path):
    expect_error(
        write_raw(tmp_path / "t.safetensors", {"w": entry(shape=(-2,))}, b"\0" * 8), "non-negative integer"
    )


def test_fractional_shape(tmp_path):
    expect_error(
        write_raw(tmp_path / "t.safetensors", {"w": entry(shape=(2.5,))}, b"\0" * 8), "non-negative integer"
    )


def test_shape_whose_element_count_overflows(tmp_path):
    header = {"w": entry(shape=(2**40, 2**40))}
    expect_error(write_raw(tmp_path / "t.safetensors", header, b"\0" * 8), "overflows")


def test_shape_whose_byte_size_overflows(tmp_path):
    header = {"w": entry(dtype="F64", shape=(2**62,))}
    expect_error(write_raw(tmp_path / "t.safetensors", header, b"\0" * 8), "overflows")


def test_offsets_in_wrong_order(tmp_path):
    expect_error(
        write_raw(tmp_path / "t.safetensors", {"w": entry(offsets=(8, 0))}, b"\0" * 8), "out of order"
    )


def test_offsets_out_of_range(tmp_path):
    expect_error(
        write_raw(tmp_path / "t.safetensors", {"w": entry(offsets=(0, 8))}, b"\0" * 4), "out of range"
    )


def test_size_not_matching_shape_and_dtype(tmp_path):
    header = {"w": entry(shape=(3,), offsets=(0, 8))}
    expect_error(write_raw(tmp_path / "t.safetensors", header, b"\0" * 8), "size mismatch")


def test_overlapping_offsets(tmp_path):
    header = {"a": entry(offsets=(0, 8)), "b": entry(offsets=(4, 12))}
    err = expect_error(write_raw(tmp_path / "t.safetensors", header, b"\0" * 12), "overlaps")
    assert "'b'" in str(err) and "'a'" in str(err)


def test_hole_between_tensors(tmp_path):
    header = {"a": entry(offsets=(0, 8)), "b": entry(offsets=(12, 20))}
    expect_error(write_raw(tmp_path / "t.safetensors", header, b"\0" * 20), "hole of 4 bytes")


def test_trailing_bytes_after_last_tensor(tmp_path):
    expect_error(write_raw(tmp_path / "t.safetensors", {"a": entry()}, b"\0" * 12), "4 trailing bytes")


def test_duplicate_tensor_names(tmp_path):
    raw = (
        b'{"a": '
        + json.dumps(entry()).encode()
        + b', "a": '
        + json.dumps(entry(offsets=(8, 16))).encode()
        + b"}"
    )
    expect_error(write_raw(tmp_path / "t.safetensors", raw, b"\0" * 16), 'duplicate key "a"')


def test_unknown_entry_field(tmp_path):
    header = {"a": {**entry(), "extra": 1}}
    expect_error(write_raw(tmp_path / "t.safetensors", header, b"\0" * 8), "unknown field 'extra'")


def test_missing_file_is_an_input_error_not_a_format_error(tmp_path):
    path = tmp_path / "absent.safetensors"
    with pytest.raises(wf.InputError, match="cannot open: No such file") as info:
        core.SafetensorsFile(str(path))
    assert str(path) in str(info.value) and not isinstance(info.value, wf.WeightprintFormatError)


def test_unaligned_tensor_data_is_read_correctly(tmp_path):
    values = np.arange(1, 13, dtype=np.float32) / 7
    p = write_tensors(
        tmp_path / "t.safetensors",
        {"pad": ("U8", (3,), b"\1\2\3"), "w": ("F32", (3, 4), values.tobytes())},
    )
    (rec,) = [r for r in wf.scan(p, k=2) if r.name == "w"]
    assert rec.moments.mean == pytest.approx(values.astype(np.float64).mean(), rel=1e-12)
    np.testing.assert_allclose(
        rec.singular_values,
        np.linalg.svd(values.reshape(3, 4).astype(np.float64), compute_uv=False)[:2],
        rtol=1e-6,
    )


# --- sharded checkpoints and their index -------------------------------------------------


def sharded(tmp_path, weight_map=None):
    save_file({"a": np.ones((2, 2), np.float32)}, str(tmp_path / "s1.safetensors"))
    save_file({"b": np.zeros((2, 2), np.float32)}, str(tmp_path / "s2.safetensors"))
    index = {"metadata": {}, "weight_map": weight_map or {"a": "s1.safetensors", "b": "s2.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    return tmp_path


def test_index_reads_all_shards(tmp_path):
    shards = wf.open_shards(sharded(tmp_path))
    assert [t.name for t in shards.tensors] == ["a", "b"]


def test_index_pointing_at_missing_shard(tmp_path):
    d = sharded(tmp_path, {"a": "s1.safetensors", "b": "s3.safetensors"})
    with pytest.raises(wf.WeightprintFormatError, match="missing shard 's3.safetensors'"):
        wf.open_shards(d)


def test_index_pointing_outside_the_directory(tmp_path):
    (tmp_path / "x.safetensors").write_bytes(b"")
    d = tmp_path / "ckpt"
    d.mkdir()
    sharded(d, {"a": "s1.safetensors", "b": "../x.safetensors"})
    with pytest.raises(wf.WeightprintFormatError, match="outside the checkpoint directory"):
        wf.open_shards(d)


def test_index_with_absolute_shard_path(tmp_path):
    d = sharded(tmp_path, {"a": "s1.safetensors", "b": str(tmp_path / "s2.safetensors")})
    with pytest.raises(wf.WeightprintFormatError, match="outside the checkpoint directory"):
        wf.open_shards(d)


def test_index_listing_a_tensor_the_shard_lacks(tmp_path):
    d = sharded(tmp_path, {"a": "s1.safetensors", "b": "s2.safetensors", "c": "s2.safetensors"})
    with pytest.raises(
        wf.WeightprintFormatError, match="'c' is listed in 's2.safetensors' but not stored there"
    ):
        wf.open_shards(d)


def test_index_omitting_a_stored_tensor(tmp_path):
    d = sharded(tmp_path)
    save_file({"b": np.zeros(2, np.float32), "c": np.zeros(2, np.float32)}, str(d / "s2.safetensors"))
    with pytest.raises(wf.WeightprintFormatError, match="'c' of shard 's2.safetensors' is not in the index"):
        wf.open_shards(d)


def test_index_naming_the_wrong_shard(tmp_path):
    d = sharded(tmp_path, {"a": "s2.safetensors", "b": "s2.safetensors"})
    with pytest.raises(
        wf.WeightprintFormatError, match="'a' is listed in 's2.safetensors' but not stored there"
    ):
        wf.open_shards(d)


def test_same_tensor_in_two_shards_without_index(tmp_path):
    save_file({"a": np.ones(2, np.float32)}, str(tmp_path / "s1.safetensors"))
    save_file({"a": np.ones(2, np.float32)}, str(tmp_path / "s2.safetensors"))
    with pytest.raises(wf.WeightprintFormatError, match="also appears"):
        wf.open_shards(tmp_path)


def test_directory_without_weights(tmp_path):
    with pytest.raises(wf.WeightprintFormatError, match="no .safetensors files"):
        wf.open_shards(tmp_path)
