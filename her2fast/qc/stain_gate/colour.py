"""The stain gate's colour checks on stained pixels: has the image colour, is it H&E, is it one DAB/hematoxylin pair.

- :func:`check_colour` -- refuse an image without colour (the first check, also run on its own);
- ``_colour_figures`` -- the share of eosin-pink stained pixels (H&E) and of optical density outside the
  plane of the slide's two stain vectors;
- ``_colour_fraction`` -- the share of stained pixels that have any colour.

Examples
--------
>>> import numpy as np
>>> from her2fast.qc.stain_gate.colour import check_colour
>>> grey = np.full((32, 32, 3), 240, np.uint8); grey[8:24, 8:24] = 120
>>> check_colour(grey).figures["colour_fraction"]
0.0
"""

from __future__ import annotations

import math

import numpy as np

from ..._validate import as_rgb_uint8
from ...errors import InvalidInputError
from ...stages.stain import STANDARD_DAB, STANDARD_HEMATOXYLIN, StainVectors, optical_density
from .rules import REASON_GREYSCALE, StainGateDecision, StainGateRules

__all__ = ["check_colour"]

#: Ruifrok-Johnston eosin (skimage.color.rgb_from_hed row 1), unit length: only for a reported figure.
_EOSIN = np.array([0.07, 0.99, 0.11]) / np.linalg.norm([0.07, 0.99, 0.11])
# the plane orthogonal to hematoxylin: axis 1 towards DAB, axis 2 completes a right-handed frame
_AXIS1 = STANDARD_DAB - (STANDARD_DAB @ STANDARD_HEMATOXYLIN) * STANDARD_HEMATOXYLIN
_AXIS1 = _AXIS1 / np.linalg.norm(_AXIS1)
_AXIS2 = np.cross(STANDARD_HEMATOXYLIN, _AXIS1)

_MAX_THUMB_PIXELS = 200_000
_MAX_TILE_PIXELS = 50_000
_STAINED_OD = 0.15  # OD norm below which a pixel is glass or too pale to have a colour
_GREY_SPREAD = 2  # a pixel whose R, G, B differ by at most this many levels has no colour


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    c = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    return math.degrees(math.acos(min(1.0, max(-1.0, c))))


def _subsample(pixels: np.ndarray, n: int, seed: int) -> np.ndarray:
    if pixels.shape[0] <= n:
        return pixels
    return pixels[np.random.default_rng(seed).choice(pixels.shape[0], n, replace=False)]


def _colour_figures(od: np.ndarray, stains: StainVectors, rules: StainGateRules) -> dict[str, float]:
    """H&E / H-DAB colour figures of stained pixels' optical densities (n, 3)."""
    nan = float("nan")
    out = {"stained_pixels": float(od.shape[0])}
    if od.shape[0] < 100:
        out.update(eosin_fraction=nan, dab_hue_fraction=nan, off_axis_hue_deg=nan, two_stain_residual=nan)
        return out
    norm = np.linalg.norm(od, axis=1)
    rest = od - (od @ STANDARD_HEMATOXYLIN)[:, None] * STANDARD_HEMATOXYLIN[None, :]
    x, y = rest @ _AXIS1, rest @ _AXIS2
    hue = np.degrees(np.arctan2(y, x))
    coloured = np.hypot(x, y) >= rules.min_off_axis * norm
    lo, hi = rules.eosin_hue_deg
    out["eosin_fraction"] = float((coloured & (hue >= lo) & (hue <= hi)).mean())
    out["dab_hue_fraction"] = float((coloured & (np.abs(hue) <= 20.0)).mean())
    out["off_axis_hue_deg"] = math.degrees(math.atan2(float(y.sum()), float(x.sum())))
    c = od @ stains.unmixing
    out["two_stain_residual"] = float(np.abs(c[:, 2]).sum() / max(float(np.abs(c).sum()), 1e-12))
    return out


