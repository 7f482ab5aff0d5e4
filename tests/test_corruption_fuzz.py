"""Random corruptions of a valid file never crash the process: they parse, or raise the format error."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file

import weightprint_fast as wf


def valid_bytes(tmp_path_factory) -> bytes:
    p = tmp_path_factory.mktemp("fuzz") / "base.safetensors"
    rng = np.random.default_rng(0)
    save_file(
        {"w": rng.standard_normal((8, 6)).astype(np.float32), "b": np.arange(5, dtype=np.int32),
         "h": rng.standard_normal((3, 4)).astype(np.float16)},
        str(p), metadata={"format": "np"},
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


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=edits)
def test_corrupted_files_parse_or_raise_format_error(tmp_path_factory, edits):
    data = bytearray(valid_bytes(tmp_path_factory))
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
    p = tmp_path_factory.mktemp("fuzz") / "corrupt.safetensors"
    p.write_bytes(bytes(data))
    try:
        records = wf.scan(p, k=3, threads=2)
    except wf.WeightprintFormatError:
        return
    for r in records:
        assert r.name and r.dtype
