"""The ``fold`` detector of the quality map: two layers of section, the optical-density floor doubled."""

from __future__ import annotations

import numpy as np

from .rules import QualityRules


def _fold(od3: np.ndarray, work_mpp: float, ix: tuple, tissue: np.ndarray, rules: QualityRules) -> np.ndarray:
    """Map pixels in a fold: where the optical-density floor is far above the window's typical tissue floor.

    The floor is the lowest red-channel optical density (at about 2 um/px) within ``fold_floor_um``, averaged
    over ``window_um``: clean tissue has pale gaps (stroma, cytoplasm) near any point, while in a fold the
    second layer covers them. Relative to ``ref``, the median floor of the window's tissue, a fold is a
    connected region above ``fold_grow_ratio * ref`` that holds at least ``fold_min_um^2`` above
    ``fold_ratio * ref`` (hysteresis: a dense tumour nest rarely reaches twice the median over that area).
    """
    from scipy import ndimage as ndi

    if tissue.sum() < 4:
        return np.zeros_like(tissue)
    red = od3[..., 0]  # hematoxylin absorbs red most, DAB least
    floor = ndi.minimum_filter(red, max(2, int(round(rules.fold_floor_um / work_mpp))), mode="reflect")
    floor = ndi.uniform_filter(floor, max(3, int(round(rules.window_um / work_mpp))), mode="reflect")[ix]
    # the reference: tissue at least a floor square and a quarter window from glass (nearer, the floor
    # takes in the glass and reads low)
    inner = ndi.distance_transform_edt(tissue) > (rules.fold_floor_um + rules.window_um / 4) / rules.step_um
    if inner.sum() < (rules.fold_min_um / rules.step_um) ** 2:
        return np.zeros_like(tissue)
    ref = float(np.median(floor[inner]))
    high = tissue & (floor > rules.fold_ratio * ref) & (floor > rules.fold_min_od)
    if not high.any():
        return np.zeros_like(tissue)
    low = tissue & (floor > rules.fold_grow_ratio * ref)
    labels, n = ndi.label(low, structure=np.ones((3, 3), bool))
    keep = np.bincount(labels[high], minlength=n + 1) >= (rules.fold_min_um / rules.step_um) ** 2
    keep[0] = False
    return keep[labels]
