"""Files that declare far more pixels (or a far coarser or finer resolution) than a slide can have.

Each is refused with a her2fast error from the declared geometry, before any pixel is decoded.
"""

from __future__ import annotations

import math
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import her2fast.io.slide.limits as slide_module  # the pixel budget is read from here
from her2fast.errors import (
    Her2FastError,
    InvalidInputError,
    MissingResolutionError,
    SlideTooLargeError,
    UnsupportedSlideError,
)
from her2fast.io.slide import MAX_DECODE_PIXELS, open_slide

BOMB_SIDE = 40_000  # 1.6e9 declared pixels in one level, over MAX_DECODE_PIXELS


def write_bomb(path: Path, side: int = BOMB_SIDE, tile: int = 2048, mpp: float = 0.5) -> None:
    """A one-level tiled TIFF declaring side x side pixels, every tile the same few kB of zlib."""
    import tifffile

    data = zlib.compress(np.full((tile, tile, 3), 250, np.uint8).tobytes(), 9)
    n = math.ceil(side / tile) ** 2
    tifffile.imwrite(
        path,
        (data for _ in range(n)),
        shape=(side, side, 3),
        dtype="uint8",
        tile=(tile, tile),
        compression="zlib",
        photometric="rgb",
        resolution=(1e4 / mpp, 1e4 / mpp),
        resolutionunit="CENTIMETER",
        bigtiff=True,
    )


def write_pyramid(path: Path, size: int = 512, mpp: float = 0.5, value: int = 235) -> None:
    """A small pyramidal tiled TIFF whose resolution tags say ``mpp``."""
    import tifffile

    img = np.full((size, size, 3), value, np.uint8)
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        level, sub = img, 0
        while True:
            tif.write(
                level,
                tile=(256, 256),
                photometric="rgb",
                compression="zlib",
                subfiletype=sub,
                resolution=(1e4 / mpp * level.shape[1] / size,) * 2,
                resolutionunit="CENTIMETER",
            )
            if level.shape[0] <= 256:
                break
            level, sub = level[::2, ::2].copy(), 1


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bomb") / "bomb.tiff"
    write_bomb(path)
    assert path.stat().st_size < 10_000_000  # small on disk, huge declared
    return path


@pytest.fixture(scope="module")
def phantom(tmp_path_factory) -> Path:
    from her2fast.synth import make_slide

    path = tmp_path_factory.mktemp("phantom") / "slide.tiff"
    make_slide(path, category="3+", width=1024, height=1024, mpp=0.5, seed=0)
    return path


def test_one_level_bomb_is_refused_on_open(bomb):
    with pytest.raises(SlideTooLargeError) as info:
        open_slide(bomb)
    msg = str(info.value)
    assert str(bomb) in msg and f"{BOMB_SIDE}x{BOMB_SIDE}" in msg and str(MAX_DECODE_PIXELS) in msg
    assert "vips tiffsave" in msg  # the fix
    assert isinstance(info.value, UnsupportedSlideError) and isinstance(info.value, Her2FastError)


def test_scoring_a_bomb_fails_cleanly_in_bounded_memory(bomb, tmp_path):
    """The CLI, limited to 2 GB of address space, exits 1 with a her2fast message (no traceback)."""
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
        "from her2fast.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "score", str(bomb), "--out", str(tmp_path / "out"), "-q", "--no-pictures"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert "SlideTooLargeError" in proc.stderr and str(bomb) in proc.stderr
    assert "Traceback" not in proc.stderr and "MemoryError" not in proc.stderr


