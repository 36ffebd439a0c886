"""The resolution and white point of a field of view (a camera photo, a viewer snapshot) from the image itself.

A photo taken through a microscope or a snapshot of a slide viewer carries no resolution: its micrometres per
pixel depend on the objective, the camera adapter and any resizing on the way. Cells do not: tumour nuclei of
breast carcinoma are 8-12 um across. :func:`estimate_resolution` measures the nuclei of an image at its own
pixel scale and divides their size by that of a typical tumour nucleus:

1. white point: :func:`white_point` (the glass, or the brightest tissue when no glass is in view);
2. hematoxylin: the image's stain vectors (:func:`her2fast.stages.stain.estimate_stain_vectors`) unmix it
   (:func:`her2fast.stages.stain.deconvolve`);
3. nuclei: :func:`her2fast.stages.nuclei.segment_nuclei` at a trial resolution, its hematoxylin threshold
   lowered to the image's own (Otsu's threshold of the hematoxylin OD, within
   :data:`NUCLEUS_THRESHOLD_RANGE`: pale nuclei of a faint counterstain are measured whole); nuclei cut by the image edge
   are left out; the statistic is the :data:`NUCLEUS_QUANTILE` quantile of their equivalent diameters in pixels
   (the upper half of the nuclei: tumour nuclei, not lymphocytes or fragments);
4. ``mpp = NUCLEUS_DIAMETER_UM / diameter_px``; the segmentation's lengths (smoothing, opening, smallest
   area, seed spacing) are in micrometres, so steps 3-4 repeat at the new trial resolution until it moves by
   less than 1 % (at most :data:`MAX_ITERATIONS` times).

:data:`NUCLEUS_DIAMETER_UM` is calibrated on images of known resolution: phantoms (:func:`her2fast.synth.make_tile`)
at 0.25-1.0 um/px and the freely usable real HER2 patches of ``../shared/data/ihc/her2-ihc-40x`` (about
0.6 um/px); ``docs/fields.md`` gives the figures and the command that reproduces them. The uncertainty
(:attr:`ResolutionEstimate.relative_uncertainty`) combines the bootstrap spread of the statistic over the
image's nuclei with the spread of the typical diameter between calibration images
(:data:`CALIBRATION_SPREAD`).

An image with fewer than :data:`MIN_NUCLEI` whole nuclei cannot be measured:
:class:`~her2fast.errors.MissingResolutionError` names the image and the fix (``mpp=`` / ``--mpp``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .._validate import as_positive_float, as_rgb_uint8
from ..errors import MissingResolutionError
from .nuclei import NucleiSettings

__all__ = [
    "CALIBRATION_SPREAD",
    "MIN_NUCLEI",
    "NUCLEUS_DIAMETER_UM",
    "NUCLEUS_QUANTILE",
    "NUCLEUS_THRESHOLD_RANGE",
    "ResolutionEstimate",
    "estimate_resolution",
    "nucleus_diameters",
    "white_balance",
    "white_point",
]

#: Equivalent diameter (um) of the :data:`NUCLEUS_QUANTILE` quantile of the nuclei
#: :func:`her2fast.stages.nuclei.segment_nuclei` finds at the right resolution (calibrated; ``docs/fields.md``).
NUCLEUS_DIAMETER_UM = 9.1

#: Quantile of the nucleus diameters used as the image's nucleus size.
NUCLEUS_QUANTILE = 0.75

#: Relative spread (1 sigma) of :data:`NUCLEUS_DIAMETER_UM` between calibration images.
CALIBRATION_SPREAD = 0.24

#: The range (natural-log OD) the image's hematoxylin threshold is kept in; the upper end is the pipeline's
#: (``NucleiSettings.threshold_od``).
NUCLEUS_THRESHOLD_RANGE = (0.12, 0.27)

#: Fewest whole nuclei an estimate is made from.
MIN_NUCLEI = 30

#: Most trial resolutions tried.
MAX_ITERATIONS = 6

#: First trial resolution (um/px).
START_MPP = 0.5

#: The estimate is made on at most this many pixels (a central crop of a larger image).
MAX_PIXELS = 2048 * 2048

#: A white point whose darkest channel is below this is not glass: the image is all tissue.
GLASS_MIN_LEVEL = 180.0

#: Bootstrap resamples of the nuclei for the sampling spread.
BOOTSTRAP = 200


@dataclass(frozen=True)
class ResolutionEstimate:
    """What :func:`estimate_resolution` measured.

    Attributes
    ----------
    mpp : float
        Estimated micrometres per pixel.
    relative_uncertainty : float
        1-sigma relative uncertainty of ``mpp`` (sampling and calibration combined).
    sampling_spread : float
        Relative bootstrap spread of the nucleus size over this image's nuclei.
    n_nuclei : int
        Whole nuclei measured.
    diameter_px : float
        The :data:`NUCLEUS_QUANTILE` quantile of their equivalent diameters, in pixels.
    iterations : int
        Trial resolutions tried.
    """

    mpp: float
    relative_uncertainty: float
    sampling_spread: float
    n_nuclei: int
    diameter_px: float
    iterations: int

    @property
    def interval(self) -> tuple[float, float]:
        """``mpp`` times (1 -/+ 2 ``relative_uncertainty``): a ~95 % range."""
        return self.mpp * (1 - 2 * self.relative_uncertainty), self.mpp * (1 + 2 * self.relative_uncertainty)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict (for provenance)."""
        lo, hi = self.interval
        return {
            "mpp": round(self.mpp, 4),
            "relative_uncertainty": round(self.relative_uncertainty, 4),
            "interval_95": [round(lo, 4), round(hi, 4)],
            "sampling_spread": round(self.sampling_spread, 4),
            "n_nuclei": self.n_nuclei,
            "diameter_px": round(self.diameter_px, 3),
            "nucleus_diameter_um": NUCLEUS_DIAMETER_UM,
            "nucleus_quantile": NUCLEUS_QUANTILE,
            "iterations": self.iterations,
            "method": "nucleus size",
        }


