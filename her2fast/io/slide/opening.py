"""Opening a file as a :class:`~her2fast.io.slide.reader.Slide`: what the path is, which format it holds
(OpenSlide's detection, else a plain image by its suffix), the slide's metadata and resolution.

Examples
--------
>>> from her2fast.errors import SlideNotFoundError
>>> try:
...     open_slide("no-such-slide.svs")
... except SlideNotFoundError as exc:
...     str(exc).startswith("slide file not found")
True
"""

from __future__ import annotations

from pathlib import Path

from ..._files import file_kind, os_error_text
from ...errors import InvalidInputError, SlideNotFoundError, SlideReadError, UnsupportedSlideError
from .limits import _CONVERT_HINT, _check_declared_size, _check_extent, _check_tiff_layout
from .plain import _open_plain
from .reader import Slide
from .resolution import (
    MppEstimator,
    _check_meta_aspect,
    _float_or_none,
    _implausible_meta,
    _missing_mpp,
    _mpp_from_user,
    _plausible,
)

__all__ = ["PLAIN_IMAGE_SUFFIXES", "open_slide"]

#: Suffixes opened as plain one-level images when OpenSlide does not recognise the file.
PLAIN_IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})


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
