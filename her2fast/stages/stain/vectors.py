"""Stain vectors: the slide's hematoxylin and DAB directions in optical-density space (Macenko, Ruifrok-Johnston).

:func:`estimate_stain_vectors` estimates them from tissue pixels with Macenko's method and falls back --
per vector -- to Ruifrok and Johnston's standard vectors when the estimate is unreliable (too few stained
pixels, a single stain, vectors far from any plausible H or DAB); :class:`StainVectors` says which and why.
:func:`slide_stain_vectors` does so on a few tissue tiles of a slide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..._validate import as_int, as_positive_float
from ...errors import InvalidInputError
from .density import _WHITE, _as_background, optical_density

__all__ = ["STANDARD_DAB", "STANDARD_HEMATOXYLIN", "StainVectors", "estimate_stain_vectors", "slide_stain_vectors"]

#: Ruifrok & Johnston's hematoxylin vector (RGB OD, unit length), the fallback.
STANDARD_HEMATOXYLIN = np.array([0.650, 0.704, 0.286]) / np.linalg.norm([0.650, 0.704, 0.286])
#: Ruifrok & Johnston's DAB vector (RGB OD, unit length), the fallback.
STANDARD_DAB = np.array([0.268, 0.570, 0.776]) / np.linalg.norm([0.268, 0.570, 0.776])


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    c = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    return math.degrees(math.acos(min(1.0, max(-1.0, c))))


@dataclass(frozen=True)
class StainVectors:
    """Hematoxylin and DAB stain vectors of a slide (RGB natural-log OD, unit length).

    Attributes
    ----------
    hematoxylin, dab : (3,) float64
        Unit vectors; all components >= 0.
    background : (3,) float64
        Glass colour ``I0`` (RGB) the optical densities are relative to.
    hematoxylin_estimated, dab_estimated : bool
        Whether each vector was estimated from the pixels (Macenko) or is the Ruifrok-Johnston standard
        (the fallback).
    reason : str
        Why a fallback happened, or a summary of the estimate.
    n_pixels : int
        Stained pixels the estimate used (OD norm above ``beta``).
    """

    hematoxylin: np.ndarray
    dab: np.ndarray
    background: np.ndarray = field(default_factory=lambda: _WHITE.copy())
    hematoxylin_estimated: bool = False
    dab_estimated: bool = False
    reason: str = "standard Ruifrok-Johnston vectors"
    n_pixels: int = 0

    def __post_init__(self) -> None:
        for name in ("hematoxylin", "dab"):
            v = np.asarray(getattr(self, name), np.float64).reshape(-1)
            if v.size != 3 or not np.all(np.isfinite(v)) or np.linalg.norm(v) == 0:
                raise InvalidInputError(f"{name} must be a non-zero 3-vector (RGB OD), got {getattr(self, name)!r}")
            object.__setattr__(self, name, v / np.linalg.norm(v))
        object.__setattr__(self, "background", _as_background(self.background))
        if _angle_deg(self.hematoxylin, self.dab) < 2.0:
            raise InvalidInputError("hematoxylin and dab vectors are (nearly) parallel; they cannot be unmixed")

    @classmethod
    def standard(
        cls,
        background: np.ndarray | tuple[float, float, float] | None = None,
        reason: str = "standard Ruifrok-Johnston vectors",
    ) -> StainVectors:
        """Ruifrok and Johnston's H-DAB vectors (flagged as not estimated)."""
        return cls(
            STANDARD_HEMATOXYLIN.copy(), STANDARD_DAB.copy(), _as_background(background), False, False, reason, 0
        )

    @property
    def fallback(self) -> bool:
        """True when at least one vector is the standard one rather than an estimate."""
        return not (self.hematoxylin_estimated and self.dab_estimated)

    @property
    def residual(self) -> np.ndarray:
        """Third vector completing the basis: the unit cross product of H and DAB, oriented to positive sum."""
        r = np.cross(self.hematoxylin, self.dab)
        r /= np.linalg.norm(r)
        return r if r.sum() >= 0 else -r

    @property
    def matrix(self) -> np.ndarray:
        """(3, 3) rows H, DAB, residual: ``OD = concentrations @ matrix``."""
        return np.stack([self.hematoxylin, self.dab, self.residual])

    @property
    def unmixing(self) -> np.ndarray:
        """(3, 3) inverse of :attr:`matrix`: ``concentrations = OD @ unmixing``."""
        return np.linalg.inv(self.matrix)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready summary (vectors rounded to 6 decimals)."""
        return {
            "hematoxylin": [round(float(v), 6) for v in self.hematoxylin],
            "dab": [round(float(v), 6) for v in self.dab],
            "background": [round(float(v), 3) for v in self.background],
            "hematoxylin_estimated": self.hematoxylin_estimated,
            "dab_estimated": self.dab_estimated,
            "reason": self.reason,
            "n_pixels": self.n_pixels,
        }


def _pixels_od(image: np.ndarray, mask: np.ndarray | None, background: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.shape[-1:] != (3,) or arr.ndim not in (2, 3):
        raise InvalidInputError(
            f"image must be an (H, W, 3) image or an (N, 3) list of uint8 RGB pixels, got {arr.shape} {arr.dtype}"
        )
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != arr.shape[:-1] or m.dtype != np.bool_:
            raise InvalidInputError(f"mask must be a boolean array of shape {arr.shape[:-1]}, got {m.shape} {m.dtype}")
        arr = arr[m]
    return optical_density(arr.reshape(-1, 3), background).astype(np.float64)


def estimate_stain_vectors(
    image: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    background: np.ndarray | tuple[float, float, float] | None = None,
    beta: float = 0.15,
    alpha: float = 1.0,
    min_pixels: int = 500,
    max_pixels: int = 200_000,
    max_angle_deg: float = 30.0,
    min_separation_deg: float = 12.0,
    min_second_stain: float = 0.04,
    min_stain_od: float = 0.25,
    min_stain_fraction: float = 0.01,
    seed: int = 0,
) -> StainVectors:
    """H and DAB vectors of tissue pixels by Macenko's method, with a per-vector standard fallback.

    Parameters
    ----------
    image : (H, W, 3) or (N, 3) uint8
        RGB image or pixels (e.g. tissue pixels of several tiles).
    mask : bool array, optional
        Pixels to use (default all); glass is dropped anyway by ``beta``.
    background : (3,) float, optional
        Glass colour (default white); use the slide's (:attr:`her2fast.stages.tissue.TissueMask.background`).
    beta : float
        Pixels whose OD norm is below ``beta`` (glass, very pale) are ignored (Macenko: 0.15).
    alpha : float
        Percentile (and ``100 - alpha``) of the angle in the OD plane taken as the extreme stains (1).
    min_pixels : int
        Fewer stained pixels than this: standard vectors.
    max_pixels : int
        Subsample (seeded) to at most this many pixels.
    max_angle_deg : float
        An estimated vector more than this from its standard vector is rejected (replaced by the standard
        vector). Real HER2 slides measure 5-25 degrees (DAB) from Ruifrok-Johnston.
    min_separation_deg : float
        The two estimates must be at least this far apart (else a single stain was split in two).
    min_second_stain : float
        Ratio of the second to the first singular value of the OD pixels below which the slide holds a
        single stain: only the dominant vector is estimated, the other is standard.
    min_stain_od, min_stain_fraction : float
        A stain counts as present when at least ``min_stain_fraction`` of the stained pixels have more of it
        than ``min_stain_od`` and more of it than of the other stain (standard unmixing). A HER2 0 or 0+
        slide has almost no DAB-dominated pixels (0-0.2 % on phantoms vs 8 % at 1+): Macenko's DAB
        direction would then be noise, so DAB falls back to the standard vector and hematoxylin is the
        leading singular vector.
    seed : int
        Seed of the subsampling.

    Returns
    -------
    StainVectors
        ``hematoxylin_estimated`` / ``dab_estimated`` say which vectors are estimates; ``reason`` why not.

    Notes
    -----
    The OD plane is spanned by the two leading right singular vectors of the (uncentred) OD pixel matrix:
    Beer-Lambert mixtures of two stains lie in a plane through the origin. The extreme angles of the pixels
    projected on that plane are the stain directions; the one absorbing relatively more red (higher R/B
    ratio) is hematoxylin.
    """
    bg = _as_background(background)
    beta = as_positive_float(beta, "beta")
    alpha = float(alpha)
    if not 0.0 <= alpha < 50.0:
        raise InvalidInputError(f"alpha must be a percentile in [0, 50), got {alpha}")
    min_pixels = as_int(min_pixels, "min_pixels", 3)
    max_pixels = as_int(max_pixels, "max_pixels", min_pixels)
    od = _pixels_od(image, mask, bg)
    od = od[np.linalg.norm(od, axis=1) > beta]
    n = int(od.shape[0])
    if n < min_pixels:
        return StainVectors.standard(bg, f"only {n} stained pixels (OD > {beta}), fewer than min_pixels={min_pixels}")
    if n > max_pixels:
        od = od[np.random.default_rng(seed).choice(n, max_pixels, replace=False)]
    _, s, vt = np.linalg.svd(od, full_matrices=False)
    plane = vt[:2].T  # (3, 2)
    if plane[:, 0].sum() < 0:
        plane[:, 0] *= -1
    ratio = float(s[1] / s[0]) if s[0] > 0 else 0.0
    used = int(od.shape[0])

    # Is each stain present? Pixels dominated by it (standard unmixing) above min_stain_od.
    c = od @ StainVectors.standard().unmixing
    present_h = float((c[:, 0] > np.maximum(min_stain_od, c[:, 1])).mean())
    present_d = float((c[:, 1] > np.maximum(min_stain_od, c[:, 0])).mean())
    h_present, d_present = present_h >= min_stain_fraction, present_d >= min_stain_fraction
    if not (h_present and d_present) or ratio < min_second_stain:
        # One stain only (e.g. a HER2 0 slide without DAB): the leading singular vector is that stain.
        v = np.abs(plane[:, 0])
        if not (h_present or d_present):
            return StainVectors.standard(
                bg, f"neither stain dominates >= {min_stain_fraction:.0%} of the stained pixels"
            )
        which = "hematoxylin" if (h_present and not d_present) or (h_present and present_h >= present_d) else "dab"
        why = (
            f"a single stain ({present_h:.1%} of stained pixels hematoxylin-dominated, {present_d:.1%} DAB-dominated, "
            f"singular value ratio {ratio:.3f})"
        )
        ref = STANDARD_HEMATOXYLIN if which == "hematoxylin" else STANDARD_DAB
        a = _angle_deg(v, ref)
        if a > max_angle_deg:
            return StainVectors.standard(
                bg, f"{why}; its vector is {a:.0f} degrees from the standard {which} (> {max_angle_deg})"
            )
        if which == "hematoxylin":
            return StainVectors(v, STANDARD_DAB, bg, True, False, f"{why}: hematoxylin estimated, DAB standard", used)
        return StainVectors(
            STANDARD_HEMATOXYLIN, v, bg, False, True, f"{why}: DAB estimated, hematoxylin standard", used
        )

    proj = od @ plane
    phi = np.arctan2(proj[:, 1], proj[:, 0])
    lo, hi = np.percentile(phi, [alpha, 100.0 - alpha])
    v1 = plane @ np.array([np.cos(lo), np.sin(lo)])
    v2 = plane @ np.array([np.cos(hi), np.sin(hi)])
    v1 = v1 * np.sign(v1.sum())
    v2 = v2 * np.sign(v2.sum())
    h, d = (v1, v2) if v1[0] / max(v1[2], 1e-9) > v2[0] / max(v2[2], 1e-9) else (v2, v1)
    problems = []
    h_ok = d_ok = True
    for name, v, ref in (("hematoxylin", h, STANDARD_HEMATOXYLIN), ("dab", d, STANDARD_DAB)):
        if v.min() < -0.05:
            problems.append(f"{name} estimate has a negative component")
            h_ok, d_ok = (False, d_ok) if name == "hematoxylin" else (h_ok, False)
            continue
        a = _angle_deg(v, ref)
        if a > max_angle_deg:
            problems.append(f"{name} estimate {a:.0f} degrees from standard (> {max_angle_deg})")
            h_ok, d_ok = (False, d_ok) if name == "hematoxylin" else (h_ok, False)
    if h_ok and d_ok and _angle_deg(h, d) < min_separation_deg:
        problems.append(f"estimates only {_angle_deg(h, d):.0f} degrees apart (< {min_separation_deg})")
        h_ok = d_ok = False
    h = np.clip(h, 0.0, None) if h_ok else STANDARD_HEMATOXYLIN
    d = np.clip(d, 0.0, None) if d_ok else STANDARD_DAB
    if _angle_deg(h, d) < min_separation_deg:  # an estimate next to the other's standard
        h, d, h_ok, d_ok = STANDARD_HEMATOXYLIN, STANDARD_DAB, False, False
        problems.append("estimate too close to the other stain's standard vector")
    reason = "; ".join(problems) if problems else f"Macenko estimate from {used} pixels"
    return StainVectors(h, d, bg, h_ok, d_ok, reason, used)


def slide_stain_vectors(
    slide: object,
    grid: object,
    *,
    background: np.ndarray | tuple[float, float, float] | None = None,
    n_tiles: int = 12,
    **options: float,
) -> StainVectors:
    """Stain vectors of a slide from the cores of up to ``n_tiles`` tissue tiles at the grid's resolution.

    Parameters
    ----------
    slide : her2fast.io.slide.Slide
    grid : her2fast.stages.tissue.TileGrid
        Tiles that hold tissue (from :func:`her2fast.stages.tissue.tile_grid`); the tiles used are spread evenly
        over the grid's table, preferring tiles with the most tissue. The working resolution (0.5 um/px)
        keeps thin DAB membranes unmixed from nuclei, which a low-resolution read would blur together.
    background : (3,) float, optional
        Glass colour (pass ``TissueMask.background``; default white).
    n_tiles : int
    **options
        Passed to :func:`estimate_stain_vectors`.

    Returns
    -------
    StainVectors
    """
    from ...io.slide import Slide
    from ..tissue import TileGrid

    if not isinstance(slide, Slide):
        raise InvalidInputError(f"slide must be a her2fast.io.slide.Slide, got {type(slide).__name__}")
    if not isinstance(grid, TileGrid):
        raise InvalidInputError(f"grid must be a her2fast.stages.tissue.TileGrid, got {type(grid).__name__}")
    n_tiles = as_int(n_tiles, "n_tiles", 1)
    if len(grid) == 0:
        return StainVectors.standard(background, "the slide has no tissue tiles")
    order = np.argsort(-grid.tissue_fraction, kind="stable")
    best = order[: max(n_tiles, len(order) // 2)]  # the fuller half of the tiles
    pick = np.sort(best[np.linspace(0, best.size - 1, min(n_tiles, best.size)).round().astype(int)])
    pixels = []
    for i in np.unique(pick):
        t = grid.tile(int(i))
        x0, y0, x1, y1 = t.core_level0
        pixels.append(slide.read(x0, y0, grid.tile_size, grid.tile_size, grid.mpp).reshape(-1, 3))
    return estimate_stain_vectors(np.concatenate(pixels), background=background, **options)  # type: ignore[arg-type]