def test_reads_over_the_decode_budget_are_refused_before_decoding(phantom, monkeypatch):
    with open_slide(phantom) as slide:
        level0 = slide.level_dimensions[0][0] * slide.level_dimensions[0][1]
        monkeypatch.setattr(slide_module, "MAX_DECODE_PIXELS", level0 // 4)
        slide.read(0, 0, 256, 256)  # a quarter of level 0 is within the budget
        with pytest.raises(SlideTooLargeError, match=r"would decode .* of level 0"):
            slide.read(0, 0, 1024, 1024)
        with pytest.raises(SlideTooLargeError, match="slide.tiff"):
            slide.thumbnail(0.6)  # level 0 is the finest level that serves 0.6 um/px
        assert slide.thumbnail(8.0).shape == (64, 64, 3)  # served by a coarse level
        # a region mostly outside the slide decodes only the part inside it
        assert slide.read(-900, -900, 1024, 1024).shape == (1024, 1024, 3)


def test_reads_over_the_output_budget_are_refused_before_allocating(phantom, monkeypatch):
    with open_slide(phantom) as slide:
        with pytest.raises(SlideTooLargeError, match="MAX_OUTPUT_PIXELS"):
            slide.read(0, 0, 1 << 20, 1 << 20, mpp=0.06)  # 3 TB of output
        monkeypatch.setattr(slide_module, "MAX_OUTPUT_PIXELS", 1 << 20)
        with pytest.raises(SlideTooLargeError, match="MAX_OUTPUT_PIXELS"):
            slide.thumbnail(0.25)  # 2048^2
        assert slide.thumbnail(0.5).shape == (1024, 1024, 3)


def test_extent_larger_than_a_glass_slide_is_refused(phantom, monkeypatch):
    monkeypatch.setattr(slide_module, "MAX_SLIDE_MM", 0.4)  # the phantom is 0.512 mm a side
    with pytest.raises(SlideTooLargeError, match=r"0\.512 x 0\.512 mm, larger than any glass slide"):
        open_slide(phantom)
    with pytest.raises(SlideTooLargeError, match=r"given as mpp="):
        open_slide(phantom, mpp=0.45)


@pytest.mark.parametrize("mpp", [1e-9, 0.01, 21, 1000, (0.5, 1000)])
def test_implausible_user_mpp_is_an_invalid_input(phantom, mpp):
    with pytest.raises(InvalidInputError, match=r"mpp(_y)?=.*not a brightfield scan resolution.*0\.05 to 20"):
        open_slide(phantom, mpp=mpp)


def test_implausible_metadata_mpp_asks_for_mpp(tmp_path):
    import tifffile

    plain = tmp_path / "plain49.tif"
    tifffile.imwrite(
        plain,
        np.full((64, 64, 3), 230, np.uint8),
        photometric="rgb",
        resolution=(1e4 / 49,) * 2,
        resolutionunit="CENTIMETER",
    )
    pyramid = tmp_path / "pyramid49.tiff"
    write_pyramid(pyramid, mpp=49)
    for path in (plain, pyramid):
        with pytest.raises(MissingResolutionError, match=r"says 49 x 49 um/px.*0\.05 to 20 um/px.*pass mpp="):
            open_slide(path)
        with open_slide(path, mpp=0.5) as slide:  # the caller's resolution wins
            assert slide.mpp_source == "user"


@pytest.mark.parametrize("mpp, text", [("1e-9", "mpp=1e-09"), ("1000", "mpp=1000")])
def test_cli_implausible_mpp_on_a_png(tmp_path, capsys, mpp, text):
    from PIL import Image

    from her2fast.cli import main

    png = tmp_path / "field.png"
    Image.fromarray(np.full((64, 64, 3), 230, np.uint8)).save(png)
    rc = main(["score", str(png), "--mpp", mpp, "--out", str(tmp_path / "out"), "-q", "--no-pictures"])
    err = capsys.readouterr().err
    assert rc == 1 and "InvalidInputError" in err and text in err and "Traceback" not in err


def test_a_normal_phantom_still_opens_and_scores(phantom):
    import her2fast

    with open_slide(phantom) as slide:
        assert slide.dimensions == (1024, 1024) and slide.mpp_source == "metadata"
        assert slide.thumbnail(max_size=128).shape == (128, 128, 3)
    result = her2fast.score(phantom, progress=False)
    assert result.score == "3+"


def test_plain_images_declaring_huge_sizes_are_refused_before_decoding(tmp_path):
    import io
    import struct

    import tifffile
    from PIL import Image

    tif = tmp_path / "huge.tif"  # a stripped (plain) TIFF whose header says 10^6 x 10^6
    tifffile.imwrite(tif, np.full((64, 64, 3), 240, np.uint8), photometric="rgb", bigtiff=True)
    with tifffile.TiffFile(tif, mode="r+b") as t:
        t.pages.first.tags["ImageWidth"].overwrite(10**6)
        t.pages.first.tags["ImageLength"].overwrite(10**6)
    with pytest.raises(SlideTooLargeError, match=r"huge\.tif is a 1000000x1000000 plain image.*vips tiffsave"):
        open_slide(tif, mpp=0.5)

    buf = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), 240, np.uint8)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    ihdr = bytes(data[12:16]) + struct.pack(">II", 100_000, 100_000) + bytes(data[24:29])
    png = tmp_path / "huge.png"  # a PNG whose IHDR says 100000 x 100000
    png.write_bytes(bytes(data[:12]) + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + bytes(data[33:]))
    with pytest.raises(SlideTooLargeError, match=r"huge\.png"):
        open_slide(png, mpp=0.5)
