"""Superpixels of an image and their features for the epithelium classifier.

Resolution
----------
:data:`EPITHELIUM_MPP` = 2 um/px. At 2 um/px a tumour nucleus (7-12 um) is 4-6 pixels across, enough for
the LBP (radius 1 px) to see nuclear texture and for the colour histograms to see nuclear density, and a
superpixel of ~20 um (about 10 x 10 px, 1-4 cells) follows the outline of tumour nests (90-160 um). It is
16x fewer pixels than 0.5 um/px and 4x fewer than 1 um/px: a 40,000 x 40,000 slide at 0.25 um/px is
5,000 x 5,000 px here, which SLIC and the feature kernel process in a few seconds. Measured on held-out
phantoms, 1 um/px is *less* accurate (superpixel accuracy 0.96 vs 0.97 with 30 um superpixels): the colour
histograms of single nuclei vs cytoplasm are noisier than those of small groups of cells
(``docs/epithelium.md``).

Features (:func:`superpixel_features`)
--------------------------------------
Default (``EpitheliumSettings.colour_histograms = "stain"``, 46 features): 16-bin histograms of the
hematoxylin and DAB optical densities from colour deconvolution with the slide's
:class:`~her2fast.stages.stain.StainVectors` (measured against the slide's glass), the native kernel's (P + 2)-bin
uniform LBP histogram (P = 8, R = 1) of the image white-balanced to the glass, plus four stain features:
mean hematoxylin and DAB optical density, the fraction of pixels with hematoxylin OD above 0.3 (nuclear
density), and the standard deviation of the hematoxylin OD. ``"rgb"`` (238 features) uses the native
kernel's 224-bin colour histogram (R, G, B, H, S, V, grey, 32 bins each; the paper's colour histograms)
in place of the stain histograms: on held-out phantoms of several seeds those follow each slide's white
balance, stain hue and tissue tint (``docs/epithelium.md``). All histograms are normalised per
superpixel; the superpixel's pixel count is not used (it depends on where the tissue mask or a chunk edge
cuts it, not on the tissue).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..._validate import as_int, as_non_negative_float, as_positive_float, as_rgb_uint8
from ...errors import InvalidInputError
from .. import superpixels as _sp
from ..stain import StainVectors, deconvolve

#: Default resolution of the epithelium classification (um/px).
EPITHELIUM_MPP = 2.0
#: The glass level every channel is scaled to when ``EpitheliumSettings.white_balance`` is set.
WHITE_REFERENCE = 250.0
#: ``EpitheliumSettings.colour_histograms`` choices.
COLOUR_HISTOGRAMS = ("stain", "rgb")
#: Bins of each stain histogram and the optical density (natural log) its last bin opens at.
STAIN_BINS = 16
STAIN_OD_MAX = 1.2

#: Hematoxylin optical density above which a pixel counts as nuclear (the ``nuclear_fraction`` feature).
_H_NUCLEAR_OD = 0.3


# ------------------------------------------------------------------------------------------ settings
@dataclass(frozen=True)
class EpitheliumSettings:
    """How superpixels and their features are made (stored with a model; training and use must agree).

    Attributes
    ----------
    mpp : float
        Resolution of the classification (um/px), default :data:`EPITHELIUM_MPP`.
    superpixel_um : float
        Side of a typical superpixel in micrometres (area ``superpixel_um**2``).
    compactness : float
        SLIC compactness.
    max_num_iter : int
        SLIC iterations.
    lbp_points : int
        Uniform-LBP neighbours P.
    lbp_radius : float
        Uniform-LBP radius R in pixels.
    chunk_size : int
        Side of the square blocks (pixels at ``mpp``) a slide is processed in.
    white_balance : bool
        Scale each RGB channel so the slide's glass (``StainVectors.background``) reads
        :data:`WHITE_REFERENCE` before the colour histograms: without it a scanner's white balance a few
        levels off moves near-white stroma between histogram bins (a phantom whose glass was
        (248, 252, 247) had 78 % of its stroma called epithelium). Models saved before this setting
        existed load with ``False``.
    colour_histograms : {"stain", "rgb"}
        ``"stain"`` (default): 16-bin histograms of the hematoxylin and DAB optical densities from the
        slide's own stain vectors (0 to :data:`STAIN_OD_MAX`, the last bin open); ``"rgb"``: the native
        kernel's 224-bin R, G, B, H, S, V, grey histograms (the paper's colour histograms; models saved
        before this setting existed load with it). On 20 held-out phantom slides of four seeds the stain
        histograms are the more robust (superpixel accuracy of pure superpixels 0.987, lowest slide 0.976,
        against 0.974 / 0.916: raw colours follow each slide's stain hue and tissue tint;
        ``docs/epithelium.md``).
    decision_smoothing_um : float
        Standard deviation (um) of the Gaussian the per-pixel SVM decision values are averaged over, inside
        the tissue, before the sign makes the epithelium mask; 0 keeps each superpixel's own decision (models
        saved before this setting existed load with 0). A superpixel whose decision sits near 0 then follows
        its neighbours, so the mask does not flip at nest borders when a scanner's tone curve, a JPEG
        re-save or a slight defocus moves the superpixel outlines (``docs/epithelium.md``).
    """

    mpp: float = EPITHELIUM_MPP
    superpixel_um: float = 20.0
    compactness: float = 10.0
    max_num_iter: int = 10
    lbp_points: int = 8
    lbp_radius: float = 1.0
    chunk_size: int = 1024
    white_balance: bool = True
    colour_histograms: str = "stain"
    decision_smoothing_um: float = 0.0

    def __post_init__(self) -> None:
        as_positive_float(self.mpp, "mpp")
        as_positive_float(self.superpixel_um, "superpixel_um")
        as_positive_float(self.compactness, "compactness")
        as_int(self.max_num_iter, "max_num_iter", 1)
        as_int(self.lbp_points, "lbp_points", 1, 32)
        as_positive_float(self.lbp_radius, "lbp_radius")
        as_int(self.chunk_size, "chunk_size", 64, 16384)
        if not isinstance(self.white_balance, (bool, np.bool_)):
            raise InvalidInputError(f"white_balance must be True or False, got {self.white_balance!r}")
        object.__setattr__(self, "white_balance", bool(self.white_balance))  # JSON-safe
        object.__setattr__(
            self, "decision_smoothing_um", as_non_negative_float(self.decision_smoothing_um, "decision_smoothing_um")
        )
        if self.colour_histograms not in COLOUR_HISTOGRAMS:
            raise InvalidInputError(
                f"colour_histograms must be one of {COLOUR_HISTOGRAMS}, got {self.colour_histograms!r}"
            )

    @property
    def superpixel_px(self) -> float:
        """Area of a typical superpixel in pixels at :attr:`mpp`."""
        return (self.superpixel_um / self.mpp) ** 2

    def feature_names(self) -> list[str]:
        """Names of the classifier's feature columns."""
        native = _sp.feature_names(self.lbp_points)[:-1]  # colour histograms, LBP histogram (count dropped)
        if self.colour_histograms == "rgb":
            return native + extra_feature_names()
        stain = [f"{name}_od_{i:02d}" for name in ("hematoxylin", "dab") for i in range(STAIN_BINS)]
        return stain + native[_sp.COLOUR_BINS :] + extra_feature_names()


