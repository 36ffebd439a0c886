"""Damaged TIFF geometry found by the fuzzer (benchmarks/fuzz.py): refused before OpenSlide allocates it."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from her2fast.errors import SlideTooLargeError, UnsupportedSlideError
from her2fast.io.slide import open_slide


def tiled_tiff(path) -> None:
    rgb = np.full((256, 256, 3), 200, np.uint8)
    rgb[64:192, 64:192] = (120, 80, 40)
    tifffile.imwrite(
        path, rgb, tile=(128, 128), photometric="rgb", resolution=(20000, 20000), resolutionunit="CENTIMETER"
    )


def patch_tag(path, code: int, index: int, value: int) -> None:
    """Overwrite value ``index`` of TIFF tag ``code`` of the first page (4-byte little-endian values)."""
    with tifffile.TiffFile(path) as tf:
        tag = tf.pages[0].tags[code]
        offset, size = tag.valueoffset, 2 if tag.dtype == 3 else 4
    data = bytearray(path.read_bytes())
    value = min(value, 256**size - 1)  # a SHORT tag takes the largest value it holds
    data[offset + index * size : offset + (index + 1) * size] = value.to_bytes(size, "little")
    path.write_bytes(bytes(data))


def test_a_tile_reaching_past_the_end_of_the_file_is_refused(tmp_path):
    path = tmp_path / "damaged.tiff"
    tiled_tiff(path)
    with open_slide(path) as slide:  # intact: opens and reads
        slide.thumbnail(max_size=64)
    patch_tag(path, 325, 3, 0xFFFF0000)  # TileByteCounts of the last tile: 4 GB (64 KiB if SHORT)
    with pytest.raises(UnsupportedSlideError, match="past the end of the file"):
        open_slide(path)


def test_a_huge_declared_tile_is_refused(tmp_path):
    path = tmp_path / "huge-tile.tiff"
    tiled_tiff(path)
    patch_tag(path, 322, 0, 11534464 // 128 * 128)  # TileWidth: 11.5 million pixels
    with pytest.raises(SlideTooLargeError, match="tiles of"):
        open_slide(path)
