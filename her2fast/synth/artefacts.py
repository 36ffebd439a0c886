"""Slide artefacts added to a phantom image, each with its exact mask, to measure the quality map against truth.

Every function takes an RGB image (a phantom tile from :func:`her2fast.synth.make_tile`, or any
brightfield image) and its resolution, draws the artefact's geometry from a seed, and returns the new
image with the mask of the pixels the artefact touched (:class:`Artefact`). Geometry is in micrometres,
so the same seed gives the same artefact, in tissue terms, at any resolution.

``"blur"``
    An out-of-focus band: a straight band across the image at a random angle and offset, inside which
    the image is replaced by its Gaussian blur (``sigma_um``; a scanner's focus point missing a fold
    or a thick area). The edge is sharp, so the mask is exact.
``"ink"``
    A pen or marker stroke: a smooth curve of constant width (``width_um``) in blue, green or black
    ink, laid over the tissue as an absorbing layer (Beer-Lambert: the ink's optical density adds to the
    tissue's), so tissue under pale ink still shows through.
``"fold"``
    A tissue fold: a band where the section lies on itself, so two layers are stained -- the band's
    optical density is the tissue's own plus a mirrored copy of the tissue beside it (darker, doubly
    stained, with both layers' structure superimposed).

:func:`add_artefacts` applies several in turn and returns one mask per kind.

Examples
--------
>>> import numpy as np
>>> img = np.full((64, 64, 3), 200, np.uint8)
>>> a = add_ink(img, 0.5, seed=1, width_um=8.0)
>>> a.mask.shape, bool(a.mask.any()), bool((a.rgb[a.mask] < 200).all())
((64, 64), True, True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .._validate import as_int, as_positive_float, as_rgb_uint8
from ..errors import InvalidInputError

__all__ = [
    "ARTEFACT_KINDS",
    "INK_COLOURS",
    "Artefact",
    "ArtefactImage",
    "add_artefacts",
    "add_blur_band",
    "add_fold",
    "add_ink",
]

#: The artefacts :func:`add_artefacts` knows.
ARTEFACT_KINDS: tuple[str, ...] = ("blur", "ink", "fold")

#: Optical density per unit ink thickness of each marker colour (RGB; blue absorbs red and green, ...).
INK_COLOURS: dict[str, tuple[float, float, float]] = {
    "blue": (1.10, 0.75, 0.10),
    "green": (1.00, 0.15, 0.90),
    "black": (1.30, 1.25, 1.20),
}

#: Glass colour assumed when converting to optical density.
_WHITE = 255.0


@dataclass
class Artefact:
    """An image with one artefact added.

    Attributes
    ----------
    rgb : (h, w, 3) uint8
    mask : (h, w) bool
        The pixels the artefact changed (exact, by construction).
    kind : str
        One of :data:`ARTEFACT_KINDS`.
    params : dict
        The drawn geometry and strength (for reports).
    """

    rgb: np.ndarray
    mask: np.ndarray
    kind: str
    params: dict


@dataclass
class ArtefactImage:
    """An image with several artefacts and one mask per kind (see :func:`add_artefacts`).

    Attributes
    ----------
    rgb : (h, w, 3) uint8
    masks : dict of str to (h, w) bool
        Union of the masks of every artefact of that kind.
    params : list of dict
        One entry per artefact, in the order added (``"kind"`` plus its parameters).
    """

    rgb: np.ndarray
    masks: dict[str, np.ndarray]
    params: list[dict]

    @property
    def any_mask(self) -> np.ndarray:
        """Pixels touched by any artefact."""
        shape = self.rgb.shape[:2]
        out = np.zeros(shape, bool)
        for m in self.masks.values():
            out |= m
        return out


def _od(rgb: np.ndarray) -> np.ndarray:
    return -np.log10(np.maximum(rgb.astype(np.float32), 1.0) / _WHITE)


def _rgb_of(od: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(_WHITE * np.power(10.0, -od)), 0, 255).astype(np.uint8)


def _band(shape: tuple[int, int], rng: np.random.Generator, width_px: float) -> tuple[np.ndarray, dict]:
    """A straight band of ``width_px`` through a random point of the central half, at a random angle.

    Returns the mask and the signed distance map (px) from the band's centre line.
    """
    h, w = shape
    theta = float(rng.uniform(0.0, np.pi))
    cx = float(rng.uniform(0.25, 0.75) * w)
    cy = float(rng.uniform(0.25, 0.75) * h)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # signed distance from the line through (cx, cy) with direction (cos, sin)
    d = (xx - cx) * np.float32(-np.sin(theta)) + (yy - cy) * np.float32(np.cos(theta))
    mask = np.abs(d) <= width_px / 2.0
    return mask, {"angle_deg": round(np.degrees(theta), 2), "centre_px": (round(cx, 1), round(cy, 1)), "d": d}


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


_MAKERS: dict[str, Callable[..., Artefact]] = {"blur": add_blur_band, "ink": add_ink, "fold": add_fold}


def add_artefacts(
    rgb: np.ndarray, mpp: float, kinds: Sequence[str], *, seed: int = 0, **options: dict
) -> ArtefactImage:
    """Add several artefacts in turn (later ones drawn over earlier ones).

    Parameters
    ----------
    rgb : (h, w, 3) uint8
    mpp : float
    kinds : sequence of str
        Each one of :data:`ARTEFACT_KINDS`; a kind may repeat (each gets its own seed).
    seed : int
        Artefact ``i`` is drawn with seed ``seed * 1000 + i``.
    **options : dict
        Keyword arguments per kind, e.g. ``blur={"sigma_um": 3.0}``.

    Returns
    -------
    ArtefactImage
        A pixel touched by a later artefact stays in the earlier artefact's mask too.
    """
    arr = as_rgb_uint8(rgb, "rgb")
    seed = as_int(seed, "seed", 0, 2**40)
    if isinstance(kinds, str):
        kinds = [kinds]
    bad = [k for k in kinds if k not in _MAKERS]
    if bad:
        raise InvalidInputError(f"kinds must be among {list(ARTEFACT_KINDS)}, got {bad}")
    unknown = [k for k in options if k not in _MAKERS]
    if unknown:
        raise InvalidInputError(f"options are per artefact kind ({list(ARTEFACT_KINDS)}), got {unknown}")
    masks = {k: np.zeros(arr.shape[:2], bool) for k in kinds}
    params: list[dict] = []
    for i, kind in enumerate(kinds):
        a = _MAKERS[kind](arr, mpp, seed=seed * 1000 + i, **options.get(kind, {}))
        arr = a.rgb
        masks[kind] |= a.mask
        params.append({"kind": kind, **a.params})
    return ArtefactImage(arr, masks, params)
