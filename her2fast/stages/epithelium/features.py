"""Epithelium vs stroma: SLIC superpixels, colour + texture features, an RBF-SVM; which tiles go on.

HER2 is scored on invasive tumour (epithelial) cells only. Following Vandenberghe et al. the slide is cut
into superpixels at a medium resolution, each superpixel is described by colour histograms and a uniform
LBP texture histogram, and an RBF support vector machine says epithelium or stroma. The epithelium mask
then decides which working-resolution tiles go on to membrane segmentation.

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

Classifier (:class:`EpitheliumModel`)
-------------------------------------
Standardised features (mean 0, variance 1 on the training set), RBF kernel
``exp(-gamma ||x - y||^2)``, trained with scikit-learn's ``SVC``. The paper's sigma = 6, i.e.
``gamma = 1 / (2 sigma^2) = 1/72``, was measured and is too narrow for the 238 RGB features; the defaults
(:func:`default_gamma`) are gamma = 0.02 for the 46 stain-histogram features and 0.001 for the 238 RGB
ones, C = 10 (tuned on phantoms, see :func:`fit_epithelium_model`). The fitted model is stored as plain
arrays (support vectors, dual coefficients, intercept, gamma, feature scaling, classes) in ``model.npz``
plus ``config.json`` (version,
settings, sha256 of the arrays) -- no pickle -- and evaluated by a numpy predictor equal to scikit-learn's.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ..._files import file_sha256
from ..._validate import as_int, as_positive_float, as_rgb_uint8
from ...errors import InvalidInputError, ModelError
from .. import superpixels as _sp
from ..stain import StainVectors, deconvolve

__all__ = [
    "EPITHELIUM_MPP",
    "MODEL_FORMAT_VERSION",
    "Annotation",
    "EpitheliumMap",
    "EpitheliumModel",
    "EpitheliumSettings",
    "EpitheliumTiles",
    "SuperpixelClassification",
    "SuperpixelFeatures",
    "TrainingSet",
    "annotated_training_set",
    "classify_image",
    "classify_slide",
    "default_model",
    "extra_feature_names",
    "fit_epithelium_model",
    "read_qupath_geojson",
    "select_tiles",
    "superpixel_features",
    "truth_training_set",
]

#: Default resolution of the epithelium classification (um/px).
EPITHELIUM_MPP = 2.0
#: Version of the stored model format (``config.json`` ``format_version``).
MODEL_FORMAT_VERSION = 1
#: Class names, in the order of the model's classes (0 = stroma, 1 = epithelium).
CLASSES = ("stroma", "epithelium")
#: QuPath class names (lower case) read as epithelium / stroma by :func:`read_qupath_geojson`.
EPITHELIUM_CLASS_NAMES = frozenset({"tumor", "tumour", "epithelium", "epithelial", "tumor epithelium",
                                    "tumour epithelium", "carcinoma", "invasive tumor", "invasive tumour"})
STROMA_CLASS_NAMES = frozenset({"stroma", "stromal", "tumor stroma", "tumour stroma"})

_H_NUCLEAR_OD = 0.3
_DEFAULT_MODEL_DIR = "epithelium_svm"


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
        if self.colour_histograms not in COLOUR_HISTOGRAMS:
            raise InvalidInputError(f"colour_histograms must be one of {COLOUR_HISTOGRAMS}, got {self.colour_histograms!r}")

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
        return stain + native[_sp.COLOUR_BINS:] + extra_feature_names()


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


#: The glass level every channel is scaled to when ``EpitheliumSettings.white_balance`` is set.
WHITE_REFERENCE = 250.0
#: ``EpitheliumSettings.colour_histograms`` choices.
COLOUR_HISTOGRAMS = ("stain", "rgb")
#: Bins of each stain histogram and the optical density (natural log) its last bin opens at.
STAIN_BINS = 16
STAIN_OD_MAX = 1.2


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
            raise InvalidInputError(f"mask must be a boolean array of shape {img.shape[:2]}, got {mask.shape} {mask.dtype}")
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
        colour = [_stain_histogram(lab, h, k, cnt), _stain_histogram(lab, dab, k, cnt), native[:, _sp.COLOUR_BINS:-1]]
    features = np.column_stack([*colour, mean_h, mean_d, nuc, np.sqrt(var_h)])
    return SuperpixelFeatures(labels, features, n_pixels)


# ------------------------------------------------------------------------------------------ model


@dataclass(frozen=True)
class EpitheliumModel:
    """A fitted RBF-SVM epithelium/stroma classifier as plain arrays, with a numpy predictor.

    ``decision_function(X) = sum_i dual_coef[i] * exp(-gamma * ||z - sv_i||^2) + intercept`` with
    ``z = (X - feature_mean) / feature_scale``; positive means ``classes[1]`` (epithelium), exactly as
    scikit-learn's ``SVC.decision_function`` on a ``StandardScaler`` pipeline.

    Attributes
    ----------
    support_vectors : (S, D) float64
        In scaled feature space.
    dual_coef : (S,) float64
    intercept : float
    gamma : float
    feature_mean, feature_scale : (D,) float64
    classes : tuple of str
        ``("stroma", "epithelium")``.
    settings : EpitheliumSettings
    metadata : dict
        Free-form provenance (training data, command, metrics) stored in ``config.json``.
    sha256 : str
        Of ``model.npz`` when loaded from or saved to disk ("" otherwise).
    """

    support_vectors: np.ndarray
    dual_coef: np.ndarray
    intercept: float
    gamma: float
    feature_mean: np.ndarray
    feature_scale: np.ndarray
    classes: tuple[str, ...] = CLASSES
    settings: EpitheliumSettings = field(default_factory=EpitheliumSettings)
    metadata: dict = field(default_factory=dict)
    sha256: str = ""

    def __post_init__(self) -> None:
        sv = np.asarray(self.support_vectors, np.float64)
        d = len(self.settings.feature_names())
        if sv.ndim != 2 or sv.shape[1] != d:
            raise ModelError(f"support_vectors must be (S, {d}) for these settings, got {sv.shape}")
        for name, shape in (("dual_coef", (sv.shape[0],)), ("feature_mean", (d,)), ("feature_scale", (d,))):
            a = np.asarray(getattr(self, name), np.float64).reshape(-1)
            if a.shape != shape or not np.all(np.isfinite(a)):
                raise ModelError(f"{name} must hold {shape[0]} finite values, got shape {a.shape}")
            object.__setattr__(self, name, a)
        if np.any(self.feature_scale <= 0):
            raise ModelError("feature_scale must be > 0")
        object.__setattr__(self, "support_vectors", np.ascontiguousarray(sv))
        object.__setattr__(self, "_sv_sq", np.einsum("ij,ij->i", sv, sv))

    @property
    def n_features(self) -> int:
        return int(self.support_vectors.shape[1])

    def decision_function(self, features: np.ndarray, *, batch: int = 4096) -> np.ndarray:
        """Signed distance to the boundary per row of ``features`` ((N, D) -> (N,) float64; > 0 = epithelium)."""
        x = np.asarray(features, np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise InvalidInputError(f"features must be (N, {self.n_features}), got {x.shape}")
        out = np.empty(x.shape[0], np.float64)
        sv, sv_sq = self.support_vectors, self._sv_sq  # type: ignore[attr-defined]
        for s in range(0, x.shape[0], batch):
            z = (x[s : s + batch] - self.feature_mean) / self.feature_scale
            d2 = np.einsum("ij,ij->i", z, z)[:, None] + sv_sq[None, :] - 2.0 * (z @ sv.T)
            np.maximum(d2, 0.0, out=d2)
            out[s : s + batch] = np.exp(-self.gamma * d2) @ self.dual_coef + self.intercept
        return out

    def predict(self, features: np.ndarray) -> np.ndarray:
        """True where a row is epithelium."""
        return self.decision_function(features) > 0

    # ---------------------------------------------------------------------------- storage
    def save(self, folder: str | Path, *, extra_metadata: dict | None = None) -> EpitheliumModel:
        """Write ``model.npz`` (arrays) and ``config.json`` (settings, version, sha256) to ``folder``.

        Returns the model with :attr:`sha256` set.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        npz = folder / "model.npz"
        np.savez_compressed(
            npz,
            support_vectors=self.support_vectors,
            dual_coef=self.dual_coef,
            intercept=np.array([self.intercept]),
            gamma=np.array([self.gamma]),
            feature_mean=self.feature_mean,
            feature_scale=self.feature_scale,
        )
        digest = file_sha256(npz)
        meta = dict(self.metadata)
        meta.update(extra_metadata or {})
        config = {
            "name": "epithelium_svm",
            "format_version": MODEL_FORMAT_VERSION,
            "kind": "rbf-svm",
            "classes": list(self.classes),
            "settings": asdict(self.settings),
            "feature_names": self.settings.feature_names(),
            "n_support_vectors": int(self.support_vectors.shape[0]),
            "gamma": self.gamma,
            "arrays": "model.npz",
            "sha256": digest,
            "metadata": meta,
        }
        (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        return replace(self, metadata=meta, sha256=digest)

    @classmethod
    def load(cls, folder: str | Path) -> EpitheliumModel:
        """Read a model written by :meth:`save` (checks the format version and the sha256)."""
        folder = Path(folder)
        cfg_path = folder / "config.json"
        if not cfg_path.is_file():
            raise ModelError(f"{cfg_path} is missing: an epithelium model folder holds config.json and model.npz")
        try:
            cfg = json.loads(cfg_path.read_text())
        except (OSError, ValueError) as exc:
            raise ModelError(f"{cfg_path} is not valid JSON ({exc}); re-train or re-install the model") from None
        if cfg.get("format_version") != MODEL_FORMAT_VERSION:
            raise ModelError(
                f"{cfg_path} has format_version {cfg.get('format_version')!r}; this her2fast reads version "
                f"{MODEL_FORMAT_VERSION}: re-train with `her2fast train-epithelium`"
            )
        npz = folder / str(cfg.get("arrays", "model.npz"))
        if not npz.is_file():
            raise ModelError(f"{npz} is missing (named by {cfg_path})")
        digest = file_sha256(npz)
        if digest != cfg.get("sha256"):
            raise ModelError(f"{npz} does not match the sha256 in {cfg_path} (corrupt or replaced); re-install it")
        try:
            # models saved before the white-balance setting existed computed raw histograms
            settings = EpitheliumSettings(**{"white_balance": False, "colour_histograms": "rgb", **cfg["settings"]})
            with np.load(npz, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            return cls(
                support_vectors=arrays["support_vectors"],
                dual_coef=arrays["dual_coef"],
                intercept=float(arrays["intercept"][0]),
                gamma=float(arrays["gamma"][0]),
                feature_mean=arrays["feature_mean"],
                feature_scale=arrays["feature_scale"],
                classes=tuple(cfg["classes"]),
                settings=settings,
                metadata=dict(cfg.get("metadata", {})),
                sha256=digest,
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ModelError):
                raise
            raise ModelError(f"{folder} holds an incomplete or inconsistent epithelium model: {exc}") from None


_DEFAULT: EpitheliumModel | None = None


def default_model() -> EpitheliumModel:
    """The shipped model (``her2fast/models/epithelium_svm``), or the folder in ``$HER2FAST_EPITHELIUM_MODEL``."""
    global _DEFAULT
    override = os.environ.get("HER2FAST_EPITHELIUM_MODEL")
    if override:
        return EpitheliumModel.load(override)
    if _DEFAULT is None:
        from importlib.resources import files

        _DEFAULT = EpitheliumModel.load(Path(str(files("her2fast") / "models" / _DEFAULT_MODEL_DIR)))
    return _DEFAULT


# ------------------------------------------------------------------------------------------ one image
@dataclass
class SuperpixelClassification:
    """Epithelium classification of one image.

    Attributes
    ----------
    labels : (H, W) int32
        Superpixels (-1 outside the mask).
    decision : (K,) float64
        SVM decision value per superpixel (> 0 epithelium).
    epithelium_mask : (H, W) bool
    """

    labels: np.ndarray
    decision: np.ndarray
    epithelium_mask: np.ndarray

    @property
    def is_epithelium(self) -> np.ndarray:
        """(K,) bool per superpixel."""
        return self.decision > 0


def classify_image(
    image: np.ndarray,
    model: EpitheliumModel | None = None,
    *,
    mask: np.ndarray | None = None,
    stains: StainVectors | None = None,
) -> SuperpixelClassification:
    """Epithelium mask of an RGB image already at ``model.settings.mpp``.

    Parameters
    ----------
    image : (H, W, 3) uint8
    model : EpitheliumModel, optional
        Default :func:`default_model`.
    mask : (H, W) bool, optional
        Tissue (default everywhere).
    stains : StainVectors, optional
        The slide's vectors and glass colour (default: standard vectors, glass at 255; see
        :func:`superpixel_features`).
    """
    model = model or default_model()
    sf = superpixel_features(image, mask=mask, settings=model.settings, stains=stains)
    decision = model.decision_function(sf.features) if len(sf) else np.zeros(0)
    lut = np.concatenate([[False], decision > 0])
    return SuperpixelClassification(sf.labels, decision, lut[sf.labels + 1])


# ------------------------------------------------------------------------------------------ slides
@dataclass
class EpitheliumMap:
    """Epithelium and tissue masks of a whole slide at the classification resolution.

    Attributes
    ----------
    epithelium_mask : (H, W) bool
        Pixel ``(i, j)`` covers level-0 ``[j*sx, (j+1)*sx) x [i*sy, (i+1)*sy)``, ``(sx, sy) = level0_per_pixel``.
    tissue_mask : (H, W) bool
        The tissue the superpixels were made in (the :class:`~her2fast.stages.tissue.TissueMask` at this grid).
    mpp : float
    level0_per_pixel : (float, float)
    n_superpixels : int
    stains : StainVectors
    model_sha256 : str
    seconds : float
        Wall time of :func:`classify_slide`.
    """

    epithelium_mask: np.ndarray
    tissue_mask: np.ndarray
    mpp: float
    level0_per_pixel: tuple[float, float]
    n_superpixels: int
    stains: StainVectors
    model_sha256: str
    seconds: float = 0.0

    @property
    def epithelium_fraction(self) -> float:
        """Epithelium share of the tissue."""
        t = int(self.tissue_mask.sum())
        return float((self.epithelium_mask & self.tissue_mask).sum()) / t if t else 0.0


def _chunks(width: int, height: int, size: int) -> list[tuple[int, int, int, int]]:
    return [(x, y, min(size, width - x), min(size, height - y)) for y in range(0, height, size) for x in range(0, width, size)]


def _tissue_on_grid(tissue: object, shape: tuple[int, int], level0_per_pixel: tuple[float, float],
                    x0: int = 0, y0: int = 0) -> np.ndarray:
    """The tissue mask sampled (nearest) at the centres of a block of the medium grid."""
    tm = tissue.mask  # type: ignore[attr-defined]
    tsx, tsy = tissue.level0_per_pixel  # type: ignore[attr-defined]
    sx, sy = level0_per_pixel
    h, w = shape
    cols = np.floor((x0 + np.arange(w) + 0.5) * sx / tsx).astype(np.int64)
    rows = np.floor((y0 + np.arange(h) + 0.5) * sy / tsy).astype(np.int64)
    okc = (cols >= 0) & (cols < tm.shape[1])
    okr = (rows >= 0) & (rows < tm.shape[0])
    out = tm[np.clip(rows, 0, tm.shape[0] - 1)][:, np.clip(cols, 0, tm.shape[1] - 1)]
    return out & okr[:, None] & okc[None, :]


def _slide_blocks(slide: object, tissue: object, settings: EpitheliumSettings, stains: StainVectors | None,
                  workers: int) -> tuple[tuple[int, int], tuple[float, float], Iterator]:
    """Superpixel features of every block of the medium grid that holds tissue (thread pool, in order)."""
    from ...io.slide import Slide
    from ..tissue import TissueMask

    if not isinstance(slide, Slide):
        raise InvalidInputError(f"slide must be a her2fast.io.slide.Slide (from open_slide), got {type(slide).__name__}")
    if not isinstance(tissue, TissueMask):
        raise InvalidInputError(f"tissue must be a TissueMask (from detect_tissue), got {type(tissue).__name__}")
    mpp = settings.mpp
    width, height = slide.size_at(mpp)
    l0 = (mpp / slide.mpp_x, mpp / slide.mpp_y)
    blocks = []
    for x, y, w, h in _chunks(width, height, settings.chunk_size):
        m = _tissue_on_grid(tissue, (h, w), l0, x, y)
        if m.any():
            blocks.append((x, y, w, h, m))

    def work(b: tuple) -> tuple:
        x, y, w, h, m = b
        rgb = slide.read(x * l0[0], y * l0[1], w, h, mpp)
        return x, y, m, superpixel_features(rgb, mask=m, settings=settings, stains=stains)

    def run() -> Iterator:
        if workers <= 1:
            yield from map(work, blocks)
            return
        with ThreadPoolExecutor(max_workers=workers) as pool:
            yield from pool.map(work, blocks)

    return (width, height), l0, run()


def classify_slide(
    slide: object,
    tissue: object,
    model: EpitheliumModel | None = None,
    *,
    stains: StainVectors | None = None,
    workers: int | None = None,
) -> EpitheliumMap:
    """Classify the tissue of a slide into epithelium and stroma at ``model.settings.mpp``.

    The slide is read at the model's resolution in square blocks (``settings.chunk_size``) that hold
    tissue; each block gets its own superpixels (inside the tissue mask), features and SVM decisions, on a
    thread pool (the native kernels release the GIL).

    Parameters
    ----------
    slide : her2fast.io.slide.Slide
    tissue : her2fast.stages.tissue.TissueMask
        From :func:`her2fast.stages.tissue.detect_tissue` on the same slide.
    model : EpitheliumModel, optional
        Default :func:`default_model`.
    stains : StainVectors, optional
        The slide's vectors (:func:`her2fast.stages.stain.slide_stain_vectors`); default standard.
    workers : int, optional
        Threads (default: the CPU count, at most 4).

    Returns
    -------
    EpitheliumMap
    """
    t0 = time.perf_counter()
    model = model or default_model()
    if not isinstance(model, EpitheliumModel):
        raise InvalidInputError(f"model must be an EpitheliumModel, got {type(model).__name__}")
    workers = min(4, os.cpu_count() or 1) if workers is None else as_int(workers, "workers", 1, 64)
    stains = stains or StainVectors.standard(getattr(tissue, "background", None))
    (width, height), l0, results = _slide_blocks(slide, tissue, model.settings, stains, workers)
    epi = np.zeros((height, width), bool)
    tis = np.zeros((height, width), bool)
    n_sp = 0
    for x, y, m, sf in results:
        h, w = m.shape
        tis[y : y + h, x : x + w] = m
        if len(sf):
            lut = np.concatenate([[False], model.decision_function(sf.features) > 0])
            epi[y : y + h, x : x + w] = lut[sf.labels + 1]
            n_sp += len(sf)
    return EpitheliumMap(epi, tis, model.settings.mpp, l0, n_sp, stains, model.sha256, time.perf_counter() - t0)


@dataclass
class EpitheliumTiles:
    """The tiles that go on to membrane segmentation.

    Attributes
    ----------
    grid : her2fast.stages.tissue.TileGrid
        The input grid restricted to tiles with enough epithelium (same geometry; ``occupancy`` unchanged).
    epithelium_fraction : (N,) float32
        Epithelium fraction of each kept tile's core.
    all_epithelium_fraction : (M,) float32
        Epithelium fraction of every tile of the input grid.
    min_epithelium : float
    """

    grid: object
    epithelium_fraction: np.ndarray
    all_epithelium_fraction: np.ndarray
    min_epithelium: float

    def __len__(self) -> int:
        return int(self.epithelium_fraction.size)


def select_tiles(grid: object, epithelium: EpitheliumMap, *, min_epithelium: float = 0.05) -> EpitheliumTiles:
    """Keep the tiles of ``grid`` whose core is at least ``min_epithelium`` epithelium.

    Parameters
    ----------
    grid : her2fast.stages.tissue.TileGrid
    epithelium : EpitheliumMap
        Of the same slide.
    min_epithelium : float
        In [0, 1]; 0 keeps tiles with any epithelium.
    """
    from ..tissue import TileGrid, _area_fractions

    if not isinstance(grid, TileGrid):
        raise InvalidInputError(f"grid must be a TileGrid (from tile_grid), got {type(grid).__name__}")
    if not isinstance(epithelium, EpitheliumMap):
        raise InvalidInputError(f"epithelium must be an EpitheliumMap (from classify_slide), got {type(epithelium).__name__}")
    try:
        min_epithelium = float(min_epithelium)
    except (TypeError, ValueError):
        raise InvalidInputError(f"min_epithelium must be a number in [0, 1], got {min_epithelium!r}") from None
    if not 0.0 <= min_epithelium <= 1.0:
        raise InvalidInputError(f"min_epithelium must be in [0, 1], got {min_epithelium}")
    # core bounds: working px -> level 0 -> epithelium px
    b = grid.to_level0(grid.cores)
    sx, sy = epithelium.level0_per_pixel
    frac = _area_fractions(epithelium.epithelium_mask, b[:, 0] / sx, b[:, 1] / sy, b[:, 2] / sx, b[:, 3] / sy)
    frac = frac.astype(np.float32)
    keep = frac > 0 if min_epithelium == 0 else frac >= min_epithelium - 1e-6
    sub = replace(grid, cols=grid.cols[keep], rows=grid.rows[keep], tissue_fraction=grid.tissue_fraction[keep])
    return EpitheliumTiles(sub, frac[keep], frac, min_epithelium)


# ------------------------------------------------------------------------------------------ annotations
@dataclass(frozen=True)
class Annotation:
    """One classified polygon of a QuPath GeoJSON export (level-0 pixel coordinates).

    Attributes
    ----------
    label : {"epithelium", "stroma"}
    rings : tuple of (N, 2) float64
        Exterior ring first, then holes, per polygon part (see ``parts``).
    parts : tuple of int
        Number of rings of each polygon part (a Polygon has one part, a MultiPolygon several).
    class_name : str
        The class name as written in the file.
    """

    label: str
    rings: tuple[np.ndarray, ...]
    parts: tuple[int, ...]
    class_name: str


def _class_name(props: object) -> str | None:
    if not isinstance(props, dict):
        return None
    c = props.get("classification")
    if isinstance(c, dict):
        name = c.get("name")
        return name if isinstance(name, str) else None
    if isinstance(c, str):
        return c
    for key in ("classification_name", "class", "label", "name"):
        if isinstance(props.get(key), str):
            return props[key]
    return None


def read_qupath_geojson(path: str | Path) -> list[Annotation]:
    """Epithelium and stroma polygons of a QuPath GeoJSON export.

    Accepts a ``FeatureCollection``, a list of ``Feature`` objects or a single ``Feature`` (QuPath's
    "Export objects as GeoJSON"). A feature's class is ``properties.classification.name`` (QuPath >= 0.2)
    or a string ``properties.classification``; names in :data:`EPITHELIUM_CLASS_NAMES` (e.g. "Tumor",
    "Epithelium") are epithelium, names in :data:`STROMA_CLASS_NAMES` stroma (case-insensitive); other
    classes and unclassified objects are ignored. Coordinates are level-0 pixels.

    Raises
    ------
    InvalidInputError
        Naming the file and the problem: missing file, not JSON, not GeoJSON features, a polygon with fewer
        than 3 points or non-numeric coordinates, or no epithelium/stroma polygon at all.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"annotation file {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidInputError(f"annotation file {path} is not valid JSON ({exc}); export it from QuPath with "
                                "File > Export objects as GeoJSON") from None
    if isinstance(data, dict) and data.get("type") == "FeatureCollection":
        features = data.get("features")
    elif isinstance(data, dict) and data.get("type") == "Feature":
        features = [data]
    elif isinstance(data, list):
        features = data
    else:
        raise InvalidInputError(f"annotation file {path} is not GeoJSON features: expected a FeatureCollection, a "
                                "Feature or a list of Features")
    if not isinstance(features, list):
        raise InvalidInputError(f"annotation file {path}: 'features' must be a list")
    out: list[Annotation] = []
    seen: dict[str, int] = {}
    for i, feat in enumerate(features):
        if not isinstance(feat, dict) or not isinstance(feat.get("geometry"), dict):
            raise InvalidInputError(f"annotation file {path}: feature {i} has no geometry object")
        name = _class_name(feat.get("properties"))
        key = (name or "").strip().lower()
        label = "epithelium" if key in EPITHELIUM_CLASS_NAMES else "stroma" if key in STROMA_CLASS_NAMES else None
        seen[name or "<unclassified>"] = seen.get(name or "<unclassified>", 0) + 1
        if label is None:
            continue
        geom = feat["geometry"]
        gtype = geom.get("type")
        coords = geom.get("coordinates")
        if gtype == "Polygon":
            polys = [coords]
        elif gtype == "MultiPolygon":
            polys = coords
        else:
            continue  # points, lines: not regions
        rings: list[np.ndarray] = []
        parts: list[int] = []
        try:
            for poly in polys:
                rs = [np.asarray(r, np.float64) for r in poly]
                for r in rs:
                    if r.ndim != 2 or r.shape[1] < 2 or r.shape[0] < 3 or not np.all(np.isfinite(r)):
                        raise ValueError("a ring needs at least 3 points of 2 finite numbers")
                rings.extend(r[:, :2] for r in rs)
                parts.append(len(rs))
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"annotation file {path}: feature {i} ({name}) has an invalid {gtype}: {exc}") from None
        if rings:
            out.append(Annotation(label, tuple(rings), tuple(parts), name or ""))
    if not out:
        found = ", ".join(f"{k} ({v})" for k, v in seen.items()) or "no features"
        raise InvalidInputError(
            f"annotation file {path} holds no epithelium or stroma polygons (found: {found}); classify polygons as "
            f"e.g. 'Tumor' or 'Epithelium' and 'Stroma' in QuPath"
        )
    return out


def rasterize_annotations(annotations: Sequence[Annotation], shape: tuple[int, int],
                          level0_per_pixel: tuple[float, float]) -> np.ndarray:
    """Label image (int8: -1 unlabelled, 0 stroma, 1 epithelium) of annotations on a grid.

    Stroma is drawn first, epithelium over it (an epithelium polygon inside a stroma one wins); holes
    are cleared to unlabelled.
    """
    from PIL import Image, ImageDraw

    h, w = shape
    sx, sy = level0_per_pixel
    canvas = Image.new("L", (w, h), 0)  # 0 unlabelled, 1 stroma, 2 epithelium
    draw = ImageDraw.Draw(canvas)
    for value, label in ((1, "stroma"), (2, "epithelium")):
        for a in annotations:
            if a.label != label:
                continue
            k = 0
            for n in a.parts:
                for j, ring in enumerate(a.rings[k : k + n]):
                    pts = [(float(x) / sx - 0.5, float(y) / sy - 0.5) for x, y in ring]
                    draw.polygon(pts, fill=value if j == 0 else 0)
                k += n
    return np.asarray(canvas, np.int8) - 1


# ------------------------------------------------------------------------------------------ training
@dataclass
class TrainingSet:
    """Superpixel features with labels, for :func:`fit_epithelium_model`.

    Attributes
    ----------
    features : (N, D) float64
    labels : (N,) bool
        True = epithelium.
    truth_fraction : (N,) float64
        Epithelium fraction of each superpixel in the ground truth (1 or 0 for clean superpixels).
    source : (N,) int32
        Index into ``sources``.
    sources : list of str
        Slide paths.
    settings : EpitheliumSettings
    """

    features: np.ndarray
    labels: np.ndarray
    truth_fraction: np.ndarray
    source: np.ndarray
    sources: list[str]
    settings: EpitheliumSettings

    def __len__(self) -> int:
        return int(self.labels.size)

    @classmethod
    def concatenate(cls, sets: Sequence[TrainingSet]) -> TrainingSet:
        if not sets:
            raise InvalidInputError("no training sets to concatenate")
        settings = sets[0].settings
        if any(s.settings != settings for s in sets):
            raise InvalidInputError("training sets were made with different EpitheliumSettings")
        sources: list[str] = []
        src = []
        for s in sets:
            src.append(s.source + len(sources))
            sources.extend(s.sources)
        return cls(np.concatenate([s.features for s in sets]), np.concatenate([s.labels for s in sets]),
                   np.concatenate([s.truth_fraction for s in sets]), np.concatenate(src).astype(np.int32),
                   sources, settings)


def _labelled_superpixels(slide: object, tissue: object, truth_at: object, settings: EpitheliumSettings,
                          stains: StainVectors, workers: int, name: str,
                          background_scales: Sequence[float] = (1.0,)) -> TrainingSet:
    """Features of every superpixel of a slide and the mean of a truth map over it (NaN: unlabelled),
    once per glass level of ``background_scales`` (see :func:`_with_background`), concatenated."""
    scales = _scales(background_scales)
    if len(scales) > 1:
        return TrainingSet.concatenate([
            _labelled_superpixels(slide, tissue, truth_at, settings, _with_background(stains, s), workers, name)
            for s in scales])
    stains = _with_background(stains, scales[0])
    shape, l0, results = _slide_blocks(slide, tissue, settings, stains, workers)
    feats, fracs = [], []
    for x, y, m, sf in results:
        if not len(sf):
            continue
        truth = truth_at(x, y, m.shape, l0)  # float in [0, 1] or NaN (unlabelled)
        inside = sf.labels >= 0
        lab = sf.labels[inside]
        t = truth[inside]
        known = ~np.isnan(t)
        k = len(sf)
        n_known = np.bincount(lab[known], minlength=k).astype(np.float64)
        s = np.bincount(lab[known], t[known], minlength=k)
        frac = np.where(n_known >= 0.5 * sf.n_pixels, s / np.maximum(n_known, 1), np.nan)
        feats.append(sf.features)
        fracs.append(frac)
    d = len(settings.feature_names())
    f = np.concatenate(feats) if feats else np.zeros((0, d))
    fr = np.concatenate(fracs) if fracs else np.zeros(0)
    ok = ~np.isnan(fr)
    return TrainingSet(f[ok], fr[ok] > 0.5, fr[ok], np.zeros(int(ok.sum()), np.int32), [name], settings)


def _open_with_tissue(path: str | Path, mpp: float | None) -> tuple[object, object, StainVectors]:
    from ...io.slide import open_slide
    from ..stain import slide_stain_vectors
    from ..tissue import detect_tissue, tile_grid

    slide = open_slide(path, mpp=mpp)
    tissue = detect_tissue(slide)
    stains = slide_stain_vectors(slide, tile_grid(slide, tissue), background=tissue.background)
    return slide, tissue, stains


def truth_training_set(path: str | Path, truth_at: Callable[[int, int, tuple[int, int], tuple[float, float]], np.ndarray],
                       settings: EpitheliumSettings | None = None, *, mpp: float | None = None, workers: int = 1,
                       background_scales: Sequence[float] = (1.0,)) -> TrainingSet:
    """Labelled superpixels of a slide whose epithelium truth is known as a function of position.

    The tissue mask, the stain vectors and the superpixels are made exactly as :func:`classify_slide`
    makes them; each superpixel is labelled by the mean of the truth over its pixels (superpixels less than
    half covered by known truth are not used).

    Parameters
    ----------
    path : str or Path
        The slide.
    truth_at : callable
        ``truth_at(x, y, shape, l0) -> (H, W) float64``: the epithelium fraction (0..1, NaN where unknown)
        of the block of ``shape`` (rows, columns) whose top-left pixel is ``(x, y)`` at ``settings.mpp``;
        ``l0`` is the level-0 pixels per pixel of that grid (x, y).
    settings : EpitheliumSettings, optional
    mpp : float, optional
        um/px of level 0 for a slide without resolution metadata.
    workers : int
        Threads.
    background_scales : sequence of float
        The slide's superpixels once per factor, with the estimated glass colour
        (``StainVectors.background``) multiplied by it (augmentation: a model trained with (0.98, 1, 1.02)
        does not depend on the glass level being estimated to the percent; see :func:`_with_background`).

    Returns
    -------
    TrainingSet

    Raises
    ------
    InvalidInputError
        ``background_scales`` empty or outside 0.8..1.2.
    """
    settings = settings or EpitheliumSettings()
    slide, tissue, stains = _open_with_tissue(path, mpp)
    with slide:  # type: ignore[attr-defined]
        return _labelled_superpixels(slide, tissue, truth_at, settings, stains, workers, str(path), background_scales)


def _scales(background_scales: Sequence[float]) -> list[float]:
    scales = [as_positive_float(s, "background_scales") for s in background_scales]
    if not scales or any(not 0.8 <= s <= 1.2 for s in scales):
        raise InvalidInputError(f"background_scales must be factors in 0.8..1.2, got {list(background_scales)!r}")
    return scales


def _with_background(stains: StainVectors, scale: float) -> StainVectors:
    """The stain vectors with the glass colour scaled (capped at 255): the glass-level augmentation.

    A model trained with (0.98, 1, 1.02) keeps its epithelium map when the glass is estimated a few
    percent too dark or too bright (docs/epithelium.md).
    """
    if scale == 1.0:
        return stains
    return replace(stains, background=np.minimum(np.asarray(stains.background, np.float64) * scale, 255.0))


def annotated_training_set(slide_path: str | Path, geojson_path: str | Path, settings: EpitheliumSettings | None = None,
                           *, mpp: float | None = None, workers: int = 1,
                           background_scales: Sequence[float] = (1.0,)) -> TrainingSet:
    """Labelled superpixels of a real slide annotated in QuPath (see :func:`read_qupath_geojson`).

    Superpixels at least half covered by annotations are labelled by their majority class; the rest are
    not used. ``background_scales`` as in :func:`truth_training_set`.
    """
    settings = settings or EpitheliumSettings()
    annotations = read_qupath_geojson(geojson_path)
    slide, tissue, stains = _open_with_tissue(slide_path, mpp)
    with slide:  # type: ignore[attr-defined]
        w, h = slide.size_at(settings.mpp)  # type: ignore[attr-defined]
        l0 = (settings.mpp / slide.mpp_x, settings.mpp / slide.mpp_y)  # type: ignore[attr-defined]
        raster = rasterize_annotations(annotations, (h, w), l0)
        truth = np.where(raster < 0, np.nan, raster.astype(np.float64))

        def truth_at(x: int, y: int, shape: tuple[int, int], _l0: tuple[float, float]) -> np.ndarray:
            return truth[y : y + shape[0], x : x + shape[1]]

        ts = _labelled_superpixels(slide, tissue, truth_at, settings, stains, workers, str(slide_path), background_scales)
    if len(ts) == 0:
        raise InvalidInputError(f"no superpixel of {slide_path} is covered by the annotations of {geojson_path}: "
                                "check that they belong to this slide (level-0 pixel coordinates)")
    return ts


def default_gamma(settings: EpitheliumSettings) -> float:
    """The RBF gamma :func:`fit_epithelium_model` uses unless told: 0.02 (stain histograms), 0.001 (RGB)."""
    return 0.001 if settings.colour_histograms == "rgb" else 0.02


def fit_epithelium_model(
    training: TrainingSet,
    *,
    gamma: float | None = None,
    C: float = 10.0,
    max_samples: int = 6000,
    min_purity: float = 0.8,
    seed: int = 0,
    metadata: dict | None = None,
) -> EpitheliumModel:
    """Fit the RBF-SVM on a :class:`TrainingSet` (scikit-learn), return it as an :class:`EpitheliumModel`.

    Parameters
    ----------
    training : TrainingSet
    gamma : float, optional
        RBF gamma on standardised features; default :func:`default_gamma` of the training set's
        settings: 0.02 for the 46 stain-histogram features (~1 / number of features; 0.01-0.02 measured
        best), 0.001 for the 238 RGB-histogram features. The paper's sigma = 6 is
        ``1 / (2 * 6**2) = 1/72``; with 238 standardised features (squared distances ~ 2 x 238) that
        kernel is too narrow: held-out epithelium IoU 0.847 vs 0.875 at 0.001 (``docs/epithelium.md``).
    C : float
        SVM regularisation (10: fewer support vectors than 1 at equal accuracy).
    max_samples : int
        Superpixels used (class-stratified random subset): bounds the training time and the number of
        support vectors (the model file size).
    min_purity : float
        Only superpixels whose truth fraction is >= ``min_purity`` or <= ``1 - min_purity`` train (mixed
        boundary superpixels have no clean label).
    seed : int
    metadata : dict, optional
        Stored in the model's config.
    """
    from sklearn.svm import SVC

    if not isinstance(training, TrainingSet):
        raise InvalidInputError(f"training must be a TrainingSet, got {type(training).__name__}")
    gamma = default_gamma(training.settings) if gamma is None else as_positive_float(gamma, "gamma")
    C = as_positive_float(C, "C")
    max_samples = as_int(max_samples, "max_samples", 10)
    pure = (training.truth_fraction >= min_purity) | (training.truth_fraction <= 1 - min_purity)
    idx = np.flatnonzero(pure)
    y = training.labels[idx]
    if y.all() or not y.any():
        raise InvalidInputError("the training set needs both epithelium and stroma superpixels; add slides or annotations")
    rng = np.random.default_rng(seed)
    if idx.size > max_samples:
        pick = []
        for cls in (False, True):
            members = idx[training.labels[idx] == cls]
            n = int(round(max_samples * members.size / idx.size))
            pick.append(rng.choice(members, min(n, members.size), replace=False))
        idx = np.sort(np.concatenate(pick))
    x = training.features[idx]
    y = training.labels[idx]
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-12] = 1.0
    z = (x - mean) / scale
    svm = SVC(C=C, kernel="rbf", gamma=gamma)
    svm.fit(z, y.astype(np.int64))
    meta = {"n_training_superpixels": int(idx.size), "C": C, "min_purity": min_purity, "seed": seed,
            "training_sources": training.sources}
    meta.update(metadata or {})
    return EpitheliumModel(
        support_vectors=svm.support_vectors_,
        dual_coef=svm.dual_coef_[0],
        intercept=float(svm.intercept_[0]),
        gamma=gamma,
        feature_mean=mean,
        feature_scale=scale,
        classes=CLASSES,
        settings=training.settings,
        metadata=meta,
    )


def superpixel_accuracy(model: EpitheliumModel, test: TrainingSet) -> float:
    """Fraction of superpixels whose predicted class equals their majority truth."""
    if len(test) == 0:
        return math.nan
    return float((model.predict(test.features) == test.labels).mean())
