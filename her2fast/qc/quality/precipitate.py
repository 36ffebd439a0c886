"""The ``precipitate`` detector of the quality map: clusters of small, very dark brown granules."""

from __future__ import annotations

import numpy as np

from .grid import _block_mean
from .rules import QualityRules


def _granules(od3: np.ndarray, work_mpp: float, rules: QualityRules) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The very dark brown pixels of ``od3`` that are not part of a line, and the granules' centres (rows, columns).

    Dark brown: red-channel optical density above ``precipitate_min_od`` with the blue channel's above
    the red's by at least ``precipitate_brown`` of it (DAB: not grey, not blue, not black ink). A granule is
    a connected (8-neighbour) patch of them at most ``precipitate_max_um`` across (a membrane is a longer
    line, a saturated patch wider) whose darkest pixel lies at least ``precipitate_contrast`` above the mean
    red optical density of the pixels around it that are not dark brown (within ``precipitate_max_um``): a
    granule lies on top of tissue or glass, while the darkest stretches of a stained membrane rise from
    brown cytoplasm. And its dark brown down to ``precipitate_line_od`` is at most twice
    ``precipitate_max_um`` across: the darkest stretches of a continuous membrane, cut apart by the first
    threshold, are one line at the lower one.
    """
    from scipy import ndimage as ndi

    r, b = od3[..., 0], od3[..., 2]
    dark = (r > rules.precipitate_min_od) & (b - r > rules.precipitate_brown * b)
    none = np.zeros(0, np.int64)
    if not dark.any():
        return dark, none, none
    labels, n = ndi.label(dark, structure=np.ones((3, 3), bool))
    idx = np.arange(1, n + 1)
    # the surroundings: the mean over a square of the pixels not within 1 um of dark brown
    halo = ndi.binary_dilation(dark, iterations=max(1, int(round(1.0 / work_mpp))))
    size = int(round(rules.precipitate_max_um / work_mpp)) // 2 * 2 + 1
    away = (~halo).astype(np.float32)
    around = ndi.uniform_filter(r * away, size, mode="reflect") / np.maximum(
        ndi.uniform_filter(away, size, mode="reflect"), np.float32(1e-3)
    )
    contrast = np.asarray(ndi.maximum(r, labels, idx)) - np.asarray(ndi.mean(around, labels, idx))
    # the patch down to precipitate_line_od: a line's darkest stretch continues as a line, a granule ends
    low = (r > rules.precipitate_line_od) & (b - r > rules.precipitate_brown * b)
    low_labels, n_low = ndi.label(low, structure=np.ones((3, 3), bool))
    max_px = rules.precipitate_max_um / work_mpp
    short = np.zeros(n_low + 1, bool)
    for i, sl in enumerate(ndi.find_objects(low_labels), 1):
        short[i] = sl is not None and max(sl[0].stop - sl[0].start, sl[1].stop - sl[1].start) <= 2.0 * max_px
    spots = dark & short[low_labels]  # dark brown that is not part of a line
    rows, cols = [], []
    for sl, c in zip(ndi.find_objects(labels), contrast):
        if sl is None or c < rules.precipitate_contrast:
            continue
        if max(sl[0].stop - sl[0].start, sl[1].stop - sl[1].start) > max_px or not spots[sl].any():
            continue
        rows.append((sl[0].start + sl[0].stop - 1) // 2)
        cols.append((sl[1].start + sl[1].stop - 1) // 2)
    return spots, np.asarray(rows, np.int64), np.asarray(cols, np.int64)


def _precipitate(od3: np.ndarray, work_mpp: float, s: int, shape: tuple[int, int], rules: QualityRules) -> np.ndarray:
    """Map pixels in DAB precipitate: clusters of at least ``precipitate_min_granules`` granules.

    ``od3`` is the optical density per channel at ``work_mpp`` (about 1 um/px), ``s`` of its pixels per map
    pixel. Map pixels holding very dark brown (granules, and clumps of them) less than
    ``precipitate_gap_um`` apart are one cluster (gaps closed, holes filled); a cluster holding fewer than
    ``precipitate_min_granules`` granule centres is left (a few dark specks are dust or a dense dot of
    stain, not precipitate). The clusters found are grown by ``precipitate_grow_um``.
    """
    from scipy import ndimage as ndi

    h, w = shape
    spots, rows, cols = _granules(od3, work_mpp, rules)
    if len(rows) < rules.precipitate_min_granules:
        return np.zeros(shape, bool)
    counts = np.zeros(shape, np.int64)
    np.add.at(counts, (np.minimum(rows // s, h - 1), np.minimum(cols // s, w - 1)), 1)
    gap = max(1, int(round(rules.precipitate_gap_um / rules.step_um / 2.0)))
    # map pixels holding dark brown (granules, and clumps of them), gaps closed and holes filled
    share = _block_mean(spots.view(np.uint8), s)[:h, :w]
    held = np.zeros(shape, bool)
    held[: share.shape[0], : share.shape[1]] = share > 0
    held = np.pad(held, gap)
    cluster = ndi.binary_fill_holes(ndi.binary_closing(held, iterations=gap))[gap:-gap, gap:-gap]
    labels, n = ndi.label(cluster, structure=np.ones((3, 3), bool))
    keep = np.bincount(labels.ravel(), weights=counts.ravel(), minlength=n + 1) >= rules.precipitate_min_granules
    keep[0] = False
    found = keep[labels]
    if not found.any():
        return found
    # the clusters' edge lies beyond their outermost granules by about half the granules' spacing
    return ndi.distance_transform_edt(~found) <= rules.precipitate_grow_um / rules.step_um
