"""The verdict type and the thresholds: each verdict's meaning, relatedness, exit status and rank
are defined once; thresholds are a frozen object passed in, not global state."""

import dataclasses
import importlib
import json

import pytest

import weightprint_fast as wf
from weightprint_fast.apps import demo
from weightprint_fast.compare.verdict import exit_status

V = wf.Verdict


@pytest.fixture(scope="module")
def fps(tmp_path_factory):
    paths = demo.build(tmp_path_factory.mktemp("verdict"))
    return {n: wf.fingerprint(p, progress=False).renamed(n) for n, p in paths.items()}


@pytest.mark.parametrize("verdict", list(V))
def test_every_verdict_has_a_meaning_an_exit_status_and_a_rank(verdict):
    assert verdict.meaning and verdict.exit_status in (0, 3, 4) and verdict.rank in range(4)
    assert (verdict.exit_status == 0) == verdict.related


def test_related_verdicts_rank_above_every_other():
    assert min(v.rank for v in V if v.related) > max(v.rank for v in V if not v.related)


def test_verdicts_are_their_documented_strings():
    assert V.DERIVED == "same-family/derived" and str(V.SAME_MODEL) == "same-model"
    assert json.dumps({"v": V.UNRELATED}) == '{"v": "unrelated"}'


def test_the_exit_status_is_that_of_the_closest_verdict():
    assert exit_status([V.UNRELATED, V.DERIVED]) == 0
    assert exit_status([V.UNRELATED, V.ADAPTER_FITS]) == 4
    assert exit_status([V.UNRELATED, V.ADAPTER_FOR_OTHER_SHAPES]) == 3


def test_thresholds_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        wf.DEFAULT_THRESHOLDS.derived_circuit = 1.0  # type: ignore[misc]


def test_thresholds_passed_in_decide_the_verdict(fps):
    a, tuned = fps["family-a"], fps["family-a-finetune"]
    assert wf.compare(a, tuned).verdict == V.DERIVED
    strict = dataclasses.replace(
        wf.DEFAULT_THRESHOLDS,
        derived_circuit=0.0,
        copied_layer_circuit=0.0,
        unrelated_circuit=1.0,
        shared_coordinates=2.0,
        copied_layer_coordinates=2.0,
    )
    assert wf.compare(a, tuned, thresholds=strict).verdict == V.UNDETERMINED
    assert wf.compare(a, tuned).verdict == V.DERIVED  # nothing global changed


def test_compare_many_compares_each_pair_once_and_is_symmetric(fps, monkeypatch):
    # The package's compare() shadows its compare module as an attribute; the module itself:
    compare_module = importlib.import_module("weightprint_fast.compare")
    calls = []
    real = compare_module.compare
    monkeypatch.setattr(compare_module, "compare", lambda a, b, **kw: calls.append(1) or real(a, b, **kw))
    models = list(fps.values())
    cm = compare_module.compare_many(models)
    n = len(models)
    assert len(calls) == n * (n - 1) // 2
    for i in range(n):
        for j in range(n):
            assert cm.verdicts[i][j] == cm.verdicts[j][i]


def test_the_comparison_json_names_the_verdict(fps):
    d = wf.compare(fps["family-a"], fps["family-b"]).to_dict()
    assert d["verdict"] == "unrelated" and json.loads(json.dumps(d))["verdict"] == "unrelated"


def test_renaming_a_fingerprint_leaves_the_original_unchanged(fps):
    fp = fps["family-a"]
    other = fp.renamed("elsewhere")
    assert other.name == "elsewhere" and fp.name == "family-a"


def test_the_recorded_settings_are_the_settings_whole():
    patterns = {r"net\.(?P<layer>\d+)\.w": "q"}
    recorded = wf.Settings(name_patterns=patterns).recorded()
    # Threads, progress bars and whether to download change how, not what: not recorded.
    fields = {f.name for f in dataclasses.fields(wf.Settings)} - {"threads", "progress", "download"}
    assert set(recorded) == fields and recorded["name_patterns"] == patterns
