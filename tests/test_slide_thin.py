"""Thin slides read at a large reduction: the same pixels as resampling the white-padded level, with work
bounded by the level's pixels (a 65536 x 256 one-level slide's thumbnail took 84 s)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from her2fast.io.slide import Slide, open_slide


def thin_slide(path, width: int, height: int) -> np.ndarray:
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:height, 0:width]
    rgb = np.stack([(xx * 7 + yy * 3) % 256, (xx // 3 + yy * 5) % 256, rng.integers(0, 256, xx.shape)], -1)
    rgb = rgb.astype(np.uint8)
    tifffile.imwrite(
        path, rgb, tile=(64, 64), photometric="rgb", resolution=(20000, 20000), resolutionunit="CENTIMETER"
    )
    return rgb


def reference(level: np.ndarray, x: float, y: float, w: int, h: int, r: float) -> np.ndarray:
    """Lanczos of the level padded with white far beyond the filter's support."""
    m = int(np.ceil(3 * r)) + 8
    padded = np.pad(level, ((m, m), (m, m), (0, 0)), constant_values=255)
    box = (x + m, y + m, x + m + w * r, y + m + h * r)
    return np.asarray(Image.fromarray(padded).resize((w, h), resample=Image.Resampling.LANCZOS, box=box))


@pytest.mark.parametrize("shape", [(4096, 40), (40, 4096)])
def test_thin_slide_thumbnail_equals_the_padded_resampling(tmp_path, shape, monkeypatch):
    width, height = shape
    level = thin_slide(tmp_path / "thin.tiff", width, height)
    decoded = []
    original = Slide._read_level

    def counting(self, lvl, lx, ly, lw, lh):
        out = original(self, lvl, lx, ly, lw, lh)
        if self._osr is not None:
            decoded.append(lw * lh)
        return out

    monkeypatch.setattr(Slide, "_read_level", counting)
    with open_slide(tmp_path / "thin.tiff") as slide:
        assert slide.vendor != "image"  # read through OpenSlide, block by block
        thumb = slide.thumbnail(max_size=32)
        r = slide.mpp_x * max(width, height) / 32 / slide.mpp_x
        expected = reference(level, 0.0, 0.0, thumb.shape[1], thumb.shape[0], r)
    diff = np.abs(thumb.astype(int) - expected.astype(int))
    assert diff.max() <= 2, diff.max()
    # the level's pixels are decoded a few times at most, never its white margins
    assert sum(decoded) <= 4 * width * height, (sum(decoded), width * height)
