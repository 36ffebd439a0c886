"""One document of figures for every format: the presentation model of the evaluation and calibration reports.

A :class:`Document` (a title, meta lines and :class:`Section`\\ s of :class:`Paragraph`, :class:`Figure`,
:class:`Table` and :class:`Plot` blocks) is built once from the figures --
:func:`her2fast.validation.document.evaluation_document` for ``her2fast evaluate``,
:func:`her2fast.validation.calibrate.report.calibration_document` for ``her2fast calibrate`` -- and drawn by
three renderers that add no figure of their own: :func:`her2fast.validation.text.render_text` (what the
commands print), :func:`her2fast.validation.markdown.render_markdown` (``report.md``, ``calibration.md``) and
:func:`her2fast.validation.report.render_document` (``report.html``, ``calibration.html``). Every number is
formatted here, once, into the text the three show; each renderer only escapes it for its format.

Examples
--------
>>> t = confusion_table(("a", "b"), [[1, 2], [0, 3]])
>>> t.header, [c.text for c in t.rows[-1]]
(('predicted', 'a', 'b', 'total'), ['total', '1', '5', '6'])
>>> number(float("nan")), number(0.12345), number(2.0, 1), number(None)
('-', '0.123', '2.0', '-')
>>> print(visible("two\\nlines\\x1b[31m"))
two\\nlines\\x1b[31m
>>> doc = Document("t", ("m",), (Section("s", (Figure("accuracy", "0.500", "(1/2 slides)"),)),))
>>> doc.figures()
['t', 'm', 's', 'accuracy', '0.500', '(1/2 slides)']
"""

from __future__ import annotations

import math
import os
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from ..errors import InvalidInputError

