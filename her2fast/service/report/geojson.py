"""A result as QuPath-importable GeoJSON: epithelium annotations and cell detections.

QuPath's GeoJSON conventions (QuPath 0.3+, ``File > Import objects from file``): a ``FeatureCollection``
of ``Feature`` objects whose ``properties`` hold ``objectType`` (``"annotation"`` or ``"detection"``),
``classification`` ``{"name", "color": [r, g, b]}`` and ``measurements`` (a name -> number mapping);
coordinates are level-0 pixels, y down, polygons as closed rings.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ...errors import InvalidInputError
from ...scoring import CellClass
from .colours import _EPITHELIUM, CLASS_COLOURS, CLASS_NAMES, NON_TUMOUR

__all__ = ["to_geojson", "iter_geojson_features", "write_geojson", "epithelium_polygons"]


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

    from ..._files import atomic_write

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
