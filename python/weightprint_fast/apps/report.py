"""Tables for people and plots (matplotlib, optional) of fingerprints and comparisons."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Optional, Union

import numpy as np

from ..compare import Comparison, ComparisonMatrix
from ..compare.legend import COMPARISON_COLUMNS, MATRIX_LEGEND, SEARCH_COLUMNS, VERDICT_CODES
from ..errors import MissingExtraError
from ..fingerprint import Fingerprint
from .text import printable


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table with aligned columns."""
    cells = [[_fmt(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(r):
        return "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells])


def _fmt(x: object) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return "nan" if math.isnan(x) else f"{x:.4g}"
    return printable(str(x))


def fingerprint_table(fp: Fingerprint) -> str:
    m = fp.meta
    head = (
        f"{fp.name}: {m.get('architecture')} ({m.get('format')}), {fp.layers} layers, "
        f"{m.get('matrices')} matrices, "
        f"{m.get('parameters', 0) / 1e6:.1f}M parameters, {m.get('elapsed_seconds', 0):.2f} s"
    )
    rows = []
    for i, t in enumerate(fp.types):
        s = fp.type_stats[t]
        rows.append(
            [t, s["std"], float(fp.std_vector[i]), float(fp.clustering_vector[i]), s["mean"], s["kurtosis"]]
        )
    out = head + "\n" + table(["type", "std", "SD vector", "CV", "mean", "kurtosis"], rows)
    if m.get("issues"):
        out += f"\n{len(m['issues'])} matrices hold NaN/Inf values (left out of the CV): " + ", ".join(
            i["tensor"] for i in m["issues"][:5]
        )
    return out


# (header, what it means): printed under the table, so that it explains itself.


def comparison_table(comparisons: Sequence[Comparison]) -> str:
    """The comparisons as a table, with one line per column saying what it means."""
    rows = [
        [
            c.a,
            c.b,
            c.sd_cosine,
            c.cv_cosine,
            c.spectral_distance,
            c.circuit_distance,
            c.token_correlation,
            c.token_z,
            c.family,
            c.verdict,
            {"a": "A", "b": "B"}.get(c.parent or ""),
        ]
        for c in comparisons
    ]
    legend = "\n".join(f"  {h}: {text}" for h, text in COMPARISON_COLUMNS)
    return table(["A", "B", *(h for h, _ in COMPARISON_COLUMNS)], rows) + "\n" + legend


def search_table(hits: Sequence) -> str:
    """Search hits (zoo.search.SearchHit) as a table, with one line per column saying what it means."""
    rows = [
        [
            i + 1,
            h.path,
            h.comparison.verdict,
            h.comparison.token_correlation,
            h.comparison.token_z,
            h.comparison.circuit_distance,
            h.comparison.family,
        ]
        for i, h in enumerate(hits)
    ]
    heads = [h for h, _ in SEARCH_COLUMNS]
    legend = "\n".join(f"  {h}: {text}" for h, text in SEARCH_COLUMNS)
    return table([heads[0], "model", *heads[1:]], rows) + "\n" + legend


def comparison_lines(c: Comparison) -> str:
    """The verdict with its reason, then family and direction, each on a line of its own."""
    lines = [f"{c.a} vs {c.b}: {c.verdict} ({c.reason})"]
    if c.family is not None:
        lines.append(f"  family: {c.family} ({c.family_reason})")
    if c.parent is not None:
        lines.append(f"  parent: {c.a if c.parent == 'a' else c.b} ({c.parent_reason})")
    return "\n".join(printable(line) for line in lines)


def matrix_table(cm: ComparisonMatrix) -> str:
    """The many-model matrix on the verdicts' own terms: each cell the verdict's letter and the
    token correlation, with a legend."""
    short = [f"[{i}]" for i in range(len(cm.names))]
    rows = [
        [f"[{i}] {n}", f"group {cm.families[i]}"]
        + [
            "self"
            if i == j
            else f"{VERDICT_CODES[cm.verdicts[i][j].value]} {lineage_statistic(cm, i, j)}".rstrip()
            for j in range(len(cm.names))
        ]
        for i, n in enumerate(cm.names)
    ]
    return table(["model", "group", *short], rows) + "\n  " + MATRIX_LEGEND


def lineage_statistic(cm: ComparisonMatrix, i: int, j: int) -> str:
    """The pair's lineage statistic as a short label: token correlation "r 0.98" where the
    probes spoke, else the circuit distance "d 0.38", else nothing."""
    r, d = cm.signals["token_correlation"][i, j], cm.signals["circuit_distance"][i, j]
    if np.isfinite(r):
        return f"r {r:.2f}"
    return f"d {d:.2f}" if np.isfinite(d) else ""


# Verdict colours of the heatmap and the report: related greens, undetermined grey, unrelated red.
VERDICT_COLOURS = {
    "same-model": "#1b7837",
    "same-family/derived": "#5aae61",
    "adapter-of": "#a6dba0",
    "adapter-fits": "#d9f0d3",
    "undetermined": "#bababa",
    "adapter-for-other-shapes": "#f4a582",
    "unrelated": "#d6604d",
}


def verdict_heatmap(ax, cm: ComparisonMatrix) -> None:
    """The pairs' verdicts as colours, each cell labelled with its token correlation r."""
    from matplotlib.colors import to_rgb
    from matplotlib.patches import Patch

    n = len(cm.names)
    rgb = np.ones((n, n, 3))
    for i in range(n):
        for j in range(n):
            if i != j:
                rgb[i, j] = to_rgb(VERDICT_COLOURS[cm.verdicts[i][j].value])
            if i != j:
                ax.text(j, i, lineage_statistic(cm, i, j), ha="center", va="center", fontsize=7)
    ax.imshow(rgb)
    ax.set_xticks(range(n), [f"[{i}]" for i in range(n)])
    ax.set_yticks(range(n), [f"[{i}] {name}" for i, name in enumerate(cm.names)], fontsize=7)
    ax.set_xlabel("model (index)")
    ax.set_ylabel("model")
    ax.set_title("Lineage verdicts (r: token correlation, d: circuit distance)")
    shown = sorted({cm.verdicts[i][j].value for i in range(n) for j in range(n) if i != j})
    ax.legend(
        handles=[Patch(color=VERDICT_COLOURS[v], label=v) for v in shown],
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        fontsize=7,
    )


def plot(
    fps: Sequence[Fingerprint], out: Union[str, Path], matrix: Optional[ComparisonMatrix] = None
) -> Path:
    """SD vectors side by side (as in the paper) and CV bars, with their units, and the pairs'
    verdicts as a heatmap labelled with the lineage statistic, in one PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise MissingExtraError("plots need matplotlib: pip install 'weightprint-fast[plot]'") from e
    types = [t for t in ("q", "k", "v", "o", "gate", "up", "down") if any(t in f.types for f in fps)]
    panels = 3 if len(fps) > 1 else 2
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4.5))
    width = 0.8 / len(fps)
    x = np.arange(len(types))
    for i, fp in enumerate(fps):
        sd = [fp.std_vector[fp.types.index(t)] if t in fp.types else np.nan for t in types]
        cv = [fp.clustering_vector[fp.types.index(t)] if t in fp.types else np.nan for t in types]
        axes[0].bar(x + i * width, sd, width, label=fp.name)
        axes[1].bar(x + i * width, cv, width, label=fp.name)
    labels_y = ("weight std, normalized (largest type = 1)", "mean K-Means label / (K - 1)")
    for ax, title, ylabel in zip(axes[:2], ("Standard-Deviation Vector", "Clustering Vector"), labels_y):
        ax.set_xticks(x + width * (len(fps) - 1) / 2, types)
        ax.set_title(title)
        ax.set_xlabel("projection type")
        ax.set_ylabel(ylabel)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(fps), 6), fontsize=8)
    if panels == 3:
        from ..compare import compare_many

        cm = matrix if matrix is not None else compare_many(fps)
        verdict_heatmap(axes[2], cm)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    out = Path(out)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
