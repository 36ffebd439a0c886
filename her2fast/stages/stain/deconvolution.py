"""Colour deconvolution: a tile's hematoxylin, DAB and residual concentrations with the slide's stain vectors.

``concentrations.dab`` is the DAB OD later stages measure membrane intensity with. It is computed from the
*unnormalised* tile with the slide's own vectors: normalisation changes the DAB histogram and must not be
used for intensity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ... import _native
from ..._validate import as_rgb_uint8
from ...errors import InvalidInputError
from .density import _as_background, _od_lut
from .vectors import StainVectors

__all__ = ["StainConcentrations", "deconvolve"]


@dataclass
class StainConcentrations:
    """Per-pixel stain amounts of a tile (natural-log OD along each stain vector).

    Attributes
    ----------
    hematoxylin, dab, residual : (H, W) float32
        Concentrations; ``dab`` is the DAB optical density along the DAB vector, the quantity
        :class:`her2fast.scoring.ScoringRules` thresholds. May be slightly negative (noise).
        From :func:`deconvolve` the three are C-contiguous planes of one (3, H, W) buffer (keeping one
        keeps the buffer).
    stains : StainVectors
        The vectors used.
    """

    hematoxylin: np.ndarray
    dab: np.ndarray
    residual: np.ndarray
    stains: StainVectors


def deconvolve(image: np.ndarray, stains: StainVectors | None = None) -> StainConcentrations:
    """Colour deconvolution (Ruifrok-Johnston) of an RGB tile with a slide's stain vectors.

    Parameters
    ----------
    image : (H, W, 3) uint8
    stains : StainVectors, optional
        Default :meth:`StainVectors.standard`.

    Returns
    -------
    StainConcentrations

    Examples
    --------
    >>> import numpy as np
    >>> s = StainVectors.standard()
    >>> od = 0.5 * s.hematoxylin + 1.0 * s.dab
    >>> px = np.round(255 * np.exp(-od)).astype(np.uint8).reshape(1, 1, 3)
    >>> c = deconvolve(px, s)
    >>> round(float(c.hematoxylin[0, 0]), 1), round(float(c.dab[0, 0]), 1)
    (0.5, 1.0)
    """
    img = as_rgb_uint8(image)
    if stains is None:
        stains = StainVectors.standard()
    if not isinstance(stains, StainVectors):
        raise InvalidInputError(
            f"stains must be a StainVectors (from estimate_stain_vectors), got {type(stains).__name__}"
        )
    # one native pass (GIL released): the optical density by lookup, then the unmixing, as planes;
    # equals optical_density(img) @ unmixing up to float32 rounding
    planes = _native.deconvolve_rgb(
        img, _od_lut(_as_background(stains.background)), np.ascontiguousarray(stains.unmixing, dtype=np.float32)
    )
    return StainConcentrations(planes[0], planes[1], planes[2], stains)


def _recompose(c: np.ndarray, stains: StainVectors) -> np.ndarray:
    """(..., 3) concentrations -> uint8 RGB."""
    od = c @ stains.matrix.astype(np.float32)
    rgb = stains.background.astype(np.float32) * np.exp(-np.maximum(od, 0.0))
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
