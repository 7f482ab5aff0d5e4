"""The labelled-pairs evaluation of experiments/ as a regression test: compare's verdict on the
stored fingerprints of real models and their derivatives must make no false positive and must
keep the recall measured when the results were produced."""

import itertools
import json
from pathlib import Path

import pytest

import weightprint_fast as wf

RESULTS = Path(__file__).resolve().parents[1] / "experiments" / "results"


@pytest.fixture(scope="module")
def labelled():
    labels = json.loads((RESULTS / "labels.json").read_text())
    fps = {n: wf.Fingerprint.load(RESULTS / "fingerprints" / f"{n}.json") for n in labels}
    pairs = [(a, b, labels[a] == labels[b], wf.compare(fps[a], fps[b]))
             for a, b in itertools.combinations(sorted(labels), 2)]
    return pairs, json.loads((RESULTS / "summary.json").read_text())


def test_no_unrelated_pair_is_called_related(labelled):
    pairs, _ = labelled
    false_positives = [(a, b, c.verdict) for a, b, related, c in pairs if not related and c.related]
    assert false_positives == []


def test_recall_on_real_derivatives_does_not_drop(labelled):
    pairs, summary = labelled
    related = [c for _, _, rel, c in pairs if rel]
    recall = sum(c.related for c in related) / len(related)
    assert recall >= summary["verdict"]["true_positive_rate"] - 1e-12


def test_every_family_has_derivatives_in_the_evaluation(labelled):
    pairs, _ = labelled
    families = {a.split("-")[0] for a, b, related, _ in pairs if related}
    assert {"smollm2", "gemma3", "minilm"} <= families
