"""Output that explains itself, and the first-contact frictions: every table's columns are
explained (under the table and in --help), inspect shows how each tensor is read, a file that is
no model says so, and the demo leaves only its plot behind."""

import tempfile
from pathlib import Path

import pytest

from weightprint_fast.apps import cli, demo
from weightprint_fast.compare.legend import COMPARISON_COLUMNS, SEARCH_COLUMNS


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return demo.build(tmp_path_factory.mktemp("models"))


@pytest.mark.parametrize(
    ("command", "columns"), [("compare", COMPARISON_COLUMNS), ("search", SEARCH_COLUMNS)]
)
def test_help_explains_every_column_of_the_table(capsys, command, columns):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    out = capsys.readouterr().out
    assert all(f"{h}: {text}" in out for h, text in columns) and "exit status" in out


def test_inspect_shows_the_layer_and_type_each_tensor_is_read_as(capsys, models):
    assert cli.main(["inspect", str(models["family-a"])]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if "layers.1.self_attn.q_proj.weight" in ln)
    assert line.rstrip().endswith("layer 1 q") and "projection: the layer and projection type" in out


def test_a_file_that_is_no_model_is_named_as_neither_format(capsys, tmp_path):
    png = tmp_path / "picture.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    assert cli.main(["fingerprint", str(png)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "picture.png: not a safetensors or GGUF file" in err


def test_a_gguf_without_its_suffix_is_read_as_gguf(tmp_path):
    import numpy as np

    import weightprint_fast as wf
    from gguf_files import write_gguf

    rng = np.random.default_rng(0)
    tensors = {f"blk.{i}.attn_q.weight": rng.standard_normal((8, 8)).astype(np.float32) for i in range(2)}
    path = write_gguf(tmp_path / "model.gguf", tensors)
    renamed = path.rename(tmp_path / "model.bin-but-gguf")
    assert wf.fingerprint(renamed, progress=False).meta["format"] == "gguf"


def test_the_demo_removes_its_checkpoints_and_keeps_its_plot(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert cli.main(["demo", "-q"]) == 0
    (root,) = [p for p in Path(tmp_path).iterdir() if p.name.startswith("weightprint-demo-")]
    left = sorted(p.name for p in root.iterdir())
    assert left in (["demo.png"], [])  # [] where matplotlib is not installed
    assert "removed when the demo ends" in capsys.readouterr().out
