"""Stain normalisation: a tile's H and DAB histograms matched to a reference's, recomposed with its colours.

As Vandenberghe et al.'s HER2 pipeline does before segmentation. Never measure intensity on a normalised
tile (:mod:`her2fast.stages.stain.deconvolution`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..._validate import as_int, as_rgb_uint8
from ...errors import InvalidInputError
from .deconvolution import _recompose, deconvolve
from .vectors import StainVectors

__all__ = ["StainReference", "normalize_to_reference", "stain_reference"]

_CHANNELS = ("hematoxylin", "dab")


@dataclass(frozen=True)
class StainReference:
    """The target of stain normalisation: vectors, glass colour and H/DAB concentration quantiles.

    Attributes
    ----------
    stains : StainVectors
    levels : (Q,) float64
        Quantile levels in [0, 1], increasing, 0 and 1 included.
    hematoxylin, dab : (Q,) float64
        Quantiles of the reference's H and DAB concentrations at ``levels``.
    """

    stains: StainVectors
    levels: np.ndarray
    hematoxylin: np.ndarray
    dab: np.ndarray

    def to_dict(self) -> dict[str, object]:
        return {
            "stains": self.stains.to_dict(),
            "levels": [round(float(v), 6) for v in self.levels],
            "hematoxylin": [round(float(v), 6) for v in self.hematoxylin],
            "dab": [round(float(v), 6) for v in self.dab],
        }


def _quantile_levels(n: int) -> np.ndarray:
    return np.linspace(0.0, 1.0, n)


def _channel_quantiles(values: np.ndarray, levels: np.ndarray) -> np.ndarray:
    q = np.quantile(values.astype(np.float64), levels)
    return np.maximum.accumulate(q)


def stain_reference(
    image: np.ndarray, stains: StainVectors, *, mask: np.ndarray | None = None, n_quantiles: int = 257
) -> StainReference:
    """The :class:`StainReference` of a reference tile (or of pixels of several tiles).

    Parameters
    ----------
    image : (H, W, 3) uint8
    stains : StainVectors
        The reference's vectors (its :func:`estimate_stain_vectors`).
    mask : (H, W) bool, optional
        Pixels to take quantiles over (default all, glass included, as a tile is matched whole).
    n_quantiles : int
        Number of quantile levels (>= 3).
    """
    img = as_rgb_uint8(image)
    n_quantiles = as_int(n_quantiles, "n_quantiles", 3, 100_000)
    c = deconvolve(img, stains)
    m = _check_mask(mask, img.shape[:2])
    levels = _quantile_levels(n_quantiles)
    h = c.hematoxylin[m] if m is not None else c.hematoxylin.ravel()
    d = c.dab[m] if m is not None else c.dab.ravel()
    if h.size == 0:
        raise InvalidInputError("mask selects no pixels; the reference needs at least one")
    return StainReference(stains, levels, _channel_quantiles(h, levels), _channel_quantiles(d, levels))


def _check_mask(mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.shape != tuple(shape) or m.dtype != np.bool_:
        raise InvalidInputError(f"mask must be a boolean array of shape {tuple(shape)}, got {m.shape} {m.dtype}")
    return m


def _match(values: np.ndarray, source_q: np.ndarray, target_q: np.ndarray) -> np.ndarray:
    """Monotone piecewise-linear map sending the source quantiles to the target quantiles."""
    # Ties in the source quantiles (e.g. many pixels at exactly 0) would make the map a step; np.interp
    # needs increasing abscissae, so ties are collapsed (keeping the middle target of each run).
    xs, idx = np.unique(source_q, return_index=True)
    last = np.r_[idx[1:] - 1, source_q.size - 1]
    ys = 0.5 * (target_q[idx] + target_q[last])
    if xs.size == 1:
        return np.full_like(values, ys[0])
    out = np.interp(values, xs, ys)
    # beyond the source range (pixels outside the mask the quantiles came from): extend the end slopes
    lo, hi = values < xs[0], values > xs[-1]
    if lo.any():
        out[lo] = ys[0] + (values[lo] - xs[0]) * (ys[1] - ys[0]) / (xs[1] - xs[0])
    if hi.any():
        out[hi] = ys[-1] + (values[hi] - xs[-1]) * (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
    return out


def normalize_to_reference(
    image: np.ndarray,
    stains: StainVectors,
    reference: StainReference,
    *,
    mask: np.ndarray | None = None,
    channels: tuple[str, ...] = _CHANNELS,
) -> np.ndarray:
    """Stain-normalise a tile by histogram matching of its deconvolved H and DAB channels.

    Each selected channel's concentrations are mapped by the monotone piecewise-linear function that sends
    the tile's quantiles (over ``mask``) to the reference's; the tile is then recomposed with the
    reference's stain vectors and glass colour (the residual channel is kept as is).

    Parameters
    ----------
    image : (H, W, 3) uint8
    stains : StainVectors
        The slide's vectors (to deconvolve the tile).
    reference : StainReference
    mask : (H, W) bool, optional
        Pixels whose histogram is matched (default all); every pixel is mapped.
    channels : tuple of {"hematoxylin", "dab"}
        Channels to match (default both, as the paper); an unmatched channel keeps its concentrations
        (only its colour changes, to the reference vector).

    Returns
    -------
    (H, W, 3) uint8

    Notes
    -----
    Matching the DAB histogram changes DAB intensities by design: measure membrane intensity on
    :func:`deconvolve` of the *unnormalised* tile, never on the normalised one.
    """
    img = as_rgb_uint8(image)
    if not isinstance(stains, StainVectors):
        raise InvalidInputError(f"stains must be a StainVectors, got {type(stains).__name__}")
    if not isinstance(reference, StainReference):
        raise InvalidInputError(
            f"reference must be a StainReference (from stain_reference), got {type(reference).__name__}"
        )
    bad = [c for c in channels if c not in _CHANNELS]
    if bad:
        raise InvalidInputError(f"channels must be among {_CHANNELS}, got {bad}")
    m = _check_mask(mask, img.shape[:2])
    c = deconvolve(img, stains)
    out = np.stack([c.hematoxylin, c.dab, c.residual], axis=-1)
    for k, name in enumerate(_CHANNELS):
        if name not in channels:
            continue
        values = out[..., k]
        src = _channel_quantiles(values[m] if m is not None else values.ravel(), reference.levels)
        out[..., k] = _match(values.astype(np.float64), src, getattr(reference, name)).astype(np.float32)
    return _recompose(out, reference.stains)
