"""The slide's cell table from its tiles' tables: :func:`merge_cell_tables`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...errors import InvalidInputError
from ...scoring import CellTable
from .measure import TileCells

__all__ = ["merge_cell_tables"]


def merge_cell_tables(
    tables: Sequence[CellTable | TileCells], *, level0_per_pixel: tuple[float, float] = (1.0, 1.0)
) -> CellTable:
    """The slide's cell table from the tables of its tiles (each cell owned by exactly one tile).

    Rows are concatenated, centres scaled from working to level-0 pixels, put in a canonical order (by
    ``y``, then ``x``) and numbered 1..n, so the result does not depend on the tile grid or on the order
    in which tiles finished.

    Parameters
    ----------
    tables : sequence of CellTable or TileCells
        The per-tile results of :func:`measure_tile` (owned cells only).
    level0_per_pixel : (float, float)
        Level-0 pixels per working pixel (``TileGrid.level0_per_pixel``); (1, 1) keeps working pixels.

    Raises
    ------
    InvalidInputError
        When two rows have the same centre: tiles overlapped (a tile measured twice, or cores that do
        not partition the plane).

    Notes
    -----
    This is bookkeeping on tables (a concatenation and a sort, O(n log n)); the seam work is done by
    the ownership rule in :func:`measure_tile`, so there is nothing to gain from a native kernel here.
    """
    parts = [t.cells if isinstance(t, TileCells) else t for t in tables]
    for i, t in enumerate(parts):
        if not isinstance(t, CellTable):
            raise InvalidInputError(f"tables[{i}] must be a CellTable or TileCells, got {type(t).__name__}")
    sx, sy = (float(v) for v in level0_per_pixel)
    if not (np.isfinite(sx) and np.isfinite(sy) and sx > 0 and sy > 0):
        raise InvalidInputError(f"level0_per_pixel must be two finite numbers > 0, got {level0_per_pixel!r}")
    merged = CellTable.concatenate(parts)
    x = merged.x.astype(np.float64)
    y = merged.y.astype(np.float64)
    order = np.lexsort((x, y))
    merged = merged.select(order)
    if len(merged) > 1:
        dup = (np.diff(merged.x) == 0) & (np.diff(merged.y) == 0)
        if dup.any():
            k = int(np.flatnonzero(dup)[0])
            raise InvalidInputError(
                f"two cells share the centre ({merged.x[k]}, {merged.y[k]}): the tiles overlap "
                "(a tile merged twice, or cores that do not partition the slide)"
            )
    merged.cell_id = np.arange(1, len(merged) + 1, dtype=np.int64)
    merged.x = (merged.x.astype(np.float64) * sx).astype(np.float32)
    merged.y = (merged.y.astype(np.float64) * sy).astype(np.float32)
    return merged
