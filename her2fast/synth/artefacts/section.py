"""A tissue fold (:func:`add_fold`)."""

from __future__ import annotations

import numpy as np

from ..._validate import as_int, as_positive_float, as_rgb_uint8
from ._base import Artefact, _band, _od, _rgb_of

__all__ = ["add_fold"]


def add_fold(rgb: np.ndarray, mpp: float, *, seed: int = 0, width_um: float = 120.0) -> Artefact:
    """A tissue fold: a band whose optical density is the tissue's plus a mirrored copy of its neighbour.

    Parameters
    ----------
    rgb : (h, w, 3) uint8
    mpp : float
        Micrometres per pixel of ``rgb``.
    seed : int
        Draws the band's angle and position.
    width_um : float
        Width of the fold (the doubled layer).

    Returns
    -------
    Artefact
    """
    from scipy import ndimage as ndi

    arr = as_rgb_uint8(rgb, "rgb")
    mpp = as_positive_float(mpp, "mpp")
    width = as_positive_float(width_um, "width_um") / mpp
    rng = np.random.default_rng([as_int(seed, "seed", 0), 0xF01D])
    mask, geo = _band(arr.shape[:2], rng, width)
    d = geo.pop("d")
    # the folded-over layer: the tissue mirrored about the band's edge, i.e. at distance (width - d) beyond it
    theta = np.radians(geo["angle_deg"])
    nx, ny = -np.sin(theta), np.cos(theta)  # unit normal of the band
    shift = width - 2.0 * d  # move each band pixel to its mirror image across the edge at +width/2
    yy, xx = np.mgrid[0 : arr.shape[0], 0 : arr.shape[1]].astype(np.float32)
    sx, sy = xx + shift * np.float32(nx), yy + shift * np.float32(ny)
    od = _od(arr)
    layer = np.stack([ndi.map_coordinates(od[..., c], [sy, sx], order=1, mode="mirror") for c in range(3)], axis=-1)
    od[mask] += layer[mask]
    out = arr.copy()
    out[mask] = _rgb_of(od[mask])
    return Artefact(out, mask, "fold", {**geo, "width_um": float(width_um)})
