"""The tissue mask: tissue vs glass on a low-resolution image of the slide (:func:`segment_tissue`, :func:`detect_tissue`).

How tissue is told from glass (optical density, hysteresis, texture, closing, small objects and holes) is
described in :mod:`her2fast.stages.tissue` and ``docs/tissue.md``; pen ink is :mod:`her2fast.stages.tissue.pen`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..._validate import as_positive_float, as_rgb_uint8
from ...errors import InvalidInputError
from ...io.slide import Slide
from .pen import pen_mask

__all__ = ["TissueMask", "detect_tissue", "segment_tissue"]

#: Default resolution of the tissue mask (um/px).
TISSUE_MPP = 8.0

#: Holes in tissue smaller than this (um^2) are tissue: fat, lumina, small tears (0.5 mm^2).
MAX_HOLE_UM2 = 500_000.0

#: Glass for the texture noise estimate is at least this far (um) from tissue.
TEXTURE_GLASS_UM = 200.0

#: Texture threshold floor (spread of the OD over 3 x 3 px, log10 units; one grey level at glass is 0.0017).
TEXTURE_MIN_OD = 0.0015

#: Texture in this band (um) around tissue is ignored (edge blur, JPEG ringing).
TEXTURE_BAND_UM = 16.0

#: Radius (um) of the closing: glass-like gaps narrower than twice this are tissue.
CLOSING_UM = 48.0


@dataclass
class TissueMask:
    """Tissue vs glass on a low-resolution grid.

    Attributes
    ----------
    mask : (H, W) bool
        True on tissue. Pixel ``(i, j)`` covers level-0 ``[j*sx, (j+1)*sx) x [i*sy, (i+1)*sy)`` with
        ``(sx, sy) = level0_per_pixel``.
    mpp : float
        Micrometres per mask pixel.
    threshold : float
        The high (seed) optical-density threshold used (Otsu, clipped).
    low_threshold : float
        The low (growing) threshold.
    pen : (H, W) bool
        Pixels excluded as pen ink.
    background : (3,) float
        Estimated glass colour (RGB).
    level0_per_pixel : (float, float)
        Level-0 pixels per mask pixel along x and y (1.0, 1.0 for a mask not tied to a slide).
    """

    mask: np.ndarray
    mpp: float
    threshold: float
    low_threshold: float
    pen: np.ndarray
    background: np.ndarray
    level0_per_pixel: tuple[float, float] = (1.0, 1.0)

    @property
    def fraction(self) -> float:
        """Fraction of the mask's pixels that are tissue."""
        return float(self.mask.mean()) if self.mask.size else 0.0

    @property
    def area_mm2(self) -> float:
        """Tissue area in square millimetres."""
        return float(self.mask.sum()) * (self.mpp * 1e-3) ** 2


# ------------------------------------------------------------------------------------ segmentation
def _disk(radius: int) -> np.ndarray:
    r = max(int(radius), 0)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return xx * xx + yy * yy <= r * r + r  # slightly round


def _glass_level(values: np.ndarray) -> float:
    """An optical density just above the glass: the histogram mode plus 4 sigma of its lower half.

    The lower half of the glass peak is free of tissue, so its spread is the glass noise.
    """
    v = values[(values > -0.1) & (values < 0.3)]
    if v.size < 10:
        return 0.01
    hist, edges = np.histogram(v, bins=np.arange(-0.1, 0.3 + 1e-9, 0.002))
    hist = np.convolve(hist, np.ones(3) / 3, mode="same")
    k = int(np.argmax(hist))
    mode = float(edges[k] + 0.001)
    below = v[v <= mode] - mode
    sigma = float(np.sqrt(np.mean(below**2))) if below.size > 5 else 0.003
    return float(np.clip(mode + 4.0 * sigma + 0.004, 0.008, 0.1))


def _remove_small(mask: np.ndarray, min_px: int, keep_border: bool = False) -> np.ndarray:
    """``mask`` without its 8-connected components smaller than ``min_px`` pixels.

    With ``keep_border``, components touching the image border are kept whatever their size (used to fill
    holes: background reaching the border is glass, not a hole).
    """
    from scipy import ndimage as ndi

    if min_px <= 1 or not mask.any():
        return mask.copy()
    labels, n = ndi.label(mask, structure=np.ones((3, 3), bool))
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    keep = sizes >= min_px
    if keep_border:
        border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        keep[border] = True
    keep[0] = False
    return keep[labels]


