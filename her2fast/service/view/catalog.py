"""What the viewer shows of a results store: its slides, their results, cells, epithelium and heat map.

Everything here starts from a run's row in the :class:`~her2fast.io.store.ResultsStore`: the slide's path
and its report files come from the row (written by ``her2fast batch`` or ``her2fast watch``), never from a
request. A report file that is not where the row says is looked for under the same name in the store's
folder (an output folder that was moved).
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import Her2FastError
from ...io.store import ResultsStore, StoreError
from ...scoring import CellClass, CellTable, ScoringRules
from ..report import CLASS_COLOURS, CLASS_NAMES

__all__ = ["Catalog", "SlideData", "CellIndex", "slide_status", "read_epithelium_rings"]

#: the epithelium outlines read from a GeoJSON are bounded (vertices): a file with more is cut there
MAX_EPITHELIUM_VERTICES = 2_000_000


def slide_status(row: dict, review: dict | None) -> str:
    """``failed``, ``not scorable``, ``reviewed`` or ``scored`` for a run and its review in force."""
    if row["status"] != "ok":
        return "failed"
    if review is not None:
        return "reviewed"
    return "not scorable" if row["score"] is None else "scored"


def read_epithelium_rings(path: Path, *, max_vertices: int = MAX_EPITHELIUM_VERTICES) -> list[np.ndarray]:
    """The epithelium rings (outer rings and holes, level-0 pixels) of a her2fast GeoJSON.

    :func:`her2fast.service.report.write_geojson` writes the epithelium annotations before the cells, so
    the file is read feature by feature and reading stops at the first cell: memory and time do not grow
    with the number of cells.

    Returns
    -------
    list of (n, 2) float32
        Empty for a file that is not a her2fast GeoJSON.
    """
    decoder = json.JSONDecoder()
    rings: list[np.ndarray] = []
    vertices = 0
    with open(path, encoding="utf-8") as fh:
        buf = fh.read(1 << 16)
        head = '{"type":"FeatureCollection","features":['
        if not buf.startswith(head):
            return []
        pos = len(head)
        while True:
            while pos < len(buf) and buf[pos] in ", \n\r\t":
                pos += 1
            if pos < len(buf) and buf[pos] == "]":
                return rings
            try:
                feature, end = decoder.raw_decode(buf, pos)
            except json.JSONDecodeError:
                more = fh.read(1 << 20)
                if not more:
                    return rings
                buf, pos = buf[pos:] + more, 0
                continue
            pos = end
            props = feature.get("properties", {}) if isinstance(feature, dict) else {}
            if props.get("objectType") != "annotation":
                return rings  # the cells follow: no more epithelium
            geom = feature.get("geometry") or {}
            if geom.get("type") == "Polygon":
                for ring in geom.get("coordinates", []):
                    arr = np.asarray(ring, np.float32).reshape(-1, 2)
                    vertices += len(arr)
                    if vertices > max_vertices:
                        return rings
                    rings.append(arr)
            if pos > 1 << 20:  # keep the buffer small
                buf, pos = buf[pos:], 0


class CellIndex:
    """Cells bucketed on a square grid of level-0 pixels, for the cells in a rectangle and the nearest cell.

    Parameters
    ----------
    x, y : (n,) float
        Level-0 centres.
    bucket : float
        Side of a grid square (level-0 pixels).
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, bucket: float) -> None:
        self.bucket = float(bucket)
        x = np.asarray(x, np.float64)
        y = np.asarray(y, np.float64)
        self.n_cols = int(max(1, math.ceil((float(x.max()) + 1) / self.bucket))) if len(x) else 1
        n_rows = int(max(1, math.ceil((float(y.max()) + 1) / self.bucket))) if len(y) else 1
        self.n_rows = n_rows
        gx = np.clip((x // self.bucket).astype(np.int64), 0, self.n_cols - 1)
        gy = np.clip((y // self.bucket).astype(np.int64), 0, n_rows - 1)
        key = gy * self.n_cols + gx
        self.order = np.argsort(key, kind="stable")
        self.starts = np.searchsorted(key[self.order], np.arange(n_rows * self.n_cols + 1))
        self._tree: Any = None  # a scipy.spatial.cKDTree, built on first use by nearest()
        self._x, self._y = x, y

    def in_rect(self, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
        """Indices of the cells whose bucket meets ``[x0, x1) x [y0, y1)`` (a superset of the cells inside)."""
        c0 = max(0, int(x0 // self.bucket))
        c1 = min(self.n_cols - 1, int(x1 // self.bucket))
        r0 = max(0, int(y0 // self.bucket))
        r1 = min(self.n_rows - 1, int(y1 // self.bucket))
        if c0 > c1 or r0 > r1:
            return np.zeros(0, np.int64)
        parts = [
            self.order[self.starts[r * self.n_cols + c0] : self.starts[r * self.n_cols + c1 + 1]]
            for r in range(r0, r1 + 1)
        ]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def nearest(self, x: float, y: float, max_distance: float) -> int | None:
        """Index of the cell nearest to ``(x, y)`` within ``max_distance`` level-0 pixels, or None."""
        if not len(self._x):
            return None
        if self._tree is None:
            from scipy.spatial import cKDTree

            self._tree = cKDTree(np.stack([self._x, self._y], axis=1))
        d, i = self._tree.query([x, y], distance_upper_bound=max_distance)
        return None if not math.isfinite(d) else int(i)


@dataclass
class SlideData:
    """A run's result, cells and overlays, loaded once per run and shared by the threads that serve it.

    Attributes
    ----------
    run_id : int
    result : dict
        The result JSON (``<name>.her2fast.json``) without the cell table; empty when it is missing.
    cells : CellTable
        Empty when the cell table is missing.
    classes : (n,) int8
        :class:`~her2fast.scoring.CellClass` of every cell under the run's rules (tumour cells only count).
    index : CellIndex
        Of the tumour cells (``tumour`` holds their row numbers in ``cells``).
    epithelium : list of (n, 2) float32
        Epithelium outlines (level-0 pixels), from the GeoJSON.
    epithelium_boxes : (len(epithelium), 4) float32
        Bounding box ``x0, y0, x1, y1`` of each outline (filled in when not given).
    epithelium_xy, epithelium_starts : (n, 2) float32, (len(epithelium) + 1,) int64
        Every outline's vertices in one array, outline ``k`` at rows ``starts[k]:starts[k + 1]`` (filled in).
    heat_percent, heat_cell : (rows, cols) float32, (float, float)
        % of tumour cells with a complete membrane per tile of the scoring grid (NaN: no tumour cell), and
        the tile size in level-0 pixels.
    """

    run_id: int
    result: dict
    cells: CellTable
    classes: np.ndarray
    tumour: np.ndarray
    index: CellIndex
    epithelium: list[np.ndarray]
    heat_percent: np.ndarray
    heat_cell: tuple[float, float]
    mpp: float
    problems: list[str] = field(default_factory=list)
    epithelium_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))

    epithelium_xy: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    epithelium_starts: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))

    def __post_init__(self) -> None:
        rings = [r for r in self.epithelium if len(r)]
        self.epithelium = rings
        if rings and not len(self.epithelium_boxes):
            self.epithelium_boxes = np.array([(*r.min(axis=0), *r.max(axis=0)) for r in rings], np.float32)
        if rings:
            self.epithelium_xy = np.concatenate(rings).astype(np.float32)
            self.epithelium_starts = np.concatenate([[0], np.cumsum([len(r) for r in rings])]).astype(np.int64)

    def cell_info(self, i: int) -> dict:
        """The measurements of tumour cell ``i`` (an index into ``tumour``) as a JSON-ready dict."""
        row = int(self.tumour[i])
        c = self.cells
        cls = CellClass(int(self.classes[row]))
        return {
            "cell_id": int(c.cell_id[row]),
            "x": round(float(c.x[row]), 1),
            "y": round(float(c.y[row]), 1),
            "class": CLASS_NAMES[cls],
            "class_id": int(cls),
            "colour": "#{:02x}{:02x}{:02x}".format(*CLASS_COLOURS[cls]),
            "intensity": int(c.intensity[row]),
            "completeness": round(float(c.completeness[row]), 4),
            "membrane_dab_od": round(float(c.membrane_dab_od[row]), 4),
            "closed": bool(c.closed[row]),
            "membrane_thickness_um": round(float(c.membrane_thickness[row]), 3),
            "area_um2": round(float(c.area[row]), 2),
        }


def _report_file(outputs: dict, kind: str, store_dir: Path) -> Path | None:
    """The report file of ``kind`` named in a run's ``outputs``: where it was written, else in the store's folder."""
    text = outputs.get(kind)
    if not isinstance(text, str) or not text:
        return None
    p = Path(text)
    if p.is_file():
        return p
    moved = store_dir / p.name
    return moved if p.name and moved.is_file() else None


def _heat_map(cells: CellTable, rules: dict, cell: tuple[float, float]) -> np.ndarray:
    t = cells.is_tumour
    if not t.any():
        return np.full((1, 1), np.nan, np.float32)
    x, y = cells.x[t].astype(np.float64), cells.y[t].astype(np.float64)
    n_cols = int(x.max() // cell[0]) + 1
    n_rows = int(y.max() // cell[1]) + 1
    idx = (y // cell[1]).astype(np.int64) * n_cols + (x // cell[0]).astype(np.int64)
    complete = (cells.intensity[t] > 0) & (cells.completeness[t] >= float(rules.get("complete_fraction", 0.9)))
    n = np.bincount(idx, minlength=n_rows * n_cols)
    k = np.bincount(idx, weights=complete, minlength=n_rows * n_cols)
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = np.where(n > 0, 100.0 * k / np.maximum(n, 1), np.nan)
    return pct.reshape(n_rows, n_cols).astype(np.float32)


def load_slide_data(run_id: int, row: dict, store_dir: Path) -> SlideData:
    """Read a run's result JSON, cell table and epithelium outlines (what is missing stays empty, with a note)."""
    outputs = row.get("outputs") or {}
    problems: list[str] = []
    result: dict = {}
    json_path = _report_file(outputs, "json", store_dir)
    if json_path is not None:
        try:
            result = json.loads(json_path.read_text(encoding="utf-8"))
            if not isinstance(result, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            problems.append(f"the result file {json_path.name} cannot be read: {exc}")
            result = {}
    elif row["status"] == "ok":
        problems.append("the run's result file is missing")
    settings = result.get("provenance", {}).get("settings", {}) if result else {}
    rules_dict = settings.get("rules", {}) if isinstance(settings, dict) else {}
    try:
        rules = ScoringRules(**rules_dict)
    except TypeError:
        rules, rules_dict = ScoringRules(), {}
    cells = CellTable.empty()
    cells_path = _report_file(outputs, "cells", store_dir)
    if cells_path is not None:
        try:
            cells = CellTable.load_npz(cells_path)
        except (OSError, ValueError, Her2FastError) as exc:
            problems.append(f"the cell table {cells_path.name} cannot be read: {exc}")
    elif row["status"] == "ok":
        problems.append("the run's cell table is missing")
    meta = result.get("provenance", {}).get("slide", {}) if result else {}
    mpp_x = float(meta.get("mpp_x") or 0.5)
    mpp_y = float(meta.get("mpp_y") or mpp_x)
    work_mpp = float(settings.get("mpp", 0.5)) if isinstance(settings, dict) else 0.5
    tile = float(settings.get("tile_size", 704)) if isinstance(settings, dict) else 704.0
    heat_cell = (tile * work_mpp / mpp_x, tile * work_mpp / mpp_y)
    classes = cells.cell_class(rules) if len(cells) else np.zeros(0, np.int8)
    tumour = np.flatnonzero(cells.is_tumour) if len(cells) else np.zeros(0, np.int64)
    bucket = max(64.0, 40.0 / mpp_x)  # ~40 um squares
    index = (
        CellIndex(cells.x[tumour], cells.y[tumour], bucket) if len(tumour) else CellIndex(np.zeros(0), np.zeros(0), 1)
    )
    epithelium: list[np.ndarray] = []
    geo = _report_file(outputs, "geojson", store_dir)
    if geo is not None:
        try:
            epithelium = read_epithelium_rings(geo)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            problems.append(f"the epithelium outlines of {geo.name} cannot be read: {exc}")
    heat = _heat_map(cells, rules_dict, heat_cell) if len(cells) else np.full((1, 1), np.nan, np.float32)
    return SlideData(
        run_id=run_id,
        result=result,
        cells=cells,
        classes=classes,
        tumour=tumour,
        index=index,
        epithelium=epithelium,
        heat_percent=heat,
        heat_cell=heat_cell,
        mpp=mpp_x,
        problems=problems,
    )


class Catalog:
    """The slides of a results store and their loaded data, shared by the server's threads.

    Parameters
    ----------
    location : path
        The output folder of ``her2fast batch`` / ``watch`` (its ``results.db``) or the database file.
    cache : int
        How many runs' cell tables stay loaded.

    Raises
    ------
    StoreError
        There is no results store at ``location`` (none is created), or it cannot be opened.
    """

    def __init__(self, location: str | Path, *, cache: int = 8) -> None:
        with ResultsStore(location, read_only=True) as store:  # never creates an empty store
            self.db_path = store.path
        # open once for writing: creates the reviews table in a database of an older her2fast
        ResultsStore(self.db_path).close()
        self.store_dir = self.db_path.parent
        self._local = threading.local()
        self._lock = threading.Lock()
        self._loading: dict[int, threading.Lock] = {}
        self._data: OrderedDict[int, SlideData] = OrderedDict()
        self._cache = int(cache)

    def store(self) -> ResultsStore:
        """This thread's read-only connection to the store."""
        st = getattr(self._local, "store", None)
        if st is None:
            st = ResultsStore(self.db_path, read_only=True)
            self._local.store = st
        return st

    def worklist(self) -> list[dict]:
        """The newest run of every slide in the store, newest first, with its review in force and status."""
        store = self.store()
        reviews = store.latest_reviews()
        newest: dict[str, dict] = {}
        for row in store.rows():
            newest[row["slide_path"]] = row
        out = []
        for row in sorted(newest.values(), key=lambda r: -r["id"]):
            review = reviews.get(row["id"])
            out.append({**row, "review": review, "view_status": slide_status(row, review)})
        return out

    def run(self, run_id: int) -> dict | None:
        """The run's row with its reviews (``reviews``, oldest first) and status, or None."""
        store = self.store()
        try:
            row = store.get(int(run_id))
        except StoreError:
            return None
        reviews = store.reviews(run_id)
        review = reviews[-1] if reviews else None
        return {**row, "reviews": reviews, "review": review, "view_status": slide_status(row, review)}

    def result(self, row: dict) -> dict:
        """The run's result JSON (without cells), from the loaded data when there is, else read; {} if none."""
        with self._lock:
            hit = self._data.get(int(row["id"]))
        if hit is not None:
            return hit.result
        path = _report_file(row.get("outputs") or {}, "json", self.store_dir)
        try:
            d = json.loads(path.read_text(encoding="utf-8")) if path is not None else {}
        except (OSError, ValueError):
            return {}
        return d if isinstance(d, dict) else {}

    def data(self, run_id: int, row: dict) -> SlideData:
        """The run's :class:`SlideData`, loaded on first use (one thread loads, the others wait)."""
        with self._lock:
            hit = self._data.get(run_id)
            if hit is not None:
                self._data.move_to_end(run_id)
                return hit
            lock = self._loading.setdefault(run_id, threading.Lock())
        with lock:
            with self._lock:
                hit = self._data.get(run_id)
            if hit is not None:
                return hit
            loaded = load_slide_data(run_id, row, self.store_dir)
            with self._lock:
                self._data[run_id] = loaded
                while len(self._data) > self._cache:
                    self._data.popitem(last=False)
                self._loading.pop(run_id, None)
            return loaded
