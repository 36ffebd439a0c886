"""her2fast.stages.morphology (grey reconstruction, h-maxima, hole filling, binary morphology, distance transform)
against scikit-image / SciPy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.morphology import h_maxima as sk_h_maxima
from skimage.morphology import reconstruction as sk_reconstruction

from her2fast.errors import InvalidInputError
from her2fast.stages.morphology import (
    binary_dilation,
    binary_erosion,
    binary_opening,
    distance_transform,
    fill_holes,
    h_maxima,
    reconstruct_dilation,
)
from her2fast.stages.morphology import disk as _disk
from her2fast.stages.stain import deconvolve

from _helpers import assert_same_in_two_threads


def _random_maps(seed: int, n: int):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        h, w = (int(v) for v in rng.integers(1, 70, 2))
        kind = rng.integers(3)
        if kind == 0:  # distance maps of random masks (what nuclei.py feeds it)
            img = ndi.distance_transform_edt(rng.random((h, w)) > rng.uniform(0.2, 0.8)).astype(np.float32)
        elif kind == 1:  # few grey levels: plateaus and ties everywhere
            img = rng.integers(0, int(rng.integers(2, 6)), (h, w)).astype(np.float32)
        else:  # smooth noise
            img = ndi.gaussian_filter(rng.random((h, w)), 2.0).astype(np.float32) * 10
        yield rng, img


def test_reconstruct_dilation_equals_skimage_on_random_maps():
    for rng, img in _random_maps(0, 150):
        marker = np.minimum(img, (rng.random(img.shape) * img.max()).astype(np.float32))
        np.testing.assert_array_equal(
            reconstruct_dilation(marker, img), sk_reconstruction(marker, img, method="dilation")
        )


@pytest.mark.parametrize("h", [0.25, 0.5, 1.0, 2.5])
def test_h_maxima_equals_skimage_on_random_maps(h):
    for _, img in _random_maps(1, 120):
        np.testing.assert_array_equal(h_maxima(img, h), sk_h_maxima(img, h))


def test_h_maxima_equals_skimage_on_real_nuclei(her2_patch):
    hem = deconvolve(her2_patch).hematoxylin.astype(np.float32)
    fg = ndi.gaussian_filter(hem, 1.0) >= 0.27
    dist = ndi.distance_transform_edt(fg).astype(np.float32)
    if dist.max() <= 0.5:
        pytest.skip("no nuclei in this patch")
    np.testing.assert_array_equal(h_maxima(dist, 0.5), sk_h_maxima(dist, 0.5))
    np.testing.assert_array_equal(fill_holes(fg), ndi.binary_fill_holes(fg))


def test_fill_holes_equals_scipy_on_random_masks():
    rng = np.random.default_rng(2)
    for _ in range(200):
        h, w = (int(v) for v in rng.integers(1, 50, 2))
        m = rng.random((h, w)) < rng.uniform(0.2, 0.9)
        np.testing.assert_array_equal(fill_holes(m), ndi.binary_fill_holes(m))
    assert fill_holes(np.ones((3, 3), bool)).all()
    assert not fill_holes(np.zeros((3, 3), bool)).any()


def test_reconstruction_in_two_threads():
    maps = [img for _, img in _random_maps(3, 8)]
    assert_same_in_two_threads(lambda img: reconstruct_dilation(np.zeros_like(img) + img.min(), img), maps)


def test_bad_inputs_name_the_problem():
    with pytest.raises(InvalidInputError, match="marker must be <= mask"):
        reconstruct_dilation(np.ones((3, 3)), np.zeros((3, 3)))
    with pytest.raises(InvalidInputError, match="same shape"):
        reconstruct_dilation(np.zeros((3, 3)), np.zeros((3, 4)))
    with pytest.raises(InvalidInputError, match="NaN"):
        h_maxima(np.full((3, 3), np.nan), 1.0)
    with pytest.raises(InvalidInputError, match="2-D"):
        h_maxima(np.zeros(5), 1.0)
    with pytest.raises(InvalidInputError, match="h must be"):
        h_maxima(np.zeros((3, 3)), 0.0)
    with pytest.raises(InvalidInputError, match="odd sides"):
        binary_erosion(np.zeros((3, 3), bool), np.ones((2, 3), bool))
    with pytest.raises(InvalidInputError, match="2-D"):
        distance_transform(np.zeros(5, bool))


def test_binary_morphology_equals_scipy_on_random_masks_and_structures():
    rng = np.random.default_rng(4)
    for i in range(300):
        h, w = (int(v) for v in rng.integers(1, 60, 2))
        m = rng.random((h, w)) < rng.random()
        if i % 3 == 0:
            st = _disk(float(rng.uniform(0, 4)))
        else:  # any odd-sided structure, rows with gaps, not symmetric, sometimes empty
            st = rng.random(tuple(int(v) * 2 + 1 for v in rng.integers(0, 3, 2))) < 0.6
        np.testing.assert_array_equal(binary_erosion(m, st), ndi.binary_erosion(m, structure=st))
        np.testing.assert_array_equal(binary_dilation(m, st), ndi.binary_dilation(m, structure=st))
        np.testing.assert_array_equal(binary_opening(m, st), ndi.binary_opening(m, structure=st))


def test_distance_transform_equals_scipy_on_random_masks():
    rng = np.random.default_rng(5)
    for _ in range(300):
        h, w = (int(v) for v in rng.integers(1, 90, 2))
        m = rng.random((h, w)) < rng.uniform(0.0, 1.0)
        np.testing.assert_array_equal(distance_transform(m), ndi.distance_transform_edt(m).astype(np.float32))
    ones = np.ones((4, 5), bool)  # no background pixel: scipy's convention
    np.testing.assert_array_equal(distance_transform(ones), ndi.distance_transform_edt(ones).astype(np.float32))


def test_binary_morphology_and_distance_equal_scipy_on_real_nuclei(her2_patch):
    hem = deconvolve(her2_patch).hematoxylin.astype(np.float32)
    fg = ndi.gaussian_filter(hem, 1.0) >= 0.27
    for r in (1.0, 2.0, 3.5):
        np.testing.assert_array_equal(binary_opening(fg, _disk(r)), ndi.binary_opening(fg, structure=_disk(r)))
        np.testing.assert_array_equal(binary_dilation(fg, _disk(r)), ndi.binary_dilation(fg, structure=_disk(r)))
    np.testing.assert_array_equal(distance_transform(fg), ndi.distance_transform_edt(fg).astype(np.float32))


def test_distance_transform_in_two_threads():
    rng = np.random.default_rng(6)
    masks = [rng.random((200, 170)) < p for p in (0.3, 0.7, 0.95, 0.99)]
    assert_same_in_two_threads(distance_transform, masks)
