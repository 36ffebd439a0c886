"""The one-page validation report of ``her2fast evaluate``: a self-contained HTML file.

:func:`render_html` turns an :class:`her2fast.validation.summary.EvaluationReport` into one HTML page with no
external resources: the confusion matrix as an HTML table (rows predicted, columns reference, as the
paper's Table 5), the headline figures (accuracy, Cohen's kappa unweighted / linear / quadratic with
bootstrap 95 % intervals), per-class precision and recall, the clinical cut-offs, ISH and % complete
membranes where the reference has them, a calibration plot of confidence against correctness (inline
SVG), the discordant slides with thumbnails of their overlays (PNG, base64-inlined, downscaled with
Pillow) and the slides that were left out. :func:`calibration_image` draws the same calibration plot as
a Pillow image (for Markdown documents).
"""

from __future__ import annotations

import base64
import html
import io
import math
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from .. import __version__
from ..errors import InvalidInputError
from .summary import EvaluationReport

__all__ = ["render_html", "write_html", "confusion_html", "calibration_svg", "calibration_image", "thumbnail_data_uri"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:1.5em auto;max-width:62em;
color:#222;line-height:1.35}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin:1.2em 0 .4em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.3em 0}td,th{border:1px solid #ccc;padding:.2em .55em;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}.meta{color:#555;font-size:.9em}
table.confusion td{min-width:3em;font-weight:600}table.confusion td.diag{background:#d6f0d6}
.headline{font-size:1.1em}.note{color:#555;font-size:.9em;max-width:55em}
.cols{display:flex;gap:2em;flex-wrap:wrap;align-items:flex-start}img.thumb{max-width:200px;max-height:200px}
"""


def _e(v) -> str:
    return html.escape("" if v is None else str(v), quote=True)


def _f(v, nd: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "&ndash;"
    return f"{v:.{nd}f}"


def confusion_html(labels: Sequence[str], matrix) -> str:
    """An HTML table of a confusion matrix (rows predicted, columns reference) with totals.

    Diagonal cells are shaded green, off-diagonal cells red in proportion to their count.
    """
    rows = [[int(v) for v in row] for row in matrix]
    if len(rows) != len(labels) or any(len(r) != len(labels) for r in rows):
        raise InvalidInputError(f"confusion matrix must be {len(labels)}x{len(labels)} for labels {list(labels)}")
    biggest = max([v for r in rows for v in r] + [1])
    out = [
        '<table class="confusion">',
        f'<tr><th rowspan="2" class="l">predicted</th><th colspan="{len(labels)}">reference</th>'
        '<th rowspan="2">total</th></tr>',
        "<tr>" + "".join(f"<th>{_e(lab)}</th>" for lab in labels) + "</tr>",
    ]
    for i, (lab, r) in enumerate(zip(labels, rows)):
        cells = []
        for j, v in enumerate(r):
            if i == j:
                cells.append(f'<td class="diag">{v}</td>')
            else:
                a = 0.0 if v == 0 else 0.15 + 0.6 * v / biggest
                cells.append(f'<td style="background:rgba(220,60,60,{a:.2f})">{v}</td>')
        out.append(f"<tr><th>{_e(lab)}</th>{''.join(cells)}<td>{sum(r)}</td></tr>")
    col = [sum(r[j] for r in rows) for j in range(len(labels))]
    out.append("<tr><th>total</th>" + "".join(f"<td>{v}</td>" for v in col) + f"<td>{sum(col)}</td></tr>")
    out.append("</table>")
    return "\n".join(out)


# ------------------------------------------------------------------------------- calibration
def _plot_geometry(width: int, height: int):
    left, right, top, bottom = 48, 14, 14, 40

    def xy(conf: float, frac: float) -> tuple[float, float]:
        x = left + (conf - 0.5) / 0.5 * (width - left - right)
        y = top + (1.0 - frac) * (height - top - bottom)
        return x, y

    return xy, (left, right, top, bottom)


def _points(bins: Sequence[dict]) -> list[tuple[float, float, int]]:
    pts = []
    for b in bins:
        n, c, f = b.get("n", 0), b.get("mean_confidence"), b.get("fraction_correct")
        if n and c is not None and f is not None and math.isfinite(c) and math.isfinite(f):
            pts.append((min(max(float(c), 0.5), 1.0), float(f), int(n)))
    return pts


def calibration_svg(bins: Sequence[dict], *, width: int = 340, height: int = 300) -> str:
    """Inline SVG: fraction of slides scored correctly against mean confidence, per confidence bin.

    Parameters
    ----------
    bins : sequence of dict
        ``EvaluationReport.calibration`` (``n``, ``mean_confidence``, ``fraction_correct``).

    Returns
    -------
    str
        An ``<svg>`` element; the dashed diagonal is perfect calibration, each dot's area is its slide count.
    """
    xy, (left, right, top, bottom) = _plot_geometry(width, height)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" '
        'fill="#fafafa" stroke="#999"/>',
    ]
    for t in (0.5, 0.6, 0.7, 0.8, 0.9, 1.0):
        x, y0 = xy(t, 0.0)
        parts.append(
            f'<line x1="{x:.1f}" y1="{y0:.1f}" x2="{x:.1f}" y2="{y0 + 4:.1f}" stroke="#666"/>'
            f'<text x="{x:.1f}" y="{y0 + 15:.1f}" text-anchor="middle">{t:.1f}</text>'
        )
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        x0, y = xy(0.5, t)
        parts.append(
            f'<line x1="{x0 - 4:.1f}" y1="{y:.1f}" x2="{x0:.1f}" y2="{y:.1f}" stroke="#666"/>'
            f'<text x="{x0 - 6:.1f}" y="{y + 4:.1f}" text-anchor="end">{t:.2f}</text>'
        )
    (xa, ya), (xb, yb) = xy(0.5, 0.5), xy(1.0, 1.0)
    parts.append(
        f'<line x1="{xa:.1f}" y1="{ya:.1f}" x2="{xb:.1f}" y2="{yb:.1f}" stroke="#888" stroke-dasharray="4 3"/>'
    )
    pts = _points(bins)
    for c, f, n in pts:
        x, y = xy(c, f)
        r = 3.0 + 2.0 * math.sqrt(n)
        right_side = x + r + 24 < width - right
        tx, anchor = (x + r + 2, "start") if right_side else (x - r - 2, "end")
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="rgba(40,90,200,0.55)" stroke="#234">'
            f"<title>{n} slides, mean confidence {c:.3f}, {100 * f:.0f} % correct</title></circle>"
            f'<text x="{tx:.1f}" y="{y + 4:.1f}" text-anchor="{anchor}">{n}</text>'
        )
    if not pts:
        parts.append(
            f'<text x="{(left + width - right) / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle">'
            "no scored slide with a confidence</text>"
        )
    parts.append(
        f'<text x="{(left + width - right) / 2:.0f}" y="{height - 6}" text-anchor="middle">'
        "confidence (mean per bin)</text>"
    )
    parts.append(
        f'<text transform="translate(12,{(top + height - bottom) / 2:.0f}) rotate(-90)" '
        'text-anchor="middle">fraction correct</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def calibration_image(bins: Sequence[dict], *, width: int = 420, height: int = 360):
    """The plot of :func:`calibration_svg` as an RGB Pillow image (for Markdown and PNG files)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), (255, 255, 255))
    d = ImageDraw.Draw(img)
    xy, (left, right, top, bottom) = _plot_geometry(width, height)
    d.rectangle([left, top, width - right, height - bottom], fill=(250, 250, 250), outline=(150, 150, 150))
    for t in (0.5, 0.6, 0.7, 0.8, 0.9, 1.0):
        x, y0 = xy(t, 0.0)
        d.line([x, y0, x, y0 + 4], fill=(100, 100, 100))
        d.text((x - 8, y0 + 6), f"{t:.1f}", fill=(0, 0, 0))
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        x0, y = xy(0.5, t)
        d.line([x0 - 4, y, x0, y], fill=(100, 100, 100))
        d.text((x0 - 34, y - 6), f"{t:.2f}", fill=(0, 0, 0))
    (xa, ya), (xb, yb) = xy(0.5, 0.5), xy(1.0, 1.0)
    steps = 40
    for k in range(0, steps, 2):  # dashed diagonal
        f0, f1 = k / steps, (k + 1) / steps
        d.line(
            [xa + (xb - xa) * f0, ya + (yb - ya) * f0, xa + (xb - xa) * f1, ya + (yb - ya) * f1], fill=(130, 130, 130)
        )
    for c, f, n in _points(bins):
        x, y = xy(c, f)
        r = 3.0 + 2.0 * math.sqrt(n)
        d.ellipse([x - r, y - r, x + r, y + r], fill=(120, 150, 220), outline=(30, 50, 80))
        label = f"n={n}"
        tw = d.textlength(label)
        tx = x + r + 3 if x + r + 3 + tw < width - right else x - r - 3 - tw
        d.text((tx, y - 6), label, fill=(0, 0, 0))
    d.text((left + 6, top + 4), "fraction of slides correct (y) vs mean confidence (x), per bin", fill=(60, 60, 60))
    d.text((left + (width - left - right) / 2 - 30, height - 16), "confidence", fill=(0, 0, 0))
    return img


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


def _href(path: str | None, base: Path | None) -> str | None:
    """A link to ``path`` that cannot become a scheme: ``./`` + the URL-encoded path relative to ``base``.

    A ``file:`` URI when ``base`` is None and ``path`` is absolute, or when ``path`` is on another drive
    than ``base``. The result still needs HTML escaping for an attribute.
    """
    if not path:
        return None
    import os

    if base is None:
        if Path(path).is_absolute():
            return Path(path).resolve().as_uri()
        rel = str(path)
    else:
        try:
            rel = os.path.relpath(Path(path).resolve(), base.resolve())
        except ValueError:
            return Path(path).resolve().as_uri()
    return "./" + quote(rel.replace(os.sep, "/"), safe="/")


# ------------------------------------------------------------------------------------- page
def render_html(report, out_dir: str | Path | None = None, *, max_thumbnails: int = 40, thumbnail_px: int = 200) -> str:
    """The one-page HTML report of an evaluation.

    Parameters
    ----------
    report : EvaluationReport
        From :func:`her2fast.validation.evaluate.evaluate_rows`.
    out_dir : str or Path, optional
        Folder the page will be written to; links to the slides' overlays and result files are relative
        to it (absolute ``file:`` URIs when None).
    max_thumbnails : int
        Discordant slides shown with a thumbnail (the rest are listed without one).
    thumbnail_px : int
        Largest side of the inlined thumbnails.

    Returns
    -------
    str
        A complete HTML document with no external resources.
    """
    if not isinstance(report, EvaluationReport):
        raise InvalidInputError(
            f"report must be a her2fast.validation.evaluate.EvaluationReport, got {type(report).__name__}"
        )
    base = None if out_dir is None else Path(out_dir)
    c = report.counts()
    s = report.summary
    lv = report.level
    h: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>her2fast validation report</title>",
        f"<style>{_CSS}</style></head><body>",
    ]
    h.append("<h1>her2fast: agreement with reference HER2 scores</h1>")
    versions = (
        "; ".join(
            f"her2fast {_e(v.get('her2fast'))}, models "
            + ", ".join(f"{_e(k)} {_e(str(m)[:12])}" for k, m in v.get("models", {}).items())
            for v in report.versions
        )
        or f"her2fast {__version__}"
    )
    h.append(
        f'<p class="meta">reference: {_e(report.source or "-")} &middot; {time.strftime("%Y-%m-%d %H:%M")} '
        f"&middot; {versions}</p>"
    )
    h.append(
        f"<p>{c['total']} slides: <b>{c['scored']} scored</b>, {c['not_scorable']} not scorable, "
        f"{c['failed']} failed"
        + (f" ({c['from_store']} taken from the results store)" if c["from_store"] else "")
        + ". Slides without a score are left out of every figure and listed at the end.</p>"
    )
    if s is None:
        h.append("<p><b>No slide was scored: there are no agreement figures.</b></p>")
    else:
        n, agree = int(s.confusion.sum()), int(s.confusion.trace())
        level_text = (
            "clinical groups (the reference is given as negative / equivocal / positive)"
            if lv == "group"
            else "ASCO/CAP classes 0, 1+, 2+, 3+ (0+ ultralow counts as 0)"
        )
        h.append('<div class="cols"><div>')
        h.append(f"<h2>Confusion matrix</h2><p class='note'>{_e(level_text)}; rows her2fast, columns reference.</p>")
        h.append(confusion_html(s.labels, s.confusion))
        h.append("</div><div>")
        h.append("<h2>Agreement</h2>")
        h.append(f'<p class="headline">accuracy <b>{s.accuracy:.3f}</b> ({agree}/{n} slides)</p>')
        h.append("<table><tr><th class='l'>Cohen's &kappa;</th><th>value</th><th>95 % bootstrap CI</th></tr>")
        for k in ("unweighted", "linear", "quadratic"):
            lo, hi = s.kappa_interval[k]
            h.append(
                f"<tr><td class='l'>{k}</td><td>{_f(s.kappa[k])}</td><td>{_f(lo, 2)} &ndash; {_f(hi, 2)}</td></tr>"
            )
        h.append("</table>")
        h.append(f"<p class='note'>{report.n_boot} bootstrap resamples of the slides (seed {report.seed}).</p>")
        h.append(
            "<table><tr><th class='l'>class</th><th>precision</th><th>recall</th></tr>"
            + "".join(
                f"<tr><td class='l'>{_e(lab)}</td><td>{_f(p, 2)}</td><td>{_f(r, 2)}</td></tr>"
                for lab, (p, r) in s.precision_recall.items()
            )
            + "</table>"
        )
        h.append("</div></div>")
        if s.cutoffs:
            h.append(
                "<h2>Clinical cut-offs</h2><table><tr><th class='l'>question</th><th>agree</th><th>accuracy</th>"
                "<th>sensitivity</th><th>specificity</th></tr>"
            )
            for cut in s.cutoffs:
                h.append(
                    f"<tr><td class='l'>{_e(cut.question)}</td><td>{cut.agree}/{cut.n}</td><td>{_f(cut.accuracy)}</td>"
                    f"<td>{_f(cut.sensitivity, 2)}</td><td>{_f(cut.specificity, 2)}</td></tr>"
                )
            h.append("</table>")
        if report.ultralow:
            u = report.ultralow
            h.append("<h2>HER2-0: null vs ultralow</h2>")
            h.append(f"<p class='note'>{_e(u['note'])}: {u['agree']}/{u['n']} agree.</p>")
            h.append(confusion_html(u["labels"], u["confusion"]))
        if report.ish:
            i = report.ish
            h.append(f"<h2>Against ISH ({i['n']} slides)</h2><p class='note'>{_e(i['note'])}.</p>")
            h.append(
                "<table><tr><th class='l'>IHC by</th><th>concordant</th><th>equivocal (2+)</th><th>table: group &rarr; "
                "amplified / not</th></tr>"
            )
            for who in ("her2fast", "reference"):
                t = i[who]
                tab = ", ".join(f"{g} {v['amplified']}/{v['not_amplified']}" for g, v in t["table"].items())
                h.append(
                    f"<tr><td class='l'>{who}</td><td>{t['agree']}/{t['n_decided']}</td><td>{t['equivocal']}</td>"
                    f"<td class='l'>{_e(tab)}</td></tr>"
                )
            h.append("</table>")
        if report.percent_complete:
            p = report.percent_complete
            h.append("<h2>% cells with complete membrane staining</h2>")
            h.append(
                f"<p>{p['n']} slides with a reference percentage: mean absolute error <b>{p['mean_abs_error']:.1f}</b> "
                f"points, bias {p['bias']:+.1f} (her2fast minus reference), RMSE {p['rmse']:.1f}, largest "
                f"{p['max_abs_error']:.1f}, Pearson r {_f(p['pearson_r'], 2)}.</p>"
            )
        h.append("<h2>Calibration: confidence vs correctness</h2><div class='cols'><div>")
        h.append(calibration_svg(report.calibration))
        h.append("</div><div><table><tr><th>confidence</th><th>slides</th><th>mean conf.</th><th>correct</th></tr>")
        for b in report.calibration:
            h.append(
                f"<tr><td>{b['lo']:.1f}&ndash;{b['hi']:.1f}</td><td>{b['n']}</td><td>{_f(b['mean_confidence'])}</td>"
                f"<td>{b['correct']}/{b['n']}</td></tr>"
            )
        h.append(
            "</table><p class='note'>Confidence is &Phi;(margin): the distance of the deciding cell fraction "
            "from its cut-off in binomial standard errors. It accounts for counting noise only, not for "
            "segmentation errors; a well-calibrated tool has its dots on the dashed line.</p></div></div>"
        )
    disc = report.discordant
    h.append(f"<h2>Discordant slides ({len(disc)})</h2>")
    if not disc:
        h.append("<p>None.</p>")
    else:
        h.append(
            "<table><tr><th class='l'>slide</th><th>reference</th><th>her2fast</th><th>stratum</th>"
            "<th>% complete (ref.)</th><th>confidence</th><th class='l'>flags</th><th>overlay</th></tr>"
        )
        for row_index, o in enumerate(disc):
            uri = (
                thumbnail_data_uri(o.outputs.get("overlay"), max_size=thumbnail_px)
                if row_index < max_thumbnails
                else None
            )
            link = _href(o.outputs.get("overlay"), base)
            js = _href(o.outputs.get("json"), base)
            img = f'<img class="thumb" src="{uri}" alt="overlay of {_e(o.slide)}">' if uri else "no picture"
            pic = f'<a href="{_e(link)}">{img}</a>' if link else img
            ref_pc = "" if o.reference_percent_complete is None else f" ({o.reference_percent_complete:.1f})"
            name = f'<a href="{_e(js)}">{_e(o.slide)}</a>' if js else _e(o.slide)
            h.append(
                f"<tr><td class='l'>{name}<br><small>line {o.line}</small></td><td>{_e(o.reference_label(lv))}</td>"
                f"<td><b>{_e(o.predicted_label(lv))}</b></td><td>{_e(o.stratum)}</td>"
                f"<td>{_f(o.percent_complete, 1)}{ref_pc}</td><td>{_f(o.confidence, 2)}</td>"
                f"<td class='l'>{_e(', '.join(o.flags))}</td><td>{pic}</td></tr>"
            )
        h.append("</table>")
    exc = report.excluded
    h.append(f"<h2>Left out: not scorable or failed ({len(exc)})</h2>")
    if not exc:
        h.append("<p>None.</p>")
    else:
        h.append(
            "<table><tr><th class='l'>slide</th><th>reference</th><th>status</th><th class='l'>reason</th></tr>"
            + "".join(
                f"<tr><td class='l'>{_e(o.slide)} <small>(line {o.line})</small></td><td>{_e(o.reference)}</td>"
                f"<td>{_e(o.status.replace('_', ' '))}</td><td class='l'>{_e(o.reason)}</td></tr>"
                for o in exc
            )
            + "</table>"
        )
    h.append(
        "<h2>What this shows</h2><p class='note'>How often her2fast's score matches this reference on these "
        "slides, with intervals that reflect how few slides there are. It does not show that either is "
        "right, that the agreement carries over to other laboratories, stains or scanners, or that her2fast "
        "is fit for diagnosis; a lab must judge that against its own validation protocol (e.g. CAP's, with "
        "enough slides per category).</p>"
    )
    h.append("</body></html>")
    return "\n".join(h)


def write_html(report, path: str | Path, **options) -> Path:
    """Write :func:`render_html` to ``path`` (links relative to its folder); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    from .._files import atomic_write_text

    atomic_write_text(path, render_html(report, path.parent, **options))
    return path
