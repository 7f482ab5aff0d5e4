"""Where people look at results: pandas DataFrames (the ``frames`` extra, imported only when a
frame is asked for) and the HTML that notebooks show for a fingerprint or a comparison."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any, Optional

from .errors import MissingExtraError


def pandas() -> Any:
    """The pandas module, or MissingExtraError saying how to install it."""
    try:
        import pandas as pd
    except ImportError as e:
        raise MissingExtraError("DataFrames need pandas: pip install 'weightprint-fast[frames]'") from e
    return pd


def cell(value: Any) -> str:
    """A value as table text: floats to 4 significant digits, None and NaN as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def html_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    title: Optional[str] = None,
    legend: Sequence[tuple[str, str]] = (),
) -> str:
    """An HTML table (every value escaped), a title above it and a legend of its columns below."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell(v))}</td>" for v in r) + "</tr>" for r in rows)
    parts = [f"<p><b>{html.escape(title)}</b></p>"] if title else []
    parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    if legend:
        items = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in legend)
        parts.append(f"<ul style='font-size: smaller'>{items}</ul>")
    return "<div>" + "".join(parts) + "</div>"
