"""The weightprint command: output, files, exit codes, errors."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from safetensors.numpy import save_file

import weightprint_fast as wf
from weightprint_fast.apps import cli, demo


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return demo.build(tmp_path_factory.mktemp("cli"))


def run(capsys, *args):
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_fingerprint_prints_a_table(capsys, models):
    code, out, _ = run(capsys, "fingerprint", models["family-a"], "--quiet")
    assert code == 0 and "SD vector" in out and "gate" in out


def test_fingerprint_json_and_output_file(capsys, models, tmp_path):
    code, out, _ = run(capsys, "fingerprint", models["family-a"], "--json", "-o", tmp_path / "a.json", "-q")
    assert code == 0
    printed = json.loads(out)
    assert printed["types"] == ["q", "k", "v", "o", "gate", "up", "down"]
    assert json.loads((tmp_path / "a.json").read_text()) == printed


def test_fingerprint_many_into_a_directory(capsys, models, tmp_path):
    code, _, _ = run(
        capsys, "fingerprint", models["family-a"], models["family-b"], "-o", tmp_path / "out", "-q"
    )
    assert code == 0 and sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "family-a.fingerprint.json",
        "family-b.fingerprint.json",
    ]


def test_compare_exit_status_is_0_for_related(capsys, models):
    code, out, _ = run(capsys, "compare", models["family-a"], models["family-a-finetune"], "-q")
    assert code == 0 and "same-family/derived" in out


def test_compare_exit_status_is_3_for_unrelated(capsys, models):
    code, out, _ = run(capsys, "compare", models["family-a"], models["family-b"], "-q")
    assert code == 3 and "unrelated" in out


def test_compare_exit_status_is_4_for_undetermined(capsys, models, tmp_path):
    # Without the lineage invariants, different spectra cannot rule a rewritten copy out.
    saved = []
    for name in ("family-a", "family-b"):
        saved.append(tmp_path / f"{name}.json")
        wf.fingerprint(models[name], invariants=False, progress=False).save(saved[-1])
    code, out, _ = run(capsys, "compare", *saved, "-q")
    assert code == 4 and "undetermined" in out


def test_compare_json_of_many_models(capsys, models):
    code, out, _ = run(
        capsys, "compare", models["family-a"], models["family-b"], models["family-a-finetune"], "--json", "-q"
    )
    data = json.loads(out)
    assert code == 0 and len(data["comparisons"]) == 2 and len(data["signals"]["sd_cosine"]) == 3


def test_compare_needs_two_models(capsys, models):
    with pytest.raises(SystemExit) as e:
        cli.main(["compare", str(models["family-a"])])
    assert e.value.code == 2


def test_plot_writes_a_png(capsys, models, tmp_path):
    code, _, _ = run(capsys, "plot", models["family-a"], models["family-b"], "-o", tmp_path / "p.png", "-q")
    assert code == 0 and (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


def test_inspect_lists_tensors(capsys, models):
    code, out, _ = run(capsys, "inspect", models["family-a"], "--json")
    tensors = json.loads(out)["tensors"]
    assert code == 0 and len(tensors) == 42 and tensors[0]["dtype"] == "F32"


def test_demo_runs_and_writes_its_plot(capsys, tmp_path):
    code, out, _ = run(capsys, "demo", "--dir", tmp_path, "-q")
    assert code == 0 and "family-a-finetune" in out and (tmp_path / "demo.png").exists()


def truncated_file(p):
    (p / "bad.safetensors").write_bytes(b"\x05")
    return p / "bad.safetensors"


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda p: p / "missing", "no such file"),
        (lambda p: p, "no .safetensors files"),
        (truncated_file, "truncated file"),
    ],
)
def test_input_errors_are_one_line_with_status_2(capsys, tmp_path, make, message):
    code, _out, err = run(capsys, "fingerprint", make(tmp_path), "-q")
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err


def test_unknown_architecture_is_status_2(capsys, tmp_path):
    save_file({"foo.bar": np.ones((4, 4), np.float32)}, str(tmp_path / "model.safetensors"))
    code, _, err = run(capsys, "fingerprint", tmp_path, "-q")
    assert code == 2 and "name_patterns" in err


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(FileNotFoundError):
        cli.main(["fingerprint", str(tmp_path / "missing"), "--debug"])


def test_version():
    out = subprocess.run(
        [sys.executable, "-m", "weightprint_fast", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "weightprint-fast" in out.stdout


def test_ctrl_c_stops_a_long_scan_cleanly(tmp_path):
    # A checkpoint whose analysis takes seconds (8 exact 2048 x 2048 spectra, one thread); SIGINT
    # arrives 0.3 s after the engine is warm (SciPy's import is not part of the clock).
    rng = np.random.default_rng(0)
    save_file(
        {
            f"model.layers.{i}.mlp.up_proj.weight": rng.standard_normal((2048, 2048)).astype(np.float32)
            for i in range(8)
        },
        str(tmp_path / "model.safetensors"),
    )
    script = textwrap.dedent(f"""
        import os, signal, threading, numpy as np, weightprint_fast as wf
        wf.matrix_stats(np.zeros(4, dtype=np.float32))
        # A parent that ignores SIGINT (a background job of a script) passes that on: restore it.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
        try:
            wf.scan({str(tmp_path)!r}, k=16, method="exact", threads=1)
            print("finished")
        except KeyboardInterrupt:
            print("interrupted")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "interrupted", out.stderr


def test_fingerprint_tol_is_recorded_in_the_settings(capsys, models):
    code, out, _ = run(capsys, "fingerprint", models["family-a"], "--tol", "1e-5", "--json", "-q")
    assert code == 0 and json.loads(out)["meta"]["settings"]["tol"] == 1e-5


@pytest.mark.parametrize("command", ["fingerprint", "compare", "batch", "search", "store", "inspect"])
def test_every_subcommand_help_describes_it_and_its_exit_statuses(capsys, command):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "exit status" in out and "2 bad input" in out and "1 a bug" in out


def test_an_unwritable_output_is_refused_before_any_work(capsys, models, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = cli.main(["fingerprint", str(models["family-a"]), "-q", "-o", str(blocker / "out.json")])
    err = capsys.readouterr().err
    assert code == 2 and "-o" in err and "not a writable directory" in err


def test_piping_into_a_reader_that_stops_is_quiet(tmp_path):
    many = {f"t{i:05d}": np.zeros(1, np.float32) for i in range(5000)}  # a listing of ~300 KB
    save_file(many, str(tmp_path / "m.safetensors"))
    script = "import sys; from weightprint_fast.apps import cli; sys.exit(cli.main(sys.argv[1:]))"
    # A reader that takes one line and goes away, as `head -n 1` does.
    reader = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.readline()"], stdin=subprocess.PIPE
    )
    done = subprocess.run(
        [sys.executable, "-c", script, "inspect", str(tmp_path / "m.safetensors")],
        stdout=reader.stdin,
        stderr=subprocess.PIPE,
        text=True,
    )
    reader.stdin.close()
    reader.wait()
    assert done.returncode == 141 and done.stderr == ""
