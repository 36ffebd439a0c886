"""Documents as Markdown (:func:`render_markdown`): ``report.md`` of ``her2fast evaluate`` and ``calibration.md``
of ``her2fast calibrate``, in CommonMark with GitHub's tables.

Every string is escaped (:func:`escape_markdown`): a slide name cannot open a link, an image, a code span,
emphasis or raw HTML, nor break a table row or a line. Links are the relative, URL-encoded links of
:func:`~her2fast.validation.presentation.link`; the HTML page (:mod:`her2fast.validation.report`) adds
the thumbnails and the calibration plot.

Examples
--------
>>> print(escape_markdown("a|b `c` <script> [x](javascript:y) *z*"))
a\\|b \\`c\\` &lt;script&gt; \\[x\\](javascript:y) \\*z\\*
>>> from her2fast.validation.presentation import Document, Section, Table
>>> print(render_markdown(Document("T", (), (Section("S", (Table(("a", "b"), [("x|y", 1)]),)),))))
# T
<BLANKLINE>
## S
<BLANKLINE>
| a | b |
|:---|---:|
| x\\|y | 1 |
<BLANKLINE>
"""

from __future__ import annotations

import re

from .presentation import Cell, Document, Figure, Paragraph, Table, visible

__all__ = ["escape_markdown", "render_markdown"]

_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_BACKSLASHED = set("\\`*_[]|~$")
#: what opens a block at the start of a line (heading, list, quote, thematic break, ordered list)
_BLOCK_START = re.compile(r"^(?:[#+\-=]|\d+[.)])")


def escape_markdown(text: object, *, line_start: bool = False) -> str:
    """``text`` as literal Markdown: nothing in it is read as markup.

    Control characters are written as escapes (:func:`~her2fast.validation.presentation.visible`); ``& < >``
    become entities; ``\\ ` * _ [ ] | ~ $`` are backslash-escaped; ``://`` and ``www.`` are broken so that
    no text becomes an automatic link. ``line_start``: also escape what would open a block (``#``, ``-``,
    ``1.``) at the start of a line.
    """
    s = "".join(_ENTITIES.get(ch) or ("\\" + ch if ch in _BACKSLASHED else ch) for ch in visible(text))
    s = s.replace("://", ":\\/\\/")
    s = re.sub(r"(?i)\b(www)\.", r"\1\\.", s)
    if line_start:
        m = _BLOCK_START.match(s)
        if m:
            s = (s[: m.end() - 1] + "\\" + s[m.end() - 1 :]) if m.group(0)[-1] in ".)" else "\\" + s
    return s


def _destination(href: str) -> str:
    """A link destination that stays one: spaces, brackets and controls percent-encoded."""
    return "".join(f"%{ord(c):02X}" if c in " ()<>\\\"'`" or ord(c) < 0x21 or ord(c) == 0x7F else c for c in href)


def _cell(c: Cell) -> str:
    text = escape_markdown(c.text)
    if c.strong and text:
        text = f"**{text}**"
    return f"[{text}]({_destination(c.href)})" if c.href and text else text


def _table(t: Table) -> list[str]:
    header = [escape_markdown(h) for h in t.header]
    if t.kind == "confusion" and t.spanning:
        header[0] = f"{header[0]} \\\\ {escape_markdown(t.spanning)}"
    numeric = [j > 0 and all(not r[j].text[:1].isalpha() for r in t.rows) for j in range(len(header))]
    out = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if n else ":---" for n in numeric) + "|",
    ]
    for r in t.rows:
        cells = [_cell(c) for c in r]
        if t.kind == "confusion" and cells[0]:
            cells[0] = f"**{cells[0]}**"
        out.append("| " + " | ".join(cells) + " |")
    for n in t.notes:
        out += ["", escape_markdown(n, line_start=True)]
    return out


def render_markdown(doc: Document) -> str:
    """A document as Markdown: ``#`` title, meta line, ``##`` sections, figure lists, GitHub tables.

    Plots are left out (the table that follows each holds its figures); cells with a picture link to it.
    """
    out = [f"# {escape_markdown(doc.title)}", ""]
    if doc.meta:
        out += [" · ".join(escape_markdown(m) for m in doc.meta), ""]
    for section in doc.sections:
        if section.title:
            out += [f"## {escape_markdown(section.title)}", ""]
        previous = None
        for b in section.blocks:
            if isinstance(b, Paragraph):
                text = escape_markdown(b.text, line_start=True)
                out += [f"**Warning:** {escape_markdown(b.text)}" if b.kind == "warning" else text, ""]
            elif isinstance(b, Figure):
                if out and out[-1] == "" and isinstance(previous, Figure):
                    out.pop()  # one list
                parts = [escape_markdown(b.label), f"**{escape_markdown(b.value)}**", escape_markdown(b.detail)]
                out += ["- " + " ".join(p for p in parts if p and p != "****"), ""]
            elif isinstance(b, Table):
                out += [*_table(b), ""]
            previous = b
    return "\n".join(out).rstrip("\n") + "\n"
