"""Search on the stored real evaluation (experiments/results/lineage): a store of its 67
fingerprints (real models, their derivatives, and models trained from scratch with theirs).
Every derived model's query finds each of its parents in the top 3 among the models a user would
look for it in (its ancestors and the models unrelated to it: its siblings, other copies of the
same base, are equally right answers and are set aside), and no unrelated model is returned as
related."""

import json
from pathlib import Path

import pytest

import weightprint_fast as wf
from weightprint_fast.zoo.store import FingerprintStore, Stamp

RESULTS = Path(__file__).resolve().parents[1] / "experiments" / "results" / "lineage"
pytestmark = pytest.mark.slow  # 55 queries, each compared exactly with 48 candidates: ~2 min


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory):
    labels = json.loads((RESULTS / "labels.json").read_text())
    fps = {n: wf.Fingerprint.load(RESULTS / "fingerprints" / f"{n}.json") for n in labels}
    db = FingerprintStore(tmp_path_factory.mktemp("eval") / "zoo.db")
    for name, fp in fps.items():
        db.put(name, Stamp(1, 1.0), fp)

    def ancestors(n: str) -> set:
        return {n}.union(*(ancestors(p) for p in labels[n]["parents"]))

    results = {n: wf.search(fps[n], db, top=20) for n, label in labels.items() if label["parents"]}
    db.close()
    return labels, results, ancestors


def test_every_derived_model_finds_its_parents_in_the_top_3(evaluation):
    labels, results, ancestors = evaluation
    missed = []
    for name, hits in results.items():
        mine = ancestors(name)
        candidates = [
            h.path for h in hits if h.path != name and (h.path in mine or not ancestors(h.path) & mine)
        ]
        missed += [(name, p) for p in labels[name]["parents"] if p not in candidates[:3]]
    assert missed == []


def test_no_unrelated_model_is_returned_as_related(evaluation):
    _, results, ancestors = evaluation
    wrong = [
        (name, h.path, str(h.comparison.verdict))
        for name, hits in results.items()
        for h in hits
        if h.comparison.related and not ancestors(h.path) & ancestors(name)
    ]
    assert wrong == []
