"""The ``out_of_focus`` detector of the quality map: the share of the detail energy at the finest scale."""

from __future__ import annotations

import numpy as np

from .grid import _drop_specks, _grow
from .rules import QualityRules


def _focus(od: np.ndarray, work_mpp: float, ix: tuple, rules: QualityRules) -> tuple[np.ndarray, np.ndarray]:
    """The window's mean optical density and its focus ratio, sampled at ``ix`` (the map pixels' centres).

    ``od`` is the optical density of the brightest channel at ``work_mpp`` (about 1 um/px).
    """
    from scipy import ndimage as ndi

    s1 = ndi.gaussian_filter(od, rules.fine_um / work_mpp, mode="reflect")
    s2 = ndi.gaussian_filter(od, rules.detail_um / work_mpp, mode="reflect")
    win = max(3, int(round(rules.window_um / work_mpp)))
    e_fine = ndi.uniform_filter((od - s1) ** 2, win, mode="reflect")
    e_detail = ndi.uniform_filter((s1 - s2) ** 2, win, mode="reflect")
    level = ndi.uniform_filter(od, win, mode="reflect")
    return level[ix], (e_fine[ix] / np.maximum(e_detail[ix], 1e-9)).astype(np.float32)


def _out_of_focus(
    tissue: np.ndarray, focus: np.ndarray, ink: np.ndarray, dark: np.ndarray, rules: QualityRules
) -> np.ndarray:
    """Map pixels out of focus: windows with a focus ratio below ``focus_min``, specks dropped, grown by half a window.

    A speck is an out-of-focus area smaller than one window; areas less than ``focus_bridge_um`` apart
    count as one (pale, patchy tissue out of focus is split by glass into pieces each smaller than a window).
    """
    from scipy import ndimage as ndi

    # out of focus: windows reaching into ink or saturated stain are not judged (both are flat and would
    # read as blurred, and their edges inflate the cell-scale detail up to two detail sigmas away)
    half = 0.5 * rules.window_um / rules.step_um
    blurred = tissue & (focus < rules.focus_min) & ~_grow(ink | dark, half + 2.0 * rules.detail_um / rules.step_um)
    bridge = int(round(rules.focus_bridge_um / rules.step_um))
    if bridge > 0 and blurred.any():
        near = ndi.binary_closing(np.pad(blurred, bridge), iterations=bridge)[bridge:-bridge, bridge:-bridge]
        blurred &= _drop_specks(near | blurred, (rules.window_um / rules.step_um) ** 2)
    else:
        blurred = _drop_specks(blurred, (rules.window_um / rules.step_um) ** 2)
    blurred = _grow(blurred, half) & tissue & ~ink
    return blurred
