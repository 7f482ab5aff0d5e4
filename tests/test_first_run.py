"""What a new user meets first: the demo without extras, adapters against their base, inputs
people have (pickles, Hugging Face cache references), progress bars only where they help."""

from __future__ import annotations

import builtins
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

import weightprint_fast as wf
from weightprint_fast.apps import cli, demo
from weightprint_fast.readers.locate import resolve_hub_reference


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return demo.build(tmp_path_factory.mktemp("first-run"))


def test_demo_prints_its_tables_without_matplotlib(capsys, tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    code = cli.main(["demo", "--dir", str(tmp_path), "-q"])
    out = capsys.readouterr().out
    assert code == 0 and "family-a-finetune" in out and "same-family/derived" in out
    assert "pip install 'weightprint-fast[plot]'" in out and not (tmp_path / "demo.png").exists()


def test_adapter_against_its_base_is_adapter_of(models):
    c = wf.compare(models["family-a"], models["family-a-lora"], progress=False)
    assert c.verdict == "adapter-of" and c.related
    assert c.merged_spectral_bound is not None and c.spectral_distance is None


def test_adapter_against_another_model_of_its_shapes_only_fits(models):
    c = wf.compare(models["family-b"], models["family-a-lora"], progress=False)
    assert c.verdict == "adapter-fits" and not c.related and "names another base" in c.reason


def test_adapter_against_a_model_of_other_shapes_does_not_fit(models, tmp_path, rng):
    d = tmp_path / "small"
    d.mkdir()
    save_file(
        {
            f"model.layers.0.self_attn.{t}_proj.weight": rng.standard_normal((16, 16)).astype(np.float32)
            for t in "qkvo"
        },
        str(d / "model.safetensors"),
    )
    c = wf.compare(d, models["family-a-lora"], progress=False)
    assert c.verdict == "adapter-for-other-shapes"


def test_merged_spectral_bound_holds_for_the_merged_model(models):
    """The bound on what merging does is a bound: the merged model's real distance is below it."""
    base = wf.fingerprint(models["family-a"], progress=False)
    bound = wf.compare(base, models["family-a-lora"], progress=False).merged_spectral_bound
    assert wf.compare(base, models["family-a-lora-merged"], progress=False).spectral_distance <= bound


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pt", "weights.pth"])
def test_pickled_checkpoints_are_refused_with_a_conversion_hint(tmp_path, name):
    (tmp_path / name).write_bytes(b"\x80\x04not really a pickle")
    for target in (tmp_path, tmp_path / name):
        with pytest.raises(wf.WeightprintFormatError, match=r"never unpickles.*save_file"):
            wf.fingerprint(target, progress=False)


def hub_snapshot(cache: Path, repo: str, commit: str, refs: dict) -> Path:
    root = cache / ("models--" + repo.replace("/", "--"))
    (root / "refs").mkdir(parents=True)
    for ref, target in refs.items():
        (root / "refs" / ref).write_text(target)
    snap = root / "snapshots" / commit
    snap.mkdir(parents=True)
    return snap


COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hub_dir(tmp_path, use_hub_cache):
    """An empty Hugging Face cache that huggingface_hub uses for this test."""
    return use_hub_cache(tmp_path / "hf-cache")


def test_hub_reference_resolves_from_the_local_cache(hub_dir, models):
    snap = hub_snapshot(hub_dir, "acme/tiny", COMMIT, {"main": COMMIT, "v1": COMMIT})
    for f in ("model.safetensors", "config.json"):
        (snap / f).write_bytes((models["family-a"] / f).read_bytes())
    assert resolve_hub_reference("acme/tiny") == snap
    assert resolve_hub_reference("acme/tiny@v1") == snap
    assert resolve_hub_reference(f"acme/tiny@{COMMIT}") == snap
    c = wf.compare("acme/tiny", models["family-a"], progress=False)
    assert c.verdict == "same-model" and c.a == "acme/tiny"


def test_one_gguf_of_a_repository_holding_several_is_named_by_its_file(hub_dir, tmp_path):
    from gguf_files import write_gguf

    snap = hub_snapshot(hub_dir, "acme/quants", COMMIT, {"main": COMMIT})
    rng = np.random.default_rng(3)
    for name in ("tiny-q8.gguf", "tiny-f32.gguf"):
        tensors = {f"blk.{i}.attn_q.weight": rng.standard_normal((8, 8)).astype(np.float32) for i in range(2)}
        write_gguf(snap / name, tensors)
    assert resolve_hub_reference("acme/quants/tiny-q8.gguf") == snap / "tiny-q8.gguf"
    assert resolve_hub_reference("acme/quants@main/tiny-f32.gguf") == snap / "tiny-f32.gguf"
    fp = wf.fingerprint("acme/quants/tiny-q8.gguf", progress=False)
    assert fp.name == "acme/quants/tiny-q8.gguf"
    with pytest.raises(wf.CheckpointNotFoundError, match="no file 'other.gguf'.*tiny-f32.gguf, tiny-q8.gguf"):
        resolve_hub_reference("acme/quants/other.gguf")


@pytest.mark.parametrize("variable", ["HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME"])
def test_hub_references_follow_each_cache_variable(tmp_path, variable):
    cache = tmp_path / "hub" if variable == "HF_HOME" else tmp_path
    snap = hub_snapshot(cache, "acme/tiny", COMMIT, {"main": COMMIT})
    env = {
        k: v for k, v in os.environ.items() if k not in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME")
    }
    env[variable] = str(tmp_path)
    code = "from weightprint_fast.readers.locate import resolve_hub_reference as r; print(r('acme/tiny'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert Path(out.stdout.strip()) == snap


def test_hub_reference_not_cached_says_how_to_get_it(hub_dir):
    with pytest.raises(FileNotFoundError, match="acme/absent.*--download"):
        wf.fingerprint("acme/absent", progress=False)
    hub_snapshot(hub_dir, "acme/tiny", COMMIT, {"main": COMMIT})
    with pytest.raises(FileNotFoundError, match="acme/tiny@v9.*cached revisions of acme/tiny: main"):
        wf.fingerprint("acme/tiny@v9", progress=False)


def test_nothing_is_downloaded_without_asking(hub_dir, monkeypatch):
    import huggingface_hub

    calls = []
    real = huggingface_hub.snapshot_download

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", spy)
    with pytest.raises(FileNotFoundError):
        wf.fingerprint("acme/absent", progress=False)
    assert calls and all(c["local_files_only"] for c in calls)


def test_download_asks_only_for_weights_config_and_tokenizer(hub_dir, monkeypatch, models):
    import huggingface_hub

    asked = {}

    def fake(repo, revision=None, local_files_only=False, allow_patterns=None):
        asked.update(repo=repo, local=local_files_only, patterns=allow_patterns)
        snap = hub_snapshot(hub_dir, repo, COMMIT, {"main": COMMIT})
        for f in ("model.safetensors", "config.json"):
            (snap / f).write_bytes((models["family-a"] / f).read_bytes())
        return str(snap)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    wf.fingerprint("acme/fetched", download=True, progress=False)
    assert asked["local"] is False and "*.safetensors" in asked["patterns"]
    assert not any(p.endswith((".bin", ".pt", ".pth", ".ckpt")) or p == "*" for p in asked["patterns"])


def test_no_progress_bar_when_stderr_is_not_a_terminal(capsys, models):
    assert cli.main(["fingerprint", str(models["family-a"])]) == 0
    assert capsys.readouterr().err == ""


def test_progress_bar_is_never_drawn_empty(capsys, models):
    assert cli.main(["fingerprint", str(models["family-a"]), "--progress"]) == 0
    err = capsys.readouterr().err
    assert "0.00B" not in err and "?B/s" not in err


def test_progress_bar_shows_checkpoint_name_bytes_and_eta():
    from weightprint_fast.engine.progress import progress_bar

    bar = progress_bar("family-a")
    bar(1, 4, 1000, 4000)
    bar._bar.delay = 0  # drawn now rather than after half a second
    bar(2, 4, 2000, 4000)
    text = str(bar._bar)
    bar.close()
    assert "family-a" in text and "2.00k/4.00k" in text and "B/s" in text and "<" in text  # name, bytes, ETA


BENCH_SCALE = Path(__file__).resolve().parents[1] / "bench" / "bench_scale.py"


@pytest.mark.skipif(not BENCH_SCALE.exists(), reason="bench/ is not beside the tests (installed-wheel run)")
def test_bench_scale_reuses_a_checkpoint_made_for_more_layers(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH_SCALE.parent))
    spec = importlib.util.spec_from_file_location("bench_scale", BENCH_SCALE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    shards = [f"model-{i:05d}-of-00004.safetensors" for i in range(1, 5)]
    for s in shards:
        (tmp_path / s).write_bytes(b"x")
    (tmp_path / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {f"model.layers.{i}.w": s for i, s in enumerate(shards)}})
    )
    index = json.loads(mod.subset_index(tmp_path, 1).read_text())
    assert set(index["weight_map"].values()) == {shards[0]}
