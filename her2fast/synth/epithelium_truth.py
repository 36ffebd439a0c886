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
from .perturb import Perturbation, perturb_image, read_level0, write_slide
from .slide import load_ground_truth, sidecar_paths

__all__ = ["SCANNER_COPIES", "phantom_training_set", "scanner_copies"]

#: The re-scans :func:`scanner_copies` makes of a training phantom (name: image perturbations of
#: :mod:`her2fast.synth.perturb`, applied in order at the phantom's own resolution). The strengths are not
#: those ``benchmarks/robustness.py`` and ``benchmarks/epithelium_invariance.py`` test with (a cool 0.06 white
#: balance with a 0.85 tone curve, tone curves 0.8 and 1.25, a 1.2 px blur, JPEG quality 60).
SCANNER_COPIES: dict[str, tuple[tuple[str, float], ...]] = {
    "cool": (("white_balance", 0.04), ("tone_curve", 0.9)),
    "warm": (("white_balance", -0.04), ("tone_curve", 1.15)),
    "blur": (("blur", 1.6),),
    "jpeg": (("jpeg", 70.0),),
    "soft": (("blur", 0.8), ("jpeg", 80.0), ("tone_curve", 0.85)),
}


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


def scanner_copies(path: str | Path, *, seed: int = 0) -> list[Path]:
    """The phantom slide re-scanned through each of :data:`SCANNER_COPIES`, with its truth beside each copy.

    Each copy is written next to the phantom as ``<stem>.scan-<name>.tiff`` (a lossless pyramidal TIFF,
    :func:`her2fast.synth.perturb.write_slide`) with a copy of the phantom's sidecar files, so that
    :func:`phantom_training_set` reads it like the phantom itself; a copy already on disk is reused. Training
    on the copies (``her2fast train-epithelium --scanner-copies``) teaches the classifier the colour, tone
    and sharpness changes a second scanner or a re-save brings.

    Parameters
    ----------
    path : str or Path
        A phantom written by :func:`her2fast.synth.make_slide` (its sidecar next to it).
    seed : int
        Seed of random perturbations (none of the current copies draws any).

    Returns
    -------
    list of Path
        One slide per entry of :data:`SCANNER_COPIES`, in its order.
    """
    import shutil

    path = Path(path)
    load_ground_truth(path)  # a clear error when the sidecar is missing
    src = sidecar_paths(path)
    stem = path.with_suffix("").name
    image: np.ndarray | None = None
    mpp = 0.5
    out = []
    for name, chain in SCANNER_COPIES.items():
        copy = path.with_name(f"{stem}.scan-{name}.tiff")
        dst = sidecar_paths(copy)
        if not (copy.exists() and all(p.exists() for p in dst.values())):
            if image is None:
                image, mpp = read_level0(path)
            pixels, copy_mpp = perturb_image(image, [Perturbation(n, v) for n, v in chain], mpp=mpp, seed=seed)
            write_slide(copy, pixels, copy_mpp)
            for key, target in dst.items():
                shutil.copyfile(src[key], target)
        out.append(copy)
    return out
