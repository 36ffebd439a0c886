"""Slide reading: every real file of ../shared/data/wsi, generated pyramids, plain images, read-at-mpp."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

import her2fast
from her2fast import (
    Her2FastError,
    InvalidInputError,
    MissingResolutionError,
    NotBrightfieldError,
    SlideNotFoundError,
    SlideReadError,
    UnsupportedSlideError,
)
from her2fast.io.slide import brightfield_evidence, open_slide

from _helpers import shared_file


@pytest.fixture(scope="module")
def phantom_path(phantom_slide) -> Path:
    """The 2048^2 2+ phantom slide (0.5 um/px), made once per test run (shared with test_tissue.py)."""
    return phantom_slide(category="2+", width=2048, height=2048, mpp=0.5, seed=0).path


@pytest.fixture(scope="module")
def phantom(phantom_path):
    with open_slide(phantom_path) as slide:
        yield slide


# ------------------------------------------------------------------------------------ real files
# name, open_slide kwargs, vendor, level-0 size, levels, (mpp, source), objective, brightfield
REAL = [
    ("cmu-1-small-region.svs", {}, "aperio", (2220, 2967), 1, (0.499, "metadata"), 20.0, True),
    ("tcga-cr-7395-01a-01-ts1.svs", {"mpp": 0.5}, "aperio", (4443, 3567), 2, (0.5, "user"), None, True),
    ("test3-DAPI-2-(387).ndpi", {}, "hamamatsu", (3968, 4864), 7, (0.2281750559, "metadata"), 40.0, False),
    ("test3-TRITC 2 (560).ndpi", {}, "hamamatsu", (3968, 4864), 7, (0.2281750559, "metadata"), 40.0, False),
    ("small.svs", {}, "aperio", (16, 16), 1, (0.499, "metadata"), 20.0, True),
    ("boxes.tiff", {"mpp": 1.0}, "generic-tiff", (300, 250), 4, (1.0, "user"), None, True),
    ("boxes.png", {"mpp": 1.0}, "image", (300, 250), 1, (1.0, "user"), None, True),
    ("boxes_0.dcm", {}, "dicom", (16, 16), 1, (0.499, "metadata"), 20.0, True),
    ("boxes_1.dcm", {}, "dicom", (16, 16), 1, (0.499, "metadata"), 20.0, True),
]


@pytest.mark.parametrize("name, kwargs, vendor, size, levels, mpp, power, brightfield", REAL, ids=[r[0] for r in REAL])
def test_real_slide_opens_and_reads(name, kwargs, vendor, size, levels, mpp, power, brightfield):
    with open_slide(shared_file(f"wsi/{name}"), **kwargs) as slide:
        assert slide.vendor == vendor
        assert slide.dimensions == size
        assert slide.level_count == levels == len(slide.level_downsamples)
        assert slide.level_downsamples[0] == 1.0
        assert slide.mpp_x == pytest.approx(mpp[0]) and slide.mpp_y == pytest.approx(mpp[0])
        assert slide.mpp_source == mpp[1]
        assert slide.objective_power == power
        assert slide.is_brightfield is brightfield
        # a region at level-0 resolution and one at a coarser resolution
        w, h = min(64, size[0]), min(48, size[1])
        region = slide.read(0, 0, w, h)
        assert region.shape == (h, w, 3) and region.dtype == np.uint8
        coarse = slide.read(size[0] / 4, size[1] / 4, 32, 32, mpp=slide.mpp * 3)
        assert coarse.shape == (32, 32, 3)
        thumb = slide.thumbnail(max_size=128)
        assert max(thumb.shape[:2]) == 128 or max(size) < 128


def test_real_slide_content():
    with open_slide(shared_file("wsi/cmu-1-small-region.svs")) as slide:
        thumb = slide.thumbnail(8.0).astype(float)
        assert thumb.shape == (186, 139, 3)
        assert thumb.mean() < 230  # H&E tissue, pink-purple
        assert np.percentile(thumb.mean(axis=2), 95) > 240  # and glass
    # boxes.png is the render of boxes.tiff's level 0
    with (
        open_slide(shared_file("wsi/boxes.tiff"), mpp=1.0) as tiff,
        open_slide(shared_file("wsi/boxes.png"), mpp=1.0) as png,
    ):
        a = tiff.read(0, 0, 300, 250).astype(int)
        b = png.read(0, 0, 300, 250).astype(int)
        assert np.abs(a - b).mean() < 2
        assert tiff.best_level(3.9) == 1  # level 2 is 4.016 um/px: coarser than asked
        assert tiff.best_level(4.0) == 2  # ... but within 0.5 %, close enough
        small = tiff.read(0, 0, 75, 62, mpp=tiff.level_mpp[2])
        assert np.abs(small.astype(int) - a[::4, ::4][:62, :75]).mean() < 25  # boxes survive downsampling


def test_tcga_jpeg2000_levels():
    with open_slide(shared_file("wsi/tcga-cr-7395-01a-01-ts1.svs"), mpp=0.25) as slide:
        assert slide.best_level(0.5) == 1
        lo = slide.read(1000, 1000, 128, 128, mpp=0.5).astype(float)
        hi = slide.read(1000, 1000, 256, 256, mpp=0.25).astype(float)
        box = hi.reshape(128, 2, 128, 2, 3).mean(axis=(1, 3))
        assert np.abs(lo - box).mean() < 8  # two JPEG2000-coded levels of the same tissue


@pytest.mark.parametrize("name", ["test3-DAPI-2-(387).ndpi", "test3-TRITC 2 (560).ndpi"])
def test_fluorescence_ndpi_is_refused(name):
    with open_slide(shared_file(f"wsi/{name}")) as slide:
        assert slide.best_level(8.0) == 5
        assert slide.thumbnail(8.0).mean() < 60  # dark background
        ev = slide.brightfield
        assert not ev.is_brightfield and ev.background_brightness < 110
        with pytest.raises(NotBrightfieldError, match="fluorescence") as info:
            slide.require_brightfield()
        assert name in str(info.value) and "cannot be scored" in str(info.value)


def test_missing_resolution_tcga():
    path = shared_file("wsi/tcga-cr-7395-01a-01-ts1.svs")
    with pytest.raises(MissingResolutionError, match=r"pass mpp=") as info:
        open_slide(path)
    assert "tcga-cr-7395-01a-01-ts1.svs" in str(info.value)
    assert "openslide.mpp" in str(info.value)


def test_missing_resolution_placeholder_dpi():
    # boxes.tiff says 72 dpi (352.8 um/px): image-software default, not a microscope resolution
    with pytest.raises(MissingResolutionError, match="not a microscope resolution"):
        open_slide(shared_file("wsi/boxes.tiff"))
    with pytest.raises(MissingResolutionError, match=r"boxes\.png.*pass mpp="):
        open_slide(shared_file("wsi/boxes.png"))


def test_broken_svs_not_recognised():
    with pytest.raises(UnsupportedSlideError, match="not a slide format OpenSlide 4 recognises") as info:
        open_slide(shared_file("wsi/broken.svs"))
    assert "broken.svs" in str(info.value) and "convert" in str(info.value)
    assert isinstance(info.value, SlideReadError) and isinstance(info.value, Her2FastError)


def test_unopenable_tiff_unsupported_compression():
    with pytest.raises(UnsupportedSlideError, match="Unsupported TIFF compression: 52479") as info:
        open_slide(shared_file("wsi/unopenable.tiff"))
    assert "unopenable.tiff" in str(info.value) and "vips tiffsave" in str(info.value)


def test_small_dicom_rejected_by_openslide():
    with pytest.raises(UnsupportedSlideError, match="Couldn't get image flavor") as info:
        open_slide(shared_file("wsi/small_dicom.dcm"))
    msg = str(info.value)
    assert "small_dicom.dcm" in msg and "as dicom" in msg and "DICOM" in msg


def test_unreadable_svs_fails_on_read():
    with open_slide(shared_file("wsi/unreadable.svs")) as slide:  # the header is fine
        assert slide.dimensions == (16, 16)
        with pytest.raises(SlideReadError, match="Bogus marker length") as info:
            slide.read(0, 0, 16, 16)
        assert "unreadable.svs" in str(info.value) and "corrupt" in str(info.value)
        assert "Traceback" not in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(SlideNotFoundError, match="not found") as info:
        open_slide(tmp_path / "nope.svs")
    assert isinstance(info.value, FileNotFoundError) and "nope.svs" in str(info.value)
    with pytest.raises(UnsupportedSlideError, match="is a folder"):
        open_slide(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UnsupportedSlideError, match="notes.txt"):
        open_slide(tmp_path / "notes.txt")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(UnsupportedSlideError, match="bad.png"):
        open_slide(tmp_path / "bad.png", mpp=0.5)


def test_errors_are_exported():
    for name in ("SlideNotFoundError", "UnsupportedSlideError", "NotBrightfieldError", "MissingResolutionError"):
        assert name in her2fast.__all__ and issubclass(getattr(her2fast, name), Her2FastError)


# ------------------------------------------------------------------------------------ plain images
def test_plain_png_with_mpp(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (90, 130, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "tile.png")
    with open_slide(tmp_path / "tile.png", mpp=0.5) as slide:
        assert slide.vendor == "image" and slide.level_count == 1 and slide.dimensions == (130, 90)
        assert slide.mpp_source == "user" and slide.mpp_x == 0.5
        np.testing.assert_array_equal(slide.read(0, 0, 130, 90), img)
        np.testing.assert_array_equal(slide.read(10, 20, 30, 40), img[20:60, 10:40])
        # outside the image: white
        edge = slide.read(120, 80, 20, 20)
        np.testing.assert_array_equal(edge[:10, :10], img[80:, 120:])
        assert (edge[10:] == 255).all() and (edge[:, 10:] == 255).all()
    with pytest.raises(MissingResolutionError, match="pass mpp="):
        open_slide(tmp_path / "tile.png")


def test_plain_alpha_and_grey(tmp_path):
    from PIL import Image

    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, :4, 3] = 255  # left half opaque red-ish, right half transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    with open_slide(tmp_path / "a.png", mpp=1) as slide:
        px = slide.read(0, 0, 8, 8)
        np.testing.assert_array_equal(px[0, 0], [200, 0, 0])
        np.testing.assert_array_equal(px[0, 7], [255, 255, 255])
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8)
    Image.fromarray(grey).save(tmp_path / "g.jpg", quality=100)
    with open_slide(tmp_path / "g.jpg", mpp=(0.5, 0.5)) as slide:
        px = slide.read(0, 0, 8, 8)
        assert px.shape == (8, 8, 3) and (px[..., 0] == px[..., 2]).all()


def test_plain_tiff_with_resolution_tags(tmp_path):
    import tifffile

    img = np.full((40, 50, 3), 180, np.uint8)
    tifffile.imwrite(tmp_path / "t.tif", img, photometric="rgb", resolution=(40000, 40000), resolutionunit="CENTIMETER")
    with open_slide(tmp_path / "t.tif") as slide:  # stripped TIFF: not OpenSlide's, read by tifffile
        assert slide.vendor == "image" and slide.mpp_source == "metadata"
        assert slide.mpp_x == pytest.approx(0.25)
        np.testing.assert_array_equal(slide.read(0, 0, 50, 40), img)
    with open_slide(tmp_path / "t.tif", mpp=0.5) as slide:
        assert slide.mpp_x == 0.5 and slide.mpp_source == "user"
    tifffile.imwrite(tmp_path / "u16.tif", np.zeros((8, 8), np.uint16))
    with pytest.raises(UnsupportedSlideError, match="8-bit"):
        open_slide(tmp_path / "u16.tif", mpp=0.5)


# ------------------------------------------------------------------------------------ generated pyramids
def _wave(x: np.ndarray, period: float) -> np.ndarray:
    return 128 + 100 * np.sin(2 * np.pi * x / period)


def _wave_pyramid(path: Path, w0: int = 1201, h0: int = 901, mpp: float = 0.5) -> None:
    """A lossless pyramid (odd sizes, so non-integer downsamples) whose every level samples the same
    smooth function of level-0 position: R varies along x, G along y."""
    import tifffile

    sizes = [(w0, h0)]
    while len(sizes) < 4:
        w, h = sizes[-1]
        sizes.append(((w + 1) // 2, (h + 1) // 2))
    with tifffile.TiffWriter(path) as tif:
        for k, (w, h) in enumerate(sizes):
            dx, dy = w0 / w, h0 / h
            img = np.empty((h, w, 3), np.uint8)
            img[..., 0] = np.rint(_wave((np.arange(w) + 0.5) * dx, 400))[None, :]
            img[..., 1] = np.rint(_wave((np.arange(h) + 0.5) * dy, 300))[:, None]
            img[..., 2] = 128
            px_per_cm = 1e4 / (mpp * dx)
            tif.write(
                img,
                tile=(64, 64),
                photometric="rgb",
                compression="zlib",
                subfiletype=0 if k == 0 else 1,
                resolution=(px_per_cm, px_per_cm),
                resolutionunit="CENTIMETER",
            )


@pytest.mark.parametrize("mpp", [0.5, 0.8, 1.0, 1.3, 2.0, 3.7, 4.02, 6.0])
def test_read_geometry_at_any_mpp(tmp_path, mpp):
    path = tmp_path / "wave.tiff"
    _wave_pyramid(path)
    with open_slide(path) as slide:
        assert slide.vendor == "generic-tiff" and slide.level_count == 4 and slide.mpp_source == "metadata"
        x, y, w, h = 100.7, 55.2, 60, 50
        out = slide.read(x, y, w, h, mpp=mpp).astype(float)
        s = mpp / slide.mpp_x
        cx = x + (np.arange(w) + 0.5) * s
        cy = y + (np.arange(h) + 0.5) * s
        err_x = out[..., 0] - _wave(cx, 400)[None, :]
        err_y = out[..., 1] - _wave(cy, 300)[:, None]
        # slopes reach 1.6 grey levels per level-0 pixel: a shift of one level-3 pixel would cost ~10
        assert np.abs(err_x).max() < 3 and np.abs(err_y).max() < 3
        assert np.abs(err_x).mean() < 1 and np.abs(err_y).mean() < 1
        assert slide.best_level(mpp) == max(k for k, m in enumerate(slide.level_mpp) if m <= mpp * 1.005)


def test_phantom_metadata_and_levels(phantom):
    assert phantom.vendor == "generic-tiff"
    assert phantom.dimensions == (2048, 2048) and phantom.level_count == 3
    assert phantom.mpp_x == pytest.approx(0.5) and phantom.mpp_source == "metadata"
    assert phantom.objective_power is None and phantom.is_brightfield
    assert [phantom.best_level(m) for m in (0.25, 0.5, 0.9, 1.0, 1.5, 2.0, 8.0)] == [0, 0, 0, 1, 1, 2, 2]


def test_read_at_coarser_mpp_equals_downsampled(phantom):
    fine = phantom.read(600, 700, 512, 512, mpp=0.5).astype(float)
    box = fine.reshape(256, 2, 256, 2, 3).mean(axis=(1, 3))
    from_level0 = phantom.read(600, 700, 256, 256, mpp=1.0, level=0).astype(float)
    assert np.abs(from_level0 - box).mean() < 1.5  # Lanczos vs box filter
    from_level1 = phantom.read(600, 700, 256, 256, mpp=1.0).astype(float)  # the pyramid's own level 1
    assert np.abs(from_level1 - box).mean() < 5  # re-encoded JPEG level
    shifted = phantom.read(603, 700, 256, 256, mpp=1.0, level=0).astype(float)
    assert np.abs(shifted - box).mean() > 2 * np.abs(from_level0 - box).mean()  # the position matters


def test_read_is_independent_of_blocking(phantom, monkeypatch):
    import her2fast.io.slide.limits as slide_module

    whole = phantom.read(13.5, 7.25, 300, 280, mpp=3.3)
    monkeypatch.setattr(slide_module, "_MAX_BLOCK", 150)
    blocks = phantom.read(13.5, 7.25, 300, 280, mpp=3.3)
    diff = np.abs(whole.astype(int) - blocks)
    # Same sources, same filter; only float rounding of Pillow's kernel windows differs (a few pixels)
    assert (diff > 1).mean() < 1e-3 and diff.max() <= 8


def test_thumbnail_and_outside(phantom):
    th = phantom.thumbnail(8.0)
    assert th.shape == (128, 128, 3) and phantom.size_at(8.0) == (128, 128)
    th2 = phantom.thumbnail(max_size=100)
    assert max(th2.shape[:2]) == 100
    outside = phantom.read(-300, -300, 64, 64, mpp=2.0)
    assert (outside == 255).all()
    with pytest.raises(InvalidInputError, match="exactly one"):
        phantom.thumbnail(8.0, max_size=100)


def test_invalid_arguments(phantom, tmp_path):
    with pytest.raises(InvalidInputError, match="width"):
        phantom.read(0, 0, 0, 10)
    with pytest.raises(InvalidInputError, match="mpp"):
        phantom.read(0, 0, 10, 10, mpp=-1)
    with pytest.raises(InvalidInputError, match="level"):
        phantom.read(0, 0, 10, 10, level=3)
    with pytest.raises(InvalidInputError, match="x and y"):
        phantom.read("a", 0, 10, 10)
    with pytest.raises(InvalidInputError, match="mpp"):
        open_slide(phantom.path, mpp=0)
    with pytest.raises(InvalidInputError, match="path"):
        open_slide(123)
    with pytest.raises(InvalidInputError):
        brightfield_evidence(np.zeros((4, 4), np.uint8))


def test_close_and_context_manager(phantom_path):
    slide = open_slide(phantom_path)
    with slide as s:
        assert s is slide
        s.read(0, 0, 8, 8)
    with pytest.raises(SlideReadError, match="closed"):
        slide.read(0, 0, 8, 8)
    slide.close()  # idempotent
    assert "generic-tiff" in repr(slide)


def test_two_threads_share_a_handle(phantom):
    spots = [(x, y) for x in range(0, 1800, 300) for y in range(0, 1800, 450)]
    serial = [phantom.read(x, y, 128, 128, mpp=0.7) for x, y in spots]
    results: dict[int, np.ndarray] = {}

    def work(start):
        for i in range(start, len(spots), 2):
            results[i] = phantom.read(*spots[i], 128, 128, mpp=0.7)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, ref in enumerate(serial):
        np.testing.assert_array_equal(results[i], ref)
