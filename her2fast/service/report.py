"""Reports of a scored slide: result JSON, QuPath GeoJSON, overlay pictures, heat map.

:func:`write_report` writes, for a :class:`her2fast.SlideResult` (``<name>`` = the slide's file name
without its suffix):

- ``<name>.her2fast.json`` -- :meth:`SlideResult.to_json` without the cell table;
- ``<name>.cells.npz`` -- the cell table (:meth:`her2fast.scoring.CellTable.save_npz`, level-0 pixels);
- ``<name>.geojson`` -- QuPath-importable GeoJSON (:func:`to_geojson`);
- ``<name>.overlay.png`` -- a thumbnail with the epithelium outline and the cells coloured by class;
- ``<name>.zoom.png`` -- a region at the working resolution (the tile with the most tumour cells),
  cell centres coloured by class;
- ``<name>.heatmap.png`` -- % of tumour cells with complete membranes per tile over the thumbnail.

QuPath's GeoJSON conventions (QuPath 0.3+, ``File > Import objects from file``): a ``FeatureCollection``
of ``Feature`` objects whose ``properties`` hold ``objectType`` (``"annotation"`` or ``"detection"``),
``classification`` ``{"name", "color": [r, g, b]}`` and ``measurements`` (a name -> number mapping);
coordinates are level-0 pixels, y down, polygons as closed rings.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError
from ..scoring import CellClass

__all__ = [
    "CLASS_COLOURS",
    "CLASS_NAMES",
    "NON_TUMOUR",
    "to_geojson",
    "iter_geojson_features",
    "write_geojson",
    "epithelium_polygons",
    "tile_percent_complete",
    "overlay_image",
    "zoom_image",
    "heatmap_image",
    "write_report",
    "report_paths",
]

#: QuPath class name of each :class:`~her2fast.scoring.CellClass`.
CLASS_NAMES = {
    CellClass.NEGATIVE: "HER2 negative",
    CellClass.FAINT_INCOMPLETE: "HER2 faint incomplete",
    CellClass.WEAK_MODERATE_COMPLETE: "HER2 weak-moderate complete",
    CellClass.INTENSE_INCOMPLETE: "HER2 intense incomplete",
    CellClass.INTENSE_COMPLETE: "HER2 intense complete",
}
#: Colour (RGB) of each class in pictures and in QuPath.
CLASS_COLOURS = {
    CellClass.NEGATIVE: (60, 110, 230),
    CellClass.FAINT_INCOMPLETE: (235, 215, 40),
    CellClass.WEAK_MODERATE_COMPLETE: (245, 140, 30),
    CellClass.INTENSE_INCOMPLETE: (190, 50, 200),
    CellClass.INTENSE_COMPLETE: (220, 25, 25),
}
#: Class name and colour of cells outside the epithelium (not scored).
NON_TUMOUR = ("Non-tumour", (150, 150, 150))
_EPITHELIUM = ("Tumor", (200, 0, 0))


def report_paths(out_dir: str | Path, name: str) -> dict[str, Path]:
    """The files :func:`write_report` writes for a slide called ``name``."""
    d = Path(out_dir)
    return {
        "json": d / f"{name}.her2fast.json",
        "cells": d / f"{name}.cells.npz",
        "geojson": d / f"{name}.geojson",
        "overlay": d / f"{name}.overlay.png",
        "zoom": d / f"{name}.zoom.png",
        "heatmap": d / f"{name}.heatmap.png",
    }


# ---------------------------------------------------------------------------------- GeoJSON
def _ring(poly: np.ndarray) -> list[list[float]]:
    pts = [[round(float(x), 2), round(float(y), 2)] for x, y in poly]
    if pts and pts[0] != pts[-1]:
        pts.append(pts[0])
    return pts


def epithelium_polygons(
    mask: np.ndarray, level0_per_pixel: tuple[float, float], *, tolerance: float = 0.75, min_pixels: int = 4
) -> list[list[np.ndarray]]:
    """Polygons (outer ring + holes, level-0 pixels) of the connected regions of a low-resolution mask.

    Parameters
    ----------
    mask : (h, w) bool
        Pixel ``(i, j)`` covers level-0 ``[j*sx, (j+1)*sx) x [i*sy, (i+1)*sy)``.
    level0_per_pixel : (sx, sy)
    tolerance : float
        Douglas-Peucker tolerance in mask pixels.
    min_pixels : int
        Regions (and holes) smaller than this are dropped.

    Returns
    -------
    list of list of (n, 2) float64
        Per region: its outer ring then its holes, each ``(x, y)`` closed.
    """
    from scipy import ndimage as ndi
    from skimage.measure import approximate_polygon, find_contours

    m = np.asarray(mask, bool)
    if m.ndim != 2:
        raise InvalidInputError(f"mask must be 2-D, got shape {m.shape}")
    sx, sy = level0_per_pixel
    lab, n = ndi.label(m, structure=np.ones((3, 3), bool))
    out = []
    objects = ndi.find_objects(lab)
    for k, sl in enumerate(objects, start=1):
        if sl is None:
            continue
        comp = lab[sl] == k
        if comp.sum() < min_pixels:
            continue
        y0, x0 = sl[0].start, sl[1].start
        filled = ndi.binary_fill_holes(comp)
        rings: list[np.ndarray] = []
        for region, hy, hx in [(filled, 0, 0)] + _holes(filled & ~comp, min_pixels):
            cs = find_contours(np.pad(region, 1).astype(np.float32), 0.5)
            if not cs:
                if not rings:
                    break  # no outer ring: skip the region
                continue
            # a hole's contour in its component's frame before simplifying (Douglas-Peucker breaks
            # ties by coordinates: the same polygon as tracing the hole in the whole component)
            c = approximate_polygon(max(cs, key=len) + np.array([hy, hx], np.float64), tolerance)
            # contour (row, col) at pixel centres of the padded crop -> level-0 pixels
            xy = np.stack([(c[:, 1] - 1 + x0 + 0.5) * sx, (c[:, 0] - 1 + y0 + 0.5) * sy], axis=1)
            rings.append(xy)
        if rings:
            out.append(rings)
    return out


def _holes(holes: np.ndarray, min_pixels: int) -> list[tuple[np.ndarray, int, int]]:
    """Each hole of at least ``min_pixels`` as (mask cropped to its bounding box, row, column of the crop).

    Cropped, not full-size: a large epithelium region of a whole slide has thousands of stroma holes,
    and a full-size mask per hole took gigabytes (12.5 GB peak RSS for a 40k^2 slide).
    """
    from scipy import ndimage as ndi

    lab, n = ndi.label(holes)
    if n == 0:
        return []
    areas = np.bincount(lab.ravel(), minlength=n + 1)
    return [
        (lab[sl] == k, sl[0].start, sl[1].start)
        for k, sl in enumerate(ndi.find_objects(lab), start=1)
        if sl is not None and areas[k] >= min_pixels
    ]


def iter_geojson_features(result, *, cell_shape: str = "polygon", include_non_tumour: bool = True) -> Iterator[dict]:
    """The features of :func:`to_geojson` (same parameters), one at a time: epithelium annotations,
    then cells, each a GeoJSON Feature in level-0 pixels."""
    if cell_shape not in ("polygon", "point"):
        raise InvalidInputError(f"cell_shape must be 'polygon' or 'point', got {cell_shape!r}")
    maps = result.maps
    if maps is not None and maps.epithelium_mask is not None:
        for i, rings in enumerate(epithelium_polygons(maps.epithelium_mask, maps.epithelium_level0_per_pixel)):
            yield {
                "type": "Feature",
                "id": f"epithelium-{i + 1}",
                "geometry": {"type": "Polygon", "coordinates": [_ring(r) for r in rings]},
                "properties": {
                    "objectType": "annotation",
                    "name": f"epithelium {i + 1}",
                    "classification": {"name": _EPITHELIUM[0], "color": list(_EPITHELIUM[1])},
                    "isLocked": True,
                },
            }
    cells = result.cells
    classes = result.cell_classes()
    mpp = float(result.provenance.get("slide", {}).get("mpp_x", 0.0)) or 1.0
    angles = np.linspace(0, 2 * np.pi, 9)[:-1]
    ca, sa = np.cos(angles), np.sin(angles)
    for i in range(len(cells)):
        tumour = bool(cells.is_tumour[i])
        if not tumour and not include_non_tumour:
            continue
        x, y = float(cells.x[i]), float(cells.y[i])
        if cell_shape == "point":
            geom = {"type": "Point", "coordinates": [round(x, 2), round(y, 2)]}
        else:
            area_um2 = float(cells.area[i])
            r = (math.sqrt(area_um2 / math.pi) if area_um2 > 0 else 4.0) / mpp
            ring = np.stack([x + r * ca, y + r * sa], axis=1)
            geom = {"type": "Polygon", "coordinates": [_ring(ring)]}
        if tumour:
            c = CellClass(int(classes[i]))
            cname, colour = CLASS_NAMES[c], CLASS_COLOURS[c]
        else:
            cname, colour = NON_TUMOUR
        yield {
            "type": "Feature",
            "id": f"cell-{int(cells.cell_id[i])}",
            "geometry": geom,
            "properties": {
                "objectType": "detection",
                "classification": {"name": cname, "color": list(colour)},
                "measurements": {
                    "completeness": round(float(cells.completeness[i]), 4),
                    "membrane DAB OD": round(float(cells.membrane_dab_od[i]), 4),
                    "intensity class": int(cells.intensity[i]),
                    "closed membrane": int(bool(cells.closed[i])),
                    "membrane thickness um": round(float(cells.membrane_thickness[i]), 3),
                    "area um2": round(float(cells.area[i]), 2),
                },
            },
        }


def to_geojson(result, *, cell_shape: str = "polygon", include_non_tumour: bool = True) -> dict:
    """QuPath-importable GeoJSON of a result: epithelium annotations and cell detections.

    Parameters
    ----------
    result : SlideResult
    cell_shape : {"polygon", "point"}
        Cells as 8-sided polygons of the cell territory's area (QuPath shows them as detections) or as
        points.
    include_non_tumour : bool
        Also export cells outside the epithelium (class ``"Non-tumour"``).

    Returns
    -------
    dict
        ``{"type": "FeatureCollection", "features": [...]}``; coordinates in level-0 pixels. For a
        whole slide (10^5-10^6 cells) use :func:`write_geojson`, which streams.
    """
    return {
        "type": "FeatureCollection",
        "features": list(iter_geojson_features(result, cell_shape=cell_shape, include_non_tumour=include_non_tumour)),
    }


def write_geojson(result, path: str | Path, **options) -> Path:
    """Write :func:`to_geojson`'s content to ``path``, one feature at a time (memory stays flat).

    The file is the same JSON as ``json.dumps(to_geojson(result), separators=(",", ":"))``, written atomically
    (:func:`her2fast._files.atomic_write`; ``protect=`` keys of files it must not replace).
    """
    import io
    import json

    from .._files import atomic_write

    protect = options.pop("protect", ())

    def write(raw) -> None:
        fh = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
        fh.write('{"type":"FeatureCollection","features":[')
        for k, feature in enumerate(iter_geojson_features(result, **options)):
            if k:
                fh.write(",")
            fh.write(json.dumps(feature, separators=(",", ":")))
        fh.write("]}")
        fh.detach()

    return atomic_write(path, write, protect=protect)


# ---------------------------------------------------------------------------------- pictures
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


def write_report(
    result,
    out_dir: str | Path,
    *,
    name: str | None = None,
    slide=None,
    pictures: bool = True,
    geojson: bool = True,
    protect=(),
) -> dict[str, Path]:
    """Write the result JSON, the cell table and (optionally) GeoJSON and pictures to ``out_dir``.

    Each file is written atomically (complete under a temporary name, then renamed onto its name), so a
    symbolic link planted in ``out_dir`` is replaced, never written through; no file replaces the slide
    itself or any file of ``protect``.

    Parameters
    ----------
    result : SlideResult
        From :func:`her2fast.score` (pictures need its ``maps``).
    out_dir : path
        Created if missing.
    name : str, optional
        File name stem (default: the slide's file name without its suffix).
    slide : her2fast.io.slide.Slide, optional
        The open slide (default: opened again from ``result.path`` with the result's resolution).
    pictures, geojson : bool
    protect : collection of (int, int)
        (device, inode) keys (:func:`her2fast._files.input_keys`) of files no output may replace, e.g. every
        input of the run.

    Returns
    -------
    dict of str to Path
        The files written (keys of :func:`report_paths`).

    Raises
    ------
    OutputError
        An output name is one of the run's input files.
    """
    from .._files import atomic_write, atomic_write_text, input_keys
    from ..api import SlideResult

    if not isinstance(result, SlideResult):
        raise InvalidInputError(f"result must be a her2fast.SlideResult, got {type(result).__name__}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = name or Path(result.path).stem
    paths = report_paths(out, stem)
    written: dict[str, Path] = {}
    protect = frozenset(protect) | input_keys([result.path])
    atomic_write_text(paths["json"], result.to_json(include_cells=False), protect=protect)
    written["json"] = paths["json"]
    atomic_write(paths["cells"], result.cells.save_npz, protect=protect)
    written["cells"] = paths["cells"]
    if geojson:
        written["geojson"] = write_geojson(result, paths["geojson"], protect=protect)
    if pictures and result.maps is not None and result.maps.n_cols:
        own = slide is None
        if own:
            from ..io.slide import open_slide

            meta = result.provenance.get("slide", {})
            mpp = (meta["mpp_x"], meta["mpp_y"]) if meta.get("mpp_source") in ("user", "estimated") else None
            slide = open_slide(result.path, mpp=mpp)
        try:
            for kind, draw in (("overlay", overlay_image), ("zoom", zoom_image), ("heatmap", heatmap_image)):
                picture = draw(result, slide)
                atomic_write(paths[kind], functools.partial(picture.save, format="PNG"), protect=protect)
                written[kind] = paths[kind]
        finally:
            if own:
                slide.close()
    return written
