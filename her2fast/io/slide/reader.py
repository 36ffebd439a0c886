"""The open slide (:class:`Slide`): pyramid geometry, resolution, and region reads at any micrometres per
pixel, block by block within the pixel budget of :mod:`~her2fast.io.slide.limits`.

Examples
--------
>>> import numpy as np
>>> from her2fast.io.slide import image_slide
>>> with image_slide(np.full((40, 60, 3), 230, np.uint8), 0.5) as slide:
...     slide.read(0, 0, 30, 20, mpp=1.0).shape, slide.size_at(2.0)
((20, 30, 3), (15, 10))
"""

from __future__ import annotations

import math
import threading
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..._validate import as_int, as_positive_float
from ...errors import InvalidInputError, NotBrightfieldError, SlideReadError, SlideTooLargeError
from . import limits
from .brightfield import BrightfieldEvidence, brightfield_evidence

if TYPE_CHECKING:
    import openslide

__all__ = ["Slide"]


def _composite_on_white(rgba: np.ndarray) -> np.ndarray:
    """(h, w, 4) uint8 straight-alpha RGBA -> (h, w, 3) uint8 RGB over white."""
    rgb = rgba[..., :3]
    alpha = rgba[..., 3:4]
    if alpha.min() == 255:
        return np.ascontiguousarray(rgb)
    a = alpha.astype(np.uint16)
    out = (rgb.astype(np.uint16) * a + 255 * (255 - a) + 127) // 255
    return out.astype(np.uint8)