def white_point(rgb: np.ndarray) -> tuple[np.ndarray, bool]:
    """The colour of the glass of an image, or of its brightest tissue when it has no glass.

    The 99th percentile of each channel over pixels that are not pure white (>= 254 in all channels: padding),
    as :func:`her2fast.stages.tissue.segment_tissue` estimates the glass; when its darkest channel is below
    :data:`GLASS_MIN_LEVEL` no glass is in view and the same percentile is the brightest tissue.

    Parameters
    ----------
    rgb : (H, W, 3) uint8

    Returns
    -------
    (3,) float64, bool
        The white point, and whether it is glass.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((10, 10, 3), (240, 230, 235), np.uint8)
    >>> bg, glass = white_point(img)
    >>> bg.tolist(), glass
    ([240.0, 230.0, 235.0], True)
    """
    arr = as_rgb_uint8(rgb, "rgb")
    flat = arr.reshape(-1, 3)
    usable = ~(flat >= 254).all(axis=1)
    pool = flat[usable] if usable.sum() >= 0.01 * usable.size else flat
    bg = np.percentile(pool.astype(np.float64), 99, axis=0)
    bg = np.maximum(bg, 1.0)
    return bg, bool(bg.min() >= GLASS_MIN_LEVEL)


def white_balance(rgb: np.ndarray) -> tuple[np.ndarray, dict[str, object]]:
    """A field white-balanced on its own white point (:func:`white_point`).

    With glass in view the image is returned as it is: the pipeline measures optical density against the
    glass colour it finds itself (:attr:`her2fast.stages.tissue.TissueMask.background`, the same percentile),
    so the glass already is the white point. Without glass, the pipeline would measure against pure white;
    here the brightest tissue sets the colour instead: each channel is scaled so that it reads grey at its
    brightest channel's level, removing a colour cast (the pink or yellow of a camera's white balance)
    without calling tissue glass.

    Parameters
    ----------
    rgb : (H, W, 3) uint8

    Returns
    -------
    (H, W, 3) uint8, dict
        The balanced image, and ``{"white_point": [r, g, b], "glass": bool, "gains": [r, g, b]}`` (gains 1
        with glass).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((10, 10, 3), (170, 150, 160), np.uint8)
    >>> out, info = white_balance(img)
    >>> out[0, 0].tolist(), info["glass"]
    ([170, 170, 170], False)
    """
    arr = as_rgb_uint8(rgb, "rgb")
    bg, glass = white_point(arr)
    gains = np.ones(3) if glass else float(bg.max()) / bg
    out = arr
    if not glass:
        levels = np.arange(256, dtype=np.float64)
        out = np.empty_like(arr)
        for c in range(3):
            lut = np.clip(np.rint(levels * gains[c]), 0, 255).astype(np.uint8)
            out[..., c] = lut[arr[..., c]]
    info: dict[str, object] = {
        "white_point": [round(float(v), 2) for v in bg],
        "glass": glass,
        "gains": [round(float(g), 4) for g in gains],
    }
    return out, info