def _colour_fraction(pixels: np.ndarray, background: np.ndarray | None) -> tuple[float, int]:
    """Share of the stained pixels (OD norm above 0.15 against ``background``) that have any colour, and their number."""
    od = optical_density(pixels, background)
    stained = pixels[np.linalg.norm(od, axis=-1) > _STAINED_OD].astype(np.int16)
    if stained.shape[0] == 0:
        return float("nan"), 0
    spread = stained.max(axis=1) - stained.min(axis=1)
    return float((spread > _GREY_SPREAD).mean()), int(stained.shape[0])


def _greyscale_message(fraction: float, n: int, rules: StainGateRules) -> str:
    return (
        f"the image has no colour: {100 * fraction:.1f} % of its {n} stained pixels differ between red, green and "
        f"blue by more than {_GREY_SPREAD} levels (at least {100 * rules.min_colour_fraction:.0f} % are needed); a "
        "greyscale image cannot show DAB apart from hematoxylin. Score the scanner's colour (RGB) image"
    )


def check_colour(
    thumbnail: np.ndarray,
    tissue_mask: np.ndarray | None = None,
    *,
    background: np.ndarray | tuple[float, float, float] | None = None,
    rules: StainGateRules | None = None,
) -> StainGateDecision:
    """Refuse an image without colour (greyscale, or a greyscale copy saved as RGB).

    The first check of :func:`check_stain`; :func:`her2fast.pipeline.run_slide` also runs it on its own,
    before tissue detection (which a greyscale image may fool into "empty glass").

    Parameters
    ----------
    thumbnail : (H, W, 3) uint8
        The slide at low resolution.
    tissue_mask : (H, W) bool, optional
        Pixels to look at (default: all; glass is left out by its optical density anyway).
    background : (3,) float, optional
        Glass colour (default: the 99th percentile of each channel of the thumbnail).
    rules : StainGateRules, optional

    Returns
    -------
    StainGateDecision
        Not scorable with reason :data:`REASON_GREYSCALE` when fewer than ``rules.min_colour_fraction`` of at
        least 100 stained pixels have colour; ``figures`` holds ``colour_fraction`` and ``stained_pixels``.

    Examples
    --------
    >>> import numpy as np
    >>> grey = np.full((32, 32, 3), 240, np.uint8); grey[8:24, 8:24] = 120
    >>> check_colour(grey).reason
    'greyscale_image'
    >>> brown = grey.copy(); brown[8:24, 8:24] = (150, 110, 80)
    >>> check_colour(brown).scorable
    True
    """
    thumb = as_rgb_uint8(thumbnail, "thumbnail")
    rules = StainGateRules() if rules is None else rules
    if not isinstance(rules, StainGateRules):
        raise InvalidInputError(f"rules must be a StainGateRules, got {type(rules).__name__}")
    if tissue_mask is None:
        pixels = thumb.reshape(-1, 3)
    else:
        mask = np.asarray(tissue_mask)
        if mask.shape != thumb.shape[:2] or mask.dtype != np.bool_:
            raise InvalidInputError(
                f"tissue_mask must be a boolean array of the thumbnail's shape {thumb.shape[:2]}, got {mask.shape} "
                f"{mask.dtype}"
            )
        pixels = thumb[mask]
    if background is None:
        flat = thumb.reshape(-1, 3)
        bg = np.clip(np.percentile(flat, 99, axis=0), 2.0, 255.0) if flat.shape[0] else None
    else:
        bg = background
    fraction, n = _colour_fraction(_subsample(pixels, _MAX_THUMB_PIXELS, 0), bg)
    figures = {"colour_fraction": fraction, "stained_pixels": float(n)}
    if n >= 100 and fraction < rules.min_colour_fraction:
        return StainGateDecision(False, REASON_GREYSCALE, _greyscale_message(fraction, n, rules), figures)
    return StainGateDecision(True, None, "the image has colour", figures)
