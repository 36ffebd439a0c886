"""Documents as self-contained HTML pages (:func:`render_document`): ``report.html`` of ``her2fast evaluate``
(:func:`render_html`, :func:`write_html`) and ``calibration.html`` of ``her2fast calibrate``.

A page has no external resources. It shows what the document holds
(:mod:`her2fast.validation.presentation`; for an evaluation :func:`~her2fast.validation.document.evaluation_document`:
the confusion matrix as in the paper's Table 5 (rows predicted, columns reference), accuracy, Cohen's kappa
with bootstrap 95 % intervals, precision and recall, the clinical cut-offs, ISH and % complete membranes
where the reference has them, the calibration table, the discordant and the left-out slides) and adds what
only HTML can: the calibration plot (inline SVG, :func:`calibration_svg`), thumbnails of the discordant
slides' overlays (PNG, base64-inlined, downscaled with Pillow, :func:`thumbnail_data_uri`) and shaded
confusion cells. Every string is HTML-escaped; links are ``./``-prefixed URL-encoded relative paths.
:func:`calibration_image` draws the calibration plot as a Pillow image (for PNG files).

Examples
--------
>>> print(confusion_html(("a", "b"), [[1, 0], [0, 2]]).splitlines()[3])
<tr><th>a</th><td class="diag">1</td><td>0</td><td>1</td></tr>
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path

from .calibration_plot import calibration_image, calibration_svg
from .document import evaluation_document
from .presentation import Cell, Document, Figure, Paragraph, Plot, Table, confusion_table, visible

__all__ = [
    "render_document",
    "render_html",
    "write_html",
    "confusion_html",
    "calibration_svg",
    "calibration_image",
    "thumbnail_data_uri",
]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:1.5em auto;max-width:62em;
color:#222;line-height:1.35}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin:1.2em 0 .4em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.3em 0}td,th{border:1px solid #ccc;padding:.2em .55em;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}.meta{color:#555;font-size:.9em}
table.confusion td{min-width:3em;font-weight:600}table.confusion td.diag{background:#d6f0d6}
.headline{font-size:1.1em}.note{color:#555;font-size:.9em;max-width:55em}.warn{background:#fff3cd;padding:.5em}
ul.figures{padding-left:1.2em;margin:.3em 0}
.cols{display:flex;gap:2em;flex-wrap:wrap;align-items:flex-start}img.thumb{max-width:200px;max-height:200px}
"""


def _e(v) -> str:
    return html.escape(visible(v), quote=True)


