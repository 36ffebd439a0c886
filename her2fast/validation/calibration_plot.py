"""The calibration plot of an evaluation: fraction of slides scored correctly against mean confidence, per
confidence bin, as inline SVG (:func:`calibration_svg`, for ``report.html``) and as a Pillow image
(:func:`calibration_image`, for PNG files and Markdown documents).

Examples
--------
>>> svg = calibration_svg([{"n": 4, "mean_confidence": 0.9, "fraction_correct": 0.75}])
>>> svg.startswith("<svg") and svg.count("<circle") == 1
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["calibration_svg", "calibration_image"]


def _plot_geometry(width: int, height: int):
    left, right, top, bottom = 48, 14, 14, 40

    def xy(conf: float, frac: float) -> tuple[float, float]:
        x = left + (conf - 0.5) / 0.5 * (width - left - right)
        y = top + (1.0 - frac) * (height - top - bottom)
        return x, y

    return xy, (left, right, top, bottom)


def _points(bins: Sequence[Mapping]) -> list[tuple[float, float, int]]:
    pts = []
    for b in bins:
        n, c, f = b.get("n", 0), b.get("mean_confidence"), b.get("fraction_correct")
        if n and c is not None and f is not None and math.isfinite(c) and math.isfinite(f):
            pts.append((min(max(float(c), 0.5), 1.0), float(f), int(n)))
    return pts


def calibration_svg(bins: Sequence[Mapping], *, width: int = 340, height: int = 300) -> str:
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


def calibration_image(bins: Sequence[Mapping], *, width: int = 420, height: int = 360):
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
