"""CSV writing that spreadsheets cannot turn into formulas.

A spreadsheet opening a CSV file runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula
(and some also after a leading tab or carriage return), so a slide named ``=cmd|' -C calc'!A0.tiff`` would
become a command. :func:`safe_cell` prefixes such text cells with a single quote, as OWASP's guidance on
CSV injection recommends; numbers, and text that is a plain decimal number such as ``-1.3``, stay as they
are. :func:`writer` wraps :func:`csv.writer` so that every row it writes goes through :func:`safe_cell`.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["FORMULA_STARTS", "safe_cell", "safe_row", "writer", "SafeWriter"]

#: First characters that make a spreadsheet read a cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def safe_cell(value: Any) -> Any:
    """The cell as it may be written to a CSV file.

    Parameters
    ----------
    value : object
        A cell value. Anything but a ``str`` is returned unchanged (``csv`` writes numbers as numbers).

    Returns
    -------
    object
        ``value``, or ``"'" + value`` when it is text starting with one of :data:`FORMULA_STARTS` that is not
        a plain decimal number (``-1.3``, ``+2e-3`` stay as they are).
    """
    if not isinstance(value, str) or not value or not value.startswith(FORMULA_STARTS):
        return value
    if _NUMBER.fullmatch(value):
        return value
    return "'" + value


def safe_row(row: Iterable[Any]) -> list[Any]:
    """:func:`safe_cell` applied to every cell of a row."""
    return [safe_cell(v) for v in row]


class SafeWriter:
    """A :func:`csv.writer` whose rows go through :func:`safe_row` first."""

    def __init__(self, fh, **fmtparams: Any) -> None:
        self._writer = csv.writer(fh, **fmtparams)

    def writerow(self, row: Iterable[Any]) -> Any:
        """Write one row, its formula-like text cells neutralised."""
        return self._writer.writerow(safe_row(row))

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        """Write every row, as :meth:`writerow`."""
        for row in rows:
            self.writerow(row)


def writer(fh, **fmtparams: Any) -> SafeWriter:
    """A CSV writer on the open text file ``fh`` (as :func:`csv.writer`) that neutralises formula-like cells."""
    return SafeWriter(fh, **fmtparams)
