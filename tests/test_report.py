"""``weightprint report``: one self-contained HTML file, checked by rendering it in a real
headless browser (Chromium from Debian's packages; skipped with the reason where it is absent)
and asserting on what the page shows."""

import subprocess

import numpy as np
import pytest

import system_tools
from weightprint_fast.apps import cli, demo

BROWSER = system_tools.find("chromium", "chromium-browser", "google-chrome")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    paths = demo.build(root / "models")
    out = root / "report.html"
    code = cli.main(
        [
            "report",
            str(paths["family-a"]),
            str(paths["family-a-finetune"]),
            str(paths["family-b"]),
            "-o",
            str(out),
            "-q",
        ]
    )
    return code, out


def _browser(*args: str) -> subprocess.CompletedProcess:
    if BROWSER is None:
        pytest.skip("no headless browser: apt-get install chromium")
    cmd = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args]
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, check=True, env=system_tools.environment()
    )


def test_the_report_exits_with_the_first_models_closest_verdict(report):
    code, out = report
    assert code == 0 and out.is_file()


def test_the_report_is_self_contained(report):
    _, out = report
    text = out.read_text()
    assert (
        "<script" not in text and "src='http" not in text and 'src="http' not in text and "<link" not in text
    )


def test_the_rendered_page_shows_each_verdict_with_its_evidence_and_null(report):
    _, out = report
    dom = _browser("--dump-dom", out.as_uri()).stdout
    assert "Lineage report" in dom
    for name in ("family-a", "family-a-finetune", "family-b"):
        assert name in dom
    assert "same-family/derived" in dom and "unrelated" in dom
    assert "between independent models" in dom and "circuit d" in dom
    assert "Every pair" in dom and "group 0" in dom


def test_the_rendered_page_shows_the_plot_and_the_verdict_colours(report, tmp_path):
    _, out = report
    shot = tmp_path / "shot.png"
    _browser(f"--screenshot={shot}", "--window-size=1280,2400", out.as_uri())
    import matplotlib.image

    pixels = (matplotlib.image.imread(str(shot))[:, :, :3] * 255).round()
    assert pixels.std() > 10  # not a blank page
    unrelated_red = np.array([0xD6, 0x60, 0x4D])
    assert (np.abs(pixels - unrelated_red).sum(axis=2) < 12).sum() > 200  # the unrelated verdict's colour
    assert "data:image/png;base64," in out.read_text()


def test_a_report_to_a_file_of_the_wrong_kind_is_refused_before_any_work(capsys, tmp_path):
    code = cli.main(["report", "missing-a", "missing-b", "-o", str(tmp_path / "report.pdf")])
    err = capsys.readouterr().err
    assert code == 2 and "report.pdf: the output is a .html file" in err
