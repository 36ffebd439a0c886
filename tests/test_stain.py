"""Stain vectors, colour deconvolution and histogram-matching normalisation (her2fast.stages.stain)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from her2fast.errors import Her2FastError, InvalidInputError
from her2fast.stages.stain import (
    STANDARD_DAB,
    STANDARD_HEMATOXYLIN,
    StainReference,
    StainVectors,
    deconvolve,
    estimate_stain_vectors,
    normalize_to_reference,
    optical_density,
    slide_stain_vectors,
    stain_reference,
)


def angle(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return math.degrees(math.acos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1)))


def unit(v) -> np.ndarray:
    v = np.asarray(v, float)
    return v / np.linalg.norm(v)


def mixture_image(h_vec, d_vec, *, n=256, dab=True, seed=0, white=(250.0, 249.0, 247.0), noise=1.0) -> np.ndarray:
    """Beer-Lambert image of random H and DAB amounts (a quarter glass), 8-bit with sensor noise."""
    rng = np.random.default_rng(seed)
    c_h = rng.gamma(2.0, 0.25, (n, n)) * (rng.random((n, n)) < 0.7)  # nuclei, cytoplasm and unstained
    c_d = rng.gamma(1.5, 0.5, (n, n)) * (rng.random((n, n)) < 0.4) if dab else np.zeros((n, n))
    c_h[c_h == 0] = 0.02 * rng.random(int((c_h == 0).sum()))
    glass = np.zeros((n, n), bool)
    glass[: n // 4] = True
    c_h[glass] = 0
    c_d[glass] = 0
    od = c_h[..., None] * unit(h_vec) + c_d[..., None] * unit(d_vec)
    rgb = np.asarray(white) * np.exp(-od) + rng.normal(0, noise, od.shape)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------ optical density
def test_optical_density_known_values():
    img = np.array([[[255, 255, 255], [0, 128, 25]]], np.uint8)
    od = optical_density(img)
    assert od.dtype == np.float32 and od.shape == (1, 2, 3)
    np.testing.assert_allclose(od[0, 0], 0.0)
    np.testing.assert_allclose(od[0, 1], np.log(255.0 / np.array([1.0, 128.0, 25.0])), rtol=1e-6)
    # relative to an off-white glass: glass reads 0, brighter pixels are clipped to 0
    od = optical_density(np.array([[240, 250, 255]], np.uint8), background=(240, 240, 240))
    np.testing.assert_allclose(od, [[0.0, 0.0, 0.0]])


def test_optical_density_errors():
    with pytest.raises(InvalidInputError, match="uint8"):
        optical_density(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(InvalidInputError, match="background"):
        optical_density(np.zeros((4, 4, 3), np.uint8), background=(0, 0, 0))


# ------------------------------------------------------------------------------------ estimation
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_macenko_recovers_jittered_vectors_of_od_mixtures(seed):
    rng = np.random.default_rng(100 + seed)
    h = unit(STANDARD_HEMATOXYLIN + rng.normal(0, 0.05, 3))
    d = unit(STANDARD_DAB * 0.5 + unit([0.05, 0.36, 0.93]) * 0.5 + rng.normal(0, 0.05, 3))
    img = mixture_image(h, d, seed=seed)
    sv = estimate_stain_vectors(img, background=(250, 249, 247))
    assert sv.hematoxylin_estimated and sv.dab_estimated and not sv.fallback
    assert angle(sv.hematoxylin, h) < 2.0
    assert angle(sv.dab, d) < 2.0
    assert np.all(sv.hematoxylin >= 0) and np.all(sv.dab >= 0)
    assert sv.n_pixels > 10_000


def test_single_stain_falls_back_to_standard_dab():
    h = unit([0.7, 0.66, 0.27])
    img = mixture_image(h, STANDARD_DAB, dab=False)
    sv = estimate_stain_vectors(img, background=(250, 249, 247))
    assert sv.hematoxylin_estimated and not sv.dab_estimated and sv.fallback
    assert angle(sv.hematoxylin, h) < 2.0
    np.testing.assert_allclose(sv.dab, STANDARD_DAB)
    assert "single stain" in sv.reason


def test_glass_only_falls_back_to_standard_vectors():
    img = np.full((64, 64, 3), 250, np.uint8)
    sv = estimate_stain_vectors(img, background=(250, 250, 250))
    assert sv.fallback and not sv.hematoxylin_estimated and not sv.dab_estimated
    np.testing.assert_allclose(sv.hematoxylin, STANDARD_HEMATOXYLIN)
    np.testing.assert_allclose(sv.dab, STANDARD_DAB)
    assert "min_pixels" in sv.reason


def test_implausible_colours_fall_back():
    # a green and a red "stain": nothing like hematoxylin or DAB
    img = mixture_image([1.0, 0.1, 1.0], [0.1, 0.9, 0.9], seed=3)
    sv = estimate_stain_vectors(img, background=(250, 249, 247))
    assert sv.fallback
    assert angle(sv.hematoxylin, STANDARD_HEMATOXYLIN) < 1e-6 or angle(sv.dab, STANDARD_DAB) < 1e-6


def test_estimate_errors():
    with pytest.raises(InvalidInputError, match="mask"):
        estimate_stain_vectors(np.zeros((8, 8, 3), np.uint8), mask=np.zeros((4, 4), bool))
    with pytest.raises(InvalidInputError, match="alpha"):
        estimate_stain_vectors(np.zeros((8, 8, 3), np.uint8), alpha=60)
    with pytest.raises(InvalidInputError, match="parallel"):
        StainVectors([1, 1, 1], [1, 1, 1.0001])


@pytest.fixture(scope="module")
def phantom_3plus(tmp_path_factory):
    from her2fast.synth import make_slide

    path = tmp_path_factory.mktemp("stain") / "p3.tiff"
    make_slide(path, category="3+", width=1536, height=1536, mpp=0.5, seed=11, workers=1)
    return path


def test_slide_stain_vectors_recover_phantom_truth(phantom_3plus):
    from her2fast.io.slide import open_slide
    from her2fast.stages.tissue import detect_tissue, tile_grid

    truth = json.loads(phantom_3plus.with_name("p3.truth.json").read_text())["stain_vectors_rgb"]
    with open_slide(phantom_3plus) as slide:
        tissue = detect_tissue(slide)
        sv = slide_stain_vectors(slide, tile_grid(slide, tissue), background=tissue.background, n_tiles=6)
    assert not sv.fallback, sv.reason
    assert angle(sv.hematoxylin, truth["hematoxylin"]) < 3.0
    assert angle(sv.dab, truth["dab"]) < 3.0
    assert json.loads(json.dumps(sv.to_dict()))["dab_estimated"] is True


def test_slide_stain_vectors_errors():
    with pytest.raises(InvalidInputError, match="Slide"):
        slide_stain_vectors("slide.svs", None)


def test_real_patches_estimate_plausible_vectors(her2_patch):
    sv = estimate_stain_vectors(her2_patch)
    assert angle(sv.hematoxylin, STANDARD_HEMATOXYLIN) < 30
    assert angle(sv.dab, STANDARD_DAB) < 30
    assert sv.hematoxylin_estimated


# ------------------------------------------------------------------------------------ deconvolution
def test_deconvolution_recovers_concentrations():
    s = StainVectors(unit([0.7, 0.65, 0.29]), unit([0.15, 0.45, 0.88]), background=(250, 249, 247))
    rng = np.random.default_rng(0)
    c = rng.uniform(0, 1.5, (32, 32, 2))
    od = c[..., :1] * s.hematoxylin + c[..., 1:] * s.dab
    rgb = np.clip(np.rint(s.background * np.exp(-od)), 0, 255).astype(np.uint8)
    out = deconvolve(rgb, s)
    assert out.dab.dtype == np.float32 and out.dab.shape == (32, 32)
    # 8-bit quantisation: 0.5 / 255 relative error in transmittance -> <= ~0.02 OD at the darkest
    np.testing.assert_allclose(out.hematoxylin, c[..., 0], atol=0.05)
    np.testing.assert_allclose(out.dab, c[..., 1], atol=0.05)
    assert np.abs(out.residual).max() < 0.05
    assert out.stains is s


def test_native_deconvolution_equals_the_numpy_formulation_on_random_images():
    """deconvolve (one native pass) against optical_density(...) @ unmixing in float32 NumPy."""
    rng = np.random.default_rng(7)
    for k in range(30):
        h, w = (int(v) for v in rng.integers(1, 90, 2))
        img = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
        if k % 3 == 0:
            stains = StainVectors.standard()
        else:
            bg = rng.uniform(200, 255, 3)
            stains = StainVectors(unit(rng.uniform(0.1, 1, 3)), unit(rng.uniform(0.1, 1, 3)), background=bg)
        ref = optical_density(img, stains.background).reshape(-1, 3) @ stains.unmixing.astype(np.float32)
        ref = ref.reshape(h, w, 3)
        got = deconvolve(img, stains)
        for i, plane in enumerate((got.hematoxylin, got.dab, got.residual)):
            assert plane.dtype == np.float32 and plane.shape == (h, w) and plane.flags.c_contiguous
            # the same products and sums up to float32 rounding (BLAS may fuse or reorder them)
            np.testing.assert_allclose(plane, ref[..., i], rtol=1e-5, atol=1e-5)


def test_deconvolve_errors():
    with pytest.raises(InvalidInputError, match="StainVectors"):
        deconvolve(np.zeros((4, 4, 3), np.uint8), stains="standard")
    assert issubclass(InvalidInputError, Her2FastError)


# ------------------------------------------------------------------------------------ normalisation
def test_matching_a_tile_to_its_own_reference_is_nearly_identity():
    h, d = unit([0.7, 0.65, 0.29]), unit([0.15, 0.45, 0.88])
    img = mixture_image(h, d, seed=4)
    sv = estimate_stain_vectors(img, background=(250, 249, 247))
    ref = stain_reference(img, sv)
    out = normalize_to_reference(img, sv, ref)
    assert out.dtype == np.uint8 and out.shape == img.shape
    diff = np.abs(out.astype(int) - img.astype(int))
    assert np.percentile(diff, 99) <= 2 and diff.mean() < 0.5


def test_matched_channels_take_the_reference_histogram_and_keep_order():
    h, d = unit([0.7, 0.65, 0.29]), unit([0.15, 0.45, 0.88])
    src = mixture_image(h, d, seed=5, n=192)
    # reference: darker counterstain, stronger DAB, other vectors and glass
    rh, rd = unit([0.65, 0.70, 0.30]), unit([0.27, 0.57, 0.78])
    rng = np.random.default_rng(6)
    n = 192
    c_h = rng.gamma(2.0, 0.45, (n, n))
    c_d = rng.gamma(2.0, 0.6, (n, n)) * (rng.random((n, n)) < 0.5)
    od = c_h[..., None] * rh + c_d[..., None] * rd
    ref_img = np.clip(np.rint(245.0 * np.exp(-od)), 0, 255).astype(np.uint8)
    ref_sv = StainVectors(rh, rd, background=(245, 245, 245))
    ref = stain_reference(ref_img, ref_sv)
    assert isinstance(ref, StainReference) and ref.levels[0] == 0 and ref.levels[-1] == 1

    src_sv = StainVectors(h, d, background=(250, 249, 247))
    out = normalize_to_reference(src, src_sv, ref)
    got = deconvolve(out, ref_sv)
    before = deconvolve(src, src_sv)
    for name in ("hematoxylin", "dab"):
        q_ref = getattr(ref, name)
        q_out = np.quantile(getattr(got, name), ref.levels)
        inner = slice(5, -5)  # extreme tails are clipped by 8-bit saturation
        assert np.max(np.abs(q_out[inner] - q_ref[inner])) < 0.08, name
        # monotone: the order of stained pixels by concentration is preserved (Spearman close to 1; unstained
        # pixels are ties broken by 8-bit noise)
        a = getattr(before, name).ravel()
        b = getattr(got, name).ravel()
        stained = a > 0.1
        ra, rb = np.argsort(np.argsort(a[stained])), np.argsort(np.argsort(b[stained]))
        assert np.corrcoef(ra, rb)[0, 1] > 0.97, name


def test_unmatched_channel_keeps_its_concentrations():
    h, d = unit([0.7, 0.65, 0.29]), unit([0.15, 0.45, 0.88])
    src = mixture_image(h, d, seed=7, n=128)
    sv = StainVectors(h, d, background=(250, 249, 247))
    ref = stain_reference(mixture_image(h, d, seed=8, n=128) // 2 + 100, sv)
    out = normalize_to_reference(src, sv, ref, channels=("hematoxylin",))
    err = np.abs(deconvolve(out, sv).dab - deconvolve(src, sv).dab)
    assert np.median(err) < 0.01 and np.percentile(err, 95) < 0.06  # 8-bit rounding, saturating in dark pixels
    with pytest.raises(InvalidInputError, match="channels"):
        normalize_to_reference(src, sv, ref, channels=("eosin",))
    with pytest.raises(InvalidInputError, match="reference"):
        normalize_to_reference(src, sv, sv)
