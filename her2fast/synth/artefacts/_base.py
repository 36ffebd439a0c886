"""What every artefact maker shares: the result types, optical density and the band and blob geometries."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Artefact", "ArtefactImage"]

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
