"""The ``saturated`` detector of the quality map: stain so dense that intensity cannot be read."""

from __future__ import annotations

import numpy as np

from .grid import _block_mean
from .rules import QualityRules


def _saturated(od: np.ndarray, s: int, shape: tuple[int, int], rules: QualityRules) -> np.ndarray:
    """Map pixels at least ``saturated_share`` dark in every channel, gaps closed.

    ``od`` is the optical density of the brightest channel at ``s`` pixels per map pixel; a pixel is dark
    when even that channel is below ``saturated_level``.
    """
    from scipy import ndimage as ndi

    dark = od > np.float32(-np.log10(int(rules.saturated_level) / 255.0))
    if not dark.any():
        return np.zeros(shape, bool)
    share = _block_mean(dark.view(np.uint8), s)[: shape[0], : shape[1]]
    out = np.zeros(shape, bool)
    out[: share.shape[0], : share.shape[1]] = share >= rules.saturated_share
    if out.any():
        out = ndi.binary_fill_holes(ndi.binary_closing(np.pad(out, 2), iterations=1))[2:-2, 2:-2]
    return out
