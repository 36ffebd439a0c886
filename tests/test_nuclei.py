"""her2fast.stages.nuclei.segment_nuclei on phantom tiles (exact nucleus masks) and its input checks."""

from __future__ import annotations

import numpy as np
import pytest

from her2fast.errors import InvalidInputError
from her2fast.stages.nuclei import NucleiSettings, nuclei_scores, segment_nuclei
from her2fast.stages.stain import deconvolve
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

    from her2fast.stages.morphology import disk as _disk

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


def _kept_components(h: np.ndarray, mpp: float = 0.5, s: NucleiSettings = NucleiSettings()):
    """segment_nuclei's components and the kept ones (min area), as it makes them."""
    from scipy import ndimage as ndi

    from her2fast.stages.morphology import binary_opening, disk, fill_holes

    g = ndi.gaussian_filter(h.astype(np.float32), s.smooth_um / mpp, mode="nearest")
    fg = fill_holes(binary_opening(g >= np.float32(s.threshold_od), disk(s.opening_um / mpp)))
    comp, n = ndi.label(fg, structure=np.ones((3, 3), bool))
    keep = np.bincount(comp.ravel(), minlength=n + 1) >= s.min_area_um2 / mpp**2
    keep[0] = False
    return comp.astype(np.int32), keep


def _whole_image_seeds(comp: np.ndarray, keep: np.ndarray, depth: float):
    from her2fast.stages.morphology import distance_transform, h_maxima

    fg = keep[comp]
    dist = distance_transform(fg)
    peaks = (h_maxima(dist, depth) if dist.max() > depth else (dist > 0).astype(np.uint8)) & fg
    return dist, peaks


def test_nucleus_seeds_per_component_equal_the_whole_image_on_real_and_random_maps(ihc_image):
    from scipy import ndimage as ndi

    from her2fast import _native

    maps = [
        deconvolve(make_tile(512, category=c, seed=70 + i).rgb).hematoxylin for i, c in enumerate(["0", "2+", "3+"])
    ]
    maps.append(deconvolve(ihc_image).hematoxylin)  # scikit-image's real IHC sample
    cases = [_kept_components(h) for h in maps]
    rng = np.random.default_rng(5)
    for _ in range(40):  # random blobs and speckle, touching the borders
        m = rng.random((int(rng.integers(20, 160)), int(rng.integers(20, 160)))) < 0.03
        m = ndi.binary_dilation(m, iterations=int(rng.integers(1, 5))) | (rng.random(m.shape) < 0.02)
        comp, n = ndi.label(m, structure=np.ones((3, 3), bool))
        keep = rng.random(n + 1) < 0.8
        keep[0] = False
        cases.append((comp.astype(np.int32), keep))
    n_peaks = 0
    for comp, keep in cases:
        if keep[comp].all():
            continue
        for depth in (0.5, 0.25, 0.9):
            dist, peaks = _native.component_distance_maxima(comp, keep.view(np.uint8), depth)
            ref_dist, ref_peaks = _whole_image_seeds(comp, keep, depth)
            np.testing.assert_array_equal(dist, ref_dist)
            np.testing.assert_array_equal(peaks, ref_peaks)
            n_peaks += int(peaks.sum())
    assert n_peaks > 1000
    with pytest.raises(ValueError, match="height must be in"):
        _native.component_distance_maxima(cases[0][0], cases[0][1].view(np.uint8), 1.0)


def test_segment_nuclei_equals_its_whole_image_seeds(monkeypatch):
    """The per-component seeds change no label: segment_nuclei with the whole-image formulation swapped
    in gives the same label map, bit for bit."""
    from her2fast import _native

    maps = [
        deconvolve(make_tile(480, category=c, seed=90 + i).rgb).hematoxylin for i, c in enumerate(["1+", "2+", "3+"])
    ]
    fast = [segment_nuclei(h, 0.5) for h in maps]
    monkeypatch.setattr(
        _native, "component_distance_maxima", lambda comp, keep, depth: _whole_image_seeds(comp, keep.view(bool), depth)
    )
    for h, f in zip(maps, fast):
        np.testing.assert_array_equal(segment_nuclei(h, 0.5), f)
        assert f.max() > 50


# ------------------------------------------------------------- the native pass against its SciPy steps
def _steps(h, mpp=0.5, mask=None, s=NucleiSettings()):
    from her2fast.stages.nuclei import _segment_nuclei_steps

    return _segment_nuclei_steps(np.ascontiguousarray(h, dtype=np.float32), mpp, mask, s)


def test_native_nuclei_equal_the_scipy_steps_on_real_her2_patches(her2_patch):
    """The whole native pass against the SciPy / NumPy steps it replaced, label for label."""
    from her2fast.stages.stain import estimate_stain_vectors

    rgb = her2_patch[:704, :704]
    h = deconvolve(rgb, estimate_stain_vectors(rgb)).hematoxylin
    got = segment_nuclei(h, 0.5)
    assert got.max() > 20
    np.testing.assert_array_equal(got, _steps(h))


