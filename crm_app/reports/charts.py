"""Server-side SVG charts: no JavaScript, no library, readable at 390 px.

A chart is a horizontal bar chart: one row per label with its bar(s) and
value, drawn in a ``viewBox`` 340 units wide that scales to its container
(``width="100%"``), so text stays legible on a phone and on a desktop.
Labels and values are escaped (they come from the database); colours are
presentation attributes, which the Content-Security-Policy allows (no
``style`` attribute, no script).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from markupsafe import Markup, escape

from .figures import Figure

WIDTH = 340
LABEL_W = 110
VALUE_W = 70
ROW_H = 26
BAR_H = 14
#: Colours of the series (the first for single-bar charts).
COLOURS = ("#4f46e5", "#dc2626")


def _number(value: Any) -> str:
    if isinstance(value, Decimal):
        return f"${value:,.0f}"
    return f"{value:,}"


def _clip(text: str, limit: int = 16) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bars(title: str, rows: Sequence[tuple[str, Sequence[Any]]],
         fmt: Callable[[Any], str] = _number, legend: Sequence[str] = ()) -> Markup:
    """An SVG of ``rows`` (label, values per series): one bar per series, scaled to the largest.

    Values are drawn as numbers; ``legend`` names the series when there are several.
    """
    series = max((len(v) for _, v in rows), default=1)
    top = max((float(x) for _, v in rows for x in v), default=0.0) or 1.0
    row_h = ROW_H if series == 1 else ROW_H + (series - 1) * (BAR_H + 2)
    legend_h = 20 if legend else 0
    height = legend_h + row_h * len(rows) + 4
    span = WIDTH - LABEL_W - VALUE_W
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {height}" width="100%" '
             f'xmlns="http://www.w3.org/2000/svg" aria-label="{escape(title)}">',
             f"<title>{escape(title)}</title>"]
    for i, name in enumerate(legend):
        x = LABEL_W + i * 90
        parts.append(f'<rect x="{x}" y="4" width="10" height="10" fill="{COLOURS[i % 2]}"/>'
                     f'<text x="{x + 14}" y="13" font-size="11" fill="#334155">'
                     f"{escape(name)}</text>")
    for r, (label, values) in enumerate(rows):
        y = legend_h + r * row_h
        parts.append(f'<text x="0" y="{y + 15}" font-size="12" fill="#0f172a">'
                     f"<title>{escape(label)}</title>{escape(_clip(str(label)))}</text>")
        for s, value in enumerate(values):
            by = y + 4 + s * (BAR_H + 2)
            w = max(1.0, span * float(value) / top) if float(value) > 0 else 0
            parts.append(f'<rect x="{LABEL_W}" y="{by}" width="{w:.1f}" height="{BAR_H}" '
                         f'rx="2" fill="{COLOURS[s % 2]}"/>'
                         f'<text x="{LABEL_W + w + 4:.1f}" y="{by + 11}" font-size="11" '
                         f'fill="#334155">{escape(fmt(value))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def chart(fig: Figure) -> Markup:
    """The chart of a shown figure: its first value column, or won and lost counts side by side."""
    if fig.chart == "pairs":
        rows = [(str(r[0]), (r[1], r[3])) for r in fig.rows]
        return bars(fig.title, rows, legend=("Won", "Lost"))
    if fig.key == "pipeline":
        return bars(fig.title, [(str(r[0]).title(), (r[2],)) for r in fig.rows])
    if fig.key == "activity":
        return bars(fig.title, [(str(r[0]), (r[-1],)) for r in fig.rows])
    return bars(fig.title, [(str(r[0]), (r[1],)) for r in fig.rows])