# -------------------------------------------------------------------------------- thumbnails
def thumbnail_data_uri(path: str | Path | None, *, max_size: int = 200) -> str | None:
    """A ``data:image/png;base64,...`` URI of an image downscaled to at most ``max_size`` px (None if unreadable)."""
    if not path:
        return None
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            im = opened.convert("RGB")
            im.thumbnail((max_size, max_size), Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            im.save(buf, format="PNG", optimize=True)
    except (OSError, UnidentifiedImageError, ValueError):
        return None
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


# ------------------------------------------------------------------------------------ tables
class _Pictures:
    """Inlines at most ``limit`` thumbnails of ``max_size`` px over one page."""

    def __init__(self, limit: int, max_size: int) -> None:
        self.left, self.max_size = limit, max_size

    def uri(self, path: str) -> str | None:
        if self.left <= 0:
            return None
        self.left -= 1
        return thumbnail_data_uri(path, max_size=self.max_size)


def _cell(c: Cell, tag: str, attrs: str, pictures: _Pictures | None) -> str:
    uri = pictures.uri(c.image) if c.image and pictures is not None else None
    text = f'<img class="thumb" src="{uri}" alt="{_e(c.text)}">' if uri else _e(c.text)
    if c.strong and text:
        text = f"<b>{text}</b>"
    if c.href:
        text = f'<a href="{_e(c.href)}">{text}</a>'
    return f"<{tag}{attrs}>{text}</{tag}>"


def _confusion(t: Table) -> str:
    k = len(t.header) - 2
    body = [[int(c.text) for c in r[1:-1]] for r in t.rows[:-1]]
    biggest = max([v for r in body for v in r] + [1])
    out = [
        '<table class="confusion">',
        f'<tr><th rowspan="2" class="l">{_e(t.header[0])}</th><th colspan="{k}">{_e(t.spanning)}</th>'
        f'<th rowspan="2">{_e(t.header[-1])}</th></tr>',
        "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in t.header[1:-1]) + "</tr>",
    ]
    for i, r in enumerate(t.rows):
        cells = []
        for j, c in enumerate(r[1:], start=1):
            if i < k and j <= k:
                v = body[i][j - 1]
                if i == j - 1:
                    cells.append(f'<td class="diag">{v}</td>')
                else:
                    a = 0.0 if v == 0 else 0.15 + 0.6 * v / biggest
                    cells.append(f'<td style="background:rgba(220,60,60,{a:.2f})">{v}</td>' if v else "<td>0</td>")
            else:
                cells.append(f"<td>{_e(c.text)}</td>")
        out.append(f"<tr><th>{_e(r[0].text)}</th>{''.join(cells)}</tr>")
    out.append("</table>")
    return "\n".join(out)


def _table(t: Table, pictures: _Pictures | None) -> str:
    if t.kind == "confusion":
        out = _confusion(t)
    else:
        left = [j == 0 or any(r[j].text[:1].isalpha() for r in t.rows) for j in range(len(t.header))]
        cls = [" class='l'" if x else "" for x in left]
        out = (
            "<table><tr>"
            + "".join(f"<th{a}>{_e(h)}</th>" for h, a in zip(t.header, cls))
            + "</tr>\n"
            + "\n".join("<tr>" + "".join(_cell(c, "td", a, pictures) for c, a in zip(r, cls)) + "</tr>" for r in t.rows)
            + "</table>"
        )
    return out + "".join(f"\n<p class='note'>{_e(n)}</p>" for n in t.notes)


def confusion_html(labels: Sequence[str], matrix) -> str:
    """An HTML table of a confusion matrix (rows predicted, columns reference) with totals.

    Diagonal cells are shaded green, off-diagonal cells red in proportion to their count.

    Raises
    ------
    InvalidInputError
        ``matrix`` is not ``len(labels)`` x ``len(labels)``.
    """
    return _confusion(confusion_table(labels, matrix))


# -------------------------------------------------------------------------------------- page
def _block(b, pictures: _Pictures) -> str:
    if isinstance(b, Paragraph):
        if b.kind == "warning":
            return f"<p class='warn'>Warning: {_e(b.text)}</p>"
        return f"<p class='note'>{_e(b.text)}</p>" if b.kind == "note" else f"<p>{_e(b.text)}</p>"
    if isinstance(b, Figure):
        line = " ".join(x for x in (_e(b.label), f"<b>{_e(b.value)}</b>", _e(b.detail)) if x)
        return f'<p class="headline">{line}</p>' if b.headline else f"<li>{line}</li>"
    if isinstance(b, Table):
        return _table(b, pictures)
    if isinstance(b, Plot):
        return calibration_svg(b.bins)
    raise TypeError(f"not a block of a document: {type(b).__name__}")


def render_document(doc: Document, *, max_thumbnails: int = 40, thumbnail_px: int = 200) -> str:
    """A document as one HTML page with no external resources.

    Parameters
    ----------
    doc : Document
    max_thumbnails : int
        Pictures inlined as thumbnails (the cells after that show their text, linked).
    thumbnail_px : int
        Largest side of the inlined thumbnails.

    Returns
    -------
    str
        A complete HTML document. A plot is drawn beside the block that follows it.
    """
    pictures = _Pictures(max_thumbnails, thumbnail_px)
    h = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(doc.title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{_e(doc.title)}</h1>",
    ]
    if doc.meta:
        h.append(f'<p class="meta">{" &middot; ".join(_e(m) for m in doc.meta)}</p>')
    for section in doc.sections:
        if section.title:
            h.append(f"<h2>{_e(section.title)}</h2>")
        blocks = list(section.blocks)
        i = 0
        while i < len(blocks):
            b = blocks[i]
            if isinstance(b, Figure) and not b.headline:
                items = []
                while i < len(blocks) and isinstance(blocks[i], Figure) and not blocks[i].headline:  # type: ignore[union-attr]
                    items.append(_block(blocks[i], pictures))
                    i += 1
                h.append('<ul class="figures">' + "".join(items) + "</ul>")
                continue
            if isinstance(b, Plot) and i + 1 < len(blocks):
                h.append(
                    f"<div class='cols'><div>{_block(b, pictures)}</div><div>{_block(blocks[i + 1], pictures)}</div></div>"
                )
                i += 2
                continue
            h.append(_block(b, pictures))
            i += 1
    h.append("</body></html>")
    return "\n".join(h)


def render_html(report, out_dir: str | Path | None = None, *, max_thumbnails: int = 40, thumbnail_px: int = 200) -> str:
    """The one-page HTML report of an evaluation: :func:`render_document` of its document.

    Parameters
    ----------
    report : EvaluationReport
        From :func:`her2fast.validation.evaluate.evaluate_rows`.
    out_dir : str or Path, optional
        Folder the page will be written to; links to the slides' overlays and result files are relative
        to it (absolute ``file:`` URIs when None).
    max_thumbnails : int
        Discordant slides shown with a thumbnail (the rest are linked without one).
    thumbnail_px : int
        Largest side of the inlined thumbnails.

    Returns
    -------
    str
        A complete HTML document with no external resources.

    Raises
    ------
    InvalidInputError
        ``report`` is not an EvaluationReport.
    """
    return render_document(
        evaluation_document(report, out_dir), max_thumbnails=max_thumbnails, thumbnail_px=thumbnail_px
    )


def write_html(report, path: str | Path, **options) -> Path:
    """Write :func:`render_html` to ``path`` (links relative to its folder); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    from .._files import atomic_write_text

    atomic_write_text(path, render_html(report, path.parent, **options))
    return path
