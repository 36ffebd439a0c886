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
``"saturation"``
    An over-stained patch: a rounded, irregular region where chromogen has pooled so densely that
    every channel is near 0 (optical density ``SATURATION_OD`` times 0.8-1.3 added to the tissue's):
    the intensity there cannot be read.
``"bubble"``
    An air bubble under the coverslip: a disc (radius ``radius_um``) whose content is flattened
    (contrast cut to 25-45 %, slightly paler) inside a thin dark grey rim (3-6 um, neutral optical
    density 0.6-1.0 added). The whole disc lies inside the image.
``"precipitate"``
    DAB precipitate: chromogen that came out of solution and settled on the slide, over tissue and glass
    alike -- rounded clusters (``radius_um``) of small, very dark brown granules (1.5-5 um across, optical
    density :data:`PRECIPITATE_OD` times 0.7-1.2, covering 15-30 % of the cluster) over a faint brown haze
    of finer precipitate (:data:`PRECIPITATE_HAZE_OD` times 0.5-1.5). The mask is the clusters' area.

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
    "SATURATION_OD",
    "Artefact",
    "ArtefactImage",
    "add_artefacts",
    "add_blur_band",
    "add_bubble",
    "add_fold",
    "add_ink",
    "add_precipitate",
    "add_saturation",
    "PRECIPITATE_HAZE_OD",
    "PRECIPITATE_OD",
]

#: The artefacts :func:`add_artefacts` knows.
ARTEFACT_KINDS: tuple[str, ...] = ("blur", "ink", "fold", "saturation", "bubble", "precipitate")

#: Optical density (RGB) of a saturated, over-stained patch at density 1: a near-black brown.
SATURATION_OD: tuple[float, float, float] = (1.7, 1.9, 2.1)

#: Optical density (RGB) of a DAB precipitate granule at density 1: a near-black brown.
PRECIPITATE_OD: tuple[float, float, float] = (0.75, 1.25, 1.6)

#: Optical density (RGB) of the faint brown haze of fine precipitate around the granules, at density 1.
PRECIPITATE_HAZE_OD: tuple[float, float, float] = (0.02, 0.035, 0.045)

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


def _blob(shape: tuple[int, int], rng: np.random.Generator, radius_px: float, wobble: float) -> tuple[np.ndarray, dict]:
    """A rounded region of mean radius ``radius_px`` whose edge wobbles by up to ``wobble`` of the radius.

    The centre is drawn so that the region lies inside the image where the image allows it.
    """
    h, w = shape
    reach = radius_px * (1.0 + wobble)
    lo_y, hi_y = min(reach, h / 2.0), max(h - reach, h / 2.0)
    lo_x, hi_x = min(reach, w / 2.0), max(w - reach, w / 2.0)
    cy, cx = float(rng.uniform(lo_y, hi_y)), float(rng.uniform(lo_x, hi_x))
    harmonics = [(int(n), float(rng.uniform(0.0, wobble / 2.0)), float(rng.uniform(0, 2 * np.pi))) for n in (2, 3, 5)]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.hypot(yy - cy, xx - cx)
    phi = np.arctan2(yy - cy, xx - cx)
    edge = np.full((h, w), radius_px, np.float32)
    for n, a, p in harmonics:
        edge *= np.float32(1.0) + np.float32(a) * np.cos(n * phi + p).astype(np.float32)
    return r <= edge, {"centre_px": (round(cx, 1), round(cy, 1)), "r": r, "edge": edge}


def add_saturation(rgb: np.ndarray, mpp: float, *, seed: int = 0, radius_um: float = 70.0) -> Artefact:
    """An over-stained patch: a rounded region where the optical density :data:`SATURATION_OD` is added.

    Parameters
    ----------
    rgb : (h, w, 3) uint8
    mpp : float
        Micrometres per pixel of ``rgb``.
    seed : int
        Draws the region's position and shape and its density (0.8-1.3 times :data:`SATURATION_OD`).
    radius_um : float
        Mean radius of the region (its edge wobbles by up to 30 %).

    Returns
    -------
    Artefact
    """
    arr = as_rgb_uint8(rgb, "rgb")
    mpp = as_positive_float(mpp, "mpp")
    radius = as_positive_float(radius_um, "radius_um") / mpp
    rng = np.random.default_rng([as_int(seed, "seed", 0), 0x5A7])
    mask, geo = _blob(arr.shape[:2], rng, radius, 0.3)
    density = float(rng.uniform(0.8, 1.3))
    od = _od(arr)
    od[mask] += density * np.asarray(SATURATION_OD, np.float32)
    out = arr.copy()
    out[mask] = _rgb_of(od[mask])
    return Artefact(
        out, mask, "saturation", {"centre_px": geo["centre_px"], "density": round(density, 3), "radius_um": radius_um}
    )


