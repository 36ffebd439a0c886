"""The stain gate's pattern checks on a few working-resolution tiles: DAB on nuclei, DAB filling the cytoplasm.

- ``_pattern_figures`` -- on deconvolved tiles: the share of DAB-dominated area in compact, hole-free,
  nucleus-sized blobs, and the pale-to-membrane DAB ratio in the stained cells;
- :func:`sample_tiles` -- the tiles, read from an open slide.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from ..._validate import as_int
from ...errors import InvalidInputError
from ...stages.stain import StainVectors, deconvolve
from .rules import StainGateRules

__all__ = ["sample_tiles"]


def _disk(r: float) -> np.ndarray:
    k = int(math.floor(r))
    yy, xx = np.mgrid[-k : k + 1, -k : k + 1]
    return xx * xx + yy * yy <= r * r


def _dilate(mask: np.ndarray, r: float) -> np.ndarray:
    """Binary dilation by a disk of radius ``r`` pixels (a structuring element when small, else exact by
    distance transform)."""
    if not mask.any():
        return mask.copy()
    if r <= 3.0:
        return ndi.binary_dilation(mask, structure=_disk(r))
    return ndi.distance_transform_edt(~mask) <= r


def _erode(mask: np.ndarray, r: float) -> np.ndarray:
    """Binary erosion by a disk of radius ``r`` pixels; the image border does not erode."""
    if mask.all() or not mask.any():
        return mask.copy()
    if r <= 3.0:
        return ndi.binary_erosion(mask, structure=_disk(r), border_value=1)
    return ndi.distance_transform_edt(mask) > r


def _pattern_figures(
    tiles: Sequence[np.ndarray], stains: StainVectors, mpp: float, rules: StainGateRules
) -> dict[str, float]:
    """Nuclear / cytoplasmic / membrane pattern figures of working-resolution tiles."""
    nan = float("nan")
    um = 1.0 / mpp
    dab, hem = [], []
    for t in tiles:
        c = deconvolve(t, stains)
        dab.append(ndi.gaussian_filter(np.clip(c.dab, 0.0, None), 0.35 * um))
        hem.append(ndi.gaussian_filter(np.clip(c.hematoxylin, 0.0, None), 0.35 * um))
    tissue = [(d + h) > 0.08 for d, h in zip(dab, hem)]
    n_tissue = int(sum(int(m.sum()) for m in tissue))
    out: dict[str, float] = {"tiles": float(len(tiles)), "tile_tissue_mm2": n_tissue * mpp * mpp * 1e-6}
    keys = (
        "dab_baseline_od",
        "stained_fraction",
        "cell_dab_q25_od",
        "cell_dab_q90_od",
        "cell_pale_ratio",
        "nuclear_blob_share",
        "nuclear_blobs",
    )
    if n_tissue < 1000:
        out.update({k: nan for k in keys})
        return out
    base = float(np.percentile(np.concatenate([d[m] for d, m in zip(dab, tissue)]), 10))
    n_stained = 0
    dab_dominated = 0
    nucleus_like = 0
    n_blobs = 0
    cell_values = []
    area_lo, area_hi = 8.0 * um * um, 200.0 * um * um
    for d, h in zip(dab, hem):
        dn = d - base
        stained = dn > rules.stained_dab_od
        n_stained += int(stained.sum())
        nuclei = _dilate(_erode((h > 0.15) & (h > d), 1.0 * um), 1.0 * um)
        cells = _erode(_dilate(stained, 3.0 * um), 3.0 * um) & ~_dilate(nuclei, 0.5 * um)
        cell_values.append(dn[cells])
        # DAB-dominated blobs that look like nuclei: compact, hole-free, nucleus-sized
        dom = _dilate(_erode(stained & (d > h), 1.0 * um), 1.0 * um)
        dab_dominated += int(dom.sum())
        lab, n = ndi.label(dom)
        if n == 0:
            continue
        area = np.bincount(lab.ravel())[1:]
        for i, sl in enumerate(ndi.find_objects(lab)):
            a = area[i]
            if not area_lo <= a <= area_hi:
                continue
            m = lab[sl] == i + 1
            if a < 0.5 * m.size:  # extent in its box: an ellipse fills 0.6-0.79, an arc of membrane far less
                continue
            if ndi.binary_fill_holes(m).sum() > 1.1 * a:
                continue
            if float(dn[sl][m].mean()) < rules.min_positive_nucleus_od:  # a faint blob: a counterstained nucleus
                continue
            nucleus_like += int(a)
            n_blobs += 1
    values = np.concatenate(cell_values) if cell_values else np.zeros(0)
    out["dab_baseline_od"] = base
    out["stained_fraction"] = n_stained / n_tissue
    if values.size >= 500:
        q25, q90 = np.percentile(values, [25, 90])
        out["cell_dab_q25_od"], out["cell_dab_q90_od"] = float(q25), float(q90)
        out["cell_pale_ratio"] = float(q25 / q90) if q90 > 0 else nan
    else:
        out["cell_dab_q25_od"] = out["cell_dab_q90_od"] = out["cell_pale_ratio"] = nan
    out["nuclear_blob_share"] = nucleus_like / dab_dominated if dab_dominated else 0.0
    out["nuclear_blobs"] = float(n_blobs)
    return out


def sample_tiles(slide: object, grid: object, n_tiles: int = 4) -> list[np.ndarray]:
    """Read the cores of up to ``n_tiles`` tissue tiles at the grid's resolution for :func:`check_stain`.

    The tiles are a subset of the ones :func:`her2fast.stages.stain.slide_stain_vectors` reads (spread evenly
    over the fuller half of the grid), so they may still be in the slide reader's cache.

    Parameters
    ----------
    slide : her2fast.io.slide.Slide
    grid : her2fast.stages.tissue.TileGrid
    n_tiles : int

    Returns
    -------
    list of (tile_size, tile_size, 3) uint8
    """
    from ...io.slide import Slide
    from ...stages.tissue import TileGrid

    if not isinstance(slide, Slide):
        raise InvalidInputError(f"slide must be a her2fast.io.slide.Slide, got {type(slide).__name__}")
    if not isinstance(grid, TileGrid):
        raise InvalidInputError(f"grid must be a her2fast.stages.tissue.TileGrid, got {type(grid).__name__}")
    n_tiles = as_int(n_tiles, "n_tiles", 0)
    if len(grid) == 0 or n_tiles == 0:
        return []
    order = np.argsort(-grid.tissue_fraction, kind="stable")
    n_stain = 12  # slide_stain_vectors' default n_tiles
    best = order[: max(n_stain, len(order) // 2)]
    stain_picks = np.unique(best[np.linspace(0, best.size - 1, min(n_stain, best.size)).round().astype(int)])
    every = np.linspace(0, stain_picks.size - 1, min(n_tiles, stain_picks.size)).round().astype(int)
    picks = np.unique(stain_picks[every])
    tiles = []
    for i in picks:
        x0, y0 = grid.tile(int(i)).core_level0[:2]
        tiles.append(slide.read(x0, y0, grid.tile_size, grid.tile_size, grid.mpp))
    return tiles
