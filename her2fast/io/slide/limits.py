"""The pixel budget: the most pixels a slide may declare, one read may decode or return, and the checks
that refuse a file over it (:class:`~her2fast.errors.SlideTooLargeError`) before anything is decoded.

Every limit is read from this module when a check runs.

Examples
--------
>>> from pathlib import Path
>>> from her2fast.errors import SlideTooLargeError
>>> try:
...     _check_extent(Path("big.png"), (500_000, 1000), (0.5, 0.5), "user")
... except SlideTooLargeError as exc:
...     "larger than any glass slide" in str(exc)
True
"""

from __future__ import annotations

from pathlib import Path

from ...errors import SlideTooLargeError, UnsupportedSlideError

__all__ = ["MAX_DECODE_PIXELS", "MAX_OUTPUT_PIXELS", "MAX_PLAIN_PIXELS", "MAX_SLIDE_MM"]

#: Largest plain image (pixels) decoded whole; larger ones must be converted to a pyramidal TIFF.
MAX_PLAIN_PIXELS = 1 << 28

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