def _central_crop(arr: np.ndarray, max_pixels: int) -> np.ndarray:
    h, w = arr.shape[:2]
    if h * w <= max_pixels:
        return arr
    scale = math.sqrt(max_pixels / (h * w))
    ch, cw = max(1, int(h * scale)), max(1, int(w * scale))
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    return arr[y0 : y0 + ch, x0 : x0 + cw]


def _hematoxylin_threshold(hema: np.ndarray, upper: float) -> float:
    """Otsu's threshold of the hematoxylin OD over stained pixels, kept within :data:`NUCLEUS_THRESHOLD_RANGE`
    (and at most ``upper``)."""
    from skimage.filters import threshold_otsu

    values = hema[hema > 0.05]
    lo, hi = NUCLEUS_THRESHOLD_RANGE
    hi = min(hi, upper)
    if values.size < 100 or float(values.max()) <= float(values.min()):
        return hi
    return float(np.clip(threshold_otsu(values), min(lo, hi), hi))


def _whole_nucleus_diameters(labels: np.ndarray) -> np.ndarray:
    """Equivalent diameters (px) of the labelled nuclei that do not touch the image edge."""
    n = int(labels.max())
    if n == 0:
        return np.zeros(0)
    areas = np.bincount(labels.ravel(), minlength=n + 1)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    keep = areas > 0
    keep[edge] = False
    keep[0] = False
    return np.sqrt(4.0 * areas[keep] / math.pi)


def _hematoxylin(rgb: np.ndarray, settings: NucleiSettings | None) -> tuple[np.ndarray, NucleiSettings]:
    """The hematoxylin OD of an image (central crop, its own white point and stain vectors) and the nucleus
    settings with the image's threshold."""
    from .stain import deconvolve, estimate_stain_vectors

    arr = _central_crop(as_rgb_uint8(rgb, "rgb"), MAX_PIXELS)
    settings = NucleiSettings() if settings is None else settings
    bg, _ = white_point(arr)
    stains = estimate_stain_vectors(arr, background=np.clip(bg, 1.5, 255.0))
    hema = deconvolve(arr, stains).hematoxylin
    return hema, replace(settings, threshold_od=_hematoxylin_threshold(hema, settings.threshold_od))


