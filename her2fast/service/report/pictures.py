"""Pictures of a result: the overlay, the zoomed region and the heat map of complete membranes (PIL images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import InvalidInputError
from ...scoring import CellClass
from .colours import CLASS_COLOURS, NON_TUMOUR

__all__ = ["tile_percent_complete", "overlay_image", "zoom_image", "heatmap_image"]


def tile_percent_complete(result) -> tuple[np.ndarray, np.ndarray]:
    """Per tile of the slide's grid: % of tumour cells with complete membranes, and tumour-cell counts.

    Returns
    -------
    percent : (n_rows, n_cols) float32
        NaN where a tile has no tumour cell.
    count : (n_rows, n_cols) int64
    """
    maps = result.maps
    if maps is None or maps.n_cols == 0:
        raise InvalidInputError("this SlideResult has no maps (read from JSON?): score the slide again for pictures")
    rules = result.provenance.get("settings", {}).get("rules", {})
    complete_fraction = float(rules.get("complete_fraction", 0.9))
    cells = result.cells
    t = cells.is_tumour
    col = np.clip(np.floor(cells.x[t] / maps.tile_level0[0]).astype(np.int64), 0, maps.n_cols - 1)
    row = np.clip(np.floor(cells.y[t] / maps.tile_level0[1]).astype(np.int64), 0, maps.n_rows - 1)
    idx = row * maps.n_cols + col
    complete = (cells.intensity[t] > 0) & (cells.completeness[t] >= complete_fraction)
    n = np.bincount(idx, minlength=maps.n_rows * maps.n_cols)
    k = np.bincount(idx, weights=complete, minlength=maps.n_rows * maps.n_cols)
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = np.where(n > 0, 100.0 * k / np.maximum(n, 1), np.nan)
    return pct.reshape(maps.n_rows, maps.n_cols).astype(np.float32), n.reshape(maps.n_rows, maps.n_cols)


def _ramp(v: np.ndarray) -> np.ndarray:
    """0..1 -> RGB uint8 (dark blue, teal, yellow, red)."""
    stops = np.array([[30, 40, 150], [30, 160, 160], [240, 220, 40], [215, 25, 25]], np.float64)
    x = np.clip(v, 0, 1) * (len(stops) - 1)
    i = np.minimum(np.floor(x).astype(int), len(stops) - 2)
    f = (x - i)[..., None]
    return np.rint(stops[i] * (1 - f) + stops[i + 1] * f).astype(np.uint8)


def _outline(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage as ndi

    return mask & ~ndi.binary_erosion(mask, structure=np.ones((3, 3), bool), border_value=0)


def _resample_mask(
    mask: np.ndarray, mask_l0: tuple[float, float], shape: tuple[int, int], thumb_l0: tuple[float, float]
) -> np.ndarray:
    h, w = shape
    cols = np.floor((np.arange(w) + 0.5) * thumb_l0[0] / mask_l0[0]).astype(np.int64)
    rows = np.floor((np.arange(h) + 0.5) * thumb_l0[1] / mask_l0[1]).astype(np.int64)
    ok = (rows[:, None] < mask.shape[0]) & (cols[None, :] < mask.shape[1])
    return mask[np.clip(rows, 0, mask.shape[0] - 1)][:, np.clip(cols, 0, mask.shape[1] - 1)] & ok


def _thumbnail(slide, max_size: int) -> tuple[np.ndarray, tuple[float, float]]:
    thumb = slide.thumbnail(max_size=max_size)
    wum, hum = slide.size_um
    mpp = max(wum, hum) / max_size
    return thumb, (mpp / slide.mpp_x, mpp / slide.mpp_y)


def _caption(img, text: str):
    from PIL import ImageDraw

    d = ImageDraw.Draw(img)
    d.rectangle([0, 0, img.width, 14], fill=(255, 255, 255))
    d.text((3, 2), text, fill=(0, 0, 0))
    return img


def _summary_text(result) -> str:
    if result.score is None:
        return f"not scorable: {result.not_scorable}"
    pc = f"{result.percent_complete:.1f}" if result.percent_complete is not None else "-"
    return (
        f"HER2 {result.score} ({result.stratum}), {pc} % complete, {result.counts.get('tumour_cells', 0)} tumour cells"
    )


def overlay_image(result, slide, *, max_size: int = 1600):
    """Thumbnail with the epithelium outline (green) and cells (dots coloured by class); a PIL image."""
    from PIL import Image, ImageDraw

    thumb, tl0 = _thumbnail(slide, max_size)
    img = Image.fromarray(thumb)
    maps = result.maps
    if maps is not None and maps.epithelium_mask is not None:
        m = _resample_mask(maps.epithelium_mask, maps.epithelium_level0_per_pixel, thumb.shape[:2], tl0)
        edge = _outline(m)
        arr = np.asarray(img).copy()
        arr[edge] = (0, 170, 0)
        img = Image.fromarray(arr)
    draw = ImageDraw.Draw(img)
    classes = result.cell_classes()
    cells = result.cells
    r = 1 if len(cells) > 20000 else 2
    for i in np.flatnonzero(cells.is_tumour):
        x, y = cells.x[i] / tl0[0], cells.y[i] / tl0[1]
        draw.ellipse([x - r, y - r, x + r, y + r], fill=CLASS_COLOURS[CellClass(int(classes[i]))])
    return _caption(img, _summary_text(result))


def zoom_image(result, slide, *, size: int = 512):
    """A ``size``-px region at the working resolution around the tile with the most tumour cells.

    Cell centres are drawn as rings coloured by class (grey: non-tumour), the epithelium outline in green.
    """
    from PIL import Image, ImageDraw

    maps = result.maps
    settings = result.provenance.get("settings", {})
    mpp = float(settings.get("mpp", 0.5))
    cells = result.cells
    t = cells.is_tumour
    if maps is not None and maps.n_cols and t.any():
        _, n = tile_percent_complete(result)
        row, col = np.unravel_index(int(np.argmax(n)), n.shape)
        cx, cy = (col + 0.5) * maps.tile_level0[0], (row + 0.5) * maps.tile_level0[1]
    else:
        w, h = slide.dimensions
        cx, cy = w / 2, h / 2
    sx, sy = mpp / slide.mpp_x, mpp / slide.mpp_y
    x0, y0 = cx - size / 2 * sx, cy - size / 2 * sy
    img = Image.fromarray(slide.read(x0, y0, size, size, mpp))
    if maps is not None and maps.epithelium_mask is not None:
        el0 = maps.epithelium_level0_per_pixel
        cols = np.floor((x0 + (np.arange(size) + 0.5) * sx) / el0[0]).astype(np.int64)
        rows = np.floor((y0 + (np.arange(size) + 0.5) * sy) / el0[1]).astype(np.int64)
        em = maps.epithelium_mask
        ok = (rows[:, None] >= 0) & (rows[:, None] < em.shape[0]) & (cols[None, :] >= 0) & (cols[None, :] < em.shape[1])
        m = em[np.clip(rows, 0, em.shape[0] - 1)][:, np.clip(cols, 0, em.shape[1] - 1)] & ok
        arr = np.asarray(img).copy()
        arr[_outline(m)] = (0, 170, 0)
        img = Image.fromarray(arr)
    draw = ImageDraw.Draw(img)
    classes = result.cell_classes()
    inside = np.flatnonzero((cells.x >= x0) & (cells.x < x0 + size * sx) & (cells.y >= y0) & (cells.y < y0 + size * sy))
    for i in inside:
        x, y = (cells.x[i] - x0) / sx, (cells.y[i] - y0) / sy
        colour = CLASS_COLOURS[CellClass(int(classes[i]))] if cells.is_tumour[i] else NON_TUMOUR[1]
        draw.ellipse([x - 4, y - 4, x + 4, y + 4], outline=colour, width=2)
    return _caption(img, f"{Path(result.path).name} at {mpp} um/px, x={x0:.0f} y={y0:.0f} (level 0)")


def heatmap_image(result, slide, *, max_size: int = 1600, alpha: float = 0.55):
    """% of tumour cells with complete membranes per tile, colour-coded over the thumbnail (PIL image).

    Tiles without tumour cells are left uncoloured. Colour ramp: 0 % dark blue, 33 % teal, 67 % yellow,
    100 % red.
    """
    from PIL import Image

    thumb, tl0 = _thumbnail(slide, max_size)
    pct, _ = tile_percent_complete(result)
    maps = result.maps
    h, w = thumb.shape[:2]
    cols = np.clip(np.floor((np.arange(w) + 0.5) * tl0[0] / maps.tile_level0[0]).astype(np.int64), 0, maps.n_cols - 1)
    rows = np.clip(np.floor((np.arange(h) + 0.5) * tl0[1] / maps.tile_level0[1]).astype(np.int64), 0, maps.n_rows - 1)
    up = pct[rows][:, cols]
    has = np.isfinite(up)
    colour = _ramp(np.nan_to_num(up) / 100.0)
    out = thumb.astype(np.float32)
    out[has] = (1 - alpha) * out[has] + alpha * colour[has]
    img = Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8))
    # legend bar
    from PIL import ImageDraw

    bar = _ramp(np.linspace(0, 1, 100))[None].repeat(8, axis=0)
    bw = min(200, max(60, w // 4))
    bar_img = Image.fromarray(bar).resize((bw, 8), Image.Resampling.NEAREST)
    canvas = Image.new("RGB", (w, h + 28), (255, 255, 255))
    canvas.paste(img, (0, 0))
    canvas.paste(bar_img, (4, h + 4))
    d = ImageDraw.Draw(canvas)
    d.text((bw + 10, h + 2), "% tumour cells with complete membrane per tile: 0 .. 100", fill=(0, 0, 0))
    return _caption(canvas, _summary_text(result))
