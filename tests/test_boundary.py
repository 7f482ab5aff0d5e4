"""The typed boundary of the native module: arrays are checked (layout, element type, size)
before the engine reads a byte, and the type stub says what the module really has."""

import ast
import inspect
from pathlib import Path

import numpy as np
import pytest

import weightprint_fast as wf
from weightprint_fast import _core
from weightprint_fast.engine import engine

STUB = Path(wf.__file__).parent / "_core.pyi"


def test_a_strided_view_is_refused_by_the_engine():
    a = np.arange(60, dtype=np.float32).reshape(6, 10)[:, ::2]
    with pytest.raises(wf.InputError, match="not C-contiguous"):
        engine().matrix_stats(a, "F32", 6, 5, 1)


def test_a_strided_view_gets_numpys_answer_through_the_public_api():
    a = np.arange(60, dtype=np.float32).reshape(6, 10)[:, ::2]
    m = wf.matrix_stats(a)
    assert m.mean == pytest.approx(float(a.mean())) and m.std == pytest.approx(float(a.std()))


def test_a_float64_array_is_not_read_as_float32():
    a = np.arange(12, dtype=np.float64)
    with pytest.raises(wf.InputError, match="float64 cannot hold F32"):
        engine().matrix_stats(a, "F32", 3, 4, 1)
    assert wf.matrix_stats(a).mean == pytest.approx(5.5)  # the public API names its dtype F64


def test_raw_bits_of_any_type_are_accepted_as_unsigned_integers():
    a = np.arange(12, dtype=np.float32)
    assert engine().matrix_stats(a.view(np.uint8), "F32", 3, 4, 1).mean == pytest.approx(5.5)


def test_a_buffer_of_the_wrong_size_is_refused():
    with pytest.raises(wf.InputError, match="does not hold 3 x 5 F32"):
        engine().matrix_stats(np.zeros(12, np.float32), "F32", 3, 5, 1)


def test_an_unknown_dtype_names_the_decoded_ones():
    with pytest.raises(wf.InputError, match="unsupported dtype 'Q4_X'.*decoded: .*Q4_K"):
        engine().matrix_stats(np.zeros(12, np.uint8), "Q4_X", 1, 12, 1)


def _stub() -> dict[str, set[str]]:
    """Top-level name -> member names (empty for functions) declared in _core.pyi."""
    out: dict[str, set[str]] = {}
    for node in ast.parse(STUB.read_text()).body:
        if isinstance(node, ast.ClassDef):
            out[node.name] = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
        elif isinstance(node, ast.FunctionDef):
            out[node.name] = set()
    return out


def _public(obj) -> set[str]:
    return {n for n in dir(obj) if not n.startswith("_")}


def test_the_stub_declares_exactly_what_the_module_has():
    stub = _stub()
    runtime = {n for n in _public(_core) if not inspect.ismodule(getattr(_core, n))}
    assert set(stub) == runtime


@pytest.mark.parametrize("name", sorted(n for n, v in vars(_core).items() if inspect.isclass(v)))
def test_the_stub_declares_every_member_of_each_class(name):
    cls = getattr(_core, name)
    if issubclass(cls, BaseException):
        return
    declared = _stub()[name] - {"__init__"}
    inherited = set().union(*(_stub().get(b.__name__, set()) for b in cls.__mro__[1:]))
    own = {n for n in _public(cls) if n in vars(cls)}
    assert own <= declared | inherited, f"missing from the stub: {own - declared - inherited}"
    assert declared <= _public(cls), f"not in the module: {declared - _public(cls)}"
