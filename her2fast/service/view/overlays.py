"""Overlay tiles: transparent PNGs on the slide's Deep Zoom grid, drawn from a run's stored results.

Three layers (:data:`LAYERS`):

- ``cells`` -- every tumour cell as a disc coloured by its class (:data:`her2fast.service.report.CLASS_COLOURS`);
- ``epithelium`` -- the epithelium outlines (from the run's GeoJSON);
- ``heatmap`` -- % of tumour cells with a complete membrane per tile of the scoring grid (the report's
  heat-map colours), tiles without tumour cells left clear.

A tile draws only the cells of its own rectangle (a bucket index, :class:`~.catalog.CellIndex`), stamped
with NumPy, so a tile costs the same whether the slide has 2,000 or 200,000 cells, and the browser never
holds more than the tiles in view.
"""

from __future__ import annotations

import math

import numpy as np

from ...errors import InvalidInputError
from ..report import CLASS_COLOURS, _ramp
from .catalog import SlideData
from .tiles import DeepZoomGeometry

__all__ = ["LAYERS", "render_overlay", "cell_radius_px"]

LAYERS = ("cells", "epithelium", "heatmap")
_CELL_ALPHA = 235
_HEAT_ALPHA = 130
_EPITHELIUM_RGBA = (0, 190, 0, 255)
_PALETTE = np.zeros((256, 4), np.uint8)
for _c, _rgb in CLASS_COLOURS.items():
    _PALETTE[int(_c)] = (*_rgb, _CELL_ALPHA)


def cell_radius_px(data: SlideData) -> float:
    """Typical tumour-cell radius in level-0 pixels (from the median cell area; 4 um without areas)."""
    area = data.cells.area[data.tumour] if len(data.tumour) else np.zeros(0)
    area = area[area > 0]
    r_um = math.sqrt(float(np.median(area)) / math.pi) if len(area) else 4.0
    return r_um / max(data.mpp, 1e-6)


def _stencil(r: float) -> tuple[np.ndarray, np.ndarray]:
    k = int(math.ceil(r))
    dy, dx = np.mgrid[-k : k + 1, -k : k + 1]
    inside = dx * dx + dy * dy <= r * r + 1e-9
    return dx[inside], dy[inside]


def _cells(data: SlideData, rect, d: float) -> np.ndarray:
    x, y, w, h = rect
    out = np.zeros((h, w, 4), np.uint8)
    if not len(data.tumour):
        return out
    r = float(np.clip(0.45 * cell_radius_px(data) / d, 1.5, 7.0))
    margin = (r + 1) * d
    idx = data.index.in_rect(x * d - margin, y * d - margin, (x + w) * d + margin, (y + h) * d + margin)
    if not len(idx):
        return out
    rows = data.tumour[idx]
    px = np.rint(data.cells.x[rows].astype(np.float64) / d - x).astype(np.int64)
    py = np.rint(data.cells.y[rows].astype(np.float64) / d - y).astype(np.int64)
    keep = (px > -r - 1) & (px < w + r + 1) & (py > -r - 1) & (py < h + r + 1)
    px, py = px[keep], py[keep]
    colours = _PALETTE[data.classes[rows[keep]].astype(np.int64)]
    for ox, oy in zip(*_stencil(r)):
        xs, ys = px + ox, py + oy
        ok = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
        out[ys[ok], xs[ok]] = colours[ok]
    return out


def _epithelium(data: SlideData, rect, d: float) -> np.ndarray:
    from PIL import Image, ImageDraw

    x, y, w, h = rect
    img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    if not data.epithelium:
        return np.asarray(img)
    draw = ImageDraw.Draw(img)
    x0, y0, x1, y1 = x * d, y * d, (x + w) * d, (y + h) * d
    pad = 3 * d
    b = data.epithelium_boxes
    meets = (b[:, 2] >= x0 - pad) & (b[:, 0] <= x1 + pad) & (b[:, 3] >= y0 - pad) & (b[:, 1] <= y1 + pad)
    sel = np.flatnonzero(meets)
    if not len(sel):
        return np.asarray(img)
    # the vertices of the outlines that meet the tile, to tile pixels at once; at coarse levels many fall on
    # one pixel: keep each run of equal points once
    first, lengths = data.epithelium_starts[sel], np.diff(data.epithelium_starts)[sel]
    starts = np.concatenate([[0], np.cumsum(lengths)])
    idx = np.arange(starts[-1]) + np.repeat(first - starts[:-1], lengths)
    pts = np.rint(data.epithelium_xy[idx] / d - np.array([x, y], np.float32)).astype(np.int64)
    keep = np.ones(len(pts), bool)
    keep[1:] = np.any(pts[1:] != pts[:-1], axis=1)
    keep[starts[:-1]] = True
    new_starts = np.concatenate([[0], np.cumsum(keep)])[starts]
    flat = pts[keep].ravel().tolist()
    for k in range(len(sel)):
        start, stop = 2 * int(new_starts[k]), 2 * int(new_starts[k + 1])
        if stop - start >= 4:
            draw.line(flat[start:stop] + flat[start : start + 2], fill=_EPITHELIUM_RGBA, width=2)
    return np.asarray(img)


def _heatmap(data: SlideData, rect, d: float) -> np.ndarray:
    x, y, w, h = rect
    pct = data.heat_percent
    cw, ch = data.heat_cell
    cols = np.floor(((x + np.arange(w) + 0.5) * d) / cw).astype(np.int64)
    rows = np.floor(((y + np.arange(h) + 0.5) * d) / ch).astype(np.int64)
    ok_c = (cols >= 0) & (cols < pct.shape[1])
    ok_r = (rows >= 0) & (rows < pct.shape[0])
    up = pct[np.clip(rows, 0, pct.shape[0] - 1)][:, np.clip(cols, 0, pct.shape[1] - 1)]
    up = np.where(ok_r[:, None] & ok_c[None, :], up, np.nan)
    has = np.isfinite(up)
    out = np.zeros((h, w, 4), np.uint8)
    if has.any():
        out[..., :3] = _ramp(np.nan_to_num(up) / 100.0)
        out[..., 3] = np.where(has, _HEAT_ALPHA, 0)
    return out


def render_overlay(data: SlideData, geometry: DeepZoomGeometry, layer: str, level: int, col: int, row: int):
    """One overlay tile as an RGBA PIL image.

    Parameters
    ----------
    data : SlideData
        The run's cells, classes, epithelium and heat map.
    geometry : DeepZoomGeometry
        The slide's Deep Zoom pyramid (the overlay tiles cover the slide's tiles exactly).
    layer : {"cells", "epithelium", "heatmap"}
    level, col, row : int
        The Deep Zoom tile.

    Raises
    ------
    InvalidInputError
        An unknown layer or a tile outside the pyramid.
    """
    from PIL import Image

    if layer not in LAYERS:
        raise InvalidInputError(f"no overlay {layer!r}; the overlays are {', '.join(LAYERS)}")
    rect = geometry.tile_rect(level, col, row)
    d = geometry.downsample(level)
    draw = {"cells": _cells, "epithelium": _epithelium, "heatmap": _heatmap}[layer]
    return Image.fromarray(np.ascontiguousarray(draw(data, rect, d)), "RGBA")
