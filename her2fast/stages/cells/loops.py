"""Closed membrane loops: the membrane's skeleton and the regions it cuts out of a tile.

A region that does not reach the tile border is enclosed by a closed membrane loop. Besides the
public :func:`membrane_skeleton` and :func:`enclosed_regions`, the helpers :func:`her2fast.stages.cells.measure_tile`
uses on regions (their pixel sums and extent from a centre), each with the reference it replaced.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ... import _native
from ...errors import InvalidInputError
from .checks import _as_mask

__all__ = ["membrane_skeleton", "enclosed_regions", "RegionTable"]


def membrane_skeleton(membrane_mask: np.ndarray, *, max_iter: int | None = None) -> np.ndarray:
    """One-pixel-wide skeleton of a membrane mask (Guo-Hall thinning, C++, GIL released).

    Equal, pixel for pixel, to ``skimage.morphology.thin(membrane_mask, max_num_iter)``: 8-connected
    lines that keep the mask's topology (a closed membrane stays a closed loop, a gap stays a gap).

    Parameters
    ----------
    membrane_mask : (H, W) ndarray of bool or integers
        Membrane pixels (nonzero).
    max_iter : int, optional
        Stop after this many thinning iterations (default: until nothing changes).

    Returns
    -------
    skeleton : (H, W) ndarray of bool

    Raises
    ------
    InvalidInputError
        (a ``ValueError``) for a mask that is not 2-D, empty, or not boolean/integer, or
        ``max_iter < 1``.

    References
    ----------
    .. [1] Z. Guo, R. W. Hall, "Parallel thinning with two-subiteration algorithms",
           Communications of the ACM 32(3), 359-373, 1989. :DOI:`10.1145/62065.62074`

    Examples
    --------
    >>> import numpy as np
    >>> bar = np.zeros((5, 9), bool); bar[1:4, 1:8] = True
    >>> membrane_skeleton(bar).sum(axis=1).tolist()
    [0, 0, 5, 0, 0]
    """
    m = _as_mask(membrane_mask, "membrane_mask")
    if max_iter is not None and (not isinstance(max_iter, (int, np.integer)) or max_iter < 1):
        raise InvalidInputError(f"max_iter must be a positive integer or None, got {max_iter!r}")
    skeleton, _ = _native.thin(m, -1 if max_iter is None else int(max_iter))
    return skeleton.view(np.bool_)


@dataclass(frozen=True)
class RegionTable:
    """Regions cut out by a membrane skeleton.

    Attributes
    ----------
    labels : (H, W) ndarray of int32
        Region id 0..n-1 per pixel (raster order of first pixel), -1 on the skeleton.
    area : (n,) ndarray of int64
        Pixels per region.
    touches_border : (n,) ndarray of bool
        True where the region reaches the image border; the others are enclosed (closed loops).
    """

    labels: np.ndarray
    area: np.ndarray
    touches_border: np.ndarray

    @property
    def closed(self) -> np.ndarray:
        """Boolean per region: enclosed by the skeleton (does not reach the border)."""
        return ~self.touches_border

    def __len__(self) -> int:
        return int(self.area.shape[0])


def enclosed_regions(skeleton: np.ndarray) -> RegionTable:
    """4-connected regions of the pixels off a skeleton, with area and border contact (C++).

    Parameters
    ----------
    skeleton : (H, W) ndarray of bool or integers
        Skeleton pixels (nonzero), e.g. from :func:`membrane_skeleton`. 8-connected skeleton lines
        separate 4-connected regions, so a closed loop always encloses its own region.

    Returns
    -------
    RegionTable

    Examples
    --------
    >>> import numpy as np
    >>> ring = np.zeros((7, 7), bool); ring[1:6, 1:6] = True; ring[2:5, 2:5] = False
    >>> table = enclosed_regions(ring)
    >>> len(table), table.closed.tolist(), table.area.tolist()
    (2, [False, True], [24, 9])
    """
    s = _as_mask(skeleton, "skeleton")
    labels, area, border = _native.enclosed_regions(s)
    return RegionTable(labels=labels, area=area, touches_border=border.view(np.bool_))


def _region_max_dist2(regions: np.ndarray, region_ids: np.ndarray, base: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """Largest squared distance of each listed region's pixels to its own centre (base + frac).

    One native pass over the region map (``cell_stats.hpp``); the reference formulation, in NumPy, is
    ``tests/test_cells_measure.py::_region_max_dist2_numpy``.
    """
    return _native.region_max_dist2(
        np.ascontiguousarray(regions, dtype=np.int32),
        np.ascontiguousarray(region_ids, dtype=np.int32),
        np.ascontiguousarray(base, dtype=np.int32),
        np.ascontiguousarray(frac, dtype=np.float64),
    )


def _skeleton_regions(mem_mask: np.ndarray) -> tuple[np.ndarray, RegionTable]:
    """:func:`membrane_skeleton` and :func:`enclosed_regions` of the landscape's (contiguous bool) membrane
    mask, without the public wrappers' checks and 0/1 copies."""
    skeleton = _native.thin(mem_mask.view(np.uint8), -1)[0].view(np.bool_)
    labels, area, border = _native.enclosed_regions(skeleton.view(np.uint8))
    return skeleton, RegionTable(labels=labels, area=area, touches_border=border.view(np.bool_))


def _skeleton_regions_reference(mem_mask: np.ndarray) -> tuple[np.ndarray, RegionTable]:
    """:func:`_skeleton_regions` through the public wrappers (the reference of the tests and benchmarks)."""
    skeleton = membrane_skeleton(mem_mask)
    return skeleton, enclosed_regions(skeleton)


def _region_sums(regions: np.ndarray, n_regions: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact sums of x and y over the pixels of each region ``ids[i]`` of a region map (int64; C++)."""
    _, sx, sy = _native.label_sums(np.ascontiguousarray(regions, dtype=np.int32), int(n_regions))
    return sx[ids], sy[ids]


def _region_sums_reference(regions: np.ndarray, n_regions: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_region_sums` with np.bincount on float weights and np.rint (the same integers)."""
    w = regions.shape[1]
    flat_r = regions.ravel()
    is_listed = np.zeros(n_regions + 1, bool)  # index -1 (skeleton) -> the last entry, False
    is_listed[ids] = True
    pix = np.flatnonzero(is_listed[flat_r])  # pixels of the listed regions only
    ys_e, xs_e = np.divmod(pix, w)
    r_e = flat_r[pix]
    rsx = np.bincount(r_e, weights=xs_e, minlength=n_regions)[ids]
    rsy = np.bincount(r_e, weights=ys_e, minlength=n_regions)[ids]
    return np.rint(rsx).astype(np.int64), np.rint(rsy).astype(np.int64)
