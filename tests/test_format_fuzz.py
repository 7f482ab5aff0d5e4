"""Byte-level fuzzing of the engine's parsers with differential oracles: the header JSON against
Python's json module, safetensors files against the safetensors package. The engine may be
stricter than an oracle, never more lenient, and where both accept a file they read the same."""

import json
import struct

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import deserialize

import weightprint_fast as wf
from weightprint_fast import _core

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)


def _open(tmp_path, data: bytes):
    p = tmp_path / "f.safetensors"
    p.write_bytes(data)
    return _core.SafetensorsFile(str(p))


def _with_header(header: bytes, data: bytes = b"") -> bytes:
    return struct.pack("<Q", len(header)) + header + data


def _json_ok(text: bytes) -> bool:
    try:
        json.loads(text.decode("utf-8"))
        return True
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return False


@FUZZ
@given(doc=json_values, cut=st.integers(0, 200), junk=st.binary(max_size=3))
def test_header_json_is_accepted_only_if_python_json_accepts_it(tmp_path, doc, cut, junk):
    text = json.dumps(doc).encode()
    text = text[:cut] + junk + text[cut:] if junk else text
    try:
        _open(tmp_path, _with_header(text))
    except wf.WeightprintFormatError as e:
        if "not valid JSON" in str(e):
            return  # refusing more than Python (duplicate keys, lone surrogates) is allowed
    assert _json_ok(text), text


tensor_specs = st.lists(
    st.tuples(
        st.sampled_from(["F32", "F16", "BF16", "I32", "U8", "F64"]), st.lists(st.integers(0, 4), max_size=3)
    ),
    min_size=1,
    max_size=4,
)
SIZES = {"F32": 4, "F16": 2, "BF16": 2, "I32": 4, "U8": 1, "F64": 8}


def _valid_file(specs, rng) -> bytes:
    header, offset, blobs = {}, 0, []
    for i, (dtype, shape) in enumerate(specs):
        n = int(np.prod(shape)) * SIZES[dtype]
        header[f"t{i}"] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        blobs.append(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
        offset += n
    return _with_header(json.dumps(header).encode(), b"".join(blobs))


@FUZZ
@given(
    specs=tensor_specs,
    edits=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=3),
    cut=st.one_of(st.none(), st.integers(0, 400)),
)
def test_safetensors_files_agree_with_the_safetensors_package(tmp_path, specs, edits, cut):
    data = bytearray(_valid_file(specs, np.random.default_rng(len(specs))))
    for pos, value in edits:
        if pos < len(data):
            data[pos] = value
    if cut is not None:
        del data[cut:]
    data = bytes(data)
    try:
        theirs = {name: t for name, t in deserialize(data)}
    except Exception:  # any refusal by the oracle counts
        theirs = None
    try:
        ours = _open(tmp_path, data)
    except wf.WeightprintFormatError:
        return  # stricter than the oracle is allowed
    assert theirs is not None, "the engine accepted a file the safetensors package refuses"
    assert {t.name for t in ours.tensors} == set(theirs)
    for t in ours.tensors:
        assert (t.dtype, list(t.shape)) == (theirs[t.name]["dtype"], theirs[t.name]["shape"])
        begin, end = t.data_offsets
        assert (
            bytes(theirs[t.name]["data"]) == data[8 + len_header(data) + begin : 8 + len_header(data) + end]
        )
        if t.analysed and t.dtype != "BF16":
            raw = np.frombuffer(
                bytes(theirs[t.name]["data"]), dtype={"F32": "<f4", "F16": "<f2", "F64": "<f8"}[t.dtype]
            )
            with np.errstate(invalid="ignore"):  # NaN payloads widen with a warning
                np.testing.assert_array_equal(ours.read(t.name).ravel(), raw.astype(np.float64))


def len_header(data: bytes) -> int:
    return struct.unpack("<Q", data[:8])[0]
