"""The ``bubble`` detector of the quality map: a rounded region inside a thin, dark, grey rim."""

from __future__ import annotations

import numpy as np

from .grid import _block_mean
from .rules import QualityRules


def _bubble(
    od3: np.ndarray,
    work_mpp: float,
    s: int,
    shape: tuple[int, int],
    rules: QualityRules,
    dark: np.ndarray,
    not_rim: np.ndarray | None = None,
) -> np.ndarray:
    """Rounded regions enclosed by a thin, dark, neutral (grey) rim, with the rim.

    ``od3`` is at ``s`` pixels per map pixel. A rim pixel is darker than its surroundings (the optical
    density minus its mean over ``rim_um``) by more than ``rim_min_od`` in every channel, with channels
    within ``rim_max_chroma`` of the largest: an added grey line, unlike either stain. The inside must be
    readable: ``dark`` (saturated or ink) map pixels do not count towards it (the edge of a dark patch is
    not a rim). ``not_rim`` map pixels (a glass edge's band) hold no rim.
    """
    from scipy import ndimage as ndi

    size = max(3, int(round(rules.rim_um / work_mpp)))
    e = [od3[..., c] - ndi.uniform_filter(od3[..., c], size, mode="reflect") for c in range(3)]
    lo = np.minimum(np.minimum(e[0], e[1]), e[2])
    hi = np.maximum(np.maximum(e[0], e[1]), e[2])
    rim = (lo > rules.rim_min_od) & (hi - lo < rules.rim_max_chroma * hi)
    if not rim.any():
        return np.zeros(shape, bool)
    rim_map = _block_mean(rim.view(np.uint8), s)[: shape[0], : shape[1]] > 0.05
    rim_map = np.pad(rim_map, ((0, shape[0] - rim_map.shape[0]), (0, shape[1] - rim_map.shape[1])))
    if not_rim is not None:
        rim_map &= ~not_rim
    closed = ndi.binary_closing(np.pad(rim_map, 3), iterations=2)[3:-3, 3:-3]
    filled = ndi.binary_fill_holes(closed)
    inner = filled & ~closed & ~dark
    if not inner.any():
        return np.zeros(shape, bool)
    labels, n = ndi.label(filled)
    min_px = (rules.bubble_min_um / rules.step_um) ** 2 * np.pi / 4.0
    area_inner = np.bincount(labels[inner], minlength=n + 1)
    # a bubble's rim is its edge: rim pixels deeper than 8 um inside mean a network of dark lines
    # (membranes, fibres) enclosing tissue, not a bubble
    deep = rim_map & (ndi.distance_transform_edt(filled) > 2.0)
    rim_total = np.bincount(labels[rim_map & filled], minlength=n + 1)
    rim_deep = np.bincount(labels[deep], minlength=n + 1)
    keep = (area_inner >= min_px) & (rim_deep <= rules.bubble_inner_rim * np.maximum(rim_total, 1))
    keep[0] = False
    return keep[labels]
