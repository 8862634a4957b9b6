"""Small result tables that print as text and render as HTML in a notebook."""
from __future__ import annotations

import html
import statistics
from typing import Sequence

from .stats import spread  # the seed spread (sample std); kd.tables.spread is the same function


def mean_std(values: Sequence[float], scale: float = 100.0, digits: int = 2) -> str:
    """``"88.12 ± 0.31"``: mean and sample standard deviation (0 for one value), times ``scale``.

    Introduced in lesson 3.
    """
    values = [scale * float(v) for v in values]
    if not values:
        raise ValueError("mean_std needs at least one value.")
    return f"{statistics.fmean(values):.{digits}f} ± {spread(values):.{digits}f}"


class Table:
    """Rows of dicts shown as an aligned text table (``print``) or HTML (notebook display).

    Introduced in lesson 0.
    """

    def __init__(self, rows: Sequence[dict], title: str = ""):
        self.rows = [dict(r) for r in rows]
        self.title = title
        self.columns = list(dict.fromkeys(k for r in self.rows for k in r))

    def _cell(self, value) -> str:
        if isinstance(value, float):
            return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        return "" if value is None else str(value)

    def __str__(self) -> str:
        cells = [[self._cell(r.get(c)) for c in self.columns] for r in self.rows]
        widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c)
                  for i, c in enumerate(self.columns)]
        line = lambda items: "  ".join(s.rjust(w) for s, w in zip(items, widths))
        out = [self.title] if self.title else []
        return "\n".join(out + [line(self.columns), line("-" * w for w in widths)] + [line(r) for r in cells])

    __repr__ = __str__

    #: Inline styles, so the table reads the same in JupyterLab, the book and nbgrader's feedback pages:
    #: padded cells that never run together, and numbers such as "44.97 ± 4.90" kept on one line.
    CELL_STYLE = "padding:0.25em 0.8em;white-space:nowrap;border-bottom:1px solid #ddd"

    def _repr_html_(self) -> str:
        head = "".join(f"<th style='{self.CELL_STYLE};text-align:right'>{html.escape(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td style='{self.CELL_STYLE};text-align:right'>"
                                         f"{html.escape(self._cell(r.get(c)))}</td>"
                                         for c in self.columns) + "</tr>" for r in self.rows)
        caption = (f"<caption style='caption-side:top;text-align:left;font-weight:bold;padding:0.3em 0'>"
                   f"{html.escape(self.title)}</caption>") if self.title else ""
        return (f"<table style='border-collapse:collapse;margin:0.5em 0'>{caption}<thead><tr>{head}</tr></thead>"
                f"<tbody>{body}</tbody></table>")
