"""Documents as plain text (:func:`render_text`): what ``her2fast evaluate`` (:func:`format_summary`) and
``her2fast calibrate`` print.

Every string goes through :func:`~her2fast.validation.presentation.visible`, so a slide name cannot break a
line or send an escape sequence to the terminal. The same documents as Markdown:
:mod:`her2fast.validation.markdown`; as HTML: :mod:`her2fast.validation.report`.

Examples
--------
>>> from her2fast.validation.presentation import Document, Figure, Section, Table
>>> doc = Document("Title", (), (Section("Part", (Figure("accuracy", "0.500", "(1/2)"), Table(("a", "b"), [("x", 1)]))),))
>>> print(render_text(doc))
Title
<BLANKLINE>
Part
----
accuracy 0.500 (1/2)
  a  b
  x  1
"""

from __future__ import annotations

import textwrap

from .document import evaluation_document
from .presentation import Document, Figure, Paragraph, Table, confusion_table, visible
from .summary import AgreementSummary, EvaluationReport

__all__ = ["render_text", "format_confusion", "format_summary"]

#: Width prose is wrapped to (tables and figure lines are never wrapped).
WIDTH = 100


def _table(t: Table, max_rows: int | None, indent: str = "  ") -> list[str]:
    rows = [[visible(c.text) for c in r] for r in t.rows]
    more = 0
    if max_rows is not None and len(rows) > max_rows:
        more, rows = len(rows) - max_rows, rows[:max_rows]
    header = [visible(h) for h in t.header]
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]
    # numbers right-aligned: a matrix, and every column but the first whose cells are not words
    right = [t.kind == "confusion" or (j > 0 and all(not r[j][:1].isalpha() for r in rows)) for j in range(len(header))]

    def line(cells: list[str]) -> str:
        parts = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)]
        return (indent + "  ".join(parts)).rstrip()

    out = []
    if t.spanning and len(widths) > 2:
        inner = sum(widths[1:-1]) + 2 * (len(widths) - 3)
        out.append((indent + " " * (widths[0] + 2) + visible(t.spanning).center(inner)).rstrip())
    out += [line(header), *(line(r) for r in rows)]
    if more:
        out.append(f"{indent}... {more} more rows")
    out += [_wrap(n, indent) for n in t.notes]
    return out


def _wrap(text: str, indent: str = "") -> str:
    return textwrap.fill(
        visible(text),
        WIDTH,
        initial_indent=indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def render_text(doc: Document, *, max_rows: int | None = None) -> str:
    """A document as plain text: the title, its meta line, each section under an underlined title.

    Parameters
    ----------
    doc : Document
    max_rows : int, optional
        Rows shown of a longer table (the rest are counted: ``... 12 more rows``); every row when None.

    Returns
    -------
    str
        Figures, table rows and sentences one per line; notes and warnings wrapped at :data:`WIDTH`
        characters. Plots are left out
        (the table that follows each holds its figures).
    """
    out = [visible(doc.title)]
    if doc.meta:
        out.append("; ".join(visible(m) for m in doc.meta))
    for section in doc.sections:
        out.append("")
        if section.title:
            title = visible(section.title)
            out += [title, "-" * len(title)]
        for b in section.blocks:
            if isinstance(b, Paragraph):  # figures in a sentence stay on one line; notes and warnings wrap
                out.append(
                    visible(b.text)
                    if b.kind == "text"
                    else _wrap(("warning: " if b.kind == "warning" else "") + b.text)
                )
            elif isinstance(b, Figure):
                out.append(" ".join(visible(t) for t in (b.label, b.value, b.detail) if t))
            elif isinstance(b, Table):
                out += _table(b, max_rows)
    return "\n".join(out)


def format_confusion(summary: AgreementSummary) -> str:
    """The confusion matrix as a text table (rows predicted, columns reference, with totals)."""
    return "\n".join(_table(confusion_table(summary.labels, summary.confusion), None, indent=""))


def format_summary(report: EvaluationReport, *, max_rows: int | None = 20) -> str:
    """The text ``her2fast evaluate`` prints: :func:`render_text` of the evaluation's document.

    Parameters
    ----------
    report : EvaluationReport
    max_rows : int, optional
        Rows shown of the longer tables (discordant and left-out slides); every row when None.
    """
    return render_text(evaluation_document(report), max_rows=max_rows)
