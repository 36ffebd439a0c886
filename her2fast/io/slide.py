"""Reading whole slide images (OpenSlide) and plain images at a requested resolution.

:func:`open_slide` returns a :class:`Slide` for

- every format OpenSlide 4 reads (through ``openslide-python`` + ``openslide-bin``, no system library):
  Aperio SVS, Hamamatsu NDPI/VMS, 3DHISTECH MRXS, Leica SCN, Ventana BIF, Philips TIFF, DICOM WSI,
  Sakura SVSLIDE, Zeiss CZI, generic tiled pyramidal TIFF;
- plain images -- PNG, JPEG, BMP and non-pyramidal TIFF (through Pillow / tifffile) -- as one-level
  slides. They are decoded whole, so they are limited to :data:`MAX_PLAIN_PIXELS` pixels; convert a
  larger image to a tiled pyramidal TIFF.

Pixel budget
------------
A file may declare far more pixels than it holds (a few megabytes of compressed tiles can declare
100,000 x 100,000 pixels: a decompression bomb). Every allocation is budgeted from the declared geometry
*before* anything is decoded, and :class:`~her2fast.errors.SlideTooLargeError` (naming the file, the declared
size, the limit and the fix) is raised instead:

- :func:`open_slide` refuses a slide whose coarsest level holds more than :data:`MAX_DECODE_PIXELS` pixels
  (no whole-slide view of it could be made), a plain image over :data:`MAX_PLAIN_PIXELS`, and a slide whose
  level-0 extent at its resolution is over :data:`MAX_SLIDE_MM` millimetres a side (larger than any glass slide);
- :meth:`Slide.read` (hence :meth:`Slide.thumbnail`) refuses a call that would decode more than
  :data:`MAX_DECODE_PIXELS` pyramid-level pixels or return more than :data:`MAX_OUTPUT_PIXELS` pixels.

Large reads within the budget are decoded block by block, so memory stays bounded by the output.

Coordinates
-----------
All positions are **level-0 pixels** (the full-resolution frame, as in OpenSlide), and may be
fractional. :meth:`Slide.read` ``(x, y, width, height, mpp)`` returns an image of ``height x width``
*output* pixels of ``mpp`` micrometres each, whose top-left corner is the level-0 point ``(x, y)``:
output pixel ``(i, j)`` covers level-0 ``[x + j*sx, x + (j+1)*sx) x [y + i*sy, y + (i+1)*sy)`` with
``sx = mpp / mpp_x`` (and ``sy`` likewise). Areas outside the slide are white (glass).

Resolution
----------
A slide's micrometres per pixel (``mpp``) come from its metadata (``openslide.mpp-x/-y``, or the TIFF
resolution tags of a plain TIFF) or from the caller (``open_slide(path, mpp=0.5)``, which wins). Brightfield
scanners and microscope cameras give 0.1-2 um/px; :data:`PLAUSIBLE_MPP` (0.05-20 um/px) is the accepted range.
A metadata value outside it (e.g. the 72 dpi = 352.8 um/px that image software writes by default) is not a
microscope resolution and is ignored; without a resolution, :func:`open_slide` raises
:class:`~her2fast.errors.MissingResolutionError`. A caller's ``mpp=`` outside it raises
:class:`~her2fast.errors.InvalidInputError`.

Pixels must be square: x and y resolutions more than :data:`MAX_PIXEL_ASPECT` apart (5 %) are refused
(:class:`~her2fast.errors.MissingResolutionError` for metadata, :class:`~her2fast.errors.InvalidInputError`
for ``mpp=``). Within it, :meth:`Slide.read` resamples each axis at its own resolution. Beyond it, either the
metadata is wrong (square pixels read as stretched cells) or one axis is too coarse for membranes; passing a
single ``mpp=`` declares the pixels square.

Pixel formats
-------------
Plain images are decoded to 8-bit RGB: greyscale (black or white is zero), palette, RGB(A), 16-bit samples
(scaled from 0-65535; an image whose 16-bit samples stay below 4096 -- 12-bit data or an all-dark image --
is refused rather than guessed at), YCbCr JPEG TIFFs. CMYK (print separations), CIELab, float and other
sample formats are refused with :class:`~her2fast.errors.UnsupportedSlideError` naming the format: a scanner
writes RGB, and a colour conversion her2fast would have to guess changes the stain colours it measures.
Greyscale images open (for inspection) but are not scored (:func:`her2fast.qc.check_colour`).

Brightfield
-----------
her2fast scores brightfield (transmitted light) IHC. Fluorescence scans open normally, for inspection, but
:attr:`Slide.is_brightfield` is ``False`` and :meth:`Slide.require_brightfield` (called by tissue
detection, hence by scoring) raises :class:`~her2fast.errors.NotBrightfieldError`. The test looks at the
image, not the vendor metadata: brightfield slides show bright glass, fluorescence slides a dark
background (see :func:`brightfield_evidence`).

Thread safety
-------------
Reading is thread-safe: OpenSlide handles may be shared by threads (its C library locks internally and
``openslide-python`` releases the GIL during decoding), and plain images are read-only arrays. One handle
per thread is also fine and scales slightly better (../shared/FACTS.md: 1.5-1.9x with two threads either
way). :meth:`Slide.close` must not run while another thread reads.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._files import file_kind, os_error_text
from .._validate import as_int, as_positive_float, as_rgb_uint8
from ..errors import (
    InvalidInputError,
    MissingResolutionError,
    NotBrightfieldError,
    SlideNotFoundError,
    SlideReadError,
    SlideTooLargeError,
    UnsupportedSlideError,
)

if TYPE_CHECKING:
    import openslide

__all__ = [
    "MAX_DECODE_PIXELS",
    "MAX_OUTPUT_PIXELS",
    "MAX_SLIDE_MM",
    "MAX_PLAIN_PIXELS",
    "MAX_PIXEL_ASPECT",
    "PLAIN_IMAGE_SUFFIXES",
    "PLAUSIBLE_MPP",
    "BrightfieldEvidence",
    "Slide",
    "MppEstimator",
    "brightfield_evidence",
    "image_slide",
    "open_slide",
]

#: ``estimate_mpp(pixels, path) -> float``: measures the micrometres per pixel of a plain image without a
#: resolution (see :func:`open_slide`).
MppEstimator = Callable[[np.ndarray, Path], float]

#: Suffixes opened as plain one-level images when OpenSlide does not recognise the file.
PLAIN_IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})

#: Largest plain image (pixels) decoded whole; larger ones must be converted to a pyramidal TIFF.
MAX_PLAIN_PIXELS = 1 << 28

#: Range of micrometres per pixel accepted as a brightfield microscope resolution (metadata or ``mpp=``).
PLAUSIBLE_MPP = (0.05, 20.0)

#: Largest ratio of the x and y resolutions accepted (pixels within 5 % of square); see "Resolution" above.
MAX_PIXEL_ASPECT = 1.05

#: 16-bit samples whose maximum stays below this are not scaled to 8 bits but refused (12-bit data or a dark image).
_MIN_16BIT_PEAK = 4096

#: Most pyramid-level pixels one :meth:`Slide.read` / :meth:`Slide.thumbnail` call decodes (2**30, a
#: 32768 x 32768 region), and the most pixels in the coarsest level of a slide :func:`open_slide` accepts.
MAX_DECODE_PIXELS = 1 << 30

#: Largest side (millimetres) of a slide's level-0 extent at its resolution; a glass slide is 75 x 25 mm (whole
#: mounts 75 x 50 mm).
MAX_SLIDE_MM = 200.0

#: Most pixels one :meth:`Slide.read` / :meth:`Slide.thumbnail` call returns (2**28: 768 MiB of RGB).
MAX_OUTPUT_PIXELS = 1 << 28

#: Largest tile (pixels) of a TIFF-based slide; scanners write 240-4096 px tiles.
_MAX_TILE_PIXELS = 1 << 26

#: Largest block of pyramid-level pixels read from the file at once (bounds memory of large reads).
_MAX_BLOCK = 2048

_CONVERT_HINT = (
    "convert it to a tiled pyramidal TIFF, e.g. `vips tiffsave IN OUT.tiff --tile --pyramid "
    "--compression jpeg --Q 90 --tile-width 512 --tile-height 512`"
)


def _plausible(mpp: float | None) -> bool:
    return mpp is not None and math.isfinite(mpp) and PLAUSIBLE_MPP[0] <= mpp <= PLAUSIBLE_MPP[1]


def _float_or_none(value: object) -> float | None:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _composite_on_white(rgba: np.ndarray) -> np.ndarray:
    """(h, w, 4) uint8 straight-alpha RGBA -> (h, w, 3) uint8 RGB over white."""
    rgb = rgba[..., :3]
    alpha = rgba[..., 3:4]
    if alpha.min() == 255:
        return np.ascontiguousarray(rgb)
    a = alpha.astype(np.uint16)
    out = (rgb.astype(np.uint16) * a + 255 * (255 - a) + 127) // 255
    return out.astype(np.uint8)


@dataclass(frozen=True)
class BrightfieldEvidence:
    """What :func:`brightfield_evidence` measured on a thumbnail.

    Attributes
    ----------
    is_brightfield : bool
    background_brightness : float
        95th percentile of the pixel brightness (mean of R, G, B; 0-255). Glass in brightfield is
        near 255; the background of a fluorescence scan is near 0.
    dark_fraction : float
        Fraction of pixels darker than 50/255.
    reason : str
        One sentence for messages.
    """

    is_brightfield: bool
    background_brightness: float
    dark_fraction: float
    reason: str


def brightfield_evidence(thumbnail: np.ndarray) -> BrightfieldEvidence:
    """Decide from a low-resolution RGB image whether a slide is brightfield.

    Brightfield slides are mostly glass or lightly stained tissue: their brightest 5 % of pixels are
    light (> 110/255 even for a section that fills the field). Fluorescence scans have a black background
    with a few bright structures in one or two channels.

    Parameters
    ----------
    thumbnail : (H, W, 3) uint8

    Returns
    -------
    BrightfieldEvidence
    """
    arr = np.asarray(thumbnail)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8 or arr.size == 0:
        raise InvalidInputError(f"thumbnail must be a non-empty (H, W, 3) uint8 array, got {arr.shape} {arr.dtype}")
    lum = arr.astype(np.float32).mean(axis=2)
    p95 = float(np.percentile(lum, 95))
    dark = float((lum < 50).mean())
    ok = p95 >= 110 and dark < 0.5
    if ok:
        reason = f"bright background (95th-percentile brightness {p95:.0f}/255)"
    else:
        reason = (
            f"dark background (95th-percentile brightness {p95:.0f}/255, {100 * dark:.0f} % of pixels "
            "darker than 50/255), as in a fluorescence scan"
        )
    return BrightfieldEvidence(ok, p95, dark, reason)


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
            Before decoding anything, when the call would return more than :data:`MAX_OUTPUT_PIXELS` pixels or
            decode more than :data:`MAX_DECODE_PIXELS` pixels of the source level.

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
        bw = max(1, min(width, int(_MAX_BLOCK / max(rx, 1e-9))))
        bh = max(1, min(height, int(_MAX_BLOCK / max(ry, 1e-9))))
        # a read one block across a level narrower than a block (a thin slide) takes longer blocks: what is
        # decoded is the level's width times the block's length, and short blocks would decode their
        # resampling margins many times over
        lw, lh = self.level_dimensions[level]
        cover_x = max(1.0, min(ox + width * rx, lw) - max(ox, 0.0))
        cover_y = max(1.0, min(oy + height * ry, lh) - max(oy, 0.0))
        area = float(_MAX_BLOCK * _MAX_BLOCK)
        if bw >= width and bh < height and cover_x < _MAX_BLOCK / 2:
            bh = min(height, max(bh, int(area / cover_x / max(ry, 1e-9))))
        elif bh >= height and bw < width and cover_y < _MAX_BLOCK / 2:
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
            f"the file has a single level: {_CONVERT_HINT}"
            if self.level_count == 1
            else "read a smaller region or at a coarser mpp"
        )
        if width * height > MAX_OUTPUT_PIXELS:
            raise SlideTooLargeError(
                f"reading {width}x{height} pixels at {mpp:.4g} um/px from {self.path} would return "
                f"{width * height:.3g} pixels, more than the limit of {MAX_OUTPUT_PIXELS} "
                "(her2fast.io.slide.MAX_OUTPUT_PIXELS); read a smaller region or at a coarser mpp"
            )
        lw, lh = self.level_dimensions[level]
        cover_x = max(0.0, min(ox + spanx, lw) - max(ox, 0.0))
        cover_y = max(0.0, min(oy + spany, lh) - max(oy, 0.0))
        decoded = cover_x * cover_y
        if decoded > MAX_DECODE_PIXELS:
            w0, h0 = self.dimensions
            raise SlideTooLargeError(
                f"{self.path} declares {w0}x{h0} pixels in {self.level_count} level(s); reading {width}x{height} "
                f"pixels at {mpp:.4g} um/px would decode {decoded:.3g} pixels of level {level} ({lw}x{lh}), more "
                f"than the limit of {MAX_DECODE_PIXELS} (her2fast.io.slide.MAX_DECODE_PIXELS); {fix}"
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


# ------------------------------------------------------------------------------------ opening
def _mpp_from_user(mpp: object, path: Path) -> tuple[float, float] | None:
    if mpp is None:
        return None
    if isinstance(mpp, (tuple, list)):
        if len(mpp) != 2:
            raise InvalidInputError(f"mpp must be a number or a pair (mpp_x, mpp_y), got {mpp!r}")
        mx = _check_user_mpp(as_positive_float(mpp[0], "mpp_x"), "mpp_x")
        my = _check_user_mpp(as_positive_float(mpp[1], "mpp_y"), "mpp_y")
        if _aspect(mx, my) > MAX_PIXEL_ASPECT:
            raise InvalidInputError(
                f"mpp=({mx:.4g}, {my:.4g}) describes pixels {_aspect(mx, my):.3g} times longer one way than the "
                f"other; her2fast accepts x and y resolutions within {100 * (MAX_PIXEL_ASPECT - 1):.0f} % of each "
                "other (her2fast.io.slide.MAX_PIXEL_ASPECT). Pass one number if the pixels are square, or resample "
                "the image to square pixels first"
            )
        return mx, my
    v = _check_user_mpp(as_positive_float(mpp, "mpp"), "mpp")
    return v, v


def _check_user_mpp(value: float, name: str) -> float:
    if not _plausible(value):
        lo, hi = PLAUSIBLE_MPP
        raise InvalidInputError(
            f"{name}={value:.4g} um/px is not a brightfield scan resolution (accepted: {lo:g} to {hi:g} um/px); "
            "pass the scanner's micrometres per pixel, e.g. mpp=0.5 for a 20x scan or mpp=0.25 for 40x"
        )
    return value


def _aspect(mx: float, my: float) -> float:
    return max(mx, my) / min(mx, my)


def _check_meta_aspect(path: Path, mx: float, my: float) -> None:
    """Refuse metadata resolutions that describe non-square pixels (beyond :data:`MAX_PIXEL_ASPECT`)."""
    if mx > 0 and my > 0 and _aspect(mx, my) > MAX_PIXEL_ASPECT:
        raise _missing_mpp(
            path,
            f"its metadata says {mx:.4g} x {my:.4g} um/px, pixels {_aspect(mx, my):.3g} times longer one way than "
            f"the other; her2fast accepts x and y within {100 * (MAX_PIXEL_ASPECT - 1):.0f} % of each other "
            "(her2fast.io.slide.MAX_PIXEL_ASPECT), as a wrong resolution tag would stretch every cell; if the "
            "pixels are square, one number overrides both",
        )


def _implausible_meta(mx: float, my: float) -> str:
    lo, hi = PLAUSIBLE_MPP
    return (
        f"its metadata says {mx:.4g} x {my:.4g} um/px, not a microscope resolution for brightfield "
        f"({lo:g} to {hi:g} um/px)"
    )


def _missing_mpp(path: Path, found: str) -> MissingResolutionError:
    return MissingResolutionError(
        f"{path} has no usable resolution ({found}); pass mpp= with the scan resolution in micrometres "
        "per pixel, e.g. open_slide(path, mpp=0.5) for a 20x scan or mpp=0.25 for 40x"
    )


def open_slide(
    path: str | Path, *, mpp: float | tuple[float, float] | None = None, estimate_mpp: MppEstimator | None = None
) -> Slide:
    """Open a whole slide image or a plain image.

    Parameters
    ----------
    path : str or Path
        A slide file OpenSlide reads (for DICOM, any ``.dcm`` file of the series; for MRXS, the ``.mrxs``
        file), or a PNG/JPEG/BMP/TIFF image.
    mpp : float or (float, float), optional
        Micrometres per level-0 pixel. Overrides the metadata; required when the file has none (plain
        images usually have none) unless ``estimate_mpp`` is given.
    estimate_mpp : callable, optional
        ``estimate_mpp(pixels, path) -> float``: measures the resolution of a *plain image* that has none
        (no ``mpp=``, no usable metadata) from its (H, W, 3) uint8 pixels (``mpp_source`` is then
        ``"estimated"``; :func:`her2fast.stages.resolution.estimate_resolution` is her2fast's). It raises
        :class:`~her2fast.errors.MissingResolutionError` when it cannot. Not used for slides OpenSlide reads.

    Returns
    -------
    Slide

    Raises
    ------
    SlideNotFoundError
        The path does not exist (also a ``FileNotFoundError``).
    SlideReadError
        The path cannot be looked at (a name longer than the file system allows, no permission).
    UnsupportedSlideError
        A folder, FIFO, device or socket rather than a regular file; not a format her2fast reads, or OpenSlide rejects it (unsupported compression, unreadable DICOM,
        corrupt header). The message names the file and says how to convert it.
    MissingResolutionError
        No plausible resolution in the metadata, no ``mpp=`` (and, for a plain image, no ``estimate_mpp`` or
        one that could not estimate it).
    InvalidInputError
        A bad ``mpp`` value, or one (given or estimated) outside :data:`PLAUSIBLE_MPP`.
    SlideTooLargeError
        The coarsest level declares more than :data:`MAX_DECODE_PIXELS` pixels, a plain image more than
        :data:`MAX_PLAIN_PIXELS`, or the level-0 extent at the resolution is over :data:`MAX_SLIDE_MM` a side
        (also an :class:`~her2fast.errors.UnsupportedSlideError`).

    Notes
    -----
    Opening does not decode pixels of OpenSlide slides; a corrupt tile shows up as a
    :class:`~her2fast.errors.SlideReadError` from :meth:`Slide.read`. Fluorescence slides open (for
    inspection); see :meth:`Slide.require_brightfield`.

    Examples
    --------
    >>> with open_slide("CMU-1.svs") as slide:  # doctest: +SKIP
    ...     tile = slide.read(1000, 2000, 512, 512, mpp=0.5)
    """
    if not isinstance(path, (str, Path)):
        raise InvalidInputError(f"path must be a str or pathlib.Path, got {type(path).__name__}")
    path = Path(path)
    user_mpp = _mpp_from_user(mpp, path)
    try:
        kind = file_kind(path)
    except OSError as exc:  # a name too long, no permission, a loop of links
        raise SlideReadError(f"cannot open the slide: {os_error_text(path, exc)}") from None
    if kind == "missing":
        raise SlideNotFoundError(f"slide file not found: {path} (check the path and the working directory)")
    if kind == "dir":
        raise UnsupportedSlideError(
            f"{path} is a folder; pass a slide file (for a DICOM series, any one of its .dcm files)"
        )
    if kind == "other":  # reading a FIFO would wait for a writer forever; a device has no end
        raise UnsupportedSlideError(
            f"{path} is not a regular file (a FIFO, device or socket); her2fast reads slides from regular files only"
        )
    import openslide

    try:
        vendor = openslide.OpenSlide.detect_format(str(path))
    except Exception as exc:  # pragma: no cover - detect_format only fails on unreadable files
        raise UnsupportedSlideError(f"cannot read {path}: {exc}") from None
    if vendor is None:
        if path.suffix.lower() in PLAIN_IMAGE_SUFFIXES:
            return _open_plain(path, user_mpp, estimate_mpp)
        raise UnsupportedSlideError(
            f"{path} is not a slide format OpenSlide 4 recognises (SVS, NDPI, MRXS, SCN, BIF, Philips "
            "TIFF, DICOM, tiled TIFF, ...) nor a plain PNG/JPEG/TIFF image; the file may be truncated or "
            f"corrupt. If another program opens it, {_CONVERT_HINT}"
        )
    if vendor != "hamamatsu":
        _check_tiff_layout(path)
    try:
        osr = openslide.OpenSlide(str(path))
    except Exception as exc:
        msg = str(exc)
        if vendor == "dicom":
            fix = (
                "OpenSlide reads DICOM VL Whole Slide Microscopy images with a TILED_FULL layout; re-export "
                "the series with a WSI DICOM converter (e.g. wsidicomizer) or " + _CONVERT_HINT
            )
        else:
            fix = _CONVERT_HINT
        raise UnsupportedSlideError(
            f"OpenSlide detected {path} as {vendor} but cannot open it ({msg}); {fix}"
        ) from None
    try:
        props = _properties(osr)
        dims = tuple((int(w), int(h)) for w, h in osr.level_dimensions)
        downs = tuple(float(d) for d in osr.level_downsamples)
        mx = _float_or_none(props.get("openslide.mpp-x"))
        my = _float_or_none(props.get("openslide.mpp-y"))
        meta = (mx, my) if mx is not None and my is not None and _plausible(mx) and _plausible(my) else None
        if user_mpp is not None:
            mpp_xy, source = user_mpp, "user"
        else:
            if mx is None or my is None:
                raise _missing_mpp(path, "no openslide.mpp-x/-y in its metadata")
            _check_meta_aspect(path, mx, my)
            if not (_plausible(mx) and _plausible(my)):
                raise _missing_mpp(path, _implausible_meta(mx, my))
            mpp_xy, source = (mx, my), "metadata"
        power = _float_or_none(props.get("openslide.objective-power"))
        _check_declared_size(path, dims)
        _check_extent(path, dims[0], mpp_xy, source)
    except BaseException:
        osr.close()
        raise
    return Slide._create(path, vendor, dims, downs, mpp_xy, source, power, props, osr, None, meta)


def _properties(osr) -> dict[str, str]:
    """OpenSlide's properties; a damaged name whose value OpenSlide cannot give back is left out."""
    props: dict[str, str] = {}
    for key in list(osr.properties):
        try:
            props[key] = osr.properties[key]
        except (KeyError, UnicodeDecodeError):
            continue
    return props


def _check_tiff_layout(path: Path) -> None:
    """Refuse a TIFF whose tiles or strips reach past the end of the file, or whose tiles are huge.

    OpenSlide allocates a tile's declared byte count before reading it, and a whole decoded tile: a damaged
    count of 4 GB, or a declared tile of 11534464 x 128 pixels (5.9 GB), costs that much address space (and
    aborts a process under ``ulimit -v``). Files tifffile cannot parse are left to
    OpenSlide.
    """
    try:
        with open(path, "rb") as fh:
            if fh.read(4) not in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
                return
        import tifffile

        size = path.stat().st_size
        with tifffile.TiffFile(path) as tf:
            for index, page in enumerate(tf.pages):
                # OpenSlide allocates a whole tile (4 bytes a pixel) to decode it
                tile_w = int(getattr(page, "tilewidth", 0) or 0)
                tile_h = int(getattr(page, "tilelength", 0) or 0)
                if tile_w * tile_h > _MAX_TILE_PIXELS:
                    raise SlideTooLargeError(
                        f"{path} declares tiles of {tile_w}x{tile_h} pixels in its image {index}, "
                        f"more than the limit of {_MAX_TILE_PIXELS} pixels a tile; the file is damaged, or "
                        f"{_CONVERT_HINT}"
                    )
                for offset, count in zip(page.dataoffsets, page.databytecounts):
                    if offset + count > size:
                        raise UnsupportedSlideError(
                            f"{path} is damaged or truncated: a tile of its image {index} reaches past the end of "
                            f"the file (byte {offset} + {count} > {size} bytes); copy the slide again from the "
                            "scanner"
                        )
    except UnsupportedSlideError:  # SlideTooLargeError too
        raise
    except Exception:  # noqa: BLE001 - not parseable by tifffile: OpenSlide decides
        return


def _open_plain(path: Path, user_mpp: tuple[float, float] | None, estimate_mpp: MppEstimator | None = None) -> Slide:
    """A PNG/JPEG/BMP/TIFF image as a one-level slide (decoded whole)."""
    meta_mpp: tuple[float, float] | None = None
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            pixels, meta_mpp = _read_plain_tiff(path)
        else:
            pixels, meta_mpp = _read_plain_pillow(path)
    except (SlideReadError, InvalidInputError):
        raise
    except Exception as exc:
        raise UnsupportedSlideError(
            f"cannot decode the image {path}: {exc}. Check the file, or {_CONVERT_HINT}"
        ) from None
    if user_mpp is None and meta_mpp is not None:
        _check_meta_aspect(path, *meta_mpp)
    usable = meta_mpp if meta_mpp is not None and _plausible(meta_mpp[0]) and _plausible(meta_mpp[1]) else None
    if user_mpp is not None:
        mpp_xy, source = user_mpp, "user"
    elif usable is not None:
        mpp_xy, source = usable, "metadata"
    elif estimate_mpp is not None:
        mpp_xy, source = _estimated(estimate_mpp, pixels, path), "estimated"
    elif meta_mpp is not None:
        raise _missing_mpp(path, _implausible_meta(*meta_mpp))
    else:
        raise _missing_mpp(path, "a plain image without a microscope resolution in its metadata")
    h, w = pixels.shape[:2]
    _check_extent(path, (w, h), mpp_xy, source)
    return Slide._create(path, "image", ((w, h),), (1.0,), mpp_xy, source, None, {}, None, pixels, usable)


def _estimated(estimate_mpp: MppEstimator, pixels: np.ndarray, path: Path) -> tuple[float, float]:
    """The resolution ``estimate_mpp`` measures on an image, checked like a caller's ``mpp=``."""
    value = _check_user_mpp(as_positive_float(estimate_mpp(pixels, path), "estimated mpp"), "estimated mpp")
    return value, value


def image_slide(
    pixels: np.ndarray,
    mpp: float | tuple[float, float],
    *,
    path: str | Path = "<array>",
    mpp_source: str = "user",
) -> Slide:
    """An RGB image held in memory (a viewer snapshot, a camera frame) as a one-level slide.

    Parameters
    ----------
    pixels : (H, W, 3) uint8
        RGB; kept, not copied (do not change it while the slide is open).
    mpp : float or (float, float)
        Micrometres per pixel, within :data:`PLAUSIBLE_MPP`.
    path : str or Path
        What the slide is called in results and messages (default ``"<array>"``).
    mpp_source : {"user", "estimated", "metadata"}
        Where ``mpp`` came from.

    Returns
    -------
    Slide
        ``vendor`` ``"image"``, no metadata resolution.

    Raises
    ------
    InvalidInputError
        ``pixels`` is not an (H, W, 3) uint8 array, or ``mpp`` is not a plausible resolution.
    SlideTooLargeError
        More than :data:`MAX_PLAIN_PIXELS` pixels, or an extent over :data:`MAX_SLIDE_MM` at ``mpp``.

    Examples
    --------
    >>> import numpy as np
    >>> with image_slide(np.full((40, 60, 3), 230, np.uint8), 0.5) as slide:
    ...     slide.dimensions, slide.mpp, slide.mpp_source
    ((60, 40), 0.5, 'user')
    """
    arr = as_rgb_uint8(pixels, "pixels")
    path = Path(path)
    if mpp_source not in ("user", "estimated", "metadata"):
        raise InvalidInputError(f"mpp_source must be 'user', 'estimated' or 'metadata', got {mpp_source!r}")
    mpp_xy = _mpp_from_user(mpp, path)
    assert mpp_xy is not None  # mpp is required here
    h, w = arr.shape[:2]
    _check_size(path, w, h)
    _check_extent(path, (w, h), mpp_xy, "user")
    return Slide._create(path, "image", ((w, h),), (1.0,), mpp_xy, mpp_source, None, {}, None, arr)


def _from_16bit(arr: np.ndarray, path: Path) -> np.ndarray:
    """uint16 samples scaled from 0-65535 to 0-255 (rounded), or UnsupportedSlideError for low-range data."""
    peak = int(arr.max()) if arr.size else 0
    if peak < _MIN_16BIT_PEAK:
        raise UnsupportedSlideError(
            f"{path} holds 16-bit samples that never exceed {peak} of 65535: 12-bit (or fewer) data in a 16-bit "
            "file, or an image with no bright glass. her2fast scales 16-bit images from the full 0-65535 range and "
            "will not guess another one; convert it to 8-bit RGB with its real range (e.g. `vips scale IN OUT.tiff`)"
        )
    return ((arr.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _to_rgb8(arr: np.ndarray, path: Path) -> np.ndarray:
    if arr.dtype == np.uint16:
        arr = _from_16bit(arr, path)
    if arr.dtype != np.uint8:
        raise UnsupportedSlideError(
            f"{path} holds {arr.dtype} pixels; her2fast reads 8-bit (or 16-bit) RGB images. Convert it to 8-bit "
            "RGB (e.g. `vips cast IN OUT.tiff uchar` after scaling)"
        )
    if arr.ndim == 2:
        return np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim == 3 and arr.shape[2] == 4:
        return _composite_on_white(arr)
    if arr.ndim == 3 and arr.shape[2] == 3:
        return np.ascontiguousarray(arr)
    if arr.ndim == 3 and arr.shape[2] == 2:  # grey + alpha
        g = arr[..., :1]
        return _composite_on_white(np.concatenate([g, g, g, arr[..., 1:]], axis=2))
    raise UnsupportedSlideError(f"{path} has an image shape {arr.shape} that is not grey or RGB(A)")


def _check_declared_size(path: Path, dims: tuple[tuple[int, int], ...]) -> None:
    """Refuse a slide whose coarsest level is over the decode budget (or whose geometry is empty)."""
    if not dims or any(w <= 0 or h <= 0 for w, h in dims):
        raise UnsupportedSlideError(f"{path} declares an empty image ({dims}); the file is corrupt; re-export it")
    cw, ch = min(dims, key=lambda wh: wh[0] * wh[1])
    if cw * ch > MAX_DECODE_PIXELS:
        w0, h0 = dims[0]
        try:
            disk = f"{path.stat().st_size / 1e6:.3g} MB on disk"
        except OSError:  # pragma: no cover - the file was just opened
            disk = "size on disk unknown"
        raise SlideTooLargeError(
            f"{path} declares {w0}x{h0} pixels ({disk}) and the coarsest of its {len(dims)} level(s) is {cw}x{ch} = "
            f"{cw * ch:.3g} pixels, more than the limit of {MAX_DECODE_PIXELS} pixels one read may decode "
            "(her2fast.io.slide.MAX_DECODE_PIXELS), so no whole-slide view of it can be made. A file far smaller "
            "than its declared pixels is not a genuine scan; for a genuine one, " + _CONVERT_HINT
        )


def _check_extent(path: Path, dims: tuple[int, int], mpp: tuple[float, float], source: str) -> None:
    """Refuse a slide whose level-0 extent at its resolution is larger than any glass slide."""
    wmm, hmm = dims[0] * mpp[0] / 1000, dims[1] * mpp[1] / 1000
    if max(wmm, hmm) > MAX_SLIDE_MM:
        where = "given as mpp=" if source == "user" else "read from its metadata as"
        raise SlideTooLargeError(
            f"{path} declares {dims[0]}x{dims[1]} pixels, which at {mpp[0]:.4g} x {mpp[1]:.4g} um/px ({where} "
            f"the resolution) is {wmm:.4g} x {hmm:.4g} mm, larger than any glass slide (limit {MAX_SLIDE_MM:g} mm "
            "a side, her2fast.io.slide.MAX_SLIDE_MM); check the resolution (pass mpp= with the scanner's "
            "micrometres per pixel) or the file"
        )


def _check_size(path: Path, w: int, h: int) -> None:
    if w * h > MAX_PLAIN_PIXELS:
        raise SlideTooLargeError(
            f"{path} is a {w}x{h} plain image, too large to decode whole (limit {MAX_PLAIN_PIXELS} pixels); "
            + _CONVERT_HINT
        )


def _png_bit_depth(path: Path) -> int | None:
    """Bit depth from a PNG's IHDR chunk (None for anything else)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(26)
    except OSError:
        return None
    if len(head) == 26 and head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        return head[24]
    return None


def _cmyk_error(path: Path) -> UnsupportedSlideError:
    return UnsupportedSlideError(
        f"{path} is a CMYK image (a print separation), not an RGB scan: its colours depend on an ink profile "
        "her2fast would have to guess, and the stain colours it measures with them. Export the scanner's RGB "
        "image (or convert with the right ICC profile, e.g. `vips icc_transform IN OUT.tiff srgb`)"
    )


def _read_plain_pillow(path: Path) -> tuple[np.ndarray, tuple[float, float] | None]:
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            opened = Image.open(path)
        except Image.DecompressionBombError as exc:  # Pillow's own limit, below MAX_PLAIN_PIXELS
            raise SlideTooLargeError(
                f"{path} declares more pixels than a plain image may have ({exc}); " + _CONVERT_HINT
            ) from None
        with opened as im:
            _check_size(path, *im.size)
            dpi = im.info.get("dpi")
            if im.mode == "CMYK":
                raise _cmyk_error(path)
            if im.format == "PNG" and _png_bit_depth(path) == 16:
                import imagecodecs  # Pillow keeps only the high byte of 16-bit RGB: decode all 16 bits

                with open(path, "rb") as fh:
                    arr = imagecodecs.png_decode(fh.read())
            elif im.mode in ("I;16", "I;16B", "I;16L"):
                arr = np.asarray(im).astype(np.uint16)
            elif im.mode not in ("RGB", "RGBA", "L", "LA"):
                converted = im.convert("RGBA" if "A" in im.mode or "transparency" in im.info else "RGB")
                arr = np.asarray(converted)
            else:
                arr = np.asarray(im)
    meta = None
    if dpi is not None and len(dpi) == 2:
        mx, my = (_float_or_none(v) for v in dpi)
        if mx and my:
            mx, my = 25400.0 / mx, 25400.0 / my
            meta = (mx, my)
    return _to_rgb8(arr, path), meta


def _read_plain_tiff(path: Path) -> tuple[np.ndarray, tuple[float, float] | None]:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        _check_size(path, int(page.imagewidth), int(page.imagelength))
        photometric = int(page.photometric)
        PM = tifffile.PHOTOMETRIC
        if photometric == PM.SEPARATED:
            raise _cmyk_error(path)
        if photometric not in (PM.MINISWHITE, PM.MINISBLACK, PM.RGB, PM.PALETTE, PM.YCBCR):
            raise UnsupportedSlideError(
                f"{path} stores its pixels as {PM(photometric).name if photometric in tuple(PM) else photometric} "
                "(TIFF photometric interpretation), not RGB or greyscale; export the scanner's RGB image"
            )
        arr = page.asarray()
        if photometric == PM.PALETTE and page.colormap is not None:
            cmap = np.asarray(page.colormap)  # (3, 2**bits), 16-bit: an 8-bit colour v is stored as v * 257
            if cmap.ndim != 2 or cmap.shape[0] != 3 or arr.ndim != 2 or int(arr.max()) >= cmap.shape[1]:
                raise UnsupportedSlideError(
                    f"{path} has a colour map that does not fit its pixels; re-export it as RGB"
                )
            arr = np.moveaxis(cmap[:, arr], 0, -1)
            if arr.dtype == np.uint16:
                arr = ((arr.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
        elif photometric == PM.MINISWHITE and np.issubdtype(arr.dtype, np.unsignedinteger):
            arr = np.iinfo(arr.dtype).max - arr  # 0 is white
        meta = None
        tags = page.tags
        unit = tags.get("ResolutionUnit")
        xr, yr = tags.get("XResolution"), tags.get("YResolution")
        if unit is not None and xr is not None and yr is not None:
            per = {2: 25400.0, 3: 10000.0}.get(int(unit.value))  # inch, centimetre
            xv = xr.value[0] / xr.value[1] if xr.value[1] else 0
            yv = yr.value[0] / yr.value[1] if yr.value[1] else 0
            if per and xv > 0 and yv > 0:
                mx, my = per / xv, per / yv
                meta = (mx, my)
    if arr.ndim == 3 and arr.shape[0] in (3, 4) and arr.shape[-1] not in (3, 4):  # planar (C, H, W)
        arr = np.moveaxis(arr, 0, -1)
    return _to_rgb8(arr, path), meta
