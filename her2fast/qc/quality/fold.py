"""The ``fold`` detector of the quality map: two layers of section, the optical-density floor doubled."""

from __future__ import annotations

import numpy as np

from .grid import _block_mean
from .rules import QualityRules


def _odd(n: int) -> int:
    """``n`` or the next odd number (a filter of odd size is centred on its pixel)."""
    return n // 2 * 2 + 1


def _fold_reference(floor: np.ndarray, tissue: np.ndarray, rules: QualityRules) -> float:
    """The median floor of the tissue lying at least a floor square and a quarter window from glass (nearer,
    the floor takes in the glass and reads low); infinite where there is too little such tissue.

    Single-layer tissue only would be the better reference where a fold covers most of the tissue, but
    taking out what lies well above the median also takes out dense tumour nests and leaves the stroma:
    the nests of a 3+ slide then read as folds.
    """
    from scipy import ndimage as ndi

    inner = ndi.distance_transform_edt(tissue) > (rules.fold_floor_um + rules.window_um / 4) / rules.step_um
    if inner.sum() < (rules.fold_min_um / rules.step_um) ** 2:
        return float("inf")
    return float(np.median(floor[inner]))


def _fold_edge(
    region: np.ndarray, core: np.ndarray, fine: np.ndarray, tissue: np.ndarray, ref: float, rules: QualityRules
) -> np.ndarray:
    """``region`` with its edge placed where the fine floor crosses the midpoint of its two sides.

    Map pixels within ``fold_floor_um`` of the region's edge (on either side) are decided anew: fold where
    ``fine`` (the floor's opening, lightly smoothed) is above ``fold_edge`` of the way from the tissue just
    outside (mean over ``2 * window_um``) to the fold just inside. Deeper pixels keep their side.
    """
    from scipy import ndimage as ndi

    reach = rules.fold_floor_um / rules.step_um
    band = (ndi.distance_transform_edt(~region) <= reach) & (ndi.distance_transform_edt(region) <= reach)
    inside = region & ~band
    outside = tissue & ~region & ~band
    size = _odd(max(3, int(round(2.0 * rules.window_um / rules.step_um))))

    def local_mean(where: np.ndarray, fallback: float) -> np.ndarray:
        w = where.astype(np.float32)
        num = ndi.uniform_filter(fine * w, size, mode="constant")
        den = ndi.uniform_filter(w, size, mode="constant")
        return np.where(den > 0.02, num / np.maximum(den, np.float32(1e-6)), np.float32(fallback))

    min_px = (rules.fold_min_um / rules.step_um) ** 2
    out_level = float(np.median(fine[outside])) if outside.sum() >= min_px else ref
    in_level = float(np.median(fine[inside])) if inside.any() else float(np.median(fine[region]))
    lo, hi = local_mean(outside, out_level), local_mean(inside, in_level)
    out = inside | (band & tissue & (fine > lo + rules.fold_edge * (hi - lo)))
    labels, n = ndi.label(out, structure=np.ones((3, 3), bool))
    keep = np.zeros(n + 1, bool)
    keep[labels[core & out]] = True
    keep[0] = False
    return keep[labels]


def _fold(
    od3: np.ndarray,
    work_mpp: float,
    s: int,
    tissue: np.ndarray,
    rules: QualityRules,
    reference: np.ndarray | None = None,
    sides: np.ndarray | None = None,
) -> np.ndarray:
    """Map pixels in a fold: where the optical-density floor is far above the tissue's typical floor.

    ``od3`` is the optical density per channel at ``work_mpp`` (about 2 um/px), ``s`` of its pixels per map
    pixel. The floor is the lowest red-channel optical density within ``fold_floor_um``, averaged over
    ``window_um``: clean tissue has pale gaps (stroma, cytoplasm) near any point, while in a fold the second
    layer covers them. Relative to ``ref``, the median floor of the tissue away from glass
    (:func:`_fold_reference`), a fold is a connected region above ``fold_grow_ratio * ref`` that holds at
    least ``fold_min_um^2`` above ``fold_ratio * ref`` (hysteresis: a dense tumour nest rarely reaches that
    over so large an area). The minimum filter and the average blur the fold's edge by
    about ``fold_floor_um / 2 + window_um / 2``; :func:`_fold_edge` places it again on the floor's opening
    (minimum then maximum over ``fold_floor_um``, which keeps the fold's extent), smoothed over only
    ``fold_edge_um``. ``reference`` (default ``tissue``) is the tissue the median floor is taken on: a
    region left out of the judging (a glass edge's band) may still be typical tissue. ``sides`` (integer
    labels per map pixel: the sides of glass edges) splits it: the brightness may step across a glass
    edge, so the tissue on each side is measured against that side's own median where the side holds
    enough tissue for one, against the whole's elsewhere.
    """
    from scipy import ndimage as ndi

    if tissue.sum() < 4:
        return np.zeros_like(tissue)
    h, w = tissue.shape
    red = od3[..., 0]  # hematoxylin absorbs red most, DAB least
    size = _odd(max(2, int(round(rules.fold_floor_um / work_mpp))))
    lowest = ndi.minimum_filter(red, size, mode="reflect")
    floor = ndi.uniform_filter(lowest, _odd(max(3, int(round(rules.window_um / work_mpp)))), mode="reflect")
    # the map pixel's own mean (not its centre's value): the map pixel covers s x s floor pixels
    floor = _block_mean(floor, s)[:h, :w]
    min_px = (rules.fold_min_um / rules.step_um) ** 2
    if tissue.sum() < min_px:
        return np.zeros_like(tissue)
    reference = tissue if reference is None else reference
    ref = _fold_reference(floor, reference, rules)
    if not np.isfinite(ref):
        return np.zeros_like(tissue)
    refs = np.full(tissue.shape, ref, np.float32)
    if sides is not None:
        for v in np.unique(sides):
            own = _fold_reference(floor, reference & (sides == v), rules)
            if np.isfinite(own):
                refs[sides == v] = own
    high = tissue & (floor > rules.fold_ratio * refs) & (floor > rules.fold_min_od)
    if not high.any():
        return np.zeros_like(tissue)
    low = tissue & (floor > rules.fold_grow_ratio * refs)
    labels, n = ndi.label(low, structure=np.ones((3, 3), bool))
    keep = np.bincount(labels[high], minlength=n + 1) >= min_px
    keep[0] = False
    region = keep[labels]
    if not region.any():
        return region
    fine = ndi.maximum_filter(lowest, size, mode="reflect")
    fine = ndi.uniform_filter(fine, _odd(max(1, int(round(rules.fold_edge_um / work_mpp)))), mode="reflect")
    fine = _block_mean(fine, s)[:h, :w]
    return _fold_edge(region, region & high, fine, tissue, ref, rules)