class Slide:
    """An open slide: pyramid geometry, resolution, and region reads at any micrometres per pixel.

    Create with :func:`open_slide`; use as a context manager or call :meth:`close`.

    Attributes
    ----------
    path : Path
    vendor : str
        OpenSlide's vendor (``"aperio"``, ``"hamamatsu"``, ``"generic-tiff"``, ``"dicom"``, ...) or
        ``"image"`` for a plain image read with Pillow/tifffile.
    dimensions : (int, int)
        Level-0 ``(width, height)``.
    level_dimensions : tuple of (int, int)
    level_downsamples : tuple of float
        Downsample of each level relative to level 0 (OpenSlide's definition).
    mpp_x, mpp_y : float
        Micrometres per level-0 pixel.
    mpp_source : {"metadata", "user", "estimated"}
        ``"estimated"``: a plain image without a resolution, measured from the image itself by the
        ``estimate_mpp`` callable given to :func:`open_slide` (her2fast's field mode).
    metadata_mpp : (float, float) or None
        The plausible resolution the file's metadata gives, whether or not ``mpp=`` overrode it (None when
        it gives none).
    objective_power : float or None
        Scanning objective magnification when the metadata gives it.
    properties : dict of str to str
        The raw metadata (OpenSlide properties; empty for plain images).
    """

    path: Path
    vendor: str
    dimensions: tuple[int, int]
    level_dimensions: tuple[tuple[int, int], ...]
    level_downsamples: tuple[float, ...]
    mpp_x: float
    mpp_y: float
    mpp_source: str
    metadata_mpp: tuple[float, float] | None
    objective_power: float | None
    properties: dict[str, str]
    _osr: openslide.OpenSlide | None  # None for plain images and once closed
    _pixels: np.ndarray | None  # the decoded plain image; None for OpenSlide slides and once closed
    _closed: bool
    _lock: threading.Lock

    def __init__(self) -> None:  # pragma: no cover - use open_slide
        raise TypeError("use her2fast.io.slide.open_slide(path, mpp=...) to open a slide")

    # -------------------------------------------------------------------------------- construction
    @classmethod
    def _create(
        cls,
        path: Path,
        vendor: str,
        level_dimensions: tuple[tuple[int, int], ...],
        level_downsamples: tuple[float, ...],
        mpp: tuple[float, float],
        mpp_source: str,
        objective_power: float | None,
        properties: dict[str, str],
        osr: openslide.OpenSlide | None,
        pixels: np.ndarray | None,
        metadata_mpp: tuple[float, float] | None = None,
    ) -> Slide:
        self = object.__new__(cls)
        self.metadata_mpp = metadata_mpp
        self.path = path
        self.vendor = vendor
        self.level_dimensions = level_dimensions
        self.level_downsamples = level_downsamples
        self.dimensions = level_dimensions[0]
        self.mpp_x, self.mpp_y = mpp
        self.mpp_source = mpp_source
        self.objective_power = objective_power
        self.properties = properties
        self._osr = osr
        self._pixels = pixels
        self._closed = False
        self._lock = threading.Lock()
        return self

    # -------------------------------------------------------------------------------- basics
    @property
    def level_count(self) -> int:
        """Number of pyramid levels (1 for plain images)."""
        return len(self.level_dimensions)

    @property
    def mpp(self) -> float:
        """Mean micrometres per level-0 pixel, ``(mpp_x + mpp_y) / 2``."""
        return (self.mpp_x + self.mpp_y) / 2

    @property
    def level_mpp(self) -> tuple[float, ...]:
        """Micrometres per pixel of each level (mean of x and y)."""
        return tuple(self.mpp * d for d in self.level_downsamples)

    @property
    def size_um(self) -> tuple[float, float]:
        """Level-0 extent ``(width, height)`` in micrometres."""
        w, h = self.dimensions
        return w * self.mpp_x, h * self.mpp_y

    def __repr__(self) -> str:
        w, h = self.dimensions
        return (
            f"Slide({str(self.path)!r}, vendor={self.vendor!r}, {w}x{h}, levels={self.level_count}, "
            f"mpp=({self.mpp_x:.4g}, {self.mpp_y:.4g}) from {self.mpp_source})"
        )

    def __enter__(self) -> Slide:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the file handle (idempotent). Not to be called while another thread reads."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._osr is not None:
                self._osr.close()
            self._osr = None
            self._pixels = None

    # -------------------------------------------------------------------------------- brightfield
    @cached_property
    def brightfield(self) -> BrightfieldEvidence:
        """Evidence (from a thumbnail of at most 512 px) that the slide is brightfield; computed once."""
        return brightfield_evidence(self.thumbnail(max_size=512))

    @property
    def is_brightfield(self) -> bool:
        """Whether the slide looks like a brightfield scan (bright glass); see :func:`brightfield_evidence`."""
        return self.brightfield.is_brightfield

    def require_brightfield(self) -> None:
        """Raise :class:`~her2fast.errors.NotBrightfieldError` unless the slide is brightfield."""
        ev = self.brightfield
        if not ev.is_brightfield:
            raise NotBrightfieldError(
                f"{self.path} is not a brightfield slide: {ev.reason}. her2fast scores brightfield HER2 "
                "IHC (DAB) slides; fluorescence slides cannot be scored (open them with her2fast only for "
                "inspection)"
            )

    # -------------------------------------------------------------------------------- reading
    def best_level(self, mpp: float) -> int:
        """The coarsest level whose resolution is at least as fine as ``mpp`` (level 0 if none is).

        A level within 0.5 % of ``mpp`` counts as fine enough (0.499 um/px serves 0.5 um/px).
        """
        mpp = as_positive_float(mpp, "mpp")
        best = 0
        for k, level_mpp in enumerate(self.level_mpp):
            if level_mpp <= mpp * 1.005:
                best = k
        return best

    def _check_open(self) -> None:
        if self._closed:
            raise SlideReadError(f"{self.path} is closed; open it again with her2fast.io.slide.open_slide")

    def _read_level(self, level: int, lx: int, ly: int, lw: int, lh: int) -> tuple[np.ndarray, float, float]:
        """RGB pixels of ``level`` starting near level pixel (lx, ly), white outside the slide.

        Returns the block and its true origin in level pixels: OpenSlide takes level-0 locations, and when
        the downsample is not an integer the origin is ``round(lx * d) / d`` rather than ``lx``.
        """
        if self._pixels is not None:
            img = self._pixels
            h, w = img.shape[:2]
            out = np.full((lh, lw, 3), 255, np.uint8)
            x0, y0 = max(lx, 0), max(ly, 0)
            x1, y1 = min(lx + lw, w), min(ly + lh, h)
            if x1 > x0 and y1 > y0:
                out[y0 - ly : y1 - ly, x0 - lx : x1 - lx] = img[y0:y1, x0:x1]
            return out, float(lx), float(ly)
        d = self.level_downsamples[level]
        W, H = self.level_dimensions[level]
        if d == int(d) and (lx < 0 or ly < 0 or lx + lw > W or ly + lh > H):
            # decode only the part inside the level (the rest is white): a thin slide's resampling margins
            # would otherwise decode mostly empty area (the same pixels: integer downsample, exact origin)
            out = np.full((lh, lw, 3), 255, np.uint8)
            ix0, iy0, ix1, iy1 = max(lx, 0), max(ly, 0), min(lx + lw, W), min(ly + lh, H)
            if ix1 > ix0 and iy1 > iy0:
                inner, _, _ = self._read_level(level, ix0, iy0, ix1 - ix0, iy1 - iy0)
                out[iy0 - ly : iy1 - ly, ix0 - lx : ix1 - lx] = inner
            return out, float(lx), float(ly)
        x0, y0 = int(round(lx * d)), int(round(ly * d))
        try:
            region = self._osr.read_region((x0, y0), level, (lw, lh))  # type: ignore[union-attr]
        except Exception as exc:  # openslide.OpenSlideError and friends
            raise SlideReadError(
                f"reading {lw}x{lh} pixels at level {level}, level-0 position ({x0}, {y0}) of {self.path} "
                f"failed: {exc}. The file is corrupt or truncated; re-export or re-scan the slide"
            ) from None
        rgb = _composite_on_white(np.asarray(region))
        return rgb, x0 / d, y0 / d

    def read(
        self,
        x: float,
        y: float,
        width: int,
        height: int,
        mpp: float | None = None,
        *,
        level: int | None = None,
    ) -> np.ndarray:
        """Read a region at ``mpp`` micrometres per pixel.

        Parameters
        ----------
        x, y : float
            Top-left corner in level-0 pixels (may be fractional and may lie outside the slide).
        width, height : int
            Size of the output in pixels *at* ``mpp``.
        mpp : float, optional
            Output micrometres per pixel (default: level 0's, i.e. no resampling).
        level : int, optional
            Force the pyramid level to read from (default: :meth:`best_level`).

        Returns
        -------
        (height, width, 3) uint8
            RGB; transparent or out-of-slide areas are white.

        Raises
        ------
        SlideTooLargeError
            Before decoding anything, when the call would return more than
            :data:`~her2fast.io.slide.limits.MAX_OUTPUT_PIXELS` pixels or decode more than
            :data:`~her2fast.io.slide.limits.MAX_DECODE_PIXELS` pixels of the source level.

        Notes
        -----
        The source level is the coarsest one at least as fine as ``mpp``; its pixels are resampled with
        Pillow's Lanczos filter (antialiased: its support widens with the reduction). Reads whose source
        block exceeds 2048 x 2048 level pixels are done block by block, so memory stays bounded;
        the blocking changes the result only by float rounding (a few pixels off by a grey level or two).
        """
        self._check_open()
        width = as_int(width, "width", 1, 1 << 20)
        height = as_int(height, "height", 1, 1 << 20)
        try:
            x, y = float(x), float(y)
        except (TypeError, ValueError):
            raise InvalidInputError(f"x and y must be numbers (level-0 pixels), got {x!r}, {y!r}") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise InvalidInputError(f"x and y must be finite, got {x}, {y}")
        mpp = self.mpp if mpp is None else as_positive_float(mpp, "mpp")
        if level is None:
            level = self.best_level(mpp)
        else:
            level = as_int(level, "level", 0, self.level_count - 1)
        d = self.level_downsamples[level]
        # level pixels per output pixel, and the region's origin in level pixels
        rx, ry = mpp / self.mpp_x / d, mpp / self.mpp_y / d
        ox, oy = x / d, y / d
        self._check_budget(level, ox, oy, rx * width, ry * height, width, height, mpp)
        # output block size so that the source block stays under _MAX_BLOCK level pixels
        bw = max(1, min(width, int(limits._MAX_BLOCK / max(rx, 1e-9))))
        bh = max(1, min(height, int(limits._MAX_BLOCK / max(ry, 1e-9))))
        # a read one block across a level narrower than a block (a thin slide) takes longer blocks: what is
        # decoded is the level's width times the block's length, and short blocks would decode their
        # resampling margins many times over
        lw, lh = self.level_dimensions[level]
        cover_x = max(1.0, min(ox + width * rx, lw) - max(ox, 0.0))
        cover_y = max(1.0, min(oy + height * ry, lh) - max(oy, 0.0))
        area = float(limits._MAX_BLOCK * limits._MAX_BLOCK)
        if bw >= width and bh < height and cover_x < limits._MAX_BLOCK / 2:
            bh = min(height, max(bh, int(area / cover_x / max(ry, 1e-9))))
        elif bh >= height and bw < width and cover_y < limits._MAX_BLOCK / 2:
            bw = min(width, max(bw, int(area / cover_y / max(rx, 1e-9))))
        if bw >= width and bh >= height:
            return self._read_block(level, ox, oy, rx, ry, width, height)
        out = np.empty((height, width, 3), np.uint8)
        for j0 in range(0, height, bh):
            h = min(bh, height - j0)
            for i0 in range(0, width, bw):
                w = min(bw, width - i0)
                out[j0 : j0 + h, i0 : i0 + w] = self._read_block(level, ox + i0 * rx, oy + j0 * ry, rx, ry, w, h)
        return out

    def _check_budget(
        self, level: int, ox: float, oy: float, spanx: float, spany: float, width: int, height: int, mpp: float
    ) -> None:
        """Raise SlideTooLargeError if a read would return or decode more pixels than the budget allows."""
        fix = (
            f"the file has a single level: {limits._CONVERT_HINT}"
            if self.level_count == 1
            else "read a smaller region or at a coarser mpp"
        )
        if width * height > limits.MAX_OUTPUT_PIXELS:
            raise SlideTooLargeError(
                f"reading {width}x{height} pixels at {mpp:.4g} um/px from {self.path} would return "
                f"{width * height:.3g} pixels, more than the limit of {limits.MAX_OUTPUT_PIXELS} "
                "(her2fast.io.slide.MAX_OUTPUT_PIXELS); read a smaller region or at a coarser mpp"
            )
        lw, lh = self.level_dimensions[level]
        cover_x = max(0.0, min(ox + spanx, lw) - max(ox, 0.0))
        cover_y = max(0.0, min(oy + spany, lh) - max(oy, 0.0))
        decoded = cover_x * cover_y
        if decoded > limits.MAX_DECODE_PIXELS:
            w0, h0 = self.dimensions
            raise SlideTooLargeError(
                f"{self.path} declares {w0}x{h0} pixels in {self.level_count} level(s); reading {width}x{height} "
                f"pixels at {mpp:.4g} um/px would decode {decoded:.3g} pixels of level {level} ({lw}x{lh}), more "
                f"than the limit of {limits.MAX_DECODE_PIXELS} (her2fast.io.slide.MAX_DECODE_PIXELS); {fix}"
            )

    def _read_block(self, level: int, ox: float, oy: float, rx: float, ry: float, w: int, h: int) -> np.ndarray:
        """Output block of w x h pixels whose top-left corner is level point (ox, oy), rx/ry level px per px."""
        exact = abs(rx - 1) < 1e-9 and abs(ry - 1) < 1e-9
        if exact and abs(ox - round(ox)) < 1e-6 and abs(oy - round(oy)) < 1e-6:
            block, fx, fy = self._read_level(level, int(round(ox)), int(round(oy)), w, h)
            if fx == round(ox) and fy == round(oy):
                return block
        from PIL import Image

        # Lanczos support is 3 input pixels at scale 1, 3*r when reducing by r; read that much margin.
        mx, my = int(math.ceil(3 * max(rx, 1))) + 2, int(math.ceil(3 * max(ry, 1))) + 2
        lx0, ly0 = int(math.floor(ox)) - mx, int(math.floor(oy)) - my
        lx1, ly1 = int(math.ceil(ox + w * rx)) + mx, int(math.ceil(oy + h * ry)) + my
        lw, lh = self.level_dimensions[level]
        cx0, cy0, cx1, cy1 = max(lx0, 0), max(ly0, 0), min(lx1, lw), min(ly1, lh)
        inside = max(0, cx1 - cx0) * max(0, cy1 - cy0)
        d = self.level_downsamples[level]
        if d == int(d) and inside * 4 < (lx1 - lx0) * (ly1 - ly0):
            return self._resample_thin(level, (lx0, ly0, lx1, ly1), (cx0, cy0, cx1, cy1), ox, oy, rx, ry, w, h)
        block, fx, fy = self._read_level(level, lx0, ly0, lx1 - lx0, ly1 - ly0)
        box = (ox - fx, oy - fy, ox - fx + w * rx, oy - fy + h * ry)
        img = Image.fromarray(block).resize((w, h), resample=Image.Resampling.LANCZOS, box=box)
        return np.asarray(img)

    def _resample_thin(self, level, canvas, crop, ox, oy, rx, ry, w, h) -> np.ndarray:
        """:meth:`_read_block` for a block mostly outside the level (a thin slide at a large reduction).

        The resampling margins would be mostly white glass: resample only the part inside the level, one
        direction at a time, and blend with white by the Lanczos weight that falls outside it (the filter
        is separable, so that weight is a product of two 1-D resamplings). Equal to resampling the white-padded block up to the
        rounding of Pillow's two passes.
        """
        from PIL import Image

        lanczos = Image.Resampling.LANCZOS
        (lx0, ly0, lx1, ly1), (cx0, cy0, cx1, cy1) = canvas, crop
        if cx1 <= cx0 or cy1 <= cy0:
            return np.full((h, w, 3), 255, np.uint8)
        block, _, _ = self._read_level(level, cx0, cy0, cx1 - cx0, cy1 - cy0)
        # one 1-D pass per direction, each padding with white only along its own axis to cover the
        # resampling box (Pillow needs the box inside the image), never the margins of both
        py0, py1 = max(ly0, min(cy0, math.floor(oy))), min(ly1, max(cy1, math.ceil(oy + h * ry)))
        tall = np.full((py1 - py0, cx1 - cx0, 3), 255, np.uint8)
        tall[cy0 - py0 : cy1 - py0] = block
        box = (0, oy - py0, cx1 - cx0, oy - py0 + h * ry)
        cols = np.asarray(Image.fromarray(tall).resize((cx1 - cx0, h), resample=lanczos, box=box))
        px0, px1 = max(lx0, min(cx0, math.floor(ox))), min(lx1, max(cx1, math.ceil(ox + w * rx)))
        wide = np.full((h, px1 - px0, 3), 255, np.uint8)
        wide[:, cx0 - px0 : cx1 - px0] = cols
        box = (ox - px0, 0, ox - px0 + w * rx, h)
        inner = np.asarray(Image.fromarray(wide).resize((w, h), resample=lanczos, box=box), np.float32)
        cx0, cy0, cx1, cy1 = px0, py0, px1, py1  # the weight that falls outside the padded parts is white

        def coverage(lo: int, hi: int, c0: int, c1: int, o: float, r: float, n: int) -> np.ndarray:
            mask = np.zeros((1, hi - lo), np.float32)
            mask[0, c0 - lo : c1 - lo] = 1.0
            img = Image.fromarray(mask, "F").resize((n, 1), resample=lanczos, box=(o - lo, 0, o - lo + n * r, 1))
            return np.clip(np.asarray(img)[0], 0.0, 1.0)

        ax = coverage(lx0, lx1, cx0, cx1, ox, rx, w)
        ay = coverage(ly0, ly1, cy0, cy1, oy, ry, h)
        alpha = (ay[:, None] * ax[None, :])[..., None]
        return np.clip(np.rint(alpha * inner + (1.0 - alpha) * 255.0), 0, 255).astype(np.uint8)

    def thumbnail(self, mpp: float | None = None, *, max_size: int | None = None) -> np.ndarray:
        """The whole slide at low resolution.

        Parameters
        ----------
        mpp : float, optional
            Micrometres per thumbnail pixel. Output pixel ``(i, j)`` covers level-0 pixels
            ``[j*sx, (j+1)*sx) x [i*sy, (i+1)*sy)`` with ``sx = mpp / mpp_x``; the last row and column
            may reach past the slide edge (white).
        max_size : int, optional
            Instead of ``mpp``: the longer side in pixels (the mpp is chosen to fit).

        Returns
        -------
        (H, W, 3) uint8
        """
        if (mpp is None) == (max_size is None):
            raise InvalidInputError("pass exactly one of mpp= (um/px) or max_size= (pixels) to thumbnail()")
        if mpp is None:
            max_size = as_int(max_size, "max_size", 1, 1 << 16)
            wum, hum = self.size_um
            mpp = max(wum, hum) / max_size
        mpp = as_positive_float(mpp, "mpp")
        w, h = self.size_at(mpp)
        return self.read(0, 0, w, h, mpp)

    def size_at(self, mpp: float) -> tuple[int, int]:
        """Size ``(width, height)`` in pixels of the whole slide at ``mpp`` (rounded up, at least 1)."""
        mpp = as_positive_float(mpp, "mpp")
        wum, hum = self.size_um
        return max(1, int(math.ceil(wum / mpp - 1e-9))), max(1, int(math.ceil(hum / mpp - 1e-9)))
