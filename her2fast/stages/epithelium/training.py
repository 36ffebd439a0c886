"""Training the epithelium classifier: labelled superpixels from a truth map or QuPath annotations (with
the glass-level and tone-curve augmentations), fitting the RBF-SVM and its superpixel accuracy."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..._validate import as_int, as_positive_float
from ...errors import InvalidInputError
from ..stain import StainVectors
from .annotations import rasterize_annotations, read_qupath_geojson
from .classify import _slide_blocks
from .features import EpitheliumSettings
from .model import CLASSES, EpitheliumModel


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
        return cls(
            np.concatenate([s.features for s in sets]),
            np.concatenate([s.labels for s in sets]),
            np.concatenate([s.truth_fraction for s in sets]),
            np.concatenate(src).astype(np.int32),
            sources,
            settings,
        )


def _labelled_superpixels(
    slide: object,
    tissue: object,
    truth_at: Callable[..., np.ndarray],
    settings: EpitheliumSettings,
    stains: StainVectors,
    workers: int,
    name: str,
    background_scales: Sequence[float] = (1.0,),
    tone_gammas: Sequence[float] = (1.0,),
) -> TrainingSet:
    """Features of every superpixel of a slide and the mean of a truth map over it (NaN: unlabelled),
    once per glass level of ``background_scales`` (see :func:`_with_background`) and per tone curve of
    ``tone_gammas`` (see :func:`_tone_curve`), concatenated."""
    scales = _scales(background_scales)
    gammas = _gammas(tone_gammas)
    if len(scales) > 1 or len(gammas) > 1:
        return TrainingSet.concatenate(
            [
                _labelled_superpixels(
                    slide, tissue, truth_at, settings, _with_background(stains, s), workers, name, (1.0,), (g,)
                )
                for g in gammas
                for s in scales
            ]
        )
    stains = _with_background(stains, scales[0])
    transform = None
    if gammas[0] != 1.0:
        transform = _tone_curve(gammas[0])
        stains = replace(stains, background=_tone_curve(gammas[0])(np.asarray(stains.background, np.float64)))
    shape, l0, results = _slide_blocks(slide, tissue, settings, stains, workers, transform)
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


def truth_training_set(
    path: str | Path,
    truth_at: Callable[[int, int, tuple[int, int], tuple[float, float]], np.ndarray],
    settings: EpitheliumSettings | None = None,
    *,
    mpp: float | None = None,
    workers: int = 1,
    background_scales: Sequence[float] = (1.0,),
    tone_gammas: Sequence[float] = (1.0,),
) -> TrainingSet:
    """Labelled superpixels of a slide whose epithelium truth is known as a function of position.

    The tissue mask, the stain vectors and the superpixels are made exactly as
    :func:`~her2fast.stages.epithelium.classify.classify_slide` makes them; each superpixel is labelled by the
    mean of the truth over its pixels (superpixels less than half covered by known truth are not used).

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
    tone_gammas : sequence of float
        The slide's superpixels once per tone curve ``255 (I / 255) ** gamma`` applied to its pixels
        (augmentation: every optical density times ``gamma``, as a scanner's gamma changes it; see
        :func:`_tone_curve`); combined with every glass level.

    Returns
    -------
    TrainingSet

    Raises
    ------
    InvalidInputError
        ``background_scales`` empty or outside 0.8..1.2, ``tone_gammas`` empty or outside 0.5..2.
    """
    settings = settings or EpitheliumSettings()
    slide, tissue, stains = _open_with_tissue(path, mpp)
    with slide:  # type: ignore[attr-defined]
        return _labelled_superpixels(
            slide, tissue, truth_at, settings, stains, workers, str(path), background_scales, tone_gammas
        )


def _scales(background_scales: Sequence[float]) -> list[float]:
    scales = [as_positive_float(s, "background_scales") for s in background_scales]
    if not scales or any(not 0.8 <= s <= 1.2 for s in scales):
        raise InvalidInputError(f"background_scales must be factors in 0.8..1.2, got {list(background_scales)!r}")
    return scales


def _gammas(tone_gammas: Sequence[float]) -> list[float]:
    gammas = [as_positive_float(g, "tone_gammas") for g in tone_gammas]
    if not gammas or any(not 0.5 <= g <= 2.0 for g in gammas):
        raise InvalidInputError(f"tone_gammas must be exponents in 0.5..2.0, got {list(tone_gammas)!r}")
    return gammas


def _tone_curve(gamma: float) -> Callable[[np.ndarray], np.ndarray]:
    """The tone curve ``255 (I / 255) ** gamma``: every optical density (against 255) times ``gamma``.

    The tone-curve augmentation: scanners differ in gamma and tone curve, which scales every optical density
    of a slide; a model trained with (0.8, 1, 1.25) keeps its epithelium map under such a change
    (docs/epithelium.md). Applied to uint8 images through a look-up table (rounded), to floats exactly.
    """
    lut = np.clip(np.rint(255.0 * (np.arange(256) / 255.0) ** gamma), 0, 255).astype(np.uint8)

    def apply(image: np.ndarray) -> np.ndarray:
        if image.dtype == np.uint8:
            return lut[image]
        return 255.0 * (np.asarray(image, np.float64) / 255.0) ** gamma

    return apply


def _with_background(stains: StainVectors, scale: float) -> StainVectors:
    """The stain vectors with the glass colour scaled (capped at 255): the glass-level augmentation.

    A model trained with (0.98, 1, 1.02) keeps its epithelium map when the glass is estimated a few
    percent too dark or too bright (docs/epithelium.md).
    """
    if scale == 1.0:
        return stains
    return replace(stains, background=np.minimum(np.asarray(stains.background, np.float64) * scale, 255.0))


def annotated_training_set(
    slide_path: str | Path,
    geojson_path: str | Path,
    settings: EpitheliumSettings | None = None,
    *,
    mpp: float | None = None,
    workers: int = 1,
    background_scales: Sequence[float] = (1.0,),
    tone_gammas: Sequence[float] = (1.0,),
) -> TrainingSet:
    """Labelled superpixels of a real slide annotated in QuPath (see :func:`read_qupath_geojson`).

    Superpixels at least half covered by annotations are labelled by their majority class; the rest are
    not used. ``background_scales`` and ``tone_gammas`` as in :func:`truth_training_set`.
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

        ts = _labelled_superpixels(
            slide, tissue, truth_at, settings, stains, workers, str(slide_path), background_scales, tone_gammas
        )
    if len(ts) == 0:
        raise InvalidInputError(
            f"no superpixel of {slide_path} is covered by the annotations of {geojson_path}: "
            "check that they belong to this slide (level-0 pixel coordinates)"
        )
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
        raise InvalidInputError(
            "the training set needs both epithelium and stroma superpixels; add slides or annotations"
        )
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
    meta = {
        "n_training_superpixels": int(idx.size),
        "C": C,
        "min_purity": min_purity,
        "seed": seed,
        "training_sources": training.sources,
    }
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
