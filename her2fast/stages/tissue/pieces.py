"""Separate tissue pieces of a slide: the connected parts of the tissue mask, and the piece each cell lies in.

A slide often carries more than one piece of tissue: several cores or fragments of the patient's
tumour, or the patient's tissue beside an on-slide control. :func:`tissue_pieces` labels the pieces of a
:class:`~her2fast.stages.tissue.TissueMask` (8-connected parts; pieces smaller than ``min_area_um2`` are
left unlabelled) and :meth:`TissuePieces.piece_of` finds the piece of level-0 points (a cell table's
centres). Scoring each piece is :func:`her2fast.pipeline.run_slide`'s job.

Examples
--------
>>> import numpy as np
>>> mask = np.zeros((20, 40), bool)
>>> mask[2:18, 2:15] = True
>>> mask[2:18, 25:38] = True
>>> pieces = tissue_pieces(mask, mpp=8.0, level0_per_pixel=(16.0, 16.0), min_area_um2=1000.0)
>>> len(pieces), pieces.piece_of(np.array([100.0, 500.0, 320.0]), np.array([100.0, 100.0, 100.0])).tolist()
(2, [1, 2, 0])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..._validate import as_positive_float
from ...errors import InvalidInputError

__all__ = ["MIN_PIECE_UM2", "TissuePieces", "tissue_pieces"]

#: Smallest tissue piece labelled (um^2): 0.1 mm^2, a core of ~360 um across.
MIN_PIECE_UM2 = 100_000.0


@dataclass(frozen=True)
class TissuePieces:
    """Labelled tissue pieces on the tissue mask's grid.

    Attributes
    ----------
    labels : (H, W) int32
        0 outside any piece, 1..n the pieces in order of their top-left pixel (row-major).
    area_um2 : (n,) float64
        Area of each piece.
    bbox : (n, 4) float64
        Level-0 bounding box (x0, y0, x1, y1) of each piece.
    level0_per_pixel : (float, float)
    """

    labels: np.ndarray
    area_um2: np.ndarray
    bbox: np.ndarray
    level0_per_pixel: tuple[float, float]

    def __len__(self) -> int:
        return int(self.area_um2.size)

    def piece_of(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Piece (1..n, 0 for none) of each level-0 point."""
        x = np.asarray(x, np.float64).ravel()
        y = np.asarray(y, np.float64).ravel()
        h, w = self.labels.shape
        sx, sy = self.level0_per_pixel
        col = np.floor(x / sx).astype(np.int64)
        row = np.floor(y / sy).astype(np.int64)
        ok = (col >= 0) & (col < w) & (row >= 0) & (row < h)
        out = np.zeros(x.size, np.int32)
        out[ok] = self.labels[row[ok], col[ok]]
        return out


def tissue_pieces(
    mask: np.ndarray,
    *,
    mpp: float,
    level0_per_pixel: tuple[float, float],
    min_area_um2: float = MIN_PIECE_UM2,
) -> TissuePieces:
    """The separate pieces of a tissue mask (8-connected), each at least ``min_area_um2``.

    Parameters
    ----------
    mask : (H, W) bool
        The tissue mask (``TissueMask.mask``).
    mpp : float
        Micrometres per mask pixel.
    level0_per_pixel : (float, float)
        Level-0 pixels per mask pixel (``TissueMask.level0_per_pixel``).
    min_area_um2 : float
        Smaller pieces are not labelled (default :data:`MIN_PIECE_UM2`).

    Returns
    -------
    TissuePieces
    """
    from scipy import ndimage as ndi

    m = np.asarray(mask)
    if m.ndim != 2 or m.dtype != np.bool_:
        raise InvalidInputError(f"mask must be a 2-D boolean array, got {m.shape} {m.dtype}")
    mpp = as_positive_float(mpp, "mpp")
    min_area_um2 = as_positive_float(min_area_um2, "min_area_um2")
    sx, sy = (as_positive_float(v, "level0_per_pixel") for v in level0_per_pixel)
    lab, n = ndi.label(m, structure=np.ones((3, 3), bool))
    if n == 0:
        return TissuePieces(np.zeros(m.shape, np.int32), np.zeros(0), np.zeros((0, 4)), (sx, sy))
    area = np.bincount(lab.ravel(), minlength=n + 1)[1:] * mpp * mpp
    keep = np.flatnonzero(area >= min_area_um2) + 1
    lut = np.zeros(n + 1, np.int32)
    lut[keep] = np.arange(1, keep.size + 1, dtype=np.int32)
    labels = lut[lab]
    slices = ndi.find_objects(lab)
    bbox = np.array(
        [
            [
                slices[k - 1][1].start * sx,
                slices[k - 1][0].start * sy,
                slices[k - 1][1].stop * sx,
                slices[k - 1][0].stop * sy,
            ]
            for k in keep
        ],
        np.float64,
    ).reshape(-1, 4)
    return TissuePieces(labels, area[keep - 1].astype(np.float64), bbox, (sx, sy))
