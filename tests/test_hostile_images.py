"""Images her2fast cannot read correctly are refused for the real reason, never scored with confidence.

Each case is made from a phantom (her2fast.synth): a greyscale copy, red and blue swapped, a resolution that
describes non-square pixels, CMYK, 16-bit samples, palette and inverted-grey TIFFs, other photometric formats.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import her2fast
from her2fast.errors import InvalidInputError, MissingResolutionError, UnsupportedSlideError
from her2fast.io.slide import MAX_PIXEL_ASPECT, open_slide
from her2fast.pipeline import ScoreSettings
from her2fast.qc import (
    FLAG_CHANNEL_ORDER,
    REASON_CHANNELS_SWAPPED,
    REASON_GREYSCALE,
    REASON_NUCLEAR,
    StainGateRules,
    check_colour,
)

from _helpers import load_rgb, shared_file

RES = dict(resolution=(20000, 20000), resolutionunit="CENTIMETER")  # 0.5 um/px


@pytest.fixture(scope="module")
def phantom(phantom_slide) -> np.ndarray:
    """Level 0 of a 3+ phantom slide (1024 x 1024 at 0.5 um/px), which scores 3+ as it is (made once per test
    run, shared with test_stain_gate_scoring.py)."""
    import tifffile

    gt = phantom_slide(category="3+", width=1024, height=1024, seed=7301)
    with tifffile.TiffFile(gt.path) as tif:
        return tif.pages.first.asarray()


def write_tiff(path: Path, pixels: np.ndarray, photometric: str, **kw) -> Path:
    import tifffile

    tifffile.imwrite(path, pixels, photometric=photometric, **{**RES, **kw})
    return path


def grey_of(rgb: np.ndarray) -> np.ndarray:
    return np.round(rgb @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)


def test_the_phantom_itself_scores_3plus(phantom, tmp_path):
    r = her2fast.score(write_tiff(tmp_path / "rgb.tiff", phantom, "rgb"), progress=False)
    assert r.score == "3+" and "greyscale_image" not in r.flags and FLAG_CHANNEL_ORDER not in r.flags


# ------------------------------------------------------------------------------------ no colour
@pytest.mark.parametrize("form", ["grey_tiff", "grey_png", "grey_as_rgb_tiff", "grey_as_rgb_jpeg"])
@pytest.mark.parametrize("gate", [True, False])
def test_a_greyscale_slide_is_refused_as_greyscale(phantom, tmp_path, form, gate):
    from PIL import Image

    g = grey_of(phantom)
    if form == "grey_tiff":
        path = write_tiff(tmp_path / "g.tiff", g, "minisblack")
    elif form == "grey_as_rgb_tiff":
        path = write_tiff(tmp_path / "g.tiff", np.repeat(g[..., None], 3, axis=2), "rgb")
    elif form == "grey_png":
        path = tmp_path / "g.png"
        Image.fromarray(g).save(path, dpi=(50800, 50800))
    else:
        path = tmp_path / "g.jpg"
        Image.fromarray(np.repeat(g[..., None], 3, axis=2)).save(path, quality=80, dpi=(50800, 50800))
    settings = ScoreSettings(stain_gate=gate)  # an image that cannot be read is refused even with the gate off
    r = her2fast.score(path, progress=False, settings=settings)
    assert r.score is None and r.confidence is None and r.category is None
    assert r.not_scorable.startswith(REASON_GREYSCALE) and "no colour" in r.not_scorable
    assert REASON_GREYSCALE in r.flags and "no_tissue" not in r.flags
    assert r.provenance["qc"]["colour"]["figures"]["colour_fraction"] < StainGateRules().min_colour_fraction


def test_check_colour_on_thumbnails(phantom):
    assert check_colour(phantom).scorable
    g = np.repeat(grey_of(phantom)[..., None], 3, axis=2)
    d = check_colour(g)
    assert not d.scorable and d.reason == REASON_GREYSCALE and d.figures["colour_fraction"] == 0.0
    # a few coloured specks (dust, a pen mark) do not make a greyscale image scorable
    specks = g.copy()
    specks[:20, :20] = (150, 90, 60)
    assert not check_colour(specks).scorable
    # glass alone (no stained pixels) cannot be judged: left to tissue detection
    assert check_colour(np.full((64, 64, 3), 240, np.uint8)).scorable
    with pytest.raises(InvalidInputError, match="tissue_mask"):
        check_colour(phantom, np.ones((3, 3), bool))


@pytest.mark.parametrize(
    "name",
    ["30_Nov_23_HER2_2+_D+_04__04_HER2_2+_D+_34.png", "HER2_2+_DISH+_case_07__IMG_8718.png"],
)
def test_real_low_colour_photos_have_colour(name):
    # the two real images with the least colour (camera photos with a grey cast): 0.81 and 0.76 coloured
    rgb = load_rgb(shared_file(f"ihc/real-fields/tune/chula/{name}"))
    d = check_colour(rgb)
    assert d.scorable and d.figures["colour_fraction"] > 10 * StainGateRules().min_colour_fraction


# ------------------------------------------------------------------------------------ red and blue swapped
def test_red_blue_swapped_slide_is_refused_as_swapped(phantom, tmp_path):
    path = write_tiff(tmp_path / "bgr.tiff", np.ascontiguousarray(phantom[..., ::-1]), "rgb")
    r = her2fast.score(path, progress=False)
    assert r.score is None and r.confidence is None
    assert r.not_scorable.startswith(REASON_CHANNELS_SWAPPED) and "swapped" in r.not_scorable
    gate = r.provenance["qc"]["stain_gate"]
    assert gate["reason"] == REASON_CHANNELS_SWAPPED
    assert gate["figures"]["channel_order_margin_deg"] >= StainGateRules().swapped_margin_deg


def _gate_of(rgb: np.ndarray, tmp_path: Path):
    from PIL import Image

    path = tmp_path / "tile.png"
    Image.fromarray(rgb).save(path)
    return _gate_of_file(path, 0.5)


@pytest.mark.parametrize("category", ["0", "1+", "2+", "3+"])
def test_swapped_phantoms_of_every_category_are_refused(category, tmp_path):
    from her2fast.synth import make_tile

    rgb = make_tile(704, category=category, seed=11).rgb
    assert _gate_of(rgb, tmp_path).scorable
    d = _gate_of(np.ascontiguousarray(rgb[..., ::-1]), tmp_path)
    assert not d.scorable
    # stains that lean clearly towards swapped are named for it; on a slide with little DAB the colours say
    # little and the swapped slide's "DAB" is its nuclei
    assert d.reason == (REASON_CHANNELS_SWAPPED if category in ("2+", "3+") else REASON_NUCLEAR), d.message


def _gate_of_file(path: Path, mpp: float):
    from her2fast.qc import check_slide_stain
    from her2fast.stages.stain import slide_stain_vectors
    from her2fast.stages.tissue import detect_tissue, tile_grid

    s = ScoreSettings()
    with open_slide(path, mpp=mpp) as slide:
        tissue = detect_tissue(slide)
        grid = tile_grid(slide, tissue, tile_size=s.tile_size, overlap=s.overlap, mpp=s.mpp, min_tissue=s.min_tissue)
        return check_slide_stain(slide, tissue, grid, slide_stain_vectors(slide, grid, background=tissue.background))


def test_real_her2_images_are_not_taken_for_swapped(tmp_path):
    from PIL import Image

    # the real image whose stains lean furthest towards a swap (+1.8 deg) passes unflagged
    path = shared_file("ihc/real-fields/tune/chula/HER2_2+_DISH+_case_05__HER2_2+DISH+05_17.png")
    rgb = load_rgb(path)
    d = _gate_of_file(path, 420.0 / rgb.shape[1])  # no resolution in the photos (see benchmarks/qc_gate.py)
    assert d.scorable and FLAG_CHANNEL_ORDER not in d.flags
    assert d.figures["channel_order_margin_deg"] < StainGateRules().suspect_margin_deg
    # the real image with the most distinct stains, swapped, is refused for the swap
    strong = load_rgb(shared_file("ihc/real-fields/tune/chula/HER2_2+_DISH+_case_08__8_July_Pos_Dish_64.png"))
    p = tmp_path / "bgr.png"
    Image.fromarray(np.ascontiguousarray(strong[..., ::-1])).save(p)
    d = _gate_of_file(p, 420.0 / strong.shape[1])
    assert not d.scorable and d.reason == REASON_CHANNELS_SWAPPED, d.message


def test_stain_gate_rules_for_the_swap_are_checked():
    with pytest.raises(InvalidInputError, match="suspect_margin_deg"):
        StainGateRules(suspect_margin_deg=9.0, swapped_margin_deg=8.0)
    with pytest.raises(InvalidInputError, match="min_colour_fraction"):
        StainGateRules(min_colour_fraction=1.5)
    d = json.loads(json.dumps(StainGateRules().__dict__))
    assert d["swapped_margin_deg"] > d["suspect_margin_deg"] > 0


# ------------------------------------------------------------------------------------ non-square pixels
@pytest.mark.parametrize("mpp_y", [0.75, 1.5, 25.0])
def test_a_resolution_of_non_square_pixels_is_refused(phantom, tmp_path, mpp_y):
    path = write_tiff(tmp_path / "a.tiff", phantom, "rgb", resolution=(20000, 1e4 / mpp_y))
    with pytest.raises(MissingResolutionError, match=r"0\.5 x .* um/px") as info:
        open_slide(path)
    assert "MAX_PIXEL_ASPECT" in str(info.value) and "mpp=" in str(info.value)
    with pytest.raises(MissingResolutionError):
        her2fast.score(path, progress=False)
    # one number declares the pixels square and overrides the tags
    with open_slide(path, mpp=0.5) as slide:
        assert slide.mpp_x == slide.mpp_y == 0.5


def test_nearly_square_pixels_are_resampled_per_axis(phantom, tmp_path):
    ratio = 1.04
    assert ratio < MAX_PIXEL_ASPECT
    path = write_tiff(tmp_path / "a.tiff", phantom, "rgb", resolution=(20000, 20000 / ratio))
    with open_slide(path) as slide:
        assert slide.mpp_y == pytest.approx(0.5 * ratio)
        w, h = slide.size_at(0.5)
        assert (w, h) == (1024, round(1024 * ratio))  # the y axis is stretched to its true length


def test_user_mpp_pairs_must_describe_square_pixels(phantom, tmp_path):
    path = write_tiff(tmp_path / "rgb.tiff", phantom, "rgb")
    with pytest.raises(InvalidInputError, match="mpp=.*MAX_PIXEL_ASPECT"):
        open_slide(path, mpp=(0.5, 0.6))
    with open_slide(path, mpp=(0.5, 0.51)) as slide:
        assert (slide.mpp_x, slide.mpp_y) == (0.5, 0.51)


def test_the_coarser_axis_decides_whether_membranes_are_resolved(phantom, tmp_path):
    # within the aspect tolerance, but the coarse axis is over MAX_SCORING_MPP while the mean is not
    from her2fast.pipeline.run import MAX_SCORING_MPP

    small = np.ascontiguousarray(phantom[::4, ::4])
    path = write_tiff(tmp_path / "c.tiff", small, "rgb")
    r = her2fast.score(path, mpp=(MAX_SCORING_MPP * 0.98, MAX_SCORING_MPP * 1.02), progress=False)
    assert r.score is None and "resolution_too_coarse" in r.flags


# ------------------------------------------------------------------------------------ pixel formats
def test_cmyk_tiffs_are_refused_as_cmyk(phantom, tmp_path):
    from PIL import Image

    made = write_tiff(tmp_path / "t.tiff", np.asarray(Image.fromarray(phantom).convert("CMYK")), "separated")
    pil = tmp_path / "p.tiff"
    Image.fromarray(phantom).convert("CMYK").save(pil, dpi=(50800, 50800))
    jpg = tmp_path / "c.jpg"
    Image.fromarray(phantom).convert("CMYK").save(jpg, dpi=(50800, 50800))
    for path in (made, pil, jpg):
        with pytest.raises(UnsupportedSlideError, match="CMYK") as info:
            open_slide(path)
        assert str(path) in str(info.value) and "RGB" in str(info.value)
        assert "glass" not in str(info.value)


@pytest.mark.parametrize("fmt", ["png", "tiff"])
@pytest.mark.parametrize("alpha", [False, True])
def test_full_range_16bit_images_decode_to_the_same_8bit_pixels(phantom, tmp_path, fmt, alpha):
    import imagecodecs

    px = np.dstack([phantom, np.full(phantom.shape[:2], 255, np.uint8)]) if alpha else phantom
    wide = px.astype(np.uint16) * 257
    if fmt == "png":
        path = tmp_path / "w.png"
        path.write_bytes(imagecodecs.png_encode(wide))
        mpp = 0.5
    else:
        path = write_tiff(tmp_path / "w.tiff", wide, "rgb", extrasamples=("unassalpha",) if alpha else None)
        mpp = None
    with open_slide(path, mpp=mpp) as slide:
        np.testing.assert_array_equal(slide.read(0, 0, *slide.dimensions), phantom)


def test_16bit_values_between_8bit_levels_round(tmp_path):
    import imagecodecs

    wide = np.array([[[0, 128, 65535], [257 * 200 + 128, 257 * 200 + 129, 65534]]], np.uint16)
    path = tmp_path / "r.png"
    path.write_bytes(imagecodecs.png_encode(wide))
    with open_slide(path, mpp=0.5) as slide:
        got = slide.read(0, 0, 2, 1)
    np.testing.assert_array_equal(got, np.round(wide / 257.0).astype(np.uint8))


@pytest.mark.parametrize("fmt", ["png", "tiff"])
def test_low_range_16bit_images_are_refused_for_what_they_are(phantom, tmp_path, fmt):
    import imagecodecs

    twelve = phantom.astype(np.uint16) * 16  # 12-bit data in a 16-bit file: Pillow alone read it as near black
    if fmt == "png":
        path = tmp_path / "l.png"
        path.write_bytes(imagecodecs.png_encode(twelve))
    else:
        path = write_tiff(tmp_path / "l.tiff", twelve, "rgb")
    with pytest.raises(UnsupportedSlideError, match="16-bit samples that never exceed 4080") as info:
        open_slide(path, mpp=0.5)
    assert "fluorescence" not in str(info.value) and "glass" in str(info.value)


def test_16bit_greyscale_png_opens_and_is_refused_as_greyscale(phantom, tmp_path):
    from PIL import Image

    path = tmp_path / "g16.png"
    Image.fromarray(grey_of(phantom).astype(np.uint16) * 257).save(path)
    with open_slide(path, mpp=0.5) as slide:
        px = slide.read(0, 0, *slide.dimensions)
    np.testing.assert_array_equal(px[..., 0], grey_of(phantom))
    r = her2fast.score(path, mpp=0.5, progress=False)
    assert r.score is None and r.not_scorable.startswith(REASON_GREYSCALE)


def test_palette_and_min_is_white_tiffs_decode_to_their_colours(phantom, tmp_path):
    from PIL import Image

    q = Image.fromarray(phantom).quantize(256)
    lut = np.array(q.getpalette()[:768], np.uint16).reshape(256, 3).T * 257
    pal = write_tiff(tmp_path / "pal.tiff", np.asarray(q), "palette", colormap=lut)
    with open_slide(pal) as slide:
        np.testing.assert_array_equal(slide.read(0, 0, *slide.dimensions), np.asarray(q.convert("RGB")))
    g = grey_of(phantom)
    inv = write_tiff(tmp_path / "inv.tiff", 255 - g, "miniswhite")
    with open_slide(inv) as slide:
        np.testing.assert_array_equal(slide.read(0, 0, *slide.dimensions)[..., 1], g)


def test_other_photometric_formats_are_refused_by_name(phantom, tmp_path):
    from skimage.color import rgb2lab

    lab = rgb2lab(phantom[:64, :64])
    lab8 = np.dstack([lab[..., 0] * 255 / 100, lab[..., 1] + 128, lab[..., 2] + 128]).round().astype(np.uint8)
    path = write_tiff(tmp_path / "lab.tiff", lab8, "cielab")
    with pytest.raises(UnsupportedSlideError, match="CIELAB"):
        open_slide(path)


def test_float_images_are_refused_by_dtype(phantom, tmp_path):
    path = write_tiff(tmp_path / "f.tiff", phantom.astype(np.float32) / 255, "rgb")
    with pytest.raises(UnsupportedSlideError, match="float32"):
        open_slide(path)
