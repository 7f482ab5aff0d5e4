"""The lineage evaluation of experiments/lineage.py as a regression test: models trained from
scratch (several seeds, three shapes) with their fine-tunes, averages, transplants, stackings,
rewritten, widened, sliced and pruned-and-distilled copies, and the real checkpoints with copies
made of them. compare's verdict on the stored fingerprints must call no independent pair related,
no derivative independent of its parent, and give its statistic against the measured null."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import weightprint_fast as wf

RESULTS = Path(__file__).resolve().parents[1] / "experiments" / "results" / "lineage"
RELATED = ("same-model", "same-family/derived")


@pytest.fixture(scope="module")
def evaluated():
    pairs = json.loads((RESULTS / "pairs.json").read_text())
    names = {p["a"] for p in pairs} | {p["b"] for p in pairs}
    fps = {n: wf.Fingerprint.load(RESULTS / "fingerprints" / f"{n}.json") for n in names}
    return [(p, wf.compare(fps[p["a"]], fps[p["b"]])) for p in pairs]


def test_no_independent_pair_is_called_related(evaluated):
    assert [(p["a"], p["b"], c.verdict) for p, c in evaluated if not p["related"] and c.related] == []


def test_no_derivative_is_called_independent_of_its_parent(evaluated):
    assert [
        (p["a"], p["b"], p["class"]) for p, c in evaluated if p["related"] and c.verdict == "unrelated"
    ] == []


def test_the_verdicts_are_those_the_evaluation_recorded(evaluated):
    assert [(p["a"], p["b"]) for p, c in evaluated if c.verdict != p["verdict"]] == []


def test_strangers_trained_from_scratch_are_independent_with_their_p_value(evaluated):
    strangers = [c for p, c in evaluated if p["class"].startswith("strangers: same shape")]
    assert len(strangers) >= 6
    assert all(c.verdict == "unrelated" and c.token_p is not None and "p = " in c.reason for c in strangers)


def test_the_sibling_pair_is_independent_and_one_family(evaluated):
    siblings = [c for p, c in evaluated if p["class"].startswith("siblings")]
    assert siblings and all(c.verdict == "unrelated" and c.family == "same family" for c in siblings)


def test_sliced_and_pruned_copies_are_derived_with_their_parent_named(evaluated):
    cut = [(p, c) for p, c in evaluated if p["class"].startswith(("sliced", "hidden, heads"))]
    assert len(cut) >= 4
    for p, c in cut:
        assert c.verdict == "same-family/derived", (p["a"], p["b"], c.reason)
        assert c.parent is not None and p[c.parent] == p["true_parent"], (p["a"], p["b"], c.parent_reason)


def test_the_token_null_in_the_thresholds_is_the_measured_one():
    null = json.loads((RESULTS / "summary.json").read_text())["token_null"]
    assert wf.DEFAULT_THRESHOLDS.token_null_mean == pytest.approx(null["mean"], abs=0.01)
    assert wf.DEFAULT_THRESHOLDS.token_null_std == pytest.approx(null["std"], abs=0.01)
    assert wf.DEFAULT_THRESHOLDS.token_independent > null["max"]
