"""Where people look: DataFrames of fingerprints and comparisons (pandas, imported only when
asked for), the HTML a notebook shows, and progress bars in a Jupyter kernel."""

import sys
import types

import numpy as np
import pytest

import weightprint_fast as wf
from weightprint_fast.apps import demo
from weightprint_fast.engine import progress

pd = pytest.importorskip("pandas")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    paths = demo.build(tmp_path_factory.mktemp("models"))
    return {k: wf.fingerprint(v, progress=False) for k, v in paths.items()}


def test_a_fingerprint_frame_has_one_row_per_matrix_with_its_values(models):
    fp = models["family-a"]
    df = fp.to_frame()
    present = int(np.isfinite(fp.layer_std).sum())
    assert len(df) == present
    row = df[(df.layer == 1) & (df.type == fp.types[0])].iloc[0]
    assert row["std"] == fp.layer_std[1, 0] and row["sv_1"] == fp.singular_values[1, 0, 0]
    assert [row["rows"], row["cols"]] == fp.matrix_shapes[fp.types[0]]
    assert row["cluster"] == fp.cluster_labels[1, 0]


def test_a_comparison_frame_is_one_row_of_every_field(models):
    c = wf.compare(models["family-a"], models["family-b"])
    df = c.to_frame()
    assert len(df) == 1 and df.loc[0, "verdict"] == c.verdict.value and set(c.to_dict()) == set(df.columns)


def test_many_comparisons_give_one_row_per_pair(models):
    cm = wf.compare_many(list(models.values()))
    df = cm.to_frame()
    n = len(models)
    assert len(df) == n * (n - 1) // 2
    first = df.iloc[0]
    assert first["sd_cosine"] == cm.signals["sd_cosine"][0, 1] and first["verdict"] == cm.verdicts[0][1].value


def test_frames_without_pandas_say_how_to_install_it(models, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(wf.MissingExtraError, match=r"weightprint-fast\[frames\]"):
        models["family-a"].to_frame()


def test_a_notebook_shows_a_comparison_with_its_verdict_and_what_each_signal_means(models):
    a = models["family-a"].renamed("<script>x</script>")
    html = wf.compare(a, models["family-b"])._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert wf.compare(a, models["family-b"]).verdict.value in html and "Standard-Deviation Vectors" in html


def test_a_notebook_shows_a_fingerprint_per_type(models):
    fp = models["family-a"]
    html = fp._repr_html_()
    assert all(f"<td>{t}</td>" in html for t in fp.types) and fp.name in html


def test_progress_bars_show_in_a_jupyter_kernel_by_default(monkeypatch):
    class ZMQInteractiveShell:
        pass

    fake = types.SimpleNamespace(get_ipython=lambda: ZMQInteractiveShell())
    monkeypatch.setitem(sys.modules, "IPython", fake)
    assert progress.show_progress(None) is True
    assert progress.show_progress(False) is False


def test_no_progress_bars_by_default_in_a_plain_pipe(monkeypatch):
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert progress.show_progress(None) is False
