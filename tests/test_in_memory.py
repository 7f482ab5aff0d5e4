"""Models in memory, through the same engine and verdicts as files: numpy mappings (no torch
needed), torch modules, transformers models (built in the test) and PEFT models; buffers read
in place; torch never imported for numpy input."""

import json
import subprocess
import sys

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import weightprint_fast as wf
from weightprint_fast import _core
from weightprint_fast.apps import demo


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """The demo's first model on disk, and as a mapping with its config."""
    path = demo.build(tmp_path_factory.mktemp("models"))["family-a"]
    config = json.loads((path / "config.json").read_text())
    return path, load_file(str(path / "model.safetensors")), config


def assert_same_fingerprint(a: wf.Fingerprint, b: wf.Fingerprint) -> None:
    assert a.types == b.types
    assert np.array_equal(a.std_vector, b.std_vector)
    assert np.array_equal(a.singular_values, b.singular_values, equal_nan=True)
    assert wf.compare(a, b).verdict == "same-model"


def test_a_numpy_mapping_fingerprints_exactly_as_its_safetensors_file(checkpoint):
    path, tensors, config = checkpoint
    assert_same_fingerprint(
        wf.fingerprint(tensors, config=config, progress=False), wf.fingerprint(path, progress=False)
    )


def test_a_contiguous_array_is_read_in_place(rng):
    a = rng.standard_normal((4, 6)).astype(np.float32)
    f = _core.MemoryTensorFile("mem", "w", "F32", [4, 6], a)
    a[0, 0] = 123.0  # the engine file sees the array's own memory
    assert f.read("w")[0, 0] == 123.0


def test_the_engine_keeps_a_buffer_alive_after_its_array_is_dropped(rng):
    a = rng.standard_normal((3, 3)).astype(np.float32)
    expected = a.astype(np.float64)
    f = _core.MemoryTensorFile("mem", "w", "F32", [3, 3], a)
    del a
    assert np.array_equal(f.read("w"), expected)


def test_a_strided_view_gives_the_same_fingerprint(checkpoint):
    path, tensors, config = checkpoint
    strided = {k: np.asfortranarray(v) for k, v in tensors.items()}  # not C-contiguous: copied once
    assert_same_fingerprint(
        wf.fingerprint(strided, config=config, progress=False), wf.fingerprint(path, progress=False)
    )


def test_an_unsupported_dtype_is_one_input_error_naming_the_tensor(checkpoint):
    _, tensors, config = checkpoint
    bad = {**tensors, "model.layers.0.self_attn.q_proj.weight": np.zeros((2, 2), dtype=np.complex64)}
    with pytest.raises(wf.InputError, match="q_proj.weight.*complex64"):
        wf.fingerprint(bad, config=config, progress=False)


def test_a_value_that_is_not_an_array_is_an_input_error(checkpoint):
    _, tensors, config = checkpoint
    with pytest.raises(wf.InputError, match="not a numpy array"):
        wf.fingerprint({**tensors, "x": [1, 2, 3]}, config=config, progress=False)


def test_numpy_input_never_imports_torch(checkpoint, tmp_path):
    path, _, _ = checkpoint
    code = f"""
import json, sys
from safetensors.numpy import load_file
import weightprint_fast as wf
config = json.load(open({str(path / "config.json")!r}))
wf.fingerprint(load_file({str(path / "model.safetensors")!r}), config=config, progress=False)
assert "torch" not in sys.modules, "torch was imported"
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


# -- torch, transformers, PEFT -------------------------------------------------------------------


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    """A tiny transformers Llama built in the test, and the same model saved as safetensors."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2,
    )  # fmt: skip
    model = transformers.LlamaForCausalLM(config).eval()
    saved = tmp_path_factory.mktemp("llama")
    model.save_pretrained(saved, safe_serialization=True)
    return model, saved


