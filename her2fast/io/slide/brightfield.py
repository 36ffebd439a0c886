"""Whether a slide is brightfield (bright glass) or a fluorescence scan (dark background), from a thumbnail.

Examples
--------
>>> import numpy as np
>>> brightfield_evidence(np.full((8, 8, 3), 235, np.uint8)).is_brightfield
True
>>> brightfield_evidence(np.zeros((8, 8, 3), np.uint8)).is_brightfield
False
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import InvalidInputError

__all__ = ["BrightfieldEvidence", "brightfield_evidence"]


@dataclass(frozen=True)
class BrightfieldEvidence:
    """What :func:`brightfield_evidence` measured on a thumbnail.

    Attributes
    ----------
    is_brightfield : bool
    background_brightness : float
        95th percentile of the pixel brightness (mean of R, G, B; 0-255). Glass in brightfield is
        near 255; the background of a fluorescence scan is near 0.
    dark_fraction : float
        Fraction of pixels darker than 50/255.
    reason : str
        One sentence for messages.
    """

    is_brightfield: bool
    background_brightness: float
    dark_fraction: float
    reason: str


def brightfield_evidence(thumbnail: np.ndarray) -> BrightfieldEvidence:
    """Decide from a low-resolution RGB image whether a slide is brightfield.

    Brightfield slides are mostly glass or lightly stained tissue: their brightest 5 % of pixels are
    light (> 110/255 even for a section that fills the field). Fluorescence scans have a black background
    with a few bright structures in one or two channels.

    Parameters
    ----------
    thumbnail : (H, W, 3) uint8

    Returns
    -------
    BrightfieldEvidence
    """
    arr = np.asarray(thumbnail)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8 or arr.size == 0:
        raise InvalidInputError(f"thumbnail must be a non-empty (H, W, 3) uint8 array, got {arr.shape} {arr.dtype}")
    lum = arr.astype(np.float32).mean(axis=2)
    p95 = float(np.percentile(lum, 95))
    dark = float((lum < 50).mean())
    ok = p95 >= 110 and dark < 0.5
    if ok:
        reason = f"bright background (95th-percentile brightness {p95:.0f}/255)"
    else:
        reason = (
            f"dark background (95th-percentile brightness {p95:.0f}/255, {100 * dark:.0f} % of pixels "
            "darker than 50/255), as in a fluorescence scan"
        )
    return BrightfieldEvidence(ok, p95, dark, reason)
