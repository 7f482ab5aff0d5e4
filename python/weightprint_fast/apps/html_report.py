"""``weightprint report``: one self-contained HTML file people can share: the verdicts of the
first model against the others, each with its evidence beside the null it is measured against,
the many-model verdict matrix, the plot (inlined), and every model's fingerprint. No scripts, no
external files: styles and the image are inside."""

from __future__ import annotations

import base64
import html
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Optional, Union

from .._version import __version__
from ..compare import DEFAULT_THRESHOLDS, Comparison, ComparisonMatrix
from ..compare.coordinates import NULL_STD
from ..compare.legend import MATRIX_LEGEND, VERDICT_CODES
from ..display import cell, html_table
from ..fingerprint import Fingerprint
from .report import VERDICT_COLOURS, lineage_statistic

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 80em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f0f0f0; }
.verdict { font-weight: bold; padding: 0.1em 0.4em; border-radius: 0.2em; }
img { max-width: 100%; }
"""


def _badge(verdict: str) -> str:
    return (
        f"<span class='verdict' style='background:{VERDICT_COLOURS[verdict]}'>{html.escape(verdict)}</span>"
    )


def _evidence(c: Comparison) -> str:
    """The comparison's statistics, each beside what independently trained models give."""
    t = DEFAULT_THRESHOLDS
    rows: list[list[object]] = []
    if c.token_correlation is not None:
        rows.append(
            [
                "token r (what the layers do to shared anchor words)",
                c.token_correlation,
                f"{t.token_null_mean:.3f} +- {t.token_null_std:.3f}",
                f"z = {cell(c.token_z)}, p = {cell(c.token_p)}; derived at >= {t.token_derived}, "
                f"independent at <= {t.token_independent}",
            ]
        )
    if c.circuit_distance is not None:
        rows.append(
            [
                "circuit d (matched heads' QK/OV spectra)",
                c.circuit_distance,
                "non-corresponding layers of the same pair",
                f"p = {cell(c.null_p)}, z = {cell(c.null_z)}; specificity {cell(c.circuit_specificity)}",
            ]
        )
    if c.sketch_cosine is not None:
        rows.append(
            [
                "sketch cosine (shared weight coordinates)",
                c.sketch_cosine,
                f"0 +- {NULL_STD:.4f}",
                f"derived at >= {t.shared_coordinates}",
            ]
        )
    rows.append(
        ["SD-vector cosine (the paper's)", c.sd_cosine, "0.96-0.99 between families", "never decides alone"]
    )
    rows.append(["CV cosine (the paper's)", c.cv_cosine, "-", "never decides alone"])
    return html_table(["statistic", "value", "between independent models", "reading"], rows)


def _comparison(c: Comparison) -> str:
    parts = [f"<h3>{html.escape(c.a)} vs {html.escape(c.b)}: {_badge(c.verdict.value)}</h3>"]
    parts.append(f"<p>{html.escape(c.reason)}</p>")
    if c.family is not None:
        parts.append(f"<p>Family: <b>{html.escape(c.family)}</b> ({html.escape(c.family_reason or '')})</p>")
    if c.parent is not None:
        parent = c.a if c.parent == "a" else c.b
        parts.append(f"<p>Parent: <b>{html.escape(parent)}</b> ({html.escape(c.parent_reason or '')})</p>")
    parts.append(_evidence(c))
    return "\n".join(parts)


def _matrix(cm: ComparisonMatrix) -> str:
    n = len(cm.names)
    head = "".join(f"<th>[{j}]</th>" for j in range(n))
    body = []
    for i, name in enumerate(cm.names):
        cells = []
        for j in range(n):
            if i == j:
                cells.append("<td>self</td>")
                continue
            v = cm.verdicts[i][j].value
            label = f"{VERDICT_CODES[v]} {lineage_statistic(cm, i, j)}".strip()
            style = f"background:{VERDICT_COLOURS[v]}"
            cells.append(f"<td style='{style}' title='{html.escape(v)}'>{html.escape(label)}</td>")
        body.append(
            f"<tr><th>[{i}] {html.escape(name)}</th><td>group {cm.families[i]}</td>{''.join(cells)}</tr>"
        )
    rows = "".join(body)
    table = f"<table><thead><tr><th>model</th><th>group</th>{head}</tr></thead><tbody>{rows}</tbody></table>"
    return table + f"<p style='font-size: smaller'>{html.escape(MATRIX_LEGEND)}</p>"


def _plot(fps: Sequence[Fingerprint], cm: Optional[ComparisonMatrix]) -> str:
    from .report import plot

    with tempfile.TemporaryDirectory(prefix="weightprint-report-") as tmp:
        try:
            png = plot(fps, Path(tmp) / "plot.png", matrix=cm)
        except ImportError:
            return "<p>Plot: not drawn (matplotlib is not installed: pip install matplotlib).</p>"
        data = base64.b64encode(png.read_bytes()).decode("ascii")
    alt = "SD vectors, Clustering Vectors and the verdict matrix"
    return f"<img alt='{alt}' src='data:image/png;base64,{data}'>"


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def report_html(
    fps: Sequence[Fingerprint], comparisons: Sequence[Comparison], cm: Optional[ComparisonMatrix]
) -> str:
    """The report's HTML: comparisons of the first model with the others, the matrix (three or
    more models), the plot and the fingerprints."""
    names = ", ".join(html.escape(f.name) for f in fps)
    sections = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>weightprint report: {names}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Lineage report: {names}</h1>",
        f"<p>weightprint-fast {html.escape(__version__)}, {_now()}. "
        "Every verdict is the exact comparison of two fingerprints; each statistic stands beside what "
        "independently trained models give.</p>",
        f"<h2>{html.escape(fps[0].name)} against the others</h2>",
        *(_comparison(c) for c in comparisons),
    ]
    if cm is not None and len(fps) > 2:
        sections += ["<h2>Every pair</h2>", _matrix(cm)]
    sections += ["<h2>Plot</h2>", _plot(fps, cm), "<h2>Fingerprints</h2>"]
    sections += [f._repr_html_() for f in fps]
    sections.append("</body></html>")
    return "\n".join(sections)


def write_report(
    fps: Sequence[Fingerprint],
    out: Union[str, Path],
    comparisons: Sequence[Comparison],
    cm: Optional[ComparisonMatrix],
) -> Path:
    """Writes the report to ``out`` (replaced whole); returns the path."""
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(report_html(fps, comparisons, cm), encoding="utf-8")
    tmp.replace(out)
    return out


__all__ = ["report_html", "write_report"]
