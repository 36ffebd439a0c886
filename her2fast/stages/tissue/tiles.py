"""The tiles that hold tissue at the working resolution (:func:`tile_grid`), and reading them (:func:`read_tile`).

:func:`tile_grid` lays tiles of ``tile_size`` px at the working resolution (default 0.5 um/px) over the
slide and keeps those whose *core* holds at least ``min_tissue`` tissue (area fraction from the tissue
mask). Only those tiles are ever read at full resolution (:func:`read_tiles`).

Tile geometry
-------------
Working pixels are pixels at the grid's ``mpp``; working pixel ``(0, 0)`` starts at level-0 ``(0, 0)``.
Tile ``(col, row)`` has its core at working ``[col*T, (col+1)*T) x [row*T, (row+1)*T)`` (``T`` =
``tile_size``) and is read with an ``overlap`` margin on every side: padded bounds
``[col*T - overlap, (col+1)*T + overlap)``. Level-0 bounds are the working bounds times
``mpp / slide.mpp_x`` (resp. ``_y``) and may be fractional. Cores partition the plane: every point of the
slide lies in exactly one core, which is what lets later stages count each cell once (the tile whose core
holds its centre owns it). Tiles on the right and bottom edges reach past the slide; reads there are white.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..._validate import as_int, as_positive_float
from ...errors import InvalidInputError
from ...io.slide import Slide
from .mask import TissueMask

__all__ = ["Tile", "TileGrid", "TileImage", "read_tile", "read_tiles", "tile_grid"]


@dataclass(frozen=True)
class Tile:
    """One tile of a :class:`TileGrid`.

    Bounds are ``(x0, y0, x1, y1)``, half-open, in working pixels (ints) or level-0 pixels (floats).

    Attributes
    ----------
    index : int
        Position in the grid's tile table.
    col, row : int
    core : (int, int, int, int)
        Core bounds in working pixels.
    padded : (int, int, int, int)
        Core plus the overlap margin, in working pixels (what is read).
    core_level0, padded_level0 : (float, float, float, float)
        The same bounds in level-0 pixels.
    tissue_fraction : float
        Fraction of the core that is tissue.
    """

    index: int
    col: int
    row: int
    core: tuple[int, int, int, int]
    padded: tuple[int, int, int, int]
    core_level0: tuple[float, float, float, float]
    padded_level0: tuple[float, float, float, float]
    tissue_fraction: float


@dataclass
class TileGrid:
    """The tiles that hold tissue, at the working resolution (a table: one entry per kept tile).

    Attributes
    ----------
    mpp : float
        Working resolution (um/px).
    tile_size : int
        Core size in working pixels.
    overlap : int
        Margin on each side, in working pixels (a tile is read as ``tile_size + 2*overlap`` square).
    level0_per_pixel : (float, float)
        Level-0 pixels per working pixel along x and y.
    n_cols, n_rows : int
        Size of the full grid covering the slide.
    cols, rows : (N,) int32
        Grid position of each kept tile (row-major order).
    tissue_fraction : (N,) float32
        Tissue fraction of each kept tile's core.
    min_tissue : float
        The threshold used to keep tiles.
    occupancy : (n_rows, n_cols) float32
        Tissue fraction of every tile of the full grid (kept or not), for overviews.
    """

    mpp: float
    tile_size: int
    overlap: int
    level0_per_pixel: tuple[float, float]
    n_cols: int
    n_rows: int
    cols: np.ndarray
    rows: np.ndarray
    tissue_fraction: np.ndarray
    min_tissue: float
    occupancy: np.ndarray

    def __len__(self) -> int:
        return int(self.cols.size)

    @property
    def n_total(self) -> int:
        """Tiles in the full grid."""
        return self.n_cols * self.n_rows

    @property
    def n_empty(self) -> int:
        """Tiles of the full grid that were dropped (too little tissue)."""
        return self.n_total - len(self)

    @property
    def padded_size(self) -> int:
        """Side of a tile as read, ``tile_size + 2 * overlap``."""
        return self.tile_size + 2 * self.overlap

    @property
    def cores(self) -> np.ndarray:
        """(N, 4) int64 core bounds ``x0, y0, x1, y1`` in working pixels."""
        t = self.tile_size
        x0 = self.cols.astype(np.int64) * t
        y0 = self.rows.astype(np.int64) * t
        return np.stack([x0, y0, x0 + t, y0 + t], axis=1)

    @property
    def padded(self) -> np.ndarray:
        """(N, 4) int64 padded bounds in working pixels (may be negative on the first row/column)."""
        o = self.overlap
        return self.cores + np.array([-o, -o, o, o], np.int64)

    def to_level0(self, bounds: np.ndarray) -> np.ndarray:
        """Working-pixel bounds ``(..., 4)`` to level-0 pixels (float64)."""
        sx, sy = self.level0_per_pixel
        return np.asarray(bounds, np.float64) * np.array([sx, sy, sx, sy])

    def tile(self, index: int) -> Tile:
        """The :class:`Tile` at ``index``."""
        n = len(self)
        index = as_int(index, "index", -n if n else 0, n - 1)
        index %= n
        core = tuple(int(v) for v in self.cores[index])
        padded = tuple(int(v) for v in self.padded[index])
        return Tile(
            index=index,
            col=int(self.cols[index]),
            row=int(self.rows[index]),
            core=core,  # type: ignore[arg-type]
            padded=padded,  # type: ignore[arg-type]
            core_level0=tuple(float(v) for v in self.to_level0(np.array(core))),  # type: ignore[arg-type]
            padded_level0=tuple(float(v) for v in self.to_level0(np.array(padded))),  # type: ignore[arg-type]
            tissue_fraction=float(self.tissue_fraction[index]),
        )

    def __iter__(self) -> Iterator[Tile]:
        for i in range(len(self)):
            yield self.tile(i)

    def owner(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Grid ``(col, row)`` whose core holds each level-0 point (the tile that owns a cell there)."""
        sx, sy = self.level0_per_pixel
        col = np.floor(np.asarray(x, np.float64) / sx / self.tile_size).astype(np.int64)
        row = np.floor(np.asarray(y, np.float64) / sy / self.tile_size).astype(np.int64)
        return col, row


