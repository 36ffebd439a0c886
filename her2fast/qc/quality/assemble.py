"""The quality map put together (:func:`quality_map`): focus and ink measured here, the other detectors called."""

from __future__ import annotations

import numpy as np

from ..._validate import as_positive_float, as_rgb_uint8
from ...errors import InvalidInputError
from ...stages.tissue import pen_mask
from .bubble import _bubble
from .fold import _fold
from .grid import _block_mean, _drop_specks, _grow
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
    from scipy import ndimage as ndi

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
    s1 = ndi.gaussian_filter(od, rules.fine_um / work_mpp, mode="reflect")
    s2 = ndi.gaussian_filter(od, rules.detail_um / work_mpp, mode="reflect")
    win = max(3, int(round(rules.window_um / work_mpp)))
    e_fine = ndi.uniform_filter((od - s1) ** 2, win, mode="reflect")
    e_detail = ndi.uniform_filter((s1 - s2) ** 2, win, mode="reflect")
    level = ndi.uniform_filter(od, win, mode="reflect")
    # sample at the centres of the map pixels
    s = step_px // k
    h, w = -(-arr.shape[0] // step_px), -(-arr.shape[1] // step_px)
    ci = np.minimum(np.arange(h) * s + s // 2, od.shape[0] - 1)
    cj = np.minimum(np.arange(w) * s + s // 2, od.shape[1] - 1)
    ix = np.ix_(ci, cj)
    tissue = level[ix] >= rules.min_tissue_od
    focus = (e_fine[ix] / np.maximum(e_detail[ix], 1e-9)).astype(np.float32)

    # ink, on a coarse copy of the image
    ki = max(1, int(round(rules.ink_mpp / mpp)))
    small = np.clip(np.rint(_block_mean(arr, ki)), 0, 255).astype(np.uint8)
    ink_small = pen_mask(small, mpp * ki)
    if ki == step_px:  # one ink pixel per map pixel (the default rules): the map is the ink mask
        ink = ink_small[:h, :w]
    else:
        ink_full = np.repeat(np.repeat(ink_small, ki, axis=0), ki, axis=1)
        pad_h, pad_w = h * step_px - ink_full.shape[0], w * step_px - ink_full.shape[1]
        ink_full = np.pad(ink_full, ((0, max(pad_h, 0)), (0, max(pad_w, 0))), mode="edge")
        ink_full = ink_full[: h * step_px, : w * step_px]
        ink = ink_full.reshape(h, step_px, w, step_px).mean(axis=(1, 3)) > 0.2
    if ink.any():  # tissue under the ink that keeps its own colour (brown under blue) is still under the ink
        ink = ndi.binary_fill_holes(ndi.binary_closing(np.pad(ink, 3, mode="edge"), iterations=3))[3:-3, 3:-3]

    # saturated: every channel near 0
    look = set(rules.look_for)
    dark = _saturated(od, step_px // k, (h, w), rules) & tissue if "saturated" in look else np.zeros_like(tissue)

    # out of focus: windows reaching into ink or saturated stain are not judged (both are flat and would
    # read as blurred, and their edges inflate the cell-scale detail up to two detail sigmas away)
    half = 0.5 * rules.window_um / rules.step_um
    blurred = tissue & (focus < rules.focus_min) & ~_grow(ink | dark, half + 2.0 * rules.detail_um / rules.step_um)
    blurred = _drop_specks(blurred, (rules.window_um / rules.step_um) ** 2)
    blurred = _grow(blurred, half) & tissue & ~ink

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
    ix2 = np.ix_(
        np.minimum(np.arange(h) * s2 + s2 // 2, od3.shape[0] - 1),
        np.minimum(np.arange(w) * s2 + s2 // 2, od3.shape[1] - 1),
    )
    none = np.zeros((h, w), bool)
    saturated = dark if "saturated" in look else none
    near_dark = _grow(dark | ink, rules.window_um / rules.step_um)
    fold = _fold(od3, coarse_mpp, ix2, tissue & ~blurred & ~near_dark, rules) if "fold" in look else none
    bubble = _bubble(od3, coarse_mpp, s2, (h, w), rules, dark | ink) & ~ink & ~dark if "bubble" in look else none
    tissue = tissue | bubble  # a bubble lies over the section: its flattened, paler content is judged too
    focus[~tissue] = np.nan
    return QualityMap(
        step_um=step_px * mpp,
        step_px=step_px,
        tissue=tissue,
        reasons={"out_of_focus": blurred, "pen_ink": ink, "fold": fold, "saturated": saturated, "bubble": bubble},
        focus=focus,
        rules=rules,
    )