@pytest.mark.parametrize("category", ["0", "2+", "3+"])
def test_native_nuclei_equal_the_scipy_steps_on_phantom_windows(category):
    t = make_tile(800, category=category, seed=51)  # a stream window: 704 px + 2 x 48 px margins
    h = deconvolve(t.rgb).hematoxylin
    got = segment_nuclei(h, 0.5)
    assert got.max() > 100
    np.testing.assert_array_equal(got, _steps(h))
    # a tissue mask, and settings that switch steps off or change their sizes
    mask = np.zeros(h.shape, bool)
    mask[100:700, 50:600] = True
    np.testing.assert_array_equal(segment_nuclei(h, 0.5, mask=mask), _steps(h, mask=mask))
    for s in (
        NucleiSettings(smooth_um=0.0, opening_um=0.0),
        NucleiSettings(smooth_um=1.2, opening_um=1.6, min_distance_um=3.0, split_depth_um=0.1, min_area_um2=20.0),
        NucleiSettings(threshold_od=0.5),
    ):
        np.testing.assert_array_equal(segment_nuclei(h, 0.4, settings=s), _steps(h, 0.4, s=s))


def test_native_nuclei_equal_the_scipy_steps_on_random_maps():
    from scipy import ndimage as ndi

    rng = np.random.default_rng(5)
    for trial in range(12):
        shape = (int(rng.integers(1, 90)), int(rng.integers(1, 90)))
        h = ndi.gaussian_filter(rng.random(shape), float(rng.uniform(0.5, 4))) * float(rng.uniform(0.5, 1.5))
        h = h.astype(np.float32)
        mask = rng.random(shape) < 0.9 if trial % 3 == 0 else None
        s = NucleiSettings(threshold_od=float(np.quantile(h, rng.uniform(0.2, 0.8))), min_area_um2=1.0)
        np.testing.assert_array_equal(segment_nuclei(h, 0.5, mask=mask, settings=s), _steps(h, mask=mask, s=s))
    # nucleus everywhere (no background to measure to): the whole-image path answers
    full = np.ones((20, 30), np.float32)
    s = NucleiSettings(opening_um=0.0)
    np.testing.assert_array_equal(segment_nuclei(full, 0.5, settings=s), _steps(full, s=s))
    assert segment_nuclei(full, 0.5, settings=s).max() == 1


def test_native_gaussian_equals_scipy_bit_for_bit(ihc_image):
    from scipy import ndimage as ndi

    from her2fast import _native
    from her2fast.stages.nuclei import _gaussian_weights

    rng = np.random.default_rng(8)
    maps = [rng.normal(size=(37, 53)).astype(np.float32), rng.random((1, 9)).astype(np.float32)]
    maps.append(deconvolve(ihc_image).hematoxylin.astype(np.float32))
    for h in maps:
        for sigma in (0.3, 1.0, 2.5):
            want = ndi.gaussian_filter(h, sigma, mode="nearest")
            np.testing.assert_array_equal(_native.gaussian_smooth(h, _gaussian_weights(sigma)), want)


def test_native_binary_morphology_equals_the_numpy_shifts():
    from her2fast import _native
    from her2fast.stages.morphology import binary_dilation, binary_erosion, disk

    rng = np.random.default_rng(9)
    lopsided = np.array([[0, 1, 1, 0, 0], [1, 1, 1, 1, 0], [0, 0, 0, 0, 0]], bool)
    for _ in range(20):
        m = rng.random((int(rng.integers(1, 60)), int(rng.integers(1, 60)))) < rng.uniform(0.2, 0.9)
        for st in (disk(1.0), disk(2.0), disk(3.0), disk(4.5), lopsided):
            u8 = np.ascontiguousarray(m).view(np.uint8)
            np.testing.assert_array_equal(_native.binary_morphology(u8, st.view(np.uint8), True), binary_erosion(m, st))
            refl = np.ascontiguousarray(st[::-1, ::-1]).view(np.uint8)
            np.testing.assert_array_equal(_native.binary_morphology(u8, refl, False), binary_dilation(m, st))
    with pytest.raises(ValueError, match="one run"):
        _native.binary_morphology(np.ones((4, 4), np.uint8), np.array([[1, 0, 1]], np.uint8), True)


def test_native_nuclei_in_two_threads_at_once_give_the_sequential_labels():
    """Per-thread scratch: two windows segmented concurrently (GIL released) as one after the other."""
    from _helpers import assert_same_in_two_threads

    maps = [
        deconvolve(make_tile(320, category=c, seed=60 + i).rgb).hematoxylin
        for i, c in enumerate(["1+", "2+", "3+", "0"])
    ]
    maps += [m[::-1, :80].copy() for m in maps]  # other shapes: the scratch is resized between calls
    assert_same_in_two_threads(lambda h: segment_nuclei(h, 0.5), maps)
