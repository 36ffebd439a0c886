"""Deep Zoom tiles of a slide: OpenSlide's :class:`openslide.deepzoom.DeepZoomGenerator` for the slides
OpenSlide opens, and the same geometry on her2fast's own reader for plain images.

Deep Zoom (the format OpenSeadragon reads) numbers its levels from a 1 x 1 image (level 0) to the full
resolution (the last level); each level halves the one above it, rounding up. A tile ``(col, row)`` of a level
is ``tile_size`` pixels plus ``overlap`` pixels on each side that has a neighbour. :class:`DeepZoomGeometry`
computes exactly what :class:`~openslide.deepzoom.DeepZoomGenerator` does (``limit_bounds=False``), so the
overlay tiles (:mod:`.overlays`) line up with the slide's pixel for pixel.
"""

from __future__ import annotations

import io
import math
import threading
from pathlib import Path

import numpy as np

from ...errors import InvalidInputError, MissingResolutionError, SlideReadError
from ...io.slide import open_slide

__all__ = ["DeepZoomGeometry", "TileSource", "open_tiles", "encode"]

TILE_SIZE = 254
OVERLAP = 1


class DeepZoomGeometry:
    """The Deep Zoom pyramid of a ``width x height`` image.

    Parameters
    ----------
    width, height : int
        Level-0 (full resolution) size in pixels.
    tile_size, overlap : int
    """

    def __init__(self, width: int, height: int, tile_size: int = TILE_SIZE, overlap: int = OVERLAP) -> None:
        if width < 1 or height < 1:
            raise InvalidInputError(f"a Deep Zoom image needs a positive size, got {width}x{height}")
        self.width, self.height = int(width), int(height)
        self.tile_size, self.overlap = int(tile_size), int(overlap)
        dims = [(self.width, self.height)]
        while dims[-1] != (1, 1):
            w, h = dims[-1]
            dims.append((max(1, math.ceil(w / 2)), max(1, math.ceil(h / 2))))
        self.level_dimensions = tuple(reversed(dims))
        self.level_count = len(self.level_dimensions)
        self.level_tiles = tuple(
            (math.ceil(w / self.tile_size), math.ceil(h / self.tile_size)) for w, h in self.level_dimensions
        )

    def downsample(self, level: int) -> float:
        """Level-0 pixels per pixel of ``level``."""
        return float(2 ** (self.level_count - 1 - level))

    def check(self, level: int, col: int, row: int) -> None:
        """Raise :class:`~her2fast.errors.InvalidInputError` for a tile outside the pyramid."""
        if not 0 <= level < self.level_count:
            raise InvalidInputError(f"no Deep Zoom level {level} (0 to {self.level_count - 1})")
        cols, rows = self.level_tiles[level]
        if not (0 <= col < cols and 0 <= row < rows):
            raise InvalidInputError(f"no tile {col}_{row} at Deep Zoom level {level} ({cols} x {rows} tiles)")

    def tile_rect(self, level: int, col: int, row: int) -> tuple[int, int, int, int]:
        """``(x, y, width, height)`` of a tile in pixels of its level, overlap included."""
        self.check(level, col, row)
        w, h = self.level_dimensions[level]
        cols, rows = self.level_tiles[level]
        t, o = self.tile_size, self.overlap
        x = col * t - (o if col else 0)
        y = row * t - (o if row else 0)
        tw = min(t, w - col * t) + (o if col else 0) + (o if col != cols - 1 else 0)
        th = min(t, h - row * t) + (o if row else 0) + (o if row != rows - 1 else 0)
        return x, y, tw, th

    def dzi(self, fmt: str) -> str:
        """The ``.dzi`` XML descriptor."""
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<Image xmlns="http://schemas.microsoft.com/deepzoom/2008" Format="{fmt}" Overlap="{self.overlap}" '
            f'TileSize="{self.tile_size}"><Size Height="{self.height}" Width="{self.width}"/></Image>'
        )


