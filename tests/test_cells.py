"""her2fast.stages.cells: membrane skeletons and enclosed regions against scikit-image / scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.measure import euler_number
from skimage.morphology import skeletonize, thin

from her2fast import InvalidInputError
from her2fast.stages.cells import enclosed_regions, membrane_skeleton

from _helpers import assert_same_in_two_threads


def membrane_like_mask(seed: int, size: int = 256) -> np.ndarray:
    """Thick closed outlines of random blobs, some broken: what a membrane segmentation looks like."""
    rng = np.random.default_rng(seed)
    seeds = rng.random((size, size)) < 0.0015
    cells = ndi.binary_dilation(seeds, iterations=int(rng.integers(5, 9)))
    outline = cells ^ ndi.binary_erosion(cells, iterations=int(rng.integers(1, 4)))
    cuts = ndi.binary_dilation(rng.random((size, size)) < 0.0005, iterations=2)
    return outline & ~cuts


@pytest.mark.parametrize("density", [0.1, 0.3, 0.5, 0.7, 0.9])
def test_equals_skimage_thin_on_random_masks(density):
    rng = np.random.default_rng(int(density * 100))
    for shape in [(1, 1), (1, 30), (30, 1), (3, 3), (37, 53), (64, 64)]:
        mask = rng.random(shape) < density
        np.testing.assert_array_equal(membrane_skeleton(mask), thin(mask))


def test_equals_skimage_thin_on_membrane_like_masks_and_max_iter():
    for seed in range(6):
        mask = membrane_like_mask(seed)
        np.testing.assert_array_equal(membrane_skeleton(mask), thin(mask))
        for n in (1, 2):
            np.testing.assert_array_equal(membrane_skeleton(mask, max_iter=n), thin(mask, max_num_iter=n))


def test_equals_skimage_thin_on_phantom_membranes():
    from her2fast.synth import make_tile

    truth = make_tile(256, category="3+", seed=3)
    mask = np.asarray(truth.membrane_mask, dtype=bool)
    assert mask.any()
    np.testing.assert_array_equal(membrane_skeleton(mask), thin(mask))


def test_topology_agrees_with_skimage_skeletonize():
    # Zhang-Suen (skeletonize) and Guo-Hall (ours) differ in detail, not in topology.
    for seed in range(4):
        mask = membrane_like_mask(seed + 10)
        ours, zs = membrane_skeleton(mask), skeletonize(mask)
        assert (
            euler_number(ours, connectivity=2) == euler_number(zs, connectivity=2) == euler_number(mask, connectivity=2)
        )
        assert ndi.label(ours, structure=np.ones((3, 3)))[1] == ndi.label(zs, structure=np.ones((3, 3)))[1]
        # Same place: every skeleton pixel of ours lies within 2 px of skimage's.
        near = ndi.binary_dilation(zs, iterations=2)
        assert (ours & ~near).sum() <= 0.01 * ours.sum()


def test_skeleton_is_thin_and_inside_the_mask():
    mask = membrane_like_mask(42)
    sk = membrane_skeleton(mask)
    assert not (sk & ~mask).any()
    # No 2x2 block of skeleton pixels (one pixel wide).
    blocks = sk[:-1, :-1] & sk[1:, :-1] & sk[:-1, 1:] & sk[1:, 1:]
    assert not blocks.any()


def test_enclosed_regions_equal_scipy_labelling():
    for seed in range(5):
        sk = membrane_skeleton(membrane_like_mask(seed))
        table = enclosed_regions(sk)
        ref, n = ndi.label(~sk)  # 4-connectivity
        assert len(table) == n
        # Same partition: a one-to-one map between our ids and scipy's.
        pairs = np.unique(np.stack([table.labels[~sk], ref[~sk]]), axis=1)
        assert pairs.shape[1] == n
        assert (table.labels[sk] == -1).all()
        np.testing.assert_array_equal(np.bincount(table.labels[~sk]), table.area)
        border = np.zeros(n, bool)
        edge = np.zeros_like(sk)
        edge[[0, -1], :] = edge[:, [0, -1]] = True
        border[np.unique(table.labels[edge & ~sk])] = True
        np.testing.assert_array_equal(table.touches_border, border)
        # Raster order of first pixel.
        first = [np.flatnonzero(table.labels.ravel() == k)[0] for k in range(n)]
        assert first == sorted(first)


def test_closed_and_open_loops():
    ring = np.zeros((40, 40), bool)
    yy, xx = np.indices(ring.shape)
    d2 = (yy - 20) ** 2 + (xx - 20) ** 2
    ring[(d2 >= 100) & (d2 <= 169)] = True
    closed = enclosed_regions(membrane_skeleton(ring))
    assert closed.closed.sum() == 1
    broken = ring.copy()
    broken[:, 18:23] &= ~(yy[:, 18:23] < 15)  # cut the top of the ring
    opened = enclosed_regions(membrane_skeleton(broken))
    assert opened.closed.sum() == 0


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: membrane_skeleton(np.zeros((3, 3, 3), bool)), r"membrane_mask must be 2-D"),
        (lambda: membrane_skeleton(np.zeros((0, 3), bool)), "must not be empty"),
        (lambda: membrane_skeleton(np.zeros((3, 3), np.float32)), "boolean or integer"),
        (lambda: membrane_skeleton(np.zeros((3, 3), bool), max_iter=0), "max_iter must be a positive integer"),
        (lambda: enclosed_regions(np.zeros((3,), bool)), r"skeleton must be 2-D"),
    ],
)
def test_errors_name_the_parameter(call, match):
    with pytest.raises(InvalidInputError, match=match):
        call()


def test_two_threads_at_once_give_the_sequential_results():
    masks = [membrane_like_mask(s, 384) for s in range(6)]
    assert_same_in_two_threads(membrane_skeleton, masks)
