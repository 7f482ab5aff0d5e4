"""Lineage sketches (zoo/sketch.py): fixed-length vectors that keep the invariants' answers, so an
index can find a model's relatives; checked against their definition and on the stored
evaluation's real and trained-from-scratch models."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

import weightprint_fast as wf
from weightprint_fast.probes import TokenForms
from weightprint_fast.zoo import sketch

RESULTS = Path(__file__).resolve().parents[1] / "experiments" / "results" / "lineage"


@pytest.fixture(scope="module")
def stored():
    labels = json.loads((RESULTS / "labels.json").read_text())
    return {n: wf.Fingerprint.load(RESULTS / "fingerprints" / f"{n}.json") for n in labels}


def cos(a, b):
    return float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))


def test_the_count_sketch_keeps_cosines_to_one_over_sqrt_dims(rng):
    x = rng.standard_normal((400, 5000))
    y = 0.5 * x + np.sqrt(0.75) * rng.standard_normal((400, 5000))  # cosine 0.5 with x
    keys = np.arange(5000, dtype=np.uint64)
    est = np.array(
        [sketch._count_sketch(a, keys, 256) @ sketch._count_sketch(b, keys, 256) for a, b in zip(x, y)]
    )
    assert abs(est.mean() - 0.5) < 0.02 and 0.03 < est.std() < 0.08


def test_the_count_sketch_is_one_signed_bucket_per_input_then_unit_length(rng):
    keys = np.arange(300, dtype=np.uint64) * np.uint64(7919)
    # Column i: the sketch of the i-th basis vector, a single +-1 in one bucket.
    m = np.stack([sketch._count_sketch(np.eye(300)[i], keys, 64) for i in range(300)], axis=1)
    assert np.all(np.abs(m).sum(axis=0) == 1)
    v = rng.standard_normal(300)
    dense = m @ v
    assert np.allclose(sketch._count_sketch(v, keys, 64), dense / np.linalg.norm(dense))


def test_rewritten_widened_and_sliced_copies_keep_the_token_sketch(stored):
    base = sketch.token_sketch(stored["smollm2-f32"])
    for copy in ("smollm2-rewritten-x8", "smollm2-widened", "smollm2-sliced20", "smollm2-q8_0"):
        assert cos(base, sketch.token_sketch(stored[copy])) > 0.8, copy


def test_fine_tunes_keep_both_sketches_and_strangers_meet_neither(stored):
    tuned, base, stranger = (
        stored["llama-m-seed0-tuned-python"],
        stored["llama-m-seed0"],
        stored["llama-m-seed1"],
    )
    a, b, c = (sketch.lineage_sketch(f) for f in (tuned, base, stranger))
    assert cos(a.tokens, b.tokens) > 0.9 and cos(a.coordinates, b.coordinates) > 0.9
    assert cos(b.tokens, c.tokens) < 0.4 and abs(cos(b.coordinates, c.coordinates)) < 0.25


def test_an_averages_smaller_share_is_seen_by_the_coordinate_sketch(stored):
    average, minor = stored["llama-m-seed0-avg30"], stored["llama-m-seed1"]
    assert cos(sketch.coordinate_sketch(average), sketch.coordinate_sketch(minor)) > 0.2


def test_a_model_lacking_anchor_words_still_meets_its_parent(stored):
    base = stored["llama-s-seed0"]
    tf = base.token_forms
    keep = [i for i in range(len(tf.words)) if i % 10 != 3]  # a tokenizer without 5 of the 43 words
    fewer = TokenForms([tf.words[i] for i in keep], {f: x[:, keep][:, :, keep] for f, x in tf.forms.items()})
    thinner = dataclasses.replace(base, token_forms=fewer)
    assert cos(sketch.token_sketch(base), sketch.token_sketch(thinner)) > 0.75


def test_a_fingerprint_without_probes_or_sketches_has_no_vectors(stored):
    bare = dataclasses.replace(stored["minilm"], token_forms=None, weight_sketches=None)
    s = sketch.lineage_sketch(bare)
    assert s.tokens is None and s.coordinates is None


def test_a_sketch_round_trips_through_its_bytes(stored):
    s = sketch.lineage_sketch(stored["gemma3-f32"])
    back = sketch.LineageSketch.from_bytes(*s.to_bytes())
    assert np.allclose(back.tokens, s.tokens, atol=1e-3) and np.allclose(
        back.coordinates, s.coordinates, atol=1e-3
    )
    with pytest.raises(ValueError, match="bytes"):
        sketch.LineageSketch.from_bytes(b"\x00" * 10, None)
