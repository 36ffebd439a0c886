"""Regions of a slide chosen by the user: GeoJSON polygons (as QuPath exports annotations) to score only
(``--include``) or to leave out (``--exclude``), e.g. an on-slide control tissue beside the patient's.

Coordinates are level-0 pixels of the slide, as QuPath writes them (File > Export objects as GeoJSON). Every
Polygon and MultiPolygon of the file counts, whatever its class; holes are honoured; points and lines are
ignored. A cell is inside a region when its centre is (:meth:`RegionSelection.keeps`).

Examples
--------
>>> import json, tempfile
>>> from pathlib import Path
>>> path = Path(tempfile.mkdtemp()) / "control.geojson"
>>> square = {"type": "Polygon", "coordinates": [[[0, 0], [100, 0], [100, 100], [0, 100], [0, 0]]]}
>>> _ = path.write_text(json.dumps({"type": "Feature", "geometry": square, "properties": {}}))
>>> sel = RegionSelection(exclude=read_regions(path))
>>> sel.keeps(np.array([50.0, 150.0]), np.array([50.0, 50.0])).tolist()
[False, True]
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError

__all__ = [
    "MAX_REGION_FILE_BYTES",
    "MAX_REGION_VERTICES",
    "Polygon",
    "RegionSelection",
    "Regions",
    "as_selection",
    "geojson_features",
    "read_regions",
]

#: Largest GeoJSON file read (bytes): a QuPath export of a few thousand annotations is a few MB.
MAX_REGION_FILE_BYTES = 64 * 2**20
#: Most vertices over all polygons of one file.
MAX_REGION_VERTICES = 2_000_000


@dataclass(frozen=True)
class Polygon:
    """One polygon: an exterior ring and its holes, (N, 2) float64 level-0 (x, y) each."""

    exterior: np.ndarray
    holes: tuple[np.ndarray, ...] = ()

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of the exterior ring."""
        x, y = self.exterior[:, 0], self.exterior[:, 1]
        return float(x.min()), float(y.min()), float(x.max()), float(y.max())