def nucleus_diameters(rgb: np.ndarray, mpp: float, *, settings: NucleiSettings | None = None) -> np.ndarray:
    """Equivalent diameters (pixels) of the whole nuclei of an image segmented at ``mpp``, as
    :func:`estimate_resolution` measures them (the calibration of :data:`NUCLEUS_DIAMETER_UM` uses it at the
    known resolution).

    Parameters
    ----------
    rgb : (H, W, 3) uint8
    mpp : float
        The resolution the segmentation's lengths are taken at.
    settings : NucleiSettings, optional

    Returns
    -------
    (n,) float64

    Examples
    --------
    >>> import numpy as np
    >>> nucleus_diameters(np.full((32, 32, 3), 250, np.uint8), 0.5).size
    0
    """
    from .nuclei import segment_nuclei

    hema, settings = _hematoxylin(rgb, settings)
    return _whole_nucleus_diameters(segment_nuclei(hema, as_positive_float(mpp, "mpp"), settings=settings))


def estimate_resolution(
    rgb: np.ndarray,
    *,
    path: str | Path | None = None,
    settings: NucleiSettings | None = None,
    seed: int = 0,
) -> ResolutionEstimate:
    """Micrometres per pixel of an image of HER2 IHC tissue, from the size of its nuclei.

    Parameters
    ----------
    rgb : (H, W, 3) uint8
        The image (any white balance; a central crop of :data:`MAX_PIXELS` pixels is measured).
    path : str or Path, optional
        Named in the error message.
    settings : NucleiSettings, optional
        The nucleus segmentation (default ``NucleiSettings()``, the pipeline's); its ``threshold_od`` is the
        upper end of the image's own threshold.
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    ResolutionEstimate

    Raises
    ------
    MissingResolutionError
        Fewer than :data:`MIN_NUCLEI` whole nuclei (glass, a blank or non-tissue image, tissue too pale or too
        small to hold nuclei), or nuclei whose size leaves the plausible resolutions; the message names the
        image and says to pass ``mpp=`` (``--mpp``).

    Examples
    --------
    >>> import numpy as np
    >>> estimate_resolution(np.full((64, 64, 3), 250, np.uint8), path="glass.png")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    her2fast.errors.MissingResolutionError: cannot estimate the resolution of glass.png from its nuclei: ...
    """
    from .nuclei import segment_nuclei

    name = "the image" if path is None else str(path)
    fix = (
        "pass the resolution with mpp= (her2fast score --mpp UM_PER_PX), e.g. 0.25 for a 40x objective or 0.5 "
        "for 20x on a typical camera"
    )
    hema, settings = _hematoxylin(rgb, settings)
    mpp = START_MPP
    diam = np.zeros(0)
    iterations = 0
    while iterations < MAX_ITERATIONS:
        iterations += 1
        diam = _whole_nucleus_diameters(segment_nuclei(hema, mpp, settings=settings))
        if diam.size < MIN_NUCLEI:
            break
        new = NUCLEUS_DIAMETER_UM / float(np.quantile(diam, NUCLEUS_QUANTILE))
        new = float(np.clip(new, 0.05, 5.0))
        moved = abs(new / mpp - 1.0)
        mpp = new
        if moved < 0.01:
            break
    if diam.size < MIN_NUCLEI:
        raise MissingResolutionError(
            f"cannot estimate the resolution of {name} from its nuclei: {diam.size} whole nuclei found, at "
            f"least {MIN_NUCLEI} are needed (is it brightfield HER2 IHC tissue, in focus?); {fix}"
        )
    q = float(np.quantile(diam, NUCLEUS_QUANTILE))
    rng = np.random.default_rng(seed)
    boot = np.quantile(rng.choice(diam, size=(BOOTSTRAP, diam.size), replace=True), NUCLEUS_QUANTILE, axis=1)
    sampling = float(np.std(boot) / q)
    mpp = NUCLEUS_DIAMETER_UM / q
    if not 0.05 <= mpp <= 5.0:
        raise MissingResolutionError(
            f"cannot estimate the resolution of {name} from its nuclei: their size ({q:.1f} px) gives "
            f"{mpp:.3g} um/px, outside the resolutions her2fast reads; {fix}"
        )
    total = math.hypot(sampling, CALIBRATION_SPREAD)
    return ResolutionEstimate(mpp, total, sampling, int(diam.size), q, iterations)
