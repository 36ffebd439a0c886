"""The quality map put together (:func:`quality_map`): the detectors run in turn on the shared optical densities."""

from __future__ import annotations

import numpy as np

from ..._validate import as_positive_float, as_rgb_uint8
from ...errors import InvalidInputError
from .bubble import _bubble
from .focus import _focus, _out_of_focus
from .fold import _fold
from .glass_edge import _edge_sides, _glass_edge
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
    look = set(rules.look_for)
    none = np.zeros((h, w), bool)

    ink = _ink(arr, mpp, step_px, (h, w), rules)
    # saturated: every channel near 0
    dark = _saturated(od, s, (h, w), rules) if "saturated" in look else none.copy()

    # the optical density per channel (of the mean colour) at about 2 um/px, for folds, bubbles and the
    # search for glass edges, and at about 1 um/px, for precipitate and the profiles across glass edges
    k2 = max(1, int(round(2.0 / mpp)))
    while step_px % k2:
        k2 -= 1
    coarse_mpp = mpp * k2
    s2 = step_px // k2
    od3 = np.zeros((1, 1, 3), np.float32)
    if look & {"fold", "bubble", "glass_edge"}:
        od3 = -np.log10(np.maximum(_block_mean(arr, k2), np.float32(1.0)) * np.float32(1.0 / 255.0))
    od3_1 = np.zeros((1, 1, 3), np.float32)
    if look & {"precipitate", "glass_edge"}:
        od3_1 = -np.log10(np.maximum(_block_mean(arr, k), np.float32(1.0)) * np.float32(1.0 / 255.0))

    glass, sides = none, None
    if "glass_edge" in look:
        glass, edges = _glass_edge(od3, coarse_mpp, s2, od3_1, work_mpp, s, (h, w), rules, dark | ink)
        # the brightness may step across a glass edge: folds are judged on each side against its own tissue
        sides = _edge_sides(edges, (h, w), float(s)) if edges else None

    level, focus, fine, detail = _focus(od, work_mpp, s, ix, (h, w), rules)
    tissue = level >= rules.min_tissue_od
    dark &= tissue

    bubble = none
    if "bubble" in look:  # a glass edge's line is a thin grey line too: it is not a bubble's rim
        bubble = _bubble(od3, coarse_mpp, s2, (h, w), rules, dark | ink, glass) & ~ink & ~dark

    # a glass edge's shadow band and a bubble's flattened content are smooth: neither is judged for focus
    # (nor are ink and saturated stain)
    pale = level >= rules.focus_tissue_od
    blurred = _out_of_focus(tissue, focus, ink, dark | glass | bubble, rules, fine, detail, pale)

    if "out_of_focus" not in look:
        blurred[:] = False
    if "pen_ink" not in look:
        ink[:] = False
    saturated = dark if "saturated" in look else none
    near_dark = _grow(dark | ink, rules.window_um / rules.step_um)
    # the shadow band raises the optical-density floor (a fold's mark) up to a floor square beside it
    near_glass = _grow(glass, rules.fold_floor_um / rules.step_um)
    judged = tissue & ~blurred & ~near_dark
    fold = _fold(od3, coarse_mpp, s2, judged & ~near_glass, rules, judged, sides) if "fold" in look else none
    precipitate = _precipitate(od3_1, work_mpp, step_px // k, (h, w), rules) if "precipitate" in look else none
    # a bubble lies over the section: its flattened, paler content is judged too; so is pale, blurred tissue
    tissue = tissue | bubble | blurred
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
            "glass_edge": glass,
        },
        focus=focus,
        rules=rules,
    )
