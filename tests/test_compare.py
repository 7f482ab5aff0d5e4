"""compare / compare_many on synthetic models with known lineage (the demo's checkpoints)."""

import shutil

import numpy as np
import pytest

import weightprint_fast as wf
from weightprint_fast.apps import demo


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    paths = demo.build(root)
    copy = root / "family-a-copy"
    shutil.copytree(paths["family-a"], copy)
    paths["family-a-copy"] = copy
    fps = {}
    for name, p in paths.items():
        fps[name] = wf.fingerprint(p, progress=False)
        fps[name].meta["name"] = name
    return paths, fps


def test_a_model_compared_with_itself_is_the_same_model(models):
    _, fps = models
    c = wf.compare(fps["family-a"], fps["family-a"])
    assert c.verdict == "same-model" and c.sd_cosine == pytest.approx(1.0) and c.spectral_distance == 0


def test_a_byte_copy_is_the_same_model(models):
    paths, _ = models
    assert wf.compare(paths["family-a"], paths["family-a-copy"], progress=False).verdict == "same-model"


@pytest.mark.parametrize("derived", ["family-a-finetune", "family-a-lora-merged"])
def test_fine_tunes_and_merges_are_derived(models, derived):
    _, fps = models
    c = wf.compare(fps["family-a"], fps[derived])
    assert c.verdict == "same-family/derived", c.reason
    assert c.related


def test_a_truncated_copy_is_derived_not_the_same_model(models, tmp_path):
    from safetensors.numpy import load_file, save_file

    paths, fps = models
    tensors = load_file(str(paths["family-a"] / "model.safetensors"))
    save_file(
        {k: v for k, v in tensors.items() if int(k.split(".")[2]) < 4}, str(tmp_path / "model.safetensors")
    )
    c = wf.compare(fps["family-a"], wf.fingerprint(tmp_path, progress=False))
    assert c.verdict == "same-family/derived" and c.spectral_distance == 0, c.reason


def test_different_families_are_unrelated(models):
    _, fps = models
    c = wf.compare(fps["family-a"], fps["family-b"])
    assert c.verdict == "unrelated" and not c.related


def test_compare_accepts_saved_fingerprints(models, tmp_path):
    paths, fps = models
    fps["family-a"].save(tmp_path / "a.json")
    c = wf.compare(tmp_path / "a.json", paths["family-a-copy"], progress=False)
    assert c.verdict == "same-model"


def test_comparison_is_symmetric_in_its_similarities(models):
    _, fps = models
    ab, ba = wf.compare(fps["family-a"], fps["family-b"]), wf.compare(fps["family-b"], fps["family-a"])
    assert ab.sd_cosine == pytest.approx(ba.sd_cosine) and ab.layer_pearson == pytest.approx(ba.layer_pearson)
    assert ab.verdict == ba.verdict


def test_models_without_common_types_cannot_be_compared(models, tmp_path):
    _, fps = models
    other = wf.Fingerprint.from_dict({**fps["family-b"].to_dict()})
    other.types = ["x"] * len(other.types)
    with pytest.raises(ValueError, match="no projection type in common"):
        wf.compare(fps["family-a"], other)


def test_compare_many_groups_families(models):
    _, fps = models
    names = ["family-a", "family-a-finetune", "family-a-lora-merged", "family-b", "family-a-copy"]
    cm = wf.compare_many([fps[n] for n in names])
    assert cm.names == names
    fam = dict(zip(names, cm.families))
    assert fam["family-a"] == fam["family-a-finetune"] == fam["family-a-lora-merged"] == fam["family-a-copy"]
    assert fam["family-b"] != fam["family-a"]
    assert cm.signals["sd_cosine"].shape == (5, 5)
    np.testing.assert_allclose(np.diag(cm.signals["sd_cosine"]), 1.0)
    assert cm.linkage.shape == (4, 4)
    nearest = dict((a, b) for a, b, _ in cm.nearest())
    assert nearest["family-b"] != "family-b"


def test_comparison_json_has_no_nan_or_infinity():
    import json
    import math

    from weightprint_fast.compare import Comparison

    c = Comparison(
        a="a",
        b="b",
        types=["q"],
        sd_cosine=1.0,
        sd_distance=0.0,
        cv_cosine=math.nan,
        cv_distance=0.0,
        layer_pearson=math.nan,
        coclustering_agreement=1.0,
        spectral_distance=None,
        circuit_distance=0.1,
        circuit_distance_max=0.2,
        circuit_specificity=math.inf,
        mlp_distance=None,
        verdict="undetermined",
        reason="",
    )
    text = json.dumps(c.to_dict(), allow_nan=False)
    assert json.loads(text)["circuit_specificity"] is None
