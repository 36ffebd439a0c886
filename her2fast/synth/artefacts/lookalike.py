"""Look-alikes of a glass edge that are tissue, not artefacts: dark stained membranes running side by side
across the image (:func:`add_stained_lines`) and a straight, ragged border of densely stained tissue
(:func:`add_stained_border`). The quality map must keep them (nothing is unreadable there)."""

from __future__ import annotations

import numpy as np

from ..._validate import as_int, as_positive_float, as_rgb_uint8
from ...errors import InvalidInputError
from ._base import Artefact, _od, _rgb_of

__all__ = ["LOOKALIKE_COLOURS", "add_stained_border", "add_stained_lines"]

#: Hematoxylin and DAB optical-density directions (red, green, blue) of the look-alikes: the phantom's
#: (:mod:`her2fast.synth.scene`, moved from Ruifrok-Johnston's towards the real HER2 patches').
_H = np.array([0.650, 0.704, 0.286]) * 0.3 + np.array([0.75, 0.57, 0.35]) * 0.7
_DAB = np.array([0.268, 0.570, 0.776]) * 0.4 + np.array([0.05, 0.36, 0.93]) * 0.6
#: The stain of the look-alikes' lines: near-black brown (DAB with a little hematoxylin), or the mixture of
#: the two stains that is nearest grey (hematoxylin to DAB about 2 : 1 in optical density).
LOOKALIKE_COLOURS: dict[str, np.ndarray] = {
    "brown": 1.4 * _DAB / np.linalg.norm(_DAB) + 0.4 * _H / np.linalg.norm(_H),
    "grey": 1.2 * _DAB / np.linalg.norm(_DAB) + 2.2 * _H / np.linalg.norm(_H),
}


def _frame(shape: tuple[int, int], rng: np.random.Generator, mpp: float) -> tuple[np.ndarray, np.ndarray]:
    """Micrometres across (``n``) and along (``a``) a random direction through the image's centre."""
    h, w = shape
    theta = float(rng.uniform(0.0, np.pi))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    c, s = np.float32(np.cos(theta)), np.float32(np.sin(theta))
    n = ((xx - w / 2) * c + (yy - h / 2) * s) * np.float32(mpp)
    a = (-(xx - w / 2) * s + (yy - h / 2) * c) * np.float32(mpp)
    return n, a


def _colour(colour: str | None, rng: np.random.Generator) -> tuple[str, np.ndarray]:
    name = colour if colour is not None else ("brown", "grey")[int(rng.integers(2))]
    if name not in LOOKALIKE_COLOURS:
        raise InvalidInputError(f"colour must be one of {sorted(LOOKALIKE_COLOURS)}, got {colour!r}")
    return name, LOOKALIKE_COLOURS[name]


def add_stained_lines(
    rgb: np.ndarray, mpp: float, *, seed: int = 0, colour: str | None = None, dashed: bool = True
) -> Artefact:
    """Dark stained membranes running side by side across the whole image, as in densely packed 3+ tumour.

    Lines about 2.4 um wide (optical density ``LOOKALIKE_COLOURS[colour]`` times 0.7-1.0 at their centre)
    run along one direction, 5-9 um apart within 40 um on one side of the image's centre (with a brown
    cytoplasm fill there) and 8-16 um apart elsewhere; each wobbles by 0.5-3 um over 60-250 um and, when
    ``dashed``, is broken into pieces 8-25 um long (one per cell), 2-6 um apart along the line, each moved
    across it by up to 2 um (cells do not line up exactly).

    Parameters
    ----------
    rgb : (h, w, 3) uint8
    mpp : float
        Micrometres per pixel of ``rgb``.
    seed : int
        Draws the direction, the spacing, wobble, dashes and strength of each line, and the colour (unless given).
    colour : {"brown", "grey"}, optional
        Near-black brown, or the hematoxylin-DAB mixture nearest grey.
    dashed : bool
        Break the lines into pieces (False: each line is continuous across the image).

    Returns
    -------
    Artefact
        ``kind`` ``"stained_lines"``; the mask is the lines and the brown fill (tissue, readable).
    """
    arr = as_rgb_uint8(rgb, "rgb")
    mpp = as_positive_float(mpp, "mpp")
    rng = np.random.default_rng([as_int(seed, "seed", 0), 0x11E5])
    name, vec = _colour(colour, rng)
    n, a = _frame(arr.shape[:2], rng, mpp)
    add = np.zeros(arr.shape[:2], np.float32)
    pos, reach = 0.0, 0.75 * float(max(arr.shape[:2])) * mpp
    while pos < reach:
        for p in (pos, -pos) if pos else (0.0,):
            amp, period, phase = rng.uniform(0.5, 3.0), rng.uniform(60.0, 250.0), rng.uniform(0.0, 2 * np.pi)
            centre = p + amp * np.sin(2 * np.pi * a / period + phase)
            strength = np.float32(rng.uniform(0.7, 1.0))
            if dashed:  # one piece per cell, each a little off the line
                length, gap = rng.uniform(8.0, 25.0), rng.uniform(2.0, 6.0)
                shifted = a + np.float32(reach + rng.uniform(0.0, length + gap))
                k = np.floor(shifted / (length + gap)).astype(np.int64)
                jitter = rng.uniform(-2.0, 2.0, int(k.max()) + 1).astype(np.float32)
                centre = centre + jitter[k]
                on = (shifted % (length + gap)) < length
            line = np.clip(1.0 - np.abs(n - centre) / 1.2, 0.0, 1.0) * strength
            if dashed:
                line *= on
            add = np.maximum(add, line)
        pos += rng.uniform(5.0, 9.0) if pos < 40.0 else rng.uniform(8.0, 16.0)
    fill = ((n > 0) & (n < 40)).astype(np.float32) * 0.25
    od = _od(arr) + add[..., None] * vec[None, None, :].astype(np.float32) + fill[..., None] * _DAB.astype(np.float32)
    mask = (add > 0.05) | (fill > 0)
    return Artefact(_rgb_of(od), mask, "stained_lines", {"colour": name, "dashed": bool(dashed)})


def add_stained_border(rgb: np.ndarray, mpp: float, *, seed: int = 0, colour: str | None = None) -> Artefact:
    """A straight, ragged border of densely stained tissue across the image: a dark rim (about 6 um) along
    the border and tissue darker by half the stain's optical density beyond it.

    Parameters
    ----------
    rgb : (h, w, 3) uint8
    mpp : float
    seed : int
        Draws the direction and the colour (unless given).
    colour : {"brown", "grey"}, optional

    Returns
    -------
    Artefact
        ``kind`` ``"stained_border"``; the mask is the rim and the darker side.
    """
    arr = as_rgb_uint8(rgb, "rgb")
    mpp = as_positive_float(mpp, "mpp")
    rng = np.random.default_rng([as_int(seed, "seed", 0), 0xB0D])
    name, vec = _colour(colour, rng)
    n, a = _frame(arr.shape[:2], rng, mpp)
    rag = 4.0 * np.sin(a / 13.0 + rng.uniform(0.0, 6.3)) + 3.0 * np.sin(a / 5.0 + rng.uniform(0.0, 6.3))
    rim = np.clip(1.0 - np.abs(n - rag) / 3.0, 0.0, 1.0)
    beyond = (n > rag).astype(np.float32)
    add = (0.6 * rim + 0.3 * beyond).astype(np.float32)
    od = _od(arr) + add[..., None] * vec[None, None, :].astype(np.float32)
    return Artefact(_rgb_of(od), add > 0.05, "stained_border", {"colour": name})