def test_a_transformers_model_fingerprints_as_its_saved_checkpoint(llama):
    model, saved = llama
    in_memory = wf.fingerprint(model, progress=False)
    assert in_memory.meta["format"] == "memory" and in_memory.invariants is not None
    assert_same_fingerprint(in_memory, wf.fingerprint(saved, progress=False))


def test_a_bfloat16_module_is_read_as_bfloat16(llama):
    import copy

    import torch

    model, saved = llama
    half = copy.deepcopy(model).to(torch.bfloat16)
    fp = wf.fingerprint(half, progress=False)
    assert fp.meta["dtypes"].get("BF16") and wf.compare(fp, wf.fingerprint(saved, progress=False)).related


def test_a_state_dict_of_tensors_needs_only_its_config(llama):
    model, saved = llama
    config = json.loads((saved / "config.json").read_text())
    assert_same_fingerprint(
        wf.fingerprint(model.state_dict(), config=config, progress=False),
        wf.fingerprint(saved, progress=False),
    )


def test_a_peft_model_is_fingerprinted_merged_and_left_untouched(llama, tmp_path):
    import copy

    import torch

    peft = pytest.importorskip("peft")
    model, _ = llama
    tuned = peft.get_peft_model(
        copy.deepcopy(model),
        peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
    )
    before = {k: v.clone() for k, v in tuned.state_dict().items()}
    fp = wf.fingerprint(tuned, progress=False)
    assert all(torch.equal(before[k], v) for k, v in tuned.state_dict().items())
    # The oracle: PEFT's own merge of a copy, saved and fingerprinted from disk.
    merged = copy.deepcopy(tuned).merge_and_unload()
    save_file(
        {k: v.contiguous().numpy() for k, v in merged.state_dict().items()},
        str(tmp_path / "model.safetensors"),
    )
    (tmp_path / "config.json").write_text(json.dumps(merged.config.to_dict()))
    oracle = wf.fingerprint(tmp_path, progress=False)
    assert np.allclose(fp.std_vector, oracle.std_vector, rtol=1e-6)
    assert np.allclose(fp.singular_values, oracle.singular_values, rtol=1e-5, equal_nan=True)
    assert wf.compare(fp, wf.fingerprint(model, progress=False)).related


def _lora(model, **config):
    import copy

    peft = pytest.importorskip("peft")
    return peft.get_peft_model(
        copy.deepcopy(model),
        peft.LoraConfig(
            r=4, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False, **config
        ),
    )


def test_a_peft_models_adapter_fingerprints_as_its_saved_adapter_directory(llama, tmp_path):
    model, _ = llama
    tuned = _lora(model, lora_alpha=16, use_rslora=True)  # a scale of 16 / sqrt(4): it counts
    fp = wf.fingerprint(tuned, peft="adapter", progress=False)
    tuned.save_pretrained(tmp_path)
    oracle = wf.fingerprint(tmp_path, progress=False)
    assert fp.meta["format"] == oracle.meta["format"] == "lora"
    assert fp.types == oracle.types == ["q", "v", "down"]
    assert np.allclose(fp.std_vector, oracle.std_vector, rtol=1e-6)
    assert np.allclose(fp.singular_values, oracle.singular_values, rtol=1e-6, equal_nan=True)


def test_a_dora_adapter_is_refused_with_the_setting_that_reads_it(llama):
    tuned = _lora(model=llama[0], use_dora=True)
    with pytest.raises(wf.InputError, match="DoRA.*peft='merged'"):
        wf.fingerprint(tuned, peft="adapter", progress=False)


def test_the_adapter_setting_on_a_model_without_adapters_is_an_input_error(llama):
    with pytest.raises(wf.InputError, match="needs a PEFT model"):
        wf.fingerprint(llama[0], peft="adapter", progress=False)


def test_a_tensor_off_the_cpu_is_an_input_error_saying_so(llama):
    torch = pytest.importorskip("torch")
    meta = {"model.layers.0.self_attn.q_proj.weight": torch.empty((4, 4), device="meta")}
    with pytest.raises(wf.InputError, match="meta.*model.cpu"):
        wf.fingerprint(meta, progress=False)