class TileSource:
    """The Deep Zoom tiles of one slide (thread-safe).

    Attributes
    ----------
    geometry : DeepZoomGeometry
    kind : str
        ``"openslide"`` (OpenSlide's DeepZoomGenerator) or ``"her2fast"`` (her2fast's reader, plain images).
    """

    def __init__(self, path: Path, geometry: DeepZoomGeometry, kind: str, get_tile, close) -> None:
        self.path = path
        self.geometry = geometry
        self.kind = kind
        self._get_tile = get_tile
        self._close = close

    def tile(self, level: int, col: int, row: int):
        """The tile as an RGB PIL image.

        Raises
        ------
        InvalidInputError
            No such tile.
        SlideReadError
            The slide's pixels cannot be decoded (a corrupt file).
        """
        self.geometry.check(level, col, row)
        return self._get_tile(level, col, row)

    def close(self) -> None:
        """Release the file (not while another thread reads)."""
        self._close()


def _openslide_tiles(path: Path) -> TileSource:
    import openslide
    from openslide.deepzoom import DeepZoomGenerator

    try:
        osr = openslide.OpenSlide(str(path))
    except Exception as exc:
        raise SlideReadError(f"OpenSlide cannot open {path}: {exc}") from None
    dz = DeepZoomGenerator(osr, tile_size=TILE_SIZE, overlap=OVERLAP, limit_bounds=False)
    geometry = DeepZoomGeometry(*osr.dimensions)
    if tuple(dz.level_dimensions) != geometry.level_dimensions:  # pragma: no cover - same arithmetic
        raise SlideReadError(f"Deep Zoom geometry of {path} differs from OpenSlide's")

    def get_tile(level: int, col: int, row: int):
        try:
            return dz.get_tile(level, (col, row))
        except openslide.OpenSlideError as exc:  # a corrupt tile
            raise SlideReadError(
                f"reading Deep Zoom tile {col}_{row} of level {level} of {path} failed: {exc}; the file is corrupt "
                "or truncated: re-export or re-scan the slide"
            ) from None

    return TileSource(path, geometry, "openslide", get_tile, osr.close)


def _her2fast_tiles(slide) -> TileSource:
    from PIL import Image

    geometry = DeepZoomGeometry(*slide.dimensions)
    lock = threading.Lock()

    def get_tile(level: int, col: int, row: int):
        x, y, w, h = geometry.tile_rect(level, col, row)
        d = geometry.downsample(level)
        pixels = slide.read(x * d, y * d, w, h, mpp=slide.mpp_x * d)
        return Image.fromarray(np.ascontiguousarray(pixels))

    def close() -> None:
        with lock:
            slide.close()

    return TileSource(Path(slide.path), geometry, "her2fast", get_tile, close)


def open_tiles(path: str | Path, *, mpp: float | None = None) -> TileSource:
    """The Deep Zoom tiles of a slide file.

    The file is first opened with :func:`her2fast.io.slide.open_slide` (its checks and clear errors); a
    slide OpenSlide reads is then served by OpenSlide's DeepZoomGenerator, a plain image by her2fast's reader.

    Parameters
    ----------
    path : path
    mpp : float, optional
        The resolution the slide was scored with when the user gave it; a slide without one opens at
        1 um/px (the viewer does not measure).

    Raises
    ------
    SlideNotFoundError, UnsupportedSlideError, SlideReadError
        As :func:`~her2fast.io.slide.open_slide`.
    """
    path = Path(path)
    try:
        slide = open_slide(path, mpp=mpp)
    except MissingResolutionError:
        slide = open_slide(path, mpp=1.0)
    if slide.vendor == "image":
        return _her2fast_tiles(slide)
    slide.close()
    return _openslide_tiles(path)


def encode(image, fmt: str, *, quality: int = 80) -> bytes:
    """A PIL image as JPEG (``"jpeg"``) or PNG (``"png"``) bytes."""
    buf = io.BytesIO()
    if fmt == "jpeg":
        image.convert("RGB").save(buf, "JPEG", quality=quality)
    elif fmt == "png":
        image.save(buf, "PNG", compress_level=1)
    else:
        raise InvalidInputError(f"tile format must be jpeg or png, got {fmt!r}")
    return buf.getvalue()