__all__ = [
    "Cell",
    "Table",
    "Figure",
    "Paragraph",
    "Plot",
    "Section",
    "Document",
    "Block",
    "confusion_table",
    "number",
    "visible",
    "link",
]

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def visible(text: object) -> str:
    """``text`` with every control, format and line-separator character written as an escape (``\\n``, ``\\x1b``).

    What every renderer shows of a string: a slide name cannot break a line, a table row or a terminal
    (escape sequences), nor reorder the text around it (bidirectional overrides).
    """
    s = "" if text is None else str(text)
    if s.isprintable():
        return s
    out = []
    for ch in s:
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            o = ord(ch)
            out.append(_ESCAPES.get(ch) or (f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}"))
        else:
            out.append(ch)
    return "".join(out)


def number(value: float | int | None, digits: int = 3) -> str:
    """A figure as the reports show it: ``digits`` decimals, ``"-"`` for None and NaN."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def link(path: str | os.PathLike | None, base: str | os.PathLike | None) -> str | None:
    """A link to ``path`` that cannot become a scheme: ``./`` + the URL-encoded path relative to ``base``.

    A ``file:`` URI when ``base`` is None and ``path`` is absolute, or when ``path`` is on another drive
    than ``base``; None without a path. Renderers still escape it for their format.
    """
    if not path:
        return None
    p = Path(path)
    if base is None:
        if p.is_absolute():
            return p.resolve().as_uri()
        rel = str(path)
    else:
        try:
            rel = os.path.relpath(p.resolve(), Path(base).resolve())
        except ValueError:  # another drive (Windows)
            return p.resolve().as_uri()
    return "./" + quote(rel.replace(os.sep, "/"), safe="/")


# ----------------------------------------------------------------------------------------- blocks
@dataclass(frozen=True)
class Cell:
    """One table cell.

    Attributes
    ----------
    text : str
        What every format shows.
    href : str, optional
        A link (:func:`link`): the text (or the picture) links to it in Markdown and HTML.
    image : str, optional
        A picture file: HTML shows it as an inlined thumbnail; text and Markdown show ``text``.
    strong : bool
        Emphasised in Markdown and HTML.
    """

    text: str
    href: str | None = None
    image: str | None = None
    strong: bool = False


Value = Cell | str | int


def _cell(v: Value) -> Cell:
    return v if isinstance(v, Cell) else Cell(str(v))


@dataclass(frozen=True)
class Table:
    """A table: a header, rows of cells and notes under it.

    Attributes
    ----------
    header : tuple of str
    rows : tuple of tuple of Cell
        Plain strings and ints are turned into cells; every row has one cell per header column.
    notes : tuple of str
        Sentences shown under the table.
    kind : str
        ``"confusion"``: a square matrix with its totals (:func:`confusion_table`): the first column and
        the last row are labels and totals, ``spanning`` names the columns between the first and the last,
        and HTML shades the cells. ``""``: a plain table.
    spanning : str
        The header over the matrix columns of a ``"confusion"`` table (``"reference"``).
    """

    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    notes: tuple[str, ...] = ()
    kind: str = ""
    spanning: str = ""

    def __init__(
        self,
        header: Sequence[str],
        rows: Iterable[Sequence[Value]],
        notes: Sequence[str] = (),
        kind: str = "",
        spanning: str = "",
    ) -> None:
        cells = tuple(tuple(_cell(v) for v in r) for r in rows)
        header = tuple(str(h) for h in header)
        bad = [i for i, r in enumerate(cells) if len(r) != len(header)]
        if bad:
            raise InvalidInputError(f"row {bad[0]} of a table has {len(cells[bad[0]])} cells for {len(header)} columns")
        object.__setattr__(self, "header", header)
        object.__setattr__(self, "rows", cells)
        object.__setattr__(self, "notes", tuple(str(n) for n in notes))
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "spanning", spanning)


@dataclass(frozen=True)
class Figure:
    """One figure on its own line: ``label value detail`` (``accuracy 0.812 (13/16 slides)``)."""

    label: str
    value: str
    detail: str = ""
    headline: bool = False  #: the page's main figure (HTML shows it larger)


@dataclass(frozen=True)
class Paragraph:
    """A sentence or two: ``kind`` ``"text"``, ``"note"`` (how to read the figures) or ``"warning"``."""

    text: str
    kind: str = "text"


@dataclass(frozen=True)
class Plot:
    """The calibration plot of confidence bins (HTML draws it; the table that follows holds its figures)."""

    bins: tuple[Mapping, ...] = ()


Block = Paragraph | Figure | Table | Plot


@dataclass(frozen=True)
class Section:
    """A titled part of a document (an untitled one opens it)."""

    title: str
    blocks: tuple[Block, ...] = ()


@dataclass(frozen=True)
class Document:
    """A report as every renderer sees it: title, meta lines (source, date, versions) and sections."""

    title: str
    meta: tuple[str, ...] = ()
    sections: tuple[Section, ...] = field(default_factory=tuple)

    def figures(self) -> list[str]:
        """Every text the document holds, in order: what each rendering must show (after its escaping)."""
        out = [self.title, *self.meta]
        for s in self.sections:
            out += [s.title] if s.title else []
            for b in s.blocks:
                if isinstance(b, Paragraph):
                    out.append(b.text)
                elif isinstance(b, Figure):
                    out += [t for t in (b.label, b.value, b.detail) if t]
                elif isinstance(b, Table):
                    out += [h for h in b.header if h] + ([b.spanning] if b.spanning else [])
                    out += [c.text for r in b.rows for c in r if c.text]
                    out += list(b.notes)
        return out


def confusion_table(
    labels: Sequence[str], matrix, *, rows: str = "predicted", columns: str = "reference", notes: Sequence[str] = ()
) -> Table:
    """A confusion matrix (``rows`` x ``columns``, e.g. predicted x reference) with row and column totals.

    Raises
    ------
    InvalidInputError
        ``matrix`` is not ``len(labels)`` x ``len(labels)``.
    """
    m = [[int(v) for v in row] for row in matrix]
    k = len(labels)
    if len(m) != k or any(len(r) != k for r in m):
        raise InvalidInputError(f"confusion matrix must be {k}x{k} for labels {list(labels)}")
    body: list[list[Value]] = [[str(lab), *r, sum(r)] for lab, r in zip(labels, m)]
    col = [sum(r[j] for r in m) for j in range(k)]
    body.append(["total", *col, sum(col)])
    return Table((rows, *map(str, labels), "total"), body, notes=notes, kind="confusion", spanning=columns)
