"""One rule against spreadsheet formula injection, for every CSV the project writes.

Spreadsheet programs run a cell whose text starts with ``=``, ``+``, ``-`` or
``@`` as a formula, and treat a leading tab or carriage return the same way
after trimming it; a formula can fetch URLs or run commands (DDE). An export
holds text typed by other people (a lead's name, an audit target), so every
cell of every CSV goes through :func:`safe_cell`:

* a text cell whose first character, or first character after leading
  whitespace, is one of :data:`FORMULA_STARTS` gets a ``'`` in front (the
  OWASP rule; the whitespace case covers programs that trim cells before
  parsing them);
* numbers (``int``, ``float``, ``Decimal``; not ``bool``) and dates are
  written as they are: their text is a number or an ISO date, never a
  formula, and a negative amount must stay a number;
* ``None`` is an empty cell.

The prefix shows in the cell, which is the price of never running it: the
value is still readable, and a ``'`` at the start is what spreadsheets
themselves use to mark text.

::

    from crm_rbac_plugin import csvsafe

    buffer = io.StringIO()
    out = csvsafe.writer(buffer)
    out.writerow(["Name", "Amount"])
    out.writerow([lead.name, deal.amount])   # "=HYPERLINK(...)" -> "'=HYPERLINK(...)"
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
from collections.abc import Iterable
from typing import Any, Protocol

__all__ = ["FORMULA_STARTS", "SafeWriter", "is_dangerous", "safe_cell", "safe_row", "writer"]

#: Leading characters that make a spreadsheet read a cell as a formula.
FORMULA_STARTS = frozenset("=+-@\t\r")

_NUMERIC = (int, float, decimal.Decimal, dt.date, dt.time)


def is_dangerous(text: str) -> bool:
    """Return whether ``text`` would be read as a formula (see the module docstring)."""
    return text[:1] in FORMULA_STARTS or text.lstrip()[:1] in FORMULA_STARTS


def safe_cell(value: Any) -> Any:
    """Return ``value`` ready for a CSV cell: formula-looking text gets a ``'`` prefix.

    Numbers and dates are returned unchanged (the csv module writes them);
    ``None`` becomes ``""``; anything else is written as its ``str()``.
    """
    if value is None:
        return ""
    if isinstance(value, _NUMERIC) and not isinstance(value, bool):
        return value
    text = str(value)
    return "'" + text if is_dangerous(text) else text


def safe_row(values: Iterable[Any]) -> list[Any]:
    """Return a row with every cell passed through :func:`safe_cell`."""
    return [safe_cell(v) for v in values]


class _Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


class SafeWriter:
    """A ``csv.writer`` whose rows are neutralised cell by cell.

    ``writerow`` returns what the underlying file's ``write`` returns, so an
    object whose ``write`` returns its argument streams lines as Flask-Admin's
    export does.
    """

    def __init__(self, out: _Writable, **fmtparams: Any) -> None:
        self._writer = csv.writer(out, **fmtparams)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow(safe_row(row))

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(out: _Writable, **fmtparams: Any) -> SafeWriter:
    """Return a CSV writer on ``out`` that neutralises every cell (``csv.writer`` options)."""
    return SafeWriter(out, **fmtparams)
