"""her2fast.stages.texture.local_binary_pattern against scikit-image (the reference it replaces)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from skimage.color import rgb2gray
from skimage.feature import local_binary_pattern as sk_lbp
from skimage.util import img_as_ubyte

from her2fast import InvalidInputError, _native
from her2fast.stages.texture import local_binary_pattern

from _helpers import assert_same_in_two_threads

PR = [(8, 1.0), (16, 2.0), (8, 1.5), (24, 3.0), (4, 1.0), (12, 2.5)]


def _grey_versions(rgb: np.ndarray) -> list[np.ndarray]:
    return [np.ascontiguousarray(rgb[..., c]) for c in range(3)] + [img_as_ubyte(rgb2gray(rgb))]


@pytest.mark.parametrize("P,R", PR)
def test_equals_skimage_on_random_images(P, R):
    rng = np.random.default_rng(P * 100 + int(R * 10))
    for shape in [(37, 53), (1, 9), (9, 1), (2, 2), (64, 64)]:
        for high in (2, 8, 256):  # few grey levels -> many ties, the >= rule matters
            img = rng.integers(0, high, size=shape, dtype=np.uint8)
            ours = local_binary_pattern(img, P, R)
            ref = sk_lbp(img, P, R, method="uniform")
            assert ours.dtype == np.uint8 and ours.shape == img.shape
            np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("P,R", [(8, 1.0), (16, 2.0)])
def test_equals_skimage_on_real_ihc(ihc_image, P, R):
    for grey in _grey_versions(ihc_image):
        np.testing.assert_array_equal(local_binary_pattern(grey, P, R), sk_lbp(grey, P, R, method="uniform"))


@pytest.mark.parametrize("P,R", [(8, 1.0), (16, 2.0)])
def test_equals_skimage_on_her2_patches(her2_patch, P, R):
    for grey in _grey_versions(her2_patch):
        np.testing.assert_array_equal(local_binary_pattern(grey, P, R), sk_lbp(grey, P, R, method="uniform"))


def test_float_and_wider_integer_inputs_follow_skimage():
    rng = np.random.default_rng(1)
    f = rng.random((30, 40))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-image warns about float input
        ref = sk_lbp(f, 8, 1.0, method="uniform")
    np.testing.assert_array_equal(local_binary_pattern(f, 8, 1.0), ref)
    u16 = rng.integers(0, 4096, (30, 40)).astype(np.uint16)
    np.testing.assert_array_equal(local_binary_pattern(u16, 16, 2.0), sk_lbp(u16, 16, 2.0, method="uniform"))


def test_known_answers():
    flat = np.full((6, 7), 42, np.uint8)
    codes = local_binary_pattern(flat, 8, 1)
    assert (codes[1:-1, 1:-1] == 8).all()  # all neighbours equal the centre: every bit set
    spot = np.full((5, 5), 10, np.uint8)
    spot[2, 2] = 200
    codes = local_binary_pattern(spot, 8, 1)
    assert codes[2, 2] == 0  # all neighbours darker
    assert codes[2, 1] == 8  # one brighter, the rest equal: still all bits set
    checker = (np.indices((8, 8)).sum(axis=0) % 2 * 255).astype(np.uint8)
    assert (local_binary_pattern(checker, 4, 1)[2:-2, 2:-2][checker[2:-2, 2:-2] == 0] == 4).all()


def test_codes_in_range_and_invariant_to_increasing_grey_maps(ihc_image):
    grey = ihc_image[..., 2] // 4  # <= 63, so 2 g + 3 still fits in uint8
    for P, R in [(8, 1.0), (16, 2.0)]:
        a = local_binary_pattern(grey, P, R)
        assert a.min() >= 0 and a.max() <= P + 1
    # With on-grid neighbours only (P = 4) the comparison is exact, so the codes must not change.
    for R in (1.0, 2.0):
        a = local_binary_pattern(grey, 4, R)
        b = local_binary_pattern((grey * 2 + 3).astype(np.uint8), 4, R)
        m = int(R)
        np.testing.assert_array_equal(a[m:-m, m:-m], b[m:-m, m:-m])


def test_non_contiguous_input_is_copied():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (40, 80), dtype=np.uint8)
    view = img[:, ::2]
    np.testing.assert_array_equal(local_binary_pattern(view), local_binary_pattern(view.copy()))
    with pytest.raises(ValueError, match="C-contiguous"):
        _native.lbp_uniform_u8(view, 8, 1.0)  # the private binding refuses


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(image=np.zeros((4, 4, 3), np.uint8)), r"image must be 2-D .*\(4, 4, 3\)"),
        (dict(image=np.zeros((0, 4), np.uint8)), "must not be empty"),
        (dict(image=np.zeros((4, 4), bool)), "dtype"),
        (dict(image=np.zeros((4, 4), complex)), "dtype"),
        (dict(image=np.full((4, 4), np.nan)), "finite"),
        (dict(image=np.zeros((4, 4), np.uint8), P=0), "P must be in 1..64, got 0"),
        (dict(image=np.zeros((4, 4), np.uint8), P=65), "P must be in 1..64, got 65"),
        (dict(image=np.zeros((4, 4), np.uint8), P=8.5), "P must be an integer"),
        (dict(image=np.zeros((4, 4), np.uint8), R=0), "R must be finite and > 0, got 0"),
        (dict(image=np.zeros((4, 4), np.uint8), R=float("nan")), "R must be finite"),
        (dict(image=np.zeros((4, 4), np.uint8), method="ror"), r"method must be one of \('uniform',\)"),
    ],
)
def test_errors_name_the_parameter(kwargs, match):
    with pytest.raises(InvalidInputError, match=match) as info:
        local_binary_pattern(**kwargs)
    assert isinstance(info.value, ValueError)


def test_native_binding_maps_cpp_errors_to_value_error():
    with pytest.raises(ValueError, match="P must be in 1..64, got 0"):
        _native.lbp_uniform_u8(np.zeros((3, 3), np.uint8), 0, 1.0)
    with pytest.raises(ValueError, match="dtype"):
        _native.lbp_uniform_u8(np.zeros((3, 3), np.int16), 8, 1.0)


def test_two_threads_at_once_give_the_sequential_results(ihc_image):
    tiles = [np.ascontiguousarray(ihc_image[..., c]) for c in range(3)] * 4
    assert_same_in_two_threads(lambda t: local_binary_pattern(t, 16, 2.0), tiles)
