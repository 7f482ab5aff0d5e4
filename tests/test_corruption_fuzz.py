"""Random corruptions of a valid safetensors or GGUF file never crash or hang the process: they
parse, or raise the format error."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file

import weightprint_fast as wf


def valid_bytes(tmp_path_factory) -> bytes:
    p = tmp_path_factory.mktemp("fuzz") / "base.safetensors"
    rng = np.random.default_rng(0)
    save_file(
        {
            "w": rng.standard_normal((8, 6)).astype(np.float32),
            "b": np.arange(5, dtype=np.int32),
            "h": rng.standard_normal((3, 4)).astype(np.float16),
        },
        str(p),
        metadata={"format": "np"},
    )
    return p.read_bytes()


edits = st.lists(
    st.one_of(
        st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(0, 255)),
        st.tuples(st.just("truncate"), st.integers(0, 10_000), st.just(0)),
        st.tuples(st.just("insert"), st.integers(0, 10_000), st.integers(0, 255)),
        st.tuples(st.just("delete"), st.integers(0, 10_000), st.just(0)),
    ),
    min_size=1,
    max_size=6,
)


def corrupt(data: bytearray, edits) -> bytes:
    for kind, pos, value in edits:
        pos = pos % (len(data) + 1)
        if kind == "flip" and pos < len(data):
            data[pos] = value
        elif kind == "truncate":
            del data[pos:]
        elif kind == "insert":
            data.insert(pos, value)
        elif kind == "delete" and pos < len(data):
            del data[pos]
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=edits)
def test_corrupted_files_parse_or_raise_format_error(tmp_path_factory, edits):
    p = tmp_path_factory.mktemp("fuzz") / "corrupt.safetensors"
    p.write_bytes(corrupt(bytearray(valid_bytes(tmp_path_factory)), edits))
    scans_or_refuses(p)


def scans_or_refuses(path) -> None:
    """A clean format error, or a scan whose every record is named and typed."""
    try:
        records = wf.scan(path, k=2, threads=2)
    except wf.WeightprintFormatError:
        return
    for r in records:
        assert r.name and r.dtype


def valid_gguf_bytes(tmp_path_factory) -> bytes:
    from gguf_files import random_blocks, write_gguf

    rng = np.random.default_rng(0)
    p = write_gguf(
        tmp_path_factory.mktemp("fuzz") / "base.gguf",
        {
            "blk.0.attn_q.weight": (random_blocks("Q4_K", 4 * 256, rng), "Q4_K", (4, 256)),
            "blk.0.attn_k.weight": (random_blocks("Q8_0", 4 * 64, rng), "Q8_0", (4, 64)),
            "blk.0.attn_norm.weight": rng.standard_normal(256).astype(np.float32),
        },
        extra=lambda w: w.add_array("tokenizer.ggml.tokens", ["a", "bb", "ccc"]),
    )
    return p.read_bytes()


# Offsets near the front hit the header, metadata and tensor table, where the rules live.
gguf_edits = st.lists(
    st.tuples(
        st.sampled_from(["flip", "truncate", "insert", "delete"]), st.integers(0, 600), st.integers(0, 255)
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=gguf_edits)
def test_corrupted_gguf_files_parse_or_raise_format_error(tmp_path_factory, edits):
    pytest.importorskip("gguf")
    p = tmp_path_factory.mktemp("fuzz") / "corrupt.gguf"
    p.write_bytes(corrupt(bytearray(valid_gguf_bytes(tmp_path_factory)), edits))
    scans_or_refuses(p)