def _closing(mask: np.ndarray, radius: float) -> np.ndarray:
    """Binary closing by a disk of ``radius`` px (Euclidean, exact, O(pixels) whatever the radius).

    The image is padded by reflection, so the closing neither eats into tissue cut by the image border nor
    invents tissue there: what lies beyond the border is assumed to continue what is inside it.
    """
    from scipy import ndimage as ndi

    if radius < 1 or not mask.any() or mask.all():
        return mask.copy()
    pad = int(math.ceil(radius)) + 1
    padded = np.pad(mask, pad, mode="symmetric")
    dilated = ndi.distance_transform_edt(~padded) <= radius
    if dilated.all():
        return np.ones_like(mask)
    closed = ndi.distance_transform_edt(dilated) > radius
    return closed[pad:-pad, pad:-pad] | mask


def _textured(
    od: np.ndarray,
    tissue: np.ndarray,
    glass: np.ndarray,
    excluded: np.ndarray,
    padding: np.ndarray,
    mpp: float,
    min_px: int,
) -> np.ndarray:
    """Pale but textured areas next to ``tissue``: fat (adipocyte membranes) and loose stroma.

    Texture is the spread of ``od`` over 3 x 3 px. Glass is flat: its own spread (90th percentile on
    ``glass`` pixels at least :data:`TEXTURE_GLASS_UM` from tissue, times 2, at least :data:`TEXTURE_MIN_OD`) sets the bar, so noisy
    glass raises it instead of turning into tissue. ``excluded`` pixels (pen) and the step edges around
    ``padding`` (scanner white) never count. Textured
    pixels in a band of :data:`TEXTURE_BAND_UM` around ``tissue`` are ignored (blur and JPEG ringing at the
    tissue edge are textured too); what remains counts if it forms regions of at least ``min_px`` pixels
    that reach the band, i.e. touch tissue. The closing that follows bridges the band and fills the cells.
    """
    from scipy import ndimage as ndi

    if not tissue.any():
        return np.zeros_like(tissue)
    mean = ndi.uniform_filter(od, size=3, mode="nearest")
    spread = np.sqrt(np.maximum(ndi.uniform_filter(od * od, size=3, mode="nearest") - mean * mean, 0.0))
    dist = ndi.distance_transform_edt(~tissue)
    band = max(2.0, TEXTURE_BAND_UM / mpp)
    excluded = excluded | ndi.binary_dilation(padding, iterations=2)
    far = glass & ~excluded & (dist * mpp >= TEXTURE_GLASS_UM)
    glass_spread = float(np.percentile(spread[far], 90)) if far.sum() > 50 else 0.0
    level = max(TEXTURE_MIN_OD, 2.0 * glass_spread)
    candidates = (spread > level) & (dist > band) & ~excluded
    if not candidates.any():
        return np.zeros_like(tissue)
    labels, n = ndi.label(candidates, structure=np.ones((3, 3), bool))
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    touching = np.zeros(n + 1, bool)
    touching[np.unique(labels[candidates & (dist <= band + 1.5)])] = True
    keep = touching & (sizes >= min_px)
    keep[0] = False
    return keep[labels]


#: Mean optical density above which a large connected piece with no pixel above the seed threshold is
#: tissue (the seed threshold's lower clip): pale, unstained tissue beside much darker tissue.
PALE_TISSUE_OD = 0.03


