"""Plain images (PNG, JPEG, BMP, non-pyramidal TIFF) and in-memory arrays as one-level slides: decoding to
8-bit RGB (see "Pixel formats" in :mod:`her2fast.io.slide`), their resolution tags, :func:`image_slide`.

Examples
--------
>>> import numpy as np
>>> with image_slide(np.full((40, 60, 3), 230, np.uint8), 0.5) as slide:
...     slide.dimensions, slide.mpp, slide.mpp_source
((60, 40), 0.5, 'user')
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..._validate import as_positive_float, as_rgb_uint8
from ...errors import InvalidInputError, SlideReadError, SlideTooLargeError, UnsupportedSlideError
from .limits import _CONVERT_HINT, _check_extent, _check_size
from .reader import Slide, _composite_on_white
from .resolution import (
    MppEstimator,
    _check_meta_aspect,
    _check_user_mpp,
    _float_or_none,
    _implausible_meta,
    _missing_mpp,
    _mpp_from_user,
    _plausible,
)

__all__ = ["image_slide"]

#: 16-bit samples whose maximum stays below this are not scaled to 8 bits but refused (12-bit data or a dark image).
_MIN_16BIT_PEAK = 4096


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
