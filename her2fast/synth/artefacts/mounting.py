"""Mounting artefacts: an air bubble under the coverslip (:func:`add_bubble`) and the edge of the coverslip
or of the slide crossing the tissue (:func:`add_glass_edge`)."""

from __future__ import annotations

import numpy as np

from ..._validate import as_int, as_positive_float, as_rgb_uint8
from ...errors import InvalidInputError
from ._base import Artefact, _blob, _od, _rgb_of

__all__ = ["add_bubble", "add_glass_edge"]


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


def add_glass_edge(
    rgb: np.ndarray,
    mpp: float,
    *,
    seed: int = 0,
    width_um: float = 40.0,
    step_od: float | None = None,
    min_radius_um: float = 4000.0,
) -> Artefact:
    """The edge of a coverslip (or of the slide) crossing the image: a thin dark line with a shadow band beside it.

    The edge is a gently curved line through a random point of the image's central half, at a random angle,
    bent to a radius of at least ``min_radius_um`` (either way). Along it lies a thin, dark, neutral
    (grey) line, the glass's edge refracting light away (2-5 um wide, optical density 0.3-0.7 at its
    centre); on one side, a shadow band (the mountant's meniscus) where a neutral optical density of
    0.1-0.3 at the line falls to half of that at the band's far edge, where it ends. Beyond the line, on
    the shadow's side, the brightness steps by a neutral optical density (``step_od``, the light crossing
    a different thickness of glass and mountant). Every optical density adds to the tissue's (Beer-Lambert).

    Parameters
    ----------
    rgb : (h, w, 3) uint8
    mpp : float
        Micrometres per pixel of ``rgb``.
    seed : int
        Draws the edge's position, angle, bend and side, the line's width and density, the band's width
        (0.7-1.3 times ``width_um``) and density, and the step (unless given).
    width_um : float
        Mean width of the shadow band.
    step_od : float, optional
        Optical density added beyond the line; drawn from -0.03 to 0.05 when None (0: no step).
    min_radius_um : float
        Smallest radius of the bend (the bend is drawn uniformly in curvature up to ``1 / min_radius_um``).

    Returns
    -------
    Artefact
        The mask is the line and the shadow band: the tissue that cannot be read. The step changes the
        pixels beyond it too (when ``step_od`` is not 0); that tissue stays readable.
    """
    arr = as_rgb_uint8(rgb, "rgb")
    mpp = as_positive_float(mpp, "mpp")
    width_um = as_positive_float(width_um, "width_um")
    min_radius = as_positive_float(min_radius_um, "min_radius_um") / mpp
    rng = np.random.default_rng([as_int(seed, "seed", 0), 0xED6E])
    h, w = arr.shape[:2]
    theta = float(rng.uniform(0.0, np.pi))
    cx, cy = float(rng.uniform(0.25, 0.75) * w), float(rng.uniform(0.25, 0.75) * h)
    kappa = float(rng.uniform(-1.0, 1.0)) / min_radius
    side = 1.0 if rng.uniform() < 0.5 else -1.0
    line_px = float(rng.uniform(2.0, 5.0)) / mpp
    line_od = float(rng.uniform(0.3, 0.7))
    band_px = width_um * float(rng.uniform(0.7, 1.3)) / mpp
    shadow_od = float(rng.uniform(0.1, 0.3))
    drawn_step = float(rng.uniform(-0.03, 0.05))
    step = drawn_step if step_od is None else float(step_od)
    if not np.isfinite(step):
        raise InvalidInputError(f"step_od must be a finite number, got {step_od!r}")
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    c, s = np.float32(np.cos(theta)), np.float32(np.sin(theta))
    u = (xx - cx) * c + (yy - cy) * s
    v = -(xx - cx) * s + (yy - cy) * c
    k = np.float32(kappa)
    # signed distance from the curve v = kappa u^2 / 2 (to first order in its slope), positive on the shadow's side
    t = np.float32(side) * (v - k * u * u / 2) / np.sqrt(1 + (k * u) ** 2)
    line = np.clip(1.0 - np.abs(t) / np.float32(line_px / 2.0), 0.0, 1.0) ** 0.5
    in_band = (t > 0) & (t <= band_px)
    add = line_od * line + np.where(in_band, shadow_od * (1.0 - 0.5 * t / np.float32(band_px)), 0.0)
    add = add + np.where(t > 0, np.float32(step), np.float32(0.0))
    mask = (np.abs(t) <= line_px / 2.0) | in_band
    changed = mask | (t > 0) if step else mask
    od = _od(arr)
    od[changed] += add[changed][:, None].astype(np.float32)
    out = arr.copy()
    out[changed] = _rgb_of(od[changed])
    return Artefact(
        out,
        mask,
        "glass_edge",
        {
            "angle_deg": round(float(np.degrees(theta)), 2),
            "centre_px": (round(cx, 1), round(cy, 1)),
            "radius_um": round(1.0 / abs(kappa) * mpp, 0) if kappa else float("inf"),
            "line_um": round(line_px * mpp, 2),
            "line_od": round(line_od, 3),
            "band_um": round(band_px * mpp, 1),
            "shadow_od": round(shadow_od, 3),
            "step_od": round(step, 3),
        },
    )
