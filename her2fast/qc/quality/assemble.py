"""The quality map put together (:func:`quality_map`): the detectors run in turn on the shared optical densities."""

from __future__ import annotations

import numpy as np

from ..._validate import as_positive_float, as_rgb_uint8
from ...errors import InvalidInputError
from .bubble import _bubble
from .focus import _focus, _out_of_focus
from .fold import _fold
from .grid import _block_mean, _grow
from .ink import _ink
from .precipitate import _precipitate
from .result import QualityMap
from .rules import QualityRules
from .saturated import _saturated

__all__ = ["quality_map"]


def quality_map(rgb: np.ndarray, mpp: float, *, rules: QualityRules | None = None) -> QualityMap:
    """The quality map of a brightfield RGB image (see the module docstring).

    Parameters
    ----------
    rgb : (H, W, 3) uint8
        Brightfield image, glass near white.
    mpp : float
        Micrometres per pixel of ``rgb``; at most 2 (focus is measured on micrometre-scale detail).
    rules : QualityRules, optional

    Returns
    -------
    QualityMap
    """

    arr = as_rgb_uint8(rgb, "rgb")
    mpp = as_positive_float(mpp, "mpp")
    rules = QualityRules() if rules is None else rules
    if not isinstance(rules, QualityRules):
        raise InvalidInputError(f"rules must be a her2fast.qc.QualityRules, got {type(rules).__name__}")
    if mpp > 2.0:
        raise InvalidInputError(f"mpp is {mpp:g} um/px: the quality map needs an image at 2 um/px or finer")
    step_px = max(1, int(round(rules.step_um / mpp)))
    k = max(1, int(round(1.0 / mpp)))  # averaging factor to about 1 um/px
    while step_px % k:
        k -= 1
    work_mpp = mpp * k
    # the optical density of the weakest channel (that of the brightest channel, as -log10 decreases)
    brightest = np.maximum(np.maximum(arr[..., 0], arr[..., 1]), arr[..., 2])
    od = -np.log10(np.maximum(brightest.astype(np.float32), 1.0) / 255.0)
    od = _block_mean(od, k)
    # sample at the centres of the map pixels
    s = step_px // k
    h, w = -(-arr.shape[0] // step_px), -(-arr.shape[1] // step_px)
    ci = np.minimum(np.arange(h) * s + s // 2, od.shape[0] - 1)
    cj = np.minimum(np.arange(w) * s + s // 2, od.shape[1] - 1)
    ix = np.ix_(ci, cj)
    level, focus = _focus(od, work_mpp, ix, rules)
    tissue = level >= rules.min_tissue_od

    ink = _ink(arr, mpp, step_px, (h, w), rules)

    # saturated: every channel near 0
    look = set(rules.look_for)
    dark = _saturated(od, step_px // k, (h, w), rules) & tissue if "saturated" in look else np.zeros_like(tissue)

    blurred = _out_of_focus(tissue, focus, ink, dark, rules)

    if "out_of_focus" not in look:
        blurred[:] = False
    if "pen_ink" not in look:
        ink[:] = False
    # the optical density per channel at about 2 um/px (of the mean colour), for folds and bubbles
    k2 = max(1, int(round(2.0 / mpp)))
    while step_px % k2:
        k2 -= 1
    coarse_mpp = mpp * k2
    if look & {"fold", "bubble"}:
        mean_rgb = _block_mean(arr, k2)
        od3 = -np.log10(np.maximum(mean_rgb, np.float32(1.0)) * np.float32(1.0 / 255.0))
    else:
        od3 = np.zeros((1, 1, 3), np.float32)
    s2 = step_px // k2
    none = np.zeros((h, w), bool)
    saturated = dark if "saturated" in look else none
    near_dark = _grow(dark | ink, rules.window_um / rules.step_um)
    fold = _fold(od3, coarse_mpp, s2, tissue & ~blurred & ~near_dark, rules) if "fold" in look else none
    bubble = _bubble(od3, coarse_mpp, s2, (h, w), rules, dark | ink) & ~ink & ~dark if "bubble" in look else none
    if "precipitate" in look:  # the optical density per channel at about 1 um/px (of the mean colour)
        od3_1 = -np.log10(np.maximum(_block_mean(arr, k), np.float32(1.0)) * np.float32(1.0 / 255.0))
        precipitate = _precipitate(od3_1, work_mpp, step_px // k, (h, w), rules)
    else:
        precipitate = none
    tissue = tissue | bubble  # a bubble lies over the section: its flattened, paler content is judged too
    focus[~tissue] = np.nan
    return QualityMap(
        step_um=step_px * mpp,
        step_px=step_px,
        tissue=tissue,
        reasons={
            "out_of_focus": blurred,
            "pen_ink": ink,
            "fold": fold,
            "saturated": saturated,
            "bubble": bubble,
            "precipitate": precipitate,
        },
        focus=focus,
        rules=rules,
    )