def add_bubble(rgb: np.ndarray, mpp: float, *, seed: int = 0, radius_um: float = 90.0) -> Artefact:
    """An air bubble: a disc with flattened, low-contrast content inside a thin dark grey rim.

    Parameters
    ----------
    rgb : (h, w, 3) uint8
    mpp : float
        Micrometres per pixel of ``rgb``.
    seed : int
        Draws the position, the radius (0.7-1.3 times ``radius_um``), the contrast left inside
        (25-45 %), the rim's width (3-6 um) and its optical density (0.6-1.0).
    radius_um : float
        Mean radius of the bubble.

    Returns
    -------
    Artefact
    """
    from scipy import ndimage as ndi

    arr = as_rgb_uint8(rgb, "rgb")
    mpp = as_positive_float(mpp, "mpp")
    rng = np.random.default_rng([as_int(seed, "seed", 0), 0xB0B])
    radius = as_positive_float(radius_um, "radius_um") / mpp * float(rng.uniform(0.7, 1.3))
    mask, geo = _blob(arr.shape[:2], rng, radius, 0.06)
    contrast = float(rng.uniform(0.25, 0.45))
    rim_px = float(rng.uniform(3.0, 6.0)) / mpp
    rim_od = float(rng.uniform(0.6, 1.0))
    od = _od(arr)
    # flattened content: the local mean (over ~10 um) plus a fraction of the detail, slightly paler
    mean = np.stack([ndi.uniform_filter(od[..., c], max(3, int(10.0 / mpp))) for c in range(3)], axis=-1)
    inside = 0.85 * (mean + contrast * (od - mean))
    # the rim: a neutral dark ring just inside the edge, with a smooth profile
    depth = geo["edge"] - geo["r"]  # px inside the edge
    ring = np.clip(1.0 - np.abs(depth - rim_px / 2.0) / (rim_px / 2.0), 0.0, 1.0) ** 0.5
    new = inside + (rim_od * ring)[..., None]
    out = arr.copy()
    out[mask] = _rgb_of(new[mask])
    return Artefact(
        out,
        mask,
        "bubble",
        {
            "centre_px": geo["centre_px"],
            "radius_um": round(radius * mpp, 1),
            "contrast": round(contrast, 3),
            "rim_um": round(rim_px * mpp, 2),
            "rim_od": round(rim_od, 3),
        },
    )


def add_precipitate(
    rgb: np.ndarray, mpp: float, *, seed: int = 0, radius_um: float = 40.0, clusters: int = 2
) -> Artefact:
    """DAB precipitate: rounded clusters of small, very dark brown granules over a faint brown haze.

    Parameters
    ----------
    rgb : (h, w, 3) uint8
    mpp : float
        Micrometres per pixel of ``rgb``.
    seed : int
        Draws the clusters' positions, shapes and radii (0.7-1.3 times ``radius_um``), the share of each
        cluster the granules cover (15-30 %), each granule's diameter (1.5-5 um) and density (0.7-1.2
        times :data:`PRECIPITATE_OD`), and the haze's density (0.5-1.5 times :data:`PRECIPITATE_HAZE_OD`).
    radius_um : float
        Mean radius of a cluster (its edge wobbles by up to 25 %).
    clusters : int
        Number of clusters (each placed anywhere in the image: on tissue or on glass).

    Returns
    -------
    Artefact
        The mask is the clusters' area (haze and granules).
    """
    arr = as_rgb_uint8(rgb, "rgb")
    mpp = as_positive_float(mpp, "mpp")
    mean_radius = as_positive_float(radius_um, "radius_um") / mpp
    n_clusters = as_int(clusters, "clusters", 1, 20)
    rng = np.random.default_rng([as_int(seed, "seed", 0), 0xDAB])
    h, w = arr.shape[:2]
    mask = np.zeros((h, w), bool)
    for _ in range(n_clusters):
        blob, _ = _blob((h, w), rng, mean_radius * float(rng.uniform(0.7, 1.3)), 0.25)
        mask |= blob
    haze = float(rng.uniform(0.5, 1.5))
    add = np.zeros((h, w, 3), np.float32)
    add[mask] = haze * np.asarray(PRECIPITATE_HAZE_OD, np.float32)
    # granules: uniform positions in the clusters until they cover the drawn share of their area
    cover = float(rng.uniform(0.15, 0.3))
    ys, xs = np.nonzero(mask)
    target = cover * float(mask.sum())
    covered, granules = 0.0, 0
    unit = np.asarray(PRECIPITATE_OD, np.float32)
    while covered < target and granules < 100000:
        k = int(rng.integers(len(ys)))
        cy, cx = float(ys[k]), float(xs[k])
        r = float(rng.uniform(0.75, 2.5)) / mpp  # radius: 1.5-5 um across
        density = float(rng.uniform(0.7, 1.2))
        y0, y1 = max(0, int(cy - r - 2)), min(h, int(cy + r + 3))
        x0, x1 = max(0, int(cx - r - 2)), min(w, int(cx + r + 3))
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        # an antialiased disc: full density inside, a half-pixel ramp at the edge
        cov = np.clip(r - np.hypot(yy - cy, xx - cx) + 0.5, 0.0, 1.0) * mask[y0:y1, x0:x1]
        add[y0:y1, x0:x1] = np.maximum(add[y0:y1, x0:x1], cov[..., None] * density * unit)
        covered += np.pi * r * r
        granules += 1
    od = _od(arr)
    od[mask] += add[mask]
    out = arr.copy()
    out[mask] = _rgb_of(od[mask])
    return Artefact(
        out,
        mask,
        "precipitate",
        {
            "clusters": n_clusters,
            "radius_um": float(radius_um),
            "granules": granules,
            "cover": round(cover, 3),
            "haze": round(haze, 3),
        },
    )


_MAKERS: dict[str, Callable[..., Artefact]] = {
    "blur": add_blur_band,
    "ink": add_ink,
    "fold": add_fold,
    "saturation": add_saturation,
    "bubble": add_bubble,
    "precipitate": add_precipitate,
}


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