def segment_tissue(
    rgb: np.ndarray,
    mpp: float,
    *,
    min_object_um2: float = 10_000.0,
    min_hole_um2: float = MAX_HOLE_UM2,
    threshold: float | None = None,
    closing_um: float = CLOSING_UM,
) -> TissueMask:
    """Tissue mask of a low-resolution brightfield RGB image.

    Parameters
    ----------
    rgb : (H, W, 3) uint8
        The slide (or a part of it) at low resolution, brightfield (see
        :func:`her2fast.io.slide.brightfield_evidence`).
    mpp : float
        Micrometres per pixel of ``rgb`` (4-16 is the intended range for slides; finer works for patches).
    min_object_um2 : float
        Smaller connected tissue pieces are removed (dust, debris); 10 000 um^2 is a 100 x 100 um speck.
    min_hole_um2 : float
        Holes inside tissue (glass-like areas enclosed by tissue: fat, lumina, tears) smaller than this are
        filled (default :data:`MAX_HOLE_UM2`, 0.5 mm^2); larger empty areas stay out.
    threshold : float, optional
        Fixed seed threshold on the optical density (default: Otsu's, clipped to [0.03, 0.15]).
    closing_um : float
        Radius of the morphological closing (default :data:`CLOSING_UM`): glass-like gaps, bays and
        cracks narrower than twice this are tissue.

    Returns
    -------
    TissueMask
    """
    from scipy import ndimage as ndi
    from skimage.filters import threshold_otsu

    arr = as_rgb_uint8(rgb, "rgb")
    mpp = as_positive_float(mpp, "mpp")
    min_obj_px = max(1, int(round(as_positive_float(min_object_um2 + 1e-12, "min_object_um2") / mpp**2)))
    min_hole_px = max(1, int(round(as_positive_float(min_hole_um2 + 1e-12, "min_hole_um2") / mpp**2)))
    closing_px = as_positive_float(closing_um + 1e-12, "closing_um") / mpp

    pen = pen_mask(arr, mpp)
    # Glass colour: the 99th percentile per channel, trusted only if it is light (a slide without glass
    # falls back to white). Pure white (>= 254) is left out: scanners pad unscanned areas with it, and
    # the glass inside the scanned area is darker.
    f = arr.astype(np.float32)
    usable = ~pen & ~(arr >= 254).all(axis=2)
    if usable.sum() < 0.01 * usable.size:
        usable = ~pen
    pool = f[usable] if usable.any() else f.reshape(-1, 3)
    background = np.percentile(pool, 99, axis=0)
    if background.min() < 180:
        background = np.full(3, 255.0, np.float32)
    od = (-np.log10(np.maximum(f, 1.0) / background)).max(axis=2)
    od[pen] = 0.0  # ink must not leak into its neighbours through the smoothing
    odmax = ndi.uniform_filter(
        od, size=3, mode="nearest"
    )  # 3x3 mean: noise down (sparse nuclei in pale stroma survive)
    near_pen = ndi.binary_dilation(pen, structure=_disk(max(1, int(round(16.0 / mpp))))) if pen.any() else pen
    odmax[near_pen] = 0.0

    stats = usable & ~near_pen
    values = odmax[stats] if stats.sum() > 10 else odmax.ravel()
    if threshold is None:
        if values.size > 1 and float(values.max()) > float(values.min()):
            high = float(threshold_otsu(values))
        else:
            high = 0.03
        high = float(np.clip(high, 0.03, 0.15))
    else:
        high = float(threshold)
    low = min(_glass_level(values), 0.5 * high)

    strong = odmax > high
    weak = odmax > low
    labels, n = ndi.label(weak)
    if n:
        keep = np.zeros(n + 1, bool)
        keep[np.unique(labels[strong])] = True
        # a pale piece with no pixel above a threshold set by darker tissue elsewhere (a HER2-0 patient
        # tissue beside a strongly stained control): kept when it is large and its mean OD is that of tissue
        area = np.bincount(labels.ravel(), minlength=n + 1)
        mean_od = np.bincount(labels.ravel(), odmax.ravel(), minlength=n + 1) / np.maximum(area, 1)
        keep |= (area >= min_obj_px) & (mean_od > PALE_TISSUE_OD)
        keep[0] = False
        tissue = keep[labels]
    else:
        tissue = np.zeros_like(weak)
    padding = np.asarray((arr >= 254).all(axis=2))  # an array (numpy types .all(axis=...) as scalar or array)
    tissue |= _textured(od, tissue, stats & (odmax <= low), near_pen, padding, mpp, min_obj_px)
    tissue = _closing(tissue, closing_px)
    tissue = _remove_small(tissue, min_obj_px)
    tissue = ~_remove_small(~tissue, min_hole_px, keep_border=True)
    tissue &= ~near_pen  # after hole filling, which would otherwise fill ink drawn on tissue back in
    return TissueMask(
        mask=np.ascontiguousarray(tissue, dtype=bool),
        mpp=mpp,
        threshold=high,
        low_threshold=low,
        pen=pen,
        background=np.asarray(background, np.float64),
    )


def detect_tissue(slide: Slide, *, mpp: float = TISSUE_MPP, **options: float) -> TissueMask:
    """Tissue mask of a slide, computed on its thumbnail at ``mpp`` um/px.

    Parameters
    ----------
    slide : Slide
    mpp : float
        Resolution of the mask (default 8 um/px).
    **options
        Passed to :func:`segment_tissue` (``min_object_um2``, ``min_hole_um2``, ``threshold``, ``closing_um``).

    Returns
    -------
    TissueMask
        With ``level0_per_pixel`` set for this slide.

    Raises
    ------
    NotBrightfieldError
        For a fluorescence (dark-background) slide.
    """
    if not isinstance(slide, Slide):
        raise InvalidInputError(
            f"slide must be a her2fast.io.slide.Slide (from open_slide), got {type(slide).__name__}"
        )
    mpp = as_positive_float(mpp, "mpp")
    slide.require_brightfield()
    thumb = slide.thumbnail(mpp)
    result = segment_tissue(thumb, mpp, **options)
    result.level0_per_pixel = (mpp / slide.mpp_x, mpp / slide.mpp_y)
    return result
