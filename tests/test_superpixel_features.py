"""her2fast.stages.superpixels.superpixel_features against the numpy (np.bincount) reference."""

from __future__ import annotations

import numpy as np
import pytest

from her2fast import InvalidInputError
from her2fast.bench.reference import colour_bins, superpixel_features_reference
from her2fast.stages.superpixels import feature_names, slic, superpixel_features

from _helpers import assert_same_in_two_threads


@pytest.mark.parametrize("P,R", [(8, 1.0), (16, 2.0)])
def test_equals_numpy_reference_on_random_labels(P, R):
    rng = np.random.default_rng(P)
    for shape, k in [((37, 45), 7), ((64, 64), 50), ((5, 200), 3)]:
        img = rng.integers(0, 256, shape + (3,), dtype=np.uint8)
        labels = rng.integers(-1, k, shape).astype(np.int32)  # -1 = ignored pixels
        ours = superpixel_features(img, labels, P=P, R=R, n_labels=k + 2)  # two empty superpixels at the end
        ref = superpixel_features_reference(img, labels, P=P, R=R, n_labels=k + 2)
        assert ours.shape == (k + 2, 224 + P + 2 + 1) and ours.dtype == np.float64
        np.testing.assert_array_equal(ours, ref)
        assert (ours[-2:] == 0).all()


def test_equals_numpy_reference_on_real_tiles_with_slic_labels(ihc_image, her2_patch):
    for img in (ihc_image, her2_patch):
        labels = slic(img, n_segments=300)
        np.testing.assert_array_equal(superpixel_features(img, labels), superpixel_features_reference(img, labels))


def test_histograms_are_normalised_and_count_is_pixels(ihc_image):
    labels = slic(ihc_image, n_segments=100)
    feats = superpixel_features(ihc_image, labels)
    for block in range(7):
        np.testing.assert_allclose(feats[:, block * 32 : (block + 1) * 32].sum(axis=1), 1.0)
    np.testing.assert_allclose(feats[:, 224:234].sum(axis=1), 1.0)
    np.testing.assert_array_equal(feats[:, -1], np.bincount(labels.ravel()))


def test_every_colour_bin_is_reachable_and_hue_wraps():
    # All 2^24 colours would be slow; a 64^3 grid covers every bin of every channel.
    v = np.arange(0, 256, 4, dtype=np.uint8)
    grid = np.stack(np.meshgrid(v, v, v, indexing="ij"), axis=-1).reshape(-1, 1, 3)
    bins = colour_bins(grid).reshape(-1, 7)
    for ch in range(7):
        assert set(np.unique(bins[:, ch])) == set(range(32)), ch
    # Kernel and reference agree on this grid, one superpixel per colour.
    labels = np.arange(grid.shape[0], dtype=np.int32).reshape(-1, 1)
    feats = superpixel_features(np.ascontiguousarray(grid), labels)
    for ch in range(7):
        np.testing.assert_array_equal(feats[:, ch * 32 : (ch + 1) * 32].argmax(axis=1), bins[:, ch])


def test_feature_names():
    names = feature_names(8)
    assert len(names) == 235 and len(set(names)) == 235
    assert names[32] == "green_00" and names[96] == "hue_00" and names[224] == "lbp_0" and names[233] == "lbp_9"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(labels=np.zeros((8, 9), np.int32)), r"labels must have the image's shape \(8, 8\)"),
        (dict(labels=np.zeros((8, 8), np.float32)), "labels must have an integer dtype"),
        (dict(labels=np.full((8, 8), -2, np.int32)), "labels must be >= -1"),
        (dict(labels=np.full((8, 8), 3, np.int32), n_labels=2), "labels must be < n_labels=2, got maximum 3"),
        (dict(labels=np.zeros((8, 8), np.int32), P=0), "P must be in 1..64"),
        (dict(labels=np.zeros((8, 8), np.int32), R=-1), "R must be finite and > 0"),
    ],
)
def test_errors_name_the_parameter(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        superpixel_features(np.zeros((8, 8, 3), np.uint8), **kwargs)


def test_int64_labels_accepted():
    img = np.random.default_rng(0).integers(0, 256, (10, 10, 3), dtype=np.uint8)
    labels = np.repeat(np.arange(10), 10).reshape(10, 10)
    np.testing.assert_array_equal(superpixel_features(img, labels), superpixel_features(img, labels.astype(np.int32)))


def test_two_threads_at_once_give_the_sequential_results(ihc_image):
    tiles = [np.ascontiguousarray(np.rot90(ihc_image, k)) for k in range(4)]
    pairs = [(t, slic(t, n_segments=200)) for t in tiles]
    assert_same_in_two_threads(lambda pair: superpixel_features(*pair), pairs)
