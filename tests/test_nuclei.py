"""her2fast.nuclei.segment_nuclei on phantom tiles (exact nucleus masks) and its input checks."""

from __future__ import annotations

import numpy as np
import pytest

from her2fast.errors import InvalidInputError
from her2fast.nuclei import NucleiSettings, nuclei_scores, segment_nuclei
from her2fast.stain import deconvolve
from her2fast.synth import make_tile


@pytest.mark.parametrize("category,seed", [("3+", 11), ("1+", 12), ("0", 13)])
def test_nuclei_found_on_phantom_tiles(category, seed):
    tile = make_tile(seed=seed, size=384, category=category)
    labels = segment_nuclei(deconvolve(tile.rgb).hematoxylin, tile.mpp)
    assert labels.dtype == np.int32 and labels.shape == tile.rgb.shape[:2]
    s = nuclei_scores(labels, tile.nuclei_mask)
    assert s["recall"] >= 0.8 and s["precision"] >= 0.8 and s["dice"] >= 0.7, s


def test_touching_nuclei_are_split_and_a_waist_is_not():
    yy, xx = np.indices((60, 100))
    two = ((np.hypot(yy - 30, xx - 38) < 9) | (np.hypot(yy - 30, xx - 54) < 9)).astype(np.float32) * 0.5
    assert segment_nuclei(two, 0.5).max() == 2
    one = (np.hypot(yy - 30, xx - 50) < 10).astype(np.float32) * 0.5
    assert segment_nuclei(one, 0.5).max() == 1


def test_mask_and_settings_checks():
    od = np.zeros((20, 20), np.float32)
    assert segment_nuclei(od, 0.5).max() == 0
    with pytest.raises(InvalidInputError, match="mask"):
        segment_nuclei(od, 0.5, mask=np.ones((3, 3), bool))
    with pytest.raises(InvalidInputError, match="NaN"):
        segment_nuclei(np.full((5, 5), np.nan), 0.5)
    with pytest.raises(InvalidInputError, match="mpp"):
        segment_nuclei(od, 0.0)
    with pytest.raises(InvalidInputError, match="threshold_od"):
        NucleiSettings(threshold_od=-1)


def _reference_nuclei(h: np.ndarray, mpp: float, s: NucleiSettings = NucleiSettings()) -> np.ndarray:
    """The same method written with SciPy + scikit-image only (what segment_nuclei replaced)."""
    from scipy import ndimage as ndi
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    from her2fast.morphology import disk as _disk

    h = ndi.gaussian_filter(h.astype(np.float32), s.smooth_um / mpp, mode="nearest")
    fg = ndi.binary_opening(h >= np.float32(s.threshold_od), structure=_disk(s.opening_um / mpp))
    fg = ndi.binary_fill_holes(fg)
    comp, n = ndi.label(fg, structure=np.ones((3, 3), bool))
    keep = np.bincount(comp.ravel(), minlength=n + 1) >= s.min_area_um2 / mpp**2
    keep[0] = False
    fg = keep[comp]
    dist = ndi.distance_transform_edt(fg).astype(np.float32)
    peaks = h_maxima(dist, s.split_depth_um / mpp) & fg
    peaks = ndi.binary_dilation(peaks, structure=_disk(0.5 * s.min_distance_um / mpp)) & fg
    markers, n_markers = ndi.label(peaks, structure=np.ones((3, 3), bool))
    labels = watershed(-dist, markers, mask=fg, connectivity=2)
    orphan = fg & (labels == 0)
    extra, _ = ndi.label(orphan, structure=np.ones((3, 3), bool))
    return np.where(orphan, extra + n_markers, labels)


@pytest.mark.parametrize("category", ["0", "2+", "3+"])
def test_nuclei_agree_with_a_scipy_skimage_reference(category):
    """Same foreground and number of nuclei; pixels differ only where the distance map ties between
    two seeds (scikit-image orders equal-valued markers by its heap, we by raster order)."""
    t = make_tile(480, category=category, seed=41)
    h = deconvolve(t.rgb).hematoxylin
    ours, ref = segment_nuclei(h, 0.5), _reference_nuclei(h, 0.5)
    np.testing.assert_array_equal(ours > 0, ref > 0)
    assert ours.max() == ref.max()
    fg = ref > 0
    pairs, counts = np.unique(np.stack([ref[fg], ours[fg]]), axis=1, return_counts=True)
    best = np.zeros(int(ref.max()) + 1, np.int64)
    np.maximum.at(best, pairs[0], counts)
    assert best.sum() >= 0.998 * fg.sum()  # pixels in the nucleus that corresponds to the reference's
