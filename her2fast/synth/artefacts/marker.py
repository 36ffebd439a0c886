"""A pen or marker stroke (:func:`add_ink`)."""

from __future__ import annotations

import numpy as np

from ..._validate import as_int, as_positive_float, as_rgb_uint8
from ...errors import InvalidInputError
from ._base import Artefact, _od, _rgb_of

__all__ = ["INK_COLOURS", "add_ink"]

#: Optical density per unit ink thickness of each marker colour (RGB; blue absorbs red and green, ...).
INK_COLOURS: dict[str, tuple[float, float, float]] = {
    "blue": (1.10, 0.75, 0.10),
    "green": (1.00, 0.15, 0.90),
    "black": (1.30, 1.25, 1.20),
}


def add_ink(
    rgb: np.ndarray, mpp: float, *, seed: int = 0, width_um: float = 250.0, colour: str | None = None
) -> Artefact:
    """A marker stroke: a smooth curve ``width_um`` wide, in blue, green or black ink.

    Parameters
    ----------
    rgb : (h, w, 3) uint8
    mpp : float
        Micrometres per pixel of ``rgb``.
    seed : int
        Draws the curve, the colour (unless given) and the ink's density (0.8-1.4 times
        :data:`INK_COLOURS`).
    width_um : float
        Stroke width (felt markers: 300-1000 um; fine pens ~200 um).
    colour : {"blue", "green", "black"}, optional

    Returns
    -------
    Artefact
    """
    from scipy import ndimage as ndi

    arr = as_rgb_uint8(rgb, "rgb")
    mpp = as_positive_float(mpp, "mpp")
    width = as_positive_float(width_um, "width_um") / mpp
    rng = np.random.default_rng([as_int(seed, "seed", 0), 0x1C4])
    names = sorted(INK_COLOURS)
    pick = names[int(rng.integers(len(names)))]
    colour = pick if colour is None else colour
    if colour not in INK_COLOURS:
        raise InvalidInputError(f"colour must be one of {names}, got {colour!r}")
    h, w = arr.shape[:2]
    # a gentle curve: a line at a random angle through the central half, bent by a quarter-period sine
    theta = float(rng.uniform(0.0, np.pi))
    cx, cy = float(rng.uniform(0.3, 0.7) * w), float(rng.uniform(0.3, 0.7) * h)
    amp = float(rng.uniform(0.05, 0.2) * min(h, w))
    phase = float(rng.uniform(0.0, 2 * np.pi))
    n = 4 * (h + w)
    t = np.linspace(-1.0, 1.0, n) * np.hypot(h, w)
    bend = amp * np.sin(np.pi * t / np.hypot(h, w) + phase)
    px = cx + t * np.cos(theta) - bend * np.sin(theta)
    py = cy + t * np.sin(theta) + bend * np.cos(theta)
    centre = np.zeros((h, w), bool)
    inside = (px >= 0) & (px < w) & (py >= 0) & (py < h)
    centre[py[inside].astype(int), px[inside].astype(int)] = True
    if not centre.any():  # cannot happen for a line through the central half; keep the mask non-empty
        centre[h // 2, w // 2] = True
    mask = ndi.distance_transform_edt(~centre) <= width / 2.0
    density = float(rng.uniform(0.8, 1.4))
    od = _od(arr)
    od[mask] += density * np.asarray(INK_COLOURS[colour], np.float32)
    out = arr.copy()
    out[mask] = _rgb_of(od[mask])
    return Artefact(out, mask, "ink", {"colour": colour, "density": round(density, 3), "width_um": float(width_um)})
