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

Modules
-------
- :mod:`~her2fast.io.slide.opening`: :func:`open_slide` (what the path is, format detection, metadata) and
  :data:`PLAIN_IMAGE_SUFFIXES`.
- :mod:`~her2fast.io.slide.reader`: :class:`Slide` (geometry, region reads, thumbnails).
- :mod:`~her2fast.io.slide.plain`: plain images decoded to 8-bit RGB, :func:`image_slide`.
- :mod:`~her2fast.io.slide.resolution`: :data:`PLAUSIBLE_MPP`, :data:`MAX_PIXEL_ASPECT`, :data:`MppEstimator`,
  a caller's ``mpp=`` and the metadata's.
- :mod:`~her2fast.io.slide.brightfield`: :class:`BrightfieldEvidence`, :func:`brightfield_evidence`.
- :mod:`~her2fast.io.slide.limits`: the pixel budget (:data:`MAX_DECODE_PIXELS`, :data:`MAX_OUTPUT_PIXELS`,
  :data:`MAX_PLAIN_PIXELS`, :data:`MAX_SLIDE_MM`) and its checks; the checks read the limits from that module.

Every public name of these modules is importable from ``her2fast.io.slide``.

Examples
--------
>>> import numpy as np
>>> from her2fast.io.slide import image_slide
>>> with image_slide(np.full((40, 60, 3), 230, np.uint8), 0.5) as slide:
...     slide.dimensions, slide.mpp_source, slide.is_brightfield, slide.read(0, 0, 30, 20, mpp=1.0).shape
((60, 40), 'user', True, (20, 30, 3))
"""

from __future__ import annotations

from .brightfield import BrightfieldEvidence, brightfield_evidence
from .limits import MAX_DECODE_PIXELS, MAX_OUTPUT_PIXELS, MAX_PLAIN_PIXELS, MAX_SLIDE_MM
from .opening import PLAIN_IMAGE_SUFFIXES, open_slide
from .plain import image_slide
from .reader import Slide
from .resolution import MAX_PIXEL_ASPECT, PLAUSIBLE_MPP, MppEstimator

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