def extra_feature_names() -> list[str]:
    """Names of the four stain features appended after the colour (stain or RGB) and LBP histograms."""
    return ["mean_hematoxylin_od", "mean_dab_od", "nuclear_fraction", "std_hematoxylin_od"]


# ------------------------------------------------------------------------------------------ features
@dataclass
class SuperpixelFeatures:
    """Superpixels of an image and one feature row per superpixel.

    Attributes
    ----------
    labels : (H, W) int32
        Superpixel of each pixel, 0..K-1; -1 outside the mask.
    features : (K, D) float64
        Columns :meth:`EpitheliumSettings.feature_names`.
    n_pixels : (K,) int64
        Pixels per superpixel.
    """

    labels: np.ndarray
    features: np.ndarray
    n_pixels: np.ndarray

    def __len__(self) -> int:
        return int(self.n_pixels.size)


def white_balanced(image: np.ndarray, background: np.ndarray) -> np.ndarray:
    """An RGB uint8 image with each channel scaled so ``background`` (the glass colour) reads
    :data:`WHITE_REFERENCE` (rounded, clipped to 0..255; one look-up table per channel)."""
    image = as_rgb_uint8(image)
    bg = np.asarray(background, np.float64).reshape(-1)
    if bg.size != 3 or not np.all(np.isfinite(bg)) or np.any(bg < 100) or np.any(bg > 255.5):
        raise InvalidInputError(f"background must be three RGB glass levels in 100..255, got {background!r}")
    levels = np.arange(256, dtype=np.float64)
    out = np.empty_like(image)
    for c in range(3):
        lut = np.clip(np.rint(levels * (WHITE_REFERENCE / bg[c])), 0, 255).astype(np.uint8)
        out[..., c] = lut[image[..., c]]
    return out


