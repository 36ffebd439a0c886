"""Epithelium and stroma regions drawn in QuPath: reading its GeoJSON export, rasterising it on a grid."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import InvalidInputError
from ...io.regions import geojson_features

#: QuPath class names (lower case) read as epithelium / stroma by :func:`read_qupath_geojson`.
EPITHELIUM_CLASS_NAMES = frozenset(
    {
        "tumor",
        "tumour",
        "epithelium",
        "epithelial",
        "tumor epithelium",
        "tumour epithelium",
        "carcinoma",
        "invasive tumor",
        "invasive tumour",
    }
)
STROMA_CLASS_NAMES = frozenset({"stroma", "stromal", "tumor stroma", "tumour stroma"})


@dataclass(frozen=True)
class Annotation:
    """One classified polygon of a QuPath GeoJSON export (level-0 pixel coordinates).

    Attributes
    ----------
    label : {"epithelium", "stroma"}
    rings : tuple of (N, 2) float64
        Exterior ring first, then holes, per polygon part (see ``parts``).
    parts : tuple of int
        Number of rings of each polygon part (a Polygon has one part, a MultiPolygon several).
    class_name : str
        The class name as written in the file.
    """

    label: str
    rings: tuple[np.ndarray, ...]
    parts: tuple[int, ...]
    class_name: str


def _class_name(props: object) -> str | None:
    if not isinstance(props, dict):
        return None
    c = props.get("classification")
    if isinstance(c, dict):
        name = c.get("name")
        return name if isinstance(name, str) else None
    if isinstance(c, str):
        return c
    for key in ("classification_name", "class", "label", "name"):
        if isinstance(props.get(key), str):
            return props[key]
    return None


def read_qupath_geojson(path: str | Path) -> list[Annotation]:
    """Epithelium and stroma polygons of a QuPath GeoJSON export.

    Accepts a ``FeatureCollection``, a list of ``Feature`` objects or a single ``Feature`` (QuPath's
    "Export objects as GeoJSON"). A feature's class is ``properties.classification.name`` (QuPath >= 0.2)
    or a string ``properties.classification``; names in :data:`EPITHELIUM_CLASS_NAMES` (e.g. "Tumor",
    "Epithelium") are epithelium, names in :data:`STROMA_CLASS_NAMES` stroma (case-insensitive); other
    classes and unclassified objects are ignored. Coordinates are level-0 pixels.

    Raises
    ------
    InvalidInputError
        Naming the file and the problem: missing file, larger than 64 MB
        (:data:`her2fast.io.regions.MAX_REGION_FILE_BYTES`), not JSON, not GeoJSON features, a polygon with fewer
        than 3 points or non-numeric coordinates, or no epithelium/stroma polygon at all.
    """
    path = Path(path)
    features, _ = geojson_features(path, "annotation file", geometries=False)
    out: list[Annotation] = []
    seen: dict[str, int] = {}
    for i, feat in enumerate(features):
        name = _class_name(feat.get("properties"))
        key = (name or "").strip().lower()
        label = "epithelium" if key in EPITHELIUM_CLASS_NAMES else "stroma" if key in STROMA_CLASS_NAMES else None
        seen[name or "<unclassified>"] = seen.get(name or "<unclassified>", 0) + 1
        if label is None:
            continue
        geom = feat["geometry"]
        gtype = geom.get("type")
        coords = geom.get("coordinates")
        if gtype == "Polygon":
            polys = [coords]
        elif gtype == "MultiPolygon":
            polys = coords
        else:
            continue  # points, lines: not regions
        rings: list[np.ndarray] = []
        parts: list[int] = []
        try:
            for poly in polys:
                rs = [np.asarray(r, np.float64) for r in poly]
                for r in rs:
                    if r.ndim != 2 or r.shape[1] < 2 or r.shape[0] < 3 or not np.all(np.isfinite(r)):
                        raise ValueError("a ring needs at least 3 points of 2 finite numbers")
                rings.extend(r[:, :2] for r in rs)
                parts.append(len(rs))
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"annotation file {path}: feature {i} ({name}) has an invalid {gtype}: {exc}"
            ) from None
        if rings:
            out.append(Annotation(label, tuple(rings), tuple(parts), name or ""))
    if not out:
        found = ", ".join(f"{k} ({v})" for k, v in seen.items()) or "no features"
        raise InvalidInputError(
            f"annotation file {path} holds no epithelium or stroma polygons (found: {found}); classify polygons as "
            f"e.g. 'Tumor' or 'Epithelium' and 'Stroma' in QuPath"
        )
    return out


def rasterize_annotations(
    annotations: Sequence[Annotation], shape: tuple[int, int], level0_per_pixel: tuple[float, float]
) -> np.ndarray:
    """Label image (int8: -1 unlabelled, 0 stroma, 1 epithelium) of annotations on a grid.

    Stroma is drawn first, epithelium over it (an epithelium polygon inside a stroma one wins); holes
    are cleared to unlabelled.
    """
    from PIL import Image, ImageDraw

    h, w = shape
    sx, sy = level0_per_pixel
    canvas = Image.new("L", (w, h), 0)  # 0 unlabelled, 1 stroma, 2 epithelium
    draw = ImageDraw.Draw(canvas)
    for value, label in ((1, "stroma"), (2, "epithelium")):
        for a in annotations:
            if a.label != label:
                continue
            k = 0
            for n in a.parts:
                for j, ring in enumerate(a.rings[k : k + n]):
                    pts = [(float(x) / sx - 0.5, float(y) / sy - 0.5) for x, y in ring]
                    draw.polygon(pts, fill=value if j == 0 else 0)
                k += n
    return np.asarray(canvas, np.int8) - 1
