"""The classical membrane baseline (colour deconvolution -> DAB -> ridge filter -> soft threshold), in the
interface of the U-Net (:func:`classical_membrane`).

Examples
--------
>>> import numpy as np
>>> maps = classical_membrane(np.full((32, 32, 3), 240, np.uint8), 0.5)
>>> maps.method, maps.membrane.shape
('classical', (32, 32))
"""

from __future__ import annotations

import numpy as np

from ..._validate import as_rgb_uint8
from .model import MembraneMaps, _check_mpp

__all__ = ["classical_membrane"]


def classical_membrane(
    image: np.ndarray,
    mpp: float,
    *,
    dab_threshold: float = 0.03,
    ridge_threshold: float = 0.0093,
    softness: float = 0.25,
) -> MembraneMaps:
    """Classical membrane map: colour deconvolution -> DAB -> ridge filter -> soft threshold.

    The DAB optical density (Ruifrok-Johnston deconvolution, :func:`skimage.color.rgb2hed`) is
    filtered with the Sato tubeness filter (bright ridges, scales 0.5 and 1 µm) — the "morphology"
    approach the paper compares the U-Net with. A pixel is membrane when both its DAB density and its
    ridge response pass their thresholds; the returned "probability" is a logistic of the smaller
    of the two normalised margins (0.5 at the threshold), so it thresholds like the U-Net's output.
    Thresholds were fitted on validation phantoms (``benchmarks/membrane.py``).

    Parameters
    ----------
    image : (H, W, 3) uint8
    mpp : float
        µm/px of `image`.
    dab_threshold, ridge_threshold : float
        DAB OD and Sato response at which a pixel becomes membrane.
    softness : float
        Width of the logistic, relative to each threshold.

    Returns
    -------
    MembraneMaps
        ``membrane`` as described; ``edge`` the ridge response scaled to [0, 1].
    """
    from skimage.color import rgb2hed
    from skimage.filters import sato

    image = as_rgb_uint8(image)
    mpp = _check_mpp(mpp)
    dab = rgb2hed(image)[..., 2].astype(np.float32)
    sigmas = [s / mpp for s in (0.5, 1.0)]
    ridge = sato(dab, sigmas=sigmas, black_ridges=False, mode="reflect").astype(np.float32)
    m_dab = (dab - dab_threshold) / (softness * dab_threshold)
    m_ridge = (ridge - ridge_threshold) / (softness * ridge_threshold)
    z = np.clip(np.minimum(m_dab, m_ridge), -30, 30)
    prob = (1.0 / (1.0 + np.exp(-z))).astype(np.float32)
    edge = np.clip(ridge / (4 * ridge_threshold), 0, 1).astype(np.float32)
    return MembraneMaps(prob, edge, mpp, "classical")
