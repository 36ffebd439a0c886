"""Staining artefacts: an over-stained, saturated patch (:func:`add_saturation`) and DAB precipitate
(:func:`add_precipitate`)."""

from __future__ import annotations

import numpy as np

from ..._validate import as_int, as_positive_float, as_rgb_uint8
from ._base import Artefact, _blob, _od, _rgb_of

__all__ = ["PRECIPITATE_HAZE_OD", "PRECIPITATE_OD", "SATURATION_OD", "add_precipitate", "add_saturation"]

#: Optical density (RGB) of a saturated, over-stained patch at density 1: a near-black brown.
SATURATION_OD: tuple[float, float, float] = (1.7, 1.9, 2.1)

#: Optical density (RGB) of a DAB precipitate granule at density 1: a near-black brown.
PRECIPITATE_OD: tuple[float, float, float] = (0.75, 1.25, 1.6)

#: Optical density (RGB) of the faint brown haze of fine precipitate around the granules, at density 1.
PRECIPITATE_HAZE_OD: tuple[float, float, float] = (0.02, 0.035, 0.045)


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
