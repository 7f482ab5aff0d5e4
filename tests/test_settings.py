"""One settings object: defaults, choices and validation in one place, taken everywhere."""

import dataclasses

import pytest

import weightprint_fast as wf
from weightprint_fast.apps import cli


@pytest.mark.parametrize(
    "field,bad",
    [
        ("method", "svd"),
        ("normalize", "l1"),
        ("feature", "sqrt"),
        ("nonfinite", "ignore"),
        ("peft", "unmerged"),
        ("top_k", 0),
        ("n_clusters", 0),
        ("tol", 1.5),
        ("threads", 0),
        ("top_k", "16"),
        ("top_k", 2.5),
        ("n_clusters", True),
        ("tol", "small"),
        ("threads", 1.0),
        ("invariants", "yes"),
        ("progress", 1),
        ("name_patterns", ["q"]),
        ("name_patterns", {"x(?P<layer>\\d+)": 1}),
    ],
)
def test_invalid_settings_are_refused_with_their_name(field, bad):
    with pytest.raises(wf.InputError, match=field.split("_")[0]):
        wf.Settings(**{field: bad})


def test_settings_are_frozen_and_replace_validates():
    s = wf.Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.top_k = 3
    assert s.replace(top_k=3).top_k == 3 and s.top_k == 16
    with pytest.raises(ValueError):
        s.replace(method="nope")
    with pytest.raises(TypeError):
        s.replace(topk=3)


def test_fingerprint_takes_a_settings_object_or_overrides_alike(tmp_path, rng):
    from safetensors.numpy import save_file

    save_file(
        {
            f"model.layers.{i}.self_attn.q_proj.weight": rng.standard_normal((24, 24)).astype("float32")
            for i in range(3)
        },
        str(tmp_path / "m.safetensors"),
    )
    a = wf.fingerprint(tmp_path / "m.safetensors", wf.Settings(top_k=4, method="exact"), progress=False)
    b = wf.fingerprint(tmp_path / "m.safetensors", top_k=4, method="exact", progress=False)
    assert a.meta["settings"] == b.meta["settings"] and a.meta["settings"]["top_k"] == 4
    assert (a.singular_values == b.singular_values).all()


def test_cli_choices_and_defaults_come_from_settings():
    s = cli._settings(cli.build_parser().parse_args(["fingerprint", "x"]))
    assert dataclasses.replace(s, progress=None) == wf.Settings()
