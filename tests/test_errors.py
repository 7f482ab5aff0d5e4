"""One error hierarchy: every error the package raises for bad input is a WeightprintError of
the right kind, and the CLI tells bad input (one line, status 2) from a bug (status 1)."""

import inspect
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from safetensors.numpy import save_file

import weightprint_fast as wf
import weightprint_fast.errors as errors
from weightprint_fast.apps import cli


def test_every_error_type_derives_from_the_one_base():
    types = [t for _, t in inspect.getmembers(errors, inspect.isclass) if issubclass(t, Exception)]
    assert len(types) >= 10
    assert all(issubclass(t, wf.WeightprintError) for t in types)
    assert issubclass(wf.WeightprintError, ValueError)  # code written against 0.3 keeps working


def test_the_engines_errors_are_members_of_the_hierarchy():
    assert issubclass(wf.WeightprintFormatError, wf.WeightprintError)
    assert issubclass(wf.InputError, wf.WeightprintError)
    assert issubclass(wf.EngineError, wf.WeightprintError)
    assert issubclass(wf.FingerprintFileError, wf.WeightprintFormatError)
    assert issubclass(wf.UnknownArchitectureError, wf.ConfigError)


def test_a_missing_checkpoint_is_an_input_error_and_a_file_not_found_error(tmp_path):
    with pytest.raises(wf.CheckpointNotFoundError) as info:
        wf.fingerprint(tmp_path / "absent.safetensors", progress=False)
    assert isinstance(info.value, wf.InputError) and isinstance(info.value, FileNotFoundError)


def test_a_fifo_named_as_a_checkpoint_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "model.safetensors"
    os.mkfifo(fifo)
    script = f"import weightprint_fast as wf; wf.open_shards({str(fifo)!r})"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "InputError" in done.stderr and "not a regular file" in done.stderr


def test_a_truncated_file_is_a_format_error(tmp_path):
    (tmp_path / "m.safetensors").write_bytes(b"\x10\x00\x00\x00")
    with pytest.raises(wf.WeightprintFormatError):
        wf.open_shards(tmp_path / "m.safetensors")


def test_bad_settings_are_input_errors():
    with pytest.raises(wf.InputError, match="method"):
        wf.Settings(method="svd")


def test_bad_kernel_arguments_are_input_errors():
    with pytest.raises(wf.InputError, match="non-negative"):
        wf.top_singular_values(np.ones((4, 4), np.float32), -1)
    with pytest.raises(wf.InputError, match="unknown method"):
        wf.top_singular_values(np.ones((4, 4), np.float32), 2, method="svd")


def test_a_bad_name_map_is_a_config_error(tmp_path):
    save_file({"net.0.w": np.ones((4, 4), np.float32)}, str(tmp_path / "m.safetensors"))
    with pytest.raises(wf.ConfigError, match="unknown projection type"):
        wf.fingerprint(tmp_path / "m.safetensors", name_patterns={r"net\.(?P<layer>\d+)\.w": "qq"})


def test_the_cli_reports_a_weightprint_error_in_one_line_with_status_2(capsys, tmp_path):
    (tmp_path / "m.safetensors").write_bytes(b"garbage!")
    code = cli.main(["fingerprint", str(tmp_path / "m.safetensors"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("weightprint: error: ")


def test_the_cli_calls_an_unexpected_exception_a_bug_with_status_1(capsys, tmp_path, monkeypatch):
    save_file(
        {"model.layers.0.self_attn.q_proj.weight": np.ones((4, 4), np.float32)},
        str(tmp_path / "m.safetensors"),
    )

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    parser_func = cli.build_parser
    monkeypatch.setattr(
        cli,
        "build_parser",
        lambda: _with_func(parser_func(), "fingerprint", broken),
    )
    code = cli.main(["fingerprint", str(tmp_path / "m.safetensors"), "-q"])
    err = capsys.readouterr().err
    assert code == 1 and "this is a bug" in err and "--debug" in err and "ZeroDivisionError" in err
    with pytest.raises(ZeroDivisionError):
        cli.main(["fingerprint", str(tmp_path / "m.safetensors"), "-q", "--debug"])


def _with_func(parser, command, func):
    for action in parser._subparsers._group_actions:
        action.choices[command].set_defaults(func=func)
    return parser


def test_a_revision_that_climbs_out_of_the_cache_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    (tmp_path / "models--org--name" / "snapshots").mkdir(parents=True)
    with pytest.raises(wf.CheckpointNotFoundError, match="not a branch, tag or commit"):
        wf.fingerprint("org/name@../../../x", progress=False)


def test_escape_codes_in_tensor_names_are_printed_escaped(capsys, tmp_path):
    name = "evil\x1b[2J\x1b]0;owned\x07.weight"
    save_file({name: np.ones((2, 2), np.float32)}, str(tmp_path / "m.safetensors"))
    assert cli.main(["inspect", str(tmp_path / "m.safetensors")]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "evil\\x1b[2J" in out
    assert cli.main(["fingerprint", str(tmp_path / "m.safetensors"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err


def test_a_symlink_to_another_file_does_not_leak_its_bytes(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"hunter2!" + b"x" * 100)
    (tmp_path / "model.safetensors").symlink_to(secret)
    with pytest.raises(wf.WeightprintFormatError) as info:
        wf.open_shards(tmp_path / "model.safetensors")
    leaked = str(int.from_bytes(b"hunter2!", "little"))
    assert leaked not in str(info.value) and "not a safetensors file" in str(info.value)


def test_an_all_nan_model_is_an_error_not_a_fingerprint(tmp_path):
    t = {f"model.layers.0.self_attn.{p}_proj.weight": np.full((8, 8), np.nan, np.float32) for p in "qkvo"}
    save_file(t, str(tmp_path / "m.safetensors"))
    with pytest.raises(wf.InputError, match="no finite value"):
        wf.fingerprint(tmp_path / "m.safetensors", progress=False)


def test_a_shape_of_more_than_64_dimensions_is_a_format_error_naming_the_file(tmp_path):
    header = json.dumps({"t": {"dtype": "F32", "shape": [1] * 65, "data_offsets": [0, 4]}}).encode()
    path = tmp_path / "m.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header + b"\x00" * 4)
    with pytest.raises(wf.WeightprintFormatError, match=r"m.safetensors.*65 dimensions"):
        wf.open_shards(path)
