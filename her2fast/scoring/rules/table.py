"""The cell table (:class:`CellTable`): one row per cell with its measurements (:data:`CELL_COLUMNS`), and its
``.npz`` file.

Examples
--------
>>> t = CellTable.empty()
>>> len(t), CELL_COLUMNS[0]
(0, 'cell_id')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ...errors import InvalidInputError
from .classes import DEFAULT_RULES, ScoringRules, classify_cells

__all__ = ["CellTable"]


#: The columns of a :class:`CellTable`, in order (``SlideResult`` JSON and structured arrays use this order).
CELL_COLUMNS = (
    "cell_id",
    "x",
    "y",
    "is_tumour",
    "intensity",
    "completeness",
    "membrane_dab_od",
    "region",
    "closed",
    "membrane_thickness",
    "area",
)
#: Columns that may be left out when a table is built (filled with zeros / False): the expression region
#: (phantoms) and what only measured cells have (:func:`her2fast.stages.cells.measure_tile`).
_OPTIONAL_COLUMNS = ("region", "closed", "membrane_thickness", "area")


@dataclass
class CellTable:
    """One row per cell, as parallel numpy arrays (the whole-slide state of the cells stage).

    Attributes
    ----------
    cell_id : (n,) int64
        Unique within a slide or tile; equals the value of the cell in a cell label map.
    x, y : (n,) float32
        Cell centre in pixels of the image it belongs to (level 0 for a slide).
    is_tumour : (n,) bool
        Tumour (epithelial) cell; only tumour cells are scored.
    intensity : (n,) int8
        :class:`IntensityClass` of the membrane staining.
    completeness : (n,) float32
        Fraction of the perimeter that is stained, in [0, 1].
    membrane_dab_od : (n,) float32
        DAB optical density of the stained membrane (centre line), 0 where unstained.
    region : (n,) int8
        Expression region the cell belongs to (heterogeneous phantoms; 0 elsewhere).
    closed : (n,) bool
        The cell's nucleus lies inside a closed membrane loop (a skeleton loop enclosing a cell-sized
        region that holds this nucleus and no other); measured cells only, False elsewhere.
    membrane_thickness : (n,) float32
        Median width (um) of the stained membrane where it is crossed by rays from the nucleus centre;
        0 where unstained or not measured.
    area : (n,) float32
        Area of the cell territory (um^2); 0 where not measured.

    The optional columns (``region``, ``closed``, ``membrane_thickness``, ``area``) may be omitted when
    a table is built and are then filled with zeros / False; older ``.npz`` files without them load.
    """

    cell_id: np.ndarray
    x: np.ndarray
    y: np.ndarray
    is_tumour: np.ndarray
    intensity: np.ndarray
    completeness: np.ndarray
    membrane_dab_od: np.ndarray
    region: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    closed: np.ndarray = field(default_factory=lambda: np.zeros(0, np.bool_))
    membrane_thickness: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    area: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    _DTYPES = {
        "cell_id": np.int64,
        "x": np.float32,
        "y": np.float32,
        "is_tumour": np.bool_,
        "intensity": np.int8,
        "completeness": np.float32,
        "membrane_dab_od": np.float32,
        "region": np.int8,
        "closed": np.bool_,
        "membrane_thickness": np.float32,
        "area": np.float32,
    }

    def __post_init__(self) -> None:
        n = len(np.asarray(self.cell_id))
        for name in _OPTIONAL_COLUMNS:
            if len(np.asarray(getattr(self, name))) == 0 and n:
                setattr(self, name, np.zeros(n, self._DTYPES[name]))
        for name in CELL_COLUMNS:
            arr: np.ndarray = np.asarray(getattr(self, name), dtype=self._DTYPES[name])
            if arr.ndim != 1 or arr.shape[0] != n:
                raise InvalidInputError(
                    f"CellTable.{name} must be a 1-D array of {n} values (one per cell), got shape {arr.shape}"
                )
            setattr(self, name, arr)

    def __len__(self) -> int:
        return int(self.cell_id.shape[0])

    @classmethod
    def empty(cls) -> CellTable:
        """A table with no rows."""
        return cls(**{name: np.zeros(0, cls._DTYPES[name]) for name in CELL_COLUMNS})

    @classmethod
    def concatenate(cls, tables: list[CellTable]) -> CellTable:
        """Rows of several tables, in order."""
        if not tables:
            return cls.empty()
        return cls(**{name: np.concatenate([getattr(t, name) for t in tables]) for name in CELL_COLUMNS})

    def select(self, rows: np.ndarray) -> CellTable:
        """The rows picked by a boolean mask or an index array."""
        return CellTable(**{name: getattr(self, name)[rows] for name in CELL_COLUMNS})

    def away_from_edge(self, width: float, height: float, margin: float) -> np.ndarray:
        """Boolean mask of the cells whose centre lies at least ``margin`` inside a ``width`` x ``height`` image.

        A cell of a field of view whose centre is closer to the image edge than the cell stage's reach
        (``CellSettings.max_radius_um``, in pixels) has part of its territory and rays cut off by the edge:
        its completeness and membrane OD come from part of its outline, and its cytoplasm from part of its
        body. The same reach is the margin a slide's tiles keep around the cells they own.

        Parameters
        ----------
        width, height : float
            Size of the image, in the pixels of ``x`` and ``y`` (pixel ``j`` spans ``[j - 1/2, j + 1/2)``).
        margin : float
            Distance in pixels (>= 0).

        Examples
        --------
        >>> t = CellTable(cell_id=[1, 2], x=[5.0, 50.0], y=[50.0, 50.0], is_tumour=[True, True],
        ...               intensity=[0, 0], completeness=[0.0, 0.0], membrane_dab_od=[0.0, 0.0])
        >>> t.away_from_edge(100, 100, 10).tolist()
        [False, True]
        """
        w, h, m = (float(v) for v in (width, height, margin))
        if not (np.isfinite(m) and m >= 0 and np.isfinite(w) and np.isfinite(h) and w > 0 and h > 0):
            raise InvalidInputError(
                f"away_from_edge needs a finite size > 0 and margin >= 0, got {width} x {height}, margin {margin}"
            )
        lo = m - 0.5
        return (self.x >= lo) & (self.y >= lo) & (self.x <= w - 0.5 - m) & (self.y <= h - 0.5 - m)

    def cell_class(self, rules: ScoringRules = DEFAULT_RULES) -> np.ndarray:
        """:func:`classify_cells` of every row."""
        return classify_cells(self.intensity, self.completeness, rules)

    def save_npz(self, path: str | Path | BinaryIO) -> None:
        """Write the table as a compressed ``.npz`` (plain arrays, no pickle)."""
        np.savez_compressed(path, **{name: getattr(self, name) for name in CELL_COLUMNS})

    @classmethod
    def load_npz(cls, path: str | Path) -> CellTable:
        """Read a table written by :meth:`save_npz`."""
        with np.load(path, allow_pickle=False) as data:
            missing = [c for c in CELL_COLUMNS if c not in data.files and c not in _OPTIONAL_COLUMNS]
            if missing:
                raise InvalidInputError(f"{path} is not a her2fast cell table: missing columns {missing}")
            return cls(**{name: data[name] for name in CELL_COLUMNS if name in data.files})