@dataclass(frozen=True)
class Regions:
    """Polygons read from one GeoJSON file.

    Attributes
    ----------
    polygons : tuple of Polygon
    path : str
        The file, as given.
    sha256 : str
        Of the file's bytes (recorded in the result's provenance).
    """

    polygons: tuple[Polygon, ...]
    path: str = ""
    sha256: str = ""

    def contains(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Whether each level-0 point (x, y) lies inside any polygon (outside its holes)."""
        from skimage.measure import points_in_poly

        x = np.asarray(x, np.float64).ravel()
        y = np.asarray(y, np.float64).ravel()
        if x.shape != y.shape:
            raise InvalidInputError(f"x and y must have the same length, got {x.size} and {y.size}")
        inside = np.zeros(x.size, bool)
        for poly in self.polygons:
            x0, y0, x1, y1 = poly.bounds
            cand = np.flatnonzero((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1) & ~inside)
            if cand.size == 0:
                continue
            pts = np.column_stack([x[cand], y[cand]])
            hit = points_in_poly(pts, poly.exterior)
            for hole in poly.holes:
                hit &= ~points_in_poly(pts, hole)
            inside[cand[hit]] = True
        return inside

    def rasterize(self, shape: tuple[int, int], level0_per_pixel: tuple[float, float]) -> np.ndarray:
        """(H, W) bool: the grid pixels whose area the polygons touch (pixel ``(i, j)`` covers level-0
        ``[j*sx, (j+1)*sx) x [i*sy, (i+1)*sy)``); holes cleared."""
        from PIL import Image, ImageDraw

        h, w = (int(v) for v in shape)
        sx, sy = (float(v) for v in level0_per_pixel)
        canvas = Image.new("1", (max(w, 1), max(h, 1)), 0)
        draw = ImageDraw.Draw(canvas)
        for poly in self.polygons:
            for j, ring in enumerate((poly.exterior, *poly.holes)):
                pts = [(float(px) / sx - 0.5, float(py) / sy - 0.5) for px, py in ring]
                draw.polygon(pts, fill=1 if j == 0 else 0, outline=1 if j == 0 else None)
        return np.asarray(canvas, bool)[:h, :w]

    def to_dict(self) -> dict:
        """File, sha256 and number of polygons (for provenance)."""
        return {"path": self.path, "sha256": self.sha256, "polygons": len(self.polygons)}


@dataclass(frozen=True)
class RegionSelection:
    """What of a slide is scored: inside ``include`` (everything when None) and outside ``exclude``.

    Attributes
    ----------
    include, exclude : Regions or None
    """

    include: Regions | None = None
    exclude: Regions | None = None

    def __post_init__(self) -> None:
        for name in ("include", "exclude"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, Regions):
                raise InvalidInputError(
                    f"{name} must be her2fast.io.Regions (read_regions(path)), got {type(v).__name__}"
                )

    @property
    def empty(self) -> bool:
        """True when it selects the whole slide (neither include nor exclude)."""
        return self.include is None and self.exclude is None

    def keeps(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Whether each level-0 point is scored: inside ``include`` (if given) and not inside ``exclude``."""
        x = np.asarray(x, np.float64).ravel()
        y = np.asarray(y, np.float64).ravel()
        keep = np.ones(x.size, bool)
        if self.include is not None:
            keep &= self.include.contains(x, y)
        if self.exclude is not None:
            keep &= ~self.exclude.contains(x, y)
        return keep

    def mask(self, shape: tuple[int, int], level0_per_pixel: tuple[float, float]) -> np.ndarray:
        """(H, W) bool on a grid: where tissue may be scored. A pixel touched by an include polygon is kept
        (cells are then tested exactly by :meth:`keeps`); a pixel is dropped only when it lies wholly inside
        an exclude polygon (the exclude raster, eroded by one pixel)."""
        from scipy import ndimage as ndi

        keep = np.ones(tuple(int(v) for v in shape), bool)
        if self.include is not None:
            keep &= self.include.rasterize(shape, level0_per_pixel)
        if self.exclude is not None:
            ex = self.exclude.rasterize(shape, level0_per_pixel)
            keep &= ~ndi.binary_erosion(ex, structure=np.ones((3, 3), bool), border_value=1)
        return keep

    def to_dict(self) -> dict:
        """Provenance: the files' paths, sha256 and polygon counts."""
        return {
            "include": None if self.include is None else self.include.to_dict(),
            "exclude": None if self.exclude is None else self.exclude.to_dict(),
        }


def _ring(value: object, where: str) -> np.ndarray:
    try:
        r = np.asarray(value, np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: coordinates must be [x, y] number pairs") from None
    if r.ndim != 2 or r.shape[1] < 2 or r.shape[0] < 3:
        raise ValueError(f"{where}: a ring needs at least 3 [x, y] points")
    r = r[:, :2]
    if not np.all(np.isfinite(r)):
        raise ValueError(f"{where}: coordinates must be finite numbers")
    if np.any(np.abs(r) > 1e9):
        raise ValueError(f"{where}: coordinates beyond 1e9 pixels")
    return np.ascontiguousarray(r)


def _polygons(geom: dict, where: str) -> list[Polygon]:
    gtype = geom.get("type")
    coords = geom.get("coordinates")
    if gtype == "GeometryCollection":
        out: list[Polygon] = []
        for k, g in enumerate(geom.get("geometries") or []):
            if isinstance(g, dict):
                out.extend(_polygons(g, f"{where}, geometry {k}"))
        return out
    polys: object
    if gtype == "Polygon":
        polys = [coords]
    elif gtype == "MultiPolygon":
        polys = coords
    else:
        return []  # points, lines: not regions
    if not isinstance(polys, list):
        raise ValueError(f"{where}: {gtype} coordinates must be a list")
    out = []
    for k, poly in enumerate(polys):
        if not isinstance(poly, list) or not poly:
            raise ValueError(f"{where}: polygon {k} has no rings")
        rings = [_ring(r, f"{where}, polygon {k}, ring {j}") for j, r in enumerate(poly)]
        out.append(Polygon(rings[0], tuple(rings[1:])))
    return out


def geojson_features(path: Path, what: str, *, geometries: bool) -> tuple[list[dict], bytes]:
    """The features of a GeoJSON file (a ``FeatureCollection``, a ``Feature`` or a list of features; with
    ``geometries`` also a bare geometry), each checked to hold a geometry object, and the file's bytes.

    Raises
    ------
    InvalidInputError
        Naming the file (``what`` says what it is for) and the fix: missing, larger than
        :data:`MAX_REGION_FILE_BYTES`, not JSON, not GeoJSON features, or a feature without a geometry.
    """
    if not path.is_file():
        raise InvalidInputError(f"{what} {path} does not exist (give a GeoJSON file exported from QuPath)")
    size = path.stat().st_size
    if size > MAX_REGION_FILE_BYTES:
        raise InvalidInputError(
            f"{what} {path} is {size / 2**20:.0f} MB, more than the {MAX_REGION_FILE_BYTES // 2**20} MB read: "
            "export only the objects needed"
        )
    raw = path.read_bytes()
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidInputError(
            f"{what} {path} is not valid JSON ({str(exc)[:200]}); export it from QuPath with "
            "File > Export objects as GeoJSON"
        ) from None
    kind = data.get("type") if isinstance(data, dict) else None
    if kind == "FeatureCollection":
        features = data.get("features")
    elif kind == "Feature":
        features = [data]
    elif geometries and isinstance(kind, str) and ("coordinates" in data or kind == "GeometryCollection"):
        features = [{"type": "Feature", "geometry": data}]
    elif isinstance(data, list):
        features = data
    else:
        raise InvalidInputError(
            f"{what} {path} is not GeoJSON features: expected a FeatureCollection, a Feature or a list of "
            f"Features{' or a geometry' if geometries else ''}"
        )
    if not isinstance(features, list):
        raise InvalidInputError(f"{what} {path}: 'features' must be a list")
    for i, feat in enumerate(features):
        if not isinstance(feat, dict) or not isinstance(feat.get("geometry"), dict):
            raise InvalidInputError(f"{what} {path}: feature {i} has no geometry object")
    return features, raw


def read_regions(path: str | Path) -> Regions:
    """Polygons of a GeoJSON file: a ``FeatureCollection``, a ``Feature``, a list of features or a bare
    geometry (QuPath's "Export objects as GeoJSON"), in level-0 pixel coordinates.

    Raises
    ------
    InvalidInputError
        Naming the file and the fix: missing, larger than :data:`MAX_REGION_FILE_BYTES`, not JSON, not
        GeoJSON, an invalid polygon (fewer than 3 points, non-numeric or non-finite coordinates), more than
        :data:`MAX_REGION_VERTICES` vertices, or no polygon at all.
    """
    p = Path(path)
    features, raw = geojson_features(p, "region file", geometries=True)
    polys: list[Polygon] = []
    vertices = 0
    for i, feat in enumerate(features):
        try:
            got = _polygons(feat["geometry"], f"feature {i}")
        except (ValueError, RecursionError) as exc:
            raise InvalidInputError(f"region file {p}: {exc}") from None
        vertices += sum(q.exterior.shape[0] + sum(h.shape[0] for h in q.holes) for q in got)
        if vertices > MAX_REGION_VERTICES:
            raise InvalidInputError(
                f"region file {p} holds more than {MAX_REGION_VERTICES:,} vertices; simplify the annotations "
                "(QuPath: Objects > Annotations > Simplify shape)"
            )
        polys.extend(got)
    if not polys:
        raise InvalidInputError(
            f"region file {p} holds no Polygon or MultiPolygon: draw the regions as areas (not points or lines)"
        )
    return Regions(tuple(polys), str(path), hashlib.sha256(raw).hexdigest())


def as_selection(
    include: str | Path | Regions | None = None, exclude: str | Path | Regions | None = None
) -> RegionSelection:
    """A :class:`RegionSelection` from files or :class:`Regions` (either may be None)."""

    def load(v: object) -> Regions | None:
        if v is None or isinstance(v, Regions):
            return v
        if isinstance(v, (str, Path)):
            return read_regions(v)
        raise InvalidInputError(f"regions must be a GeoJSON path or Regions, got {type(v).__name__}")

    return RegionSelection(load(include), load(exclude))