def _stain_histogram(lab: np.ndarray, od: np.ndarray, k: int, cnt: np.ndarray) -> np.ndarray:
    """(k, STAIN_BINS) per-superpixel histogram of an optical density, normalised by the pixel count."""
    b = np.clip(np.floor(od * (STAIN_BINS / STAIN_OD_MAX)), 0, STAIN_BINS - 1).astype(np.int64)
    return np.bincount(lab * STAIN_BINS + b, minlength=k * STAIN_BINS).reshape(k, STAIN_BINS) / cnt[:, None]


def superpixel_features(
    image: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    settings: EpitheliumSettings | None = None,
    stains: StainVectors | None = None,
) -> SuperpixelFeatures:
    """SLIC superpixels of an image at the settings' resolution and their classifier features.

    Parameters
    ----------
    image : (H, W, 3) uint8
        RGB at ``settings.mpp``.
    mask : (H, W) bool, optional
        Where to make superpixels (the tissue); default everywhere.
    settings : EpitheliumSettings, optional
    stains : StainVectors, optional
        The slide's stain vectors and glass colour (``background``), as :func:`her2fast.stages.stain.slide_stain_vectors`
        gives them. Default: the standard Ruifrok-Johnston vectors with the glass at 255 -- the optical
        densities (and the white balance) are then measured against 255 whatever the scan's real glass
        is; the shipped model is sensitive to a glass level a few percent off (its model card), so pass
        the slide's vectors where they are known.

    Returns
    -------
    SuperpixelFeatures
    """
    img = as_rgb_uint8(image)
    settings = settings or EpitheliumSettings()
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != img.shape[:2] or mask.dtype != np.bool_:
            raise InvalidInputError(
                f"mask must be a boolean array of shape {img.shape[:2]}, got {mask.shape} {mask.dtype}"
            )
        area = int(mask.sum())
    else:
        area = img.shape[0] * img.shape[1]
    d = len(settings.feature_names())
    if area == 0:
        return SuperpixelFeatures(np.full(img.shape[:2], -1, np.int32), np.zeros((0, d)), np.zeros(0, np.int64))
    n_segments = max(1, int(round(area / settings.superpixel_px)))
    # superpixels and histograms see the white-balanced colours; the stain features deconvolve the
    # original pixels against the glass (the same optical densities)
    stains = stains or StainVectors.standard()
    seen = white_balanced(img, stains.background) if settings.white_balance else img
    labels = _sp.slic(seen, n_segments, settings.compactness, settings.max_num_iter, mask=mask)
    k = int(labels.max()) + 1
    native = _sp.superpixel_features(seen, labels, P=settings.lbp_points, R=settings.lbp_radius, n_labels=k)
    n_pixels = native[:, -1].astype(np.int64)
    conc = deconvolve(img, stains)
    inside = labels >= 0
    lab = labels[inside]
    h = conc.hematoxylin[inside].astype(np.float64)
    dab = conc.dab[inside].astype(np.float64)
    cnt = np.maximum(n_pixels, 1).astype(np.float64)
    mean_h = np.bincount(lab, h, k) / cnt
    mean_d = np.bincount(lab, dab, k) / cnt
    nuc = np.bincount(lab, (h > _H_NUCLEAR_OD).astype(np.float64), k) / cnt
    var_h = np.maximum(np.bincount(lab, h * h, k) / cnt - mean_h**2, 0.0)
    if settings.colour_histograms == "rgb":
        colour = [native[:, :-1]]
    else:
        colour = [_stain_histogram(lab, h, k, cnt), _stain_histogram(lab, dab, k, cnt), native[:, _sp.COLOUR_BINS : -1]]
    features = np.column_stack([*colour, mean_h, mean_d, nuc, np.sqrt(var_h)])
    return SuperpixelFeatures(labels, features, n_pixels)
