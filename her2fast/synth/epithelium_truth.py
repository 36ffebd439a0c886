"""Epithelium training sets from phantom slides: the sidecar's epithelium map as the truth.

:func:`phantom_training_set` labels the superpixels of a slide written by :func:`her2fast.synth.make_slide`
with its ground truth (``<slide>.epithelium.png``), for ``her2fast train-epithelium --phantom``. The
superpixels and their features come from :func:`her2fast.stages.epithelium.truth_training_set`, exactly as
the runtime classifier sees them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..stages.epithelium import EpitheliumSettings, TrainingSet, truth_training_set
from .slide import load_ground_truth

__all__ = ["phantom_training_set"]


def phantom_training_set(
    path: str | Path,
    settings: EpitheliumSettings | None = None,
    *,
    workers: int = 1,
    background_scales: Sequence[float] = (1.0,),
    tone_gammas: Sequence[float] = (1.0,),
) -> TrainingSet:
    """Labelled superpixels of a phantom slide written by :func:`her2fast.synth.make_slide`.

    The truth is the sidecar's epithelium fraction map (``x.epithelium.png``); the tissue mask, the stain
    vectors and the superpixels are made exactly as :func:`her2fast.stages.epithelium.classify_slide`
    makes them.

    Parameters
    ----------
    path : str or Path
        The phantom slide (its sidecar files next to it).
    settings : EpitheliumSettings, optional
    workers : int
        Threads.
    background_scales : sequence of float
        The slide's superpixels once per factor, with the estimated glass colour
        (``StainVectors.background``) multiplied by it (augmentation: a model trained with (0.98, 1, 1.02)
        does not depend on the glass level being estimated to the percent).
    tone_gammas : sequence of float
        The slide's superpixels once per tone curve ``255 (I / 255) ** gamma`` (every optical density times
        ``gamma``; see :func:`her2fast.stages.epithelium.truth_training_set`).

    Returns
    -------
    TrainingSet

    Raises
    ------
    InvalidInputError
        No sidecar next to ``path``, or ``background_scales`` empty or outside 0.8..1.2.
    """
    gt = load_ground_truth(path)
    ep = gt.epithelium_mask.astype(np.float64) / 255.0
    f = gt.epithelium_mask_mpp / gt.mpp  # level-0 px per truth px

    def truth_at(x: int, y: int, shape: tuple[int, int], l0: tuple[float, float]) -> np.ndarray:
        h, w = shape
        cols = np.clip(np.floor((x + np.arange(w) + 0.5) * l0[0] / f).astype(np.int64), 0, ep.shape[1] - 1)
        rows = np.clip(np.floor((y + np.arange(h) + 0.5) * l0[1] / f).astype(np.int64), 0, ep.shape[0] - 1)
        return ep[rows][:, cols]

    return truth_training_set(
        path, truth_at, settings, workers=workers, background_scales=background_scales, tone_gammas=tone_gammas
    )
