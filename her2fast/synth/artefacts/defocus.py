"""An out-of-focus band (:func:`add_blur_band`)."""

from __future__ import annotations

import numpy as np

from ..._validate import as_int, as_positive_float, as_rgb_uint8
from ._base import Artefact, _band

__all__ = ["add_blur_band"]


def add_blur_band(
    rgb: np.ndarray, mpp: float, *, seed: int = 0, width_um: float = 150.0, sigma_um: float = 2.5
) -> Artefact:
    """An out-of-focus band: inside it the image is its Gaussian blur of ``sigma_um``.

    Parameters
    ----------
    rgb : (h, w, 3) uint8
    mpp : float
        Micrometres per pixel of ``rgb``.
    seed : int
        Draws the band's angle and position.
    width_um : float
        Width of the band.
    sigma_um : float
        Standard deviation of the defocus blur (a scanner's own blur is about 0.3-0.6 um).

    Returns
    -------
    Artefact
    """
    from scipy.ndimage import gaussian_filter

    arr = as_rgb_uint8(rgb, "rgb")
    mpp = as_positive_float(mpp, "mpp")
    width = as_positive_float(width_um, "width_um") / mpp
    sigma = as_positive_float(sigma_um, "sigma_um") / mpp
    rng = np.random.default_rng([as_int(seed, "seed", 0), 0xB1A5])
    mask, geo = _band(arr.shape[:2], rng, width)
    blurred = gaussian_filter(arr.astype(np.float32), sigma=(sigma, sigma, 0), mode="reflect", truncate=3.0)
    out = arr.copy()
    out[mask] = np.clip(np.rint(blurred[mask]), 0, 255).astype(np.uint8)
    geo.pop("d")
    return Artefact(out, mask, "blur", {**geo, "width_um": float(width_um), "sigma_um": float(sigma_um)})
