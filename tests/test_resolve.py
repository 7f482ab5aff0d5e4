"""The one checkpoint resolver: every file of a checkpoint (shards through their index, split
GGUF parts, adapters, Hugging Face cache snapshots of symlinks), read by the readers and stamped
by the store, so that an edit to any of them is seen."""

import json
import os
import time

import numpy as np
import pytest
from safetensors.numpy import save_file

import weightprint_fast as wf
from gguf_files import write_gguf
from weightprint_fast.readers.resolve import checkpoint_files
from weightprint_fast.zoo.store import stamp

CONFIG = {"model_type": "llama", "hidden_size": 16, "num_attention_heads": 2, "num_key_value_heads": 2}


def sharded(root, rng, layers=3):
    """A checkpoint of one shard per layer, named by model.safetensors.index.json."""
    root.mkdir(parents=True, exist_ok=True)
    weight_map = {}
    for layer in range(layers):
        shard = f"model-{layer + 1:05d}-of-{layers:05d}.safetensors"
        tensors = {
            f"model.layers.{layer}.self_attn.{t}_proj.weight": rng.standard_normal((16, 16)).astype(
                np.float32
            )
            for t in "qkvo"
        }
        save_file(tensors, str(root / shard))
        weight_map.update(dict.fromkeys(tensors, shard))
    (root / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    (root / "config.json").write_text(json.dumps(CONFIG))
    return root


def test_a_sharded_checkpoint_is_every_shard_its_index_and_its_config(tmp_path, rng):
    root = sharded(tmp_path / "m", rng)
    names = sorted(p.name for p in checkpoint_files(root))
    assert names == sorted(
        ["config.json", "model.safetensors.index.json"]
        + [f"model-{i:05d}-of-00003.safetensors" for i in (1, 2, 3)]
    )
    assert checkpoint_files(root / "model.safetensors.index.json") == checkpoint_files(root)


def test_an_edited_non_first_shard_restamps_a_checkpoint_named_by_its_index(tmp_path, rng):
    root = sharded(tmp_path / "m", rng)
    index = root / "model.safetensors.index.json"
    before = stamp(index, verify=True)
    last = root / "model-00003-of-00003.safetensors"
    data = bytearray(last.read_bytes())
    data[-1] ^= 0xFF
    st = last.stat()
    last.write_bytes(bytes(data))
    os.utime(last, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = stamp(index, verify=True)
    assert before.size == after.size and before.mtime == after.mtime and before.sha256 != after.sha256


def test_an_edited_shard_is_fingerprinted_again_by_batch(tmp_path, rng):
    root = sharded(tmp_path / "m", rng)
    index = root / "model.safetensors.index.json"
    db = tmp_path / "s.db"
    assert wf.batch([index], db, workers=1, progress=False).done
    time.sleep(0.01)
    shard = root / "model-00002-of-00003.safetensors"
    save_file(
        {f"model.layers.1.self_attn.{t}_proj.weight": np.ones((16, 16), np.float32) for t in "qkvo"},
        str(shard),
    )
    assert wf.batch([index], db, workers=1, progress=False).done == [str(index.resolve())]


def test_a_split_gguf_named_by_its_first_part_is_every_part(tmp_path, rng):
    parts = []
    for k in range(3):

        def extra(w, k=k):
            w.add_uint16("split.no", k)
            w.add_uint16("split.count", 3)
            w.add_int32("split.tensors.count", 3)

        p = tmp_path / f"m-{k + 1:05d}-of-00003.gguf"
        parts.append(write_gguf(p, {f"blk.{k}.attn_q.weight": rng.standard_normal((8, 32))}, extra=extra))
    assert checkpoint_files(parts[0]) == parts == checkpoint_files(parts[2])


def test_an_adapter_is_its_config_and_its_weights(tmp_path):
    (tmp_path / "adapter_config.json").write_text("{}")
    save_file({"x": np.ones(2, np.float32)}, str(tmp_path / "adapter_model.safetensors"))
    assert [p.name for p in checkpoint_files(tmp_path)] == [
        "adapter_config.json",
        "adapter_model.safetensors",
    ]


def hub_cache(root, rng, repo="acme/tiny"):
    """A Hugging Face cache as huggingface_hub lays it out: snapshot files are symlinks to blobs."""
    model = root / ("models--" + repo.replace("/", "--"))
    source = sharded(root / "source", rng)
    (model / "blobs").mkdir(parents=True)
    snapshot = model / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    for f in source.iterdir():
        blob = model / "blobs" / f"blob-{f.name}"
        blob.write_bytes(f.read_bytes())
        (snapshot / f.name).symlink_to(os.path.relpath(blob, snapshot))
    (model / "refs").mkdir()
    (model / "refs" / "main").write_text("0123abcd")
    return snapshot


def test_a_sharded_model_in_a_hugging_face_cache_is_read_through_its_symlinks(tmp_path, rng, use_hub_cache):
    snapshot = hub_cache(tmp_path / "hub", rng)
    use_hub_cache(tmp_path / "hub")
    fp = wf.fingerprint("acme/tiny", top_k=4, progress=False)
    direct = wf.fingerprint(tmp_path / "hub" / "source", top_k=4, progress=False)
    np.testing.assert_array_equal(fp.singular_values, direct.singular_values)
    assert all(p.parent == snapshot for p in checkpoint_files("acme/tiny"))


def test_an_index_entry_that_leaves_the_directory_is_still_refused(tmp_path, rng):
    root = sharded(tmp_path / "m", rng)
    index = root / "model.safetensors.index.json"
    data = json.loads(index.read_text())
    data["weight_map"]["model.layers.0.self_attn.q_proj.weight"] = "../outside.safetensors"
    index.write_text(json.dumps(data))
    with pytest.raises(wf.WeightprintFormatError, match="points outside the checkpoint directory"):
        checkpoint_files(root)