def _area_fractions(mask: np.ndarray, x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray) -> np.ndarray:
    """Exact area-weighted mean of a piecewise-constant mask over rectangles in (fractional) mask pixels.

    The integral of the mask is piecewise bilinear in the rectangle's corners, so bilinear interpolation
    of the summed-area table gives it exactly. Outside the mask counts as 0 (glass).
    """
    h, w = mask.shape
    sat = np.zeros((h + 1, w + 1), np.float64)
    sat[1:, 1:] = np.cumsum(np.cumsum(mask, axis=0, dtype=np.float64), axis=1)

    def integral(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        x = np.clip(x, 0, w)
        y = np.clip(y, 0, h)
        xi = np.minimum(np.floor(x).astype(np.int64), w - 1) if w else np.zeros_like(x, np.int64)
        yi = np.minimum(np.floor(y).astype(np.int64), h - 1) if h else np.zeros_like(y, np.int64)
        fx, fy = x - xi, y - yi
        a = sat[yi, xi]
        b = sat[yi, xi + 1]
        c = sat[yi + 1, xi]
        d = sat[yi + 1, xi + 1]
        return a * (1 - fx) * (1 - fy) + b * fx * (1 - fy) + c * (1 - fx) * fy + d * fx * fy

    total = integral(x1, y1) - integral(x0, y1) - integral(x1, y0) + integral(x0, y0)
    area = (x1 - x0) * (y1 - y0)
    return np.where(area > 0, total / np.maximum(area, 1e-12), 0.0)


def tile_grid(
    slide: Slide,
    tissue: TissueMask,
    *,
    tile_size: int = 512,
    overlap: int = 32,
    mpp: float = 0.5,
    min_tissue: float = 0.05,
) -> TileGrid:
    """The tiles of ``slide`` at ``mpp`` whose core holds at least ``min_tissue`` tissue.

    Parameters
    ----------
    slide : Slide
    tissue : TissueMask
        From :func:`detect_tissue` on the same slide.
    tile_size : int
        Core size in working pixels (default 512, i.e. 256 um at 0.5 um/px).
    overlap : int
        Margin read on each side, in working pixels; make it wider than a cell so that a cell cut by the
        core's edge is whole in the padded tile (default 32 px = 16 um at 0.5 um/px).
    mpp : float
        Working resolution (default 0.5 um/px).
    min_tissue : float
        Keep tiles whose core is at least this fraction tissue (0 keeps tiles with any tissue; 0 < x <= 1).

    Returns
    -------
    TileGrid
    """
    if not isinstance(slide, Slide):
        raise InvalidInputError(
            f"slide must be a her2fast.io.slide.Slide (from open_slide), got {type(slide).__name__}"
        )
    if not isinstance(tissue, TissueMask):
        raise InvalidInputError(f"tissue must be a TissueMask (from detect_tissue), got {type(tissue).__name__}")
    tile_size = as_int(tile_size, "tile_size", 16, 1 << 14)
    overlap = as_int(overlap, "overlap", 0, tile_size)
    mpp = as_positive_float(mpp, "mpp")
    try:
        min_tissue = float(min_tissue)
    except (TypeError, ValueError):
        raise InvalidInputError(f"min_tissue must be a number in [0, 1], got {min_tissue!r}") from None
    if not 0.0 <= min_tissue <= 1.0:
        raise InvalidInputError(f"min_tissue must be in [0, 1], got {min_tissue}")

    wum, hum = slide.size_um
    n_cols = max(1, int(math.ceil(wum / (tile_size * mpp) - 1e-9)))
    n_rows = max(1, int(math.ceil(hum / (tile_size * mpp) - 1e-9)))
    # Core bounds in mask pixels (both grids start at the slide's level-0 origin).
    k = tile_size * mpp / tissue.mpp
    edges_x = np.arange(n_cols + 1) * k
    edges_y = np.arange(n_rows + 1) * k
    gx0, gy0 = np.meshgrid(edges_x[:-1], edges_y[:-1])
    gx1, gy1 = np.meshgrid(edges_x[1:], edges_y[1:])
    occupancy = _area_fractions(tissue.mask, gx0, gy0, gx1, gy1).astype(np.float32)
    keep = occupancy > 0 if min_tissue == 0 else occupancy >= min_tissue - 1e-6
    rows, cols = np.nonzero(keep)
    return TileGrid(
        mpp=mpp,
        tile_size=tile_size,
        overlap=overlap,
        level0_per_pixel=(mpp / slide.mpp_x, mpp / slide.mpp_y),
        n_cols=n_cols,
        n_rows=n_rows,
        cols=cols.astype(np.int32),
        rows=rows.astype(np.int32),
        tissue_fraction=occupancy[rows, cols],
        min_tissue=min_tissue,
        occupancy=occupancy,
    )


@dataclass
class TileImage:
    """A tile read from the slide: its geometry and its pixels (core plus overlap margin).

    Attributes
    ----------
    tile : Tile
    image : (P, P, 3) uint8
        ``P = tile_size + 2 * overlap``; the core is ``image[overlap:-overlap, overlap:-overlap]``.
        Areas beyond the slide edge are white.
    """

    tile: Tile
    image: np.ndarray


def read_tiles(slide: Slide, grid: TileGrid) -> Iterator[TileImage]:
    """Read the grid's tiles (with their overlap margins) at the grid's resolution, one at a time.

    Parameters
    ----------
    slide : Slide
        The slide the grid was made for.
    grid : TileGrid

    Yields
    ------
    TileImage
        In grid order (row-major); only kept tiles are read.
    """
    if not isinstance(grid, TileGrid):
        raise InvalidInputError(f"grid must be a TileGrid (from tile_grid), got {type(grid).__name__}")
    sx, sy = grid.level0_per_pixel
    if not (
        math.isclose(sx, grid.mpp / slide.mpp_x, rel_tol=1e-9)
        and math.isclose(sy, grid.mpp / slide.mpp_y, rel_tol=1e-9)
    ):
        raise InvalidInputError(f"this TileGrid was made for a slide with another resolution than {slide.path}")
    for tile in grid:
        yield read_tile(slide, grid, tile)


def read_tile(slide: Slide, grid: TileGrid, tile: Tile, window: tuple[int, int, int, int] | None = None) -> TileImage:
    """Read one tile of ``grid`` (core plus overlap margin) at the grid's resolution.

    ``window`` (x0, y0, x1, y1), in working pixels inside ``tile.padded``, reads only that part (the
    tile stream reads the window around a tile's epithelium; decoding costs per pixel); the image is
    then the window's. Thread-safe (OpenSlide handles may be shared by reader threads). See
    :func:`read_tiles`.
    """
    if window is None:
        p = grid.padded_size
        x0, y0 = tile.padded_level0[:2]
        return TileImage(tile=tile, image=slide.read(x0, y0, p, p, grid.mpp))
    wx0, wy0, wx1, wy1 = window
    px0, py0, px1, py1 = tile.padded
    if not (px0 <= wx0 < wx1 <= px1 and py0 <= wy0 < wy1 <= py1):
        raise InvalidInputError(f"window {window} must be a non-empty box inside the tile's padded box {tile.padded}")
    sx, sy = grid.level0_per_pixel  # Tile.padded_level0 = Tile.padded * these
    return TileImage(tile=tile, image=slide.read(wx0 * sx, wy0 * sy, wx1 - wx0, wy1 - wy0, grid.mpp))
