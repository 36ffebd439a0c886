"""The ``pen_ink`` detector of the quality map: the tissue mask's pen rule on a coarse copy of the image."""

from __future__ import annotations

import numpy as np

from ...stages.tissue import pen_mask
from .grid import _block_mean
from .rules import QualityRules


def _ink(arr: np.ndarray, mpp: float, step_px: int, shape: tuple[int, int], rules: QualityRules) -> np.ndarray:
    """Map pixels at least 20 % ink (:func:`her2fast.stages.tissue.pen_mask` at ``ink_mpp``), gaps and holes closed."""
    from scipy import ndimage as ndi

    h, w = shape
    # ink, on a coarse copy of the image
    ki = max(1, int(round(rules.ink_mpp / mpp)))
    small = np.clip(np.rint(_block_mean(arr, ki)), 0, 255).astype(np.uint8)
    ink_small = pen_mask(small, mpp * ki)
    if ki == step_px:  # one ink pixel per map pixel (the default rules): the map is the ink mask
        ink = ink_small[:h, :w]
    else:
        ink_full = np.repeat(np.repeat(ink_small, ki, axis=0), ki, axis=1)
        pad_h, pad_w = h * step_px - ink_full.shape[0], w * step_px - ink_full.shape[1]
        ink_full = np.pad(ink_full, ((0, max(pad_h, 0)), (0, max(pad_w, 0))), mode="edge")
        ink_full = ink_full[: h * step_px, : w * step_px]
        ink = ink_full.reshape(h, step_px, w, step_px).mean(axis=(1, 3)) > 0.2
    if ink.any():  # tissue under the ink that keeps its own colour (brown under blue) is still under the ink
        ink = ndi.binary_fill_holes(ndi.binary_closing(np.pad(ink, 3, mode="edge"), iterations=3))[3:-3, 3:-3]
    return ink
