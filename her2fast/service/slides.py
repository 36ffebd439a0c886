"""Which files are slides: a folder's slide files, and the slides a folder, glob, list file or path names.

- :data:`SLIDE_SUFFIXES` and :func:`is_slide_name` -- the names taken for slides;
- :func:`scan_folder` -- the slide files under a folder (the batch and the watch-folder service);
- :func:`find_slides` -- the slides of a folder, glob, slide list or slide path, or a sequence of these
  (``her2fast batch``);
- :func:`batch_order` -- a batch's slides in the order it reports them.

Examples
--------
>>> from pathlib import Path
>>> from her2fast.service.slides import is_slide_name
>>> is_slide_name(Path("A-1.svs")), is_slide_name(Path("A-1.overlay.png")), is_slide_name(Path(".A-1.svs"))
(True, False, False)
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path

from .._files import file_kind, is_root, os_error_text
from ..errors import InvalidInputError

__all__ = ["SLIDE_SUFFIXES", "batch_order", "find_slides", "is_slide_name", "scan_folder"]

#: File suffixes taken for slides when a folder or glob is searched (OpenSlide formats + plain images).
SLIDE_SUFFIXES = frozenset(
    {
        ".svs",
        ".tif",
        ".tiff",
        ".ndpi",
        ".vms",
        ".vmu",
        ".scn",
        ".mrxs",
        ".svslide",
        ".bif",
        ".dcm",
        ".png",
        ".jpg",
        ".jpeg",
        ".bmp",
    }
)
# her2fast's own pictures and phantom sidecars are never slides.
_NOT_SLIDES = (".epithelium.png", ".overlay.png", ".zoom.png", ".heatmap.png")

_GLOB_CHARS = frozenset("*?[")


# ------------------------------------------------------------------------------------ finding slides
def is_slide_name(p: Path) -> bool:
    """Whether a file name is taken for a slide when a folder or glob is searched.

    Parameters
    ----------
    p : Path

    Returns
    -------
    bool
        True for a :data:`SLIDE_SUFFIXES` suffix, unless the name is hidden (``.name``) or one of her2fast's
        own pictures (``*.overlay.png``, ``*.zoom.png``, ``*.heatmap.png``, a phantom's ``*.epithelium.png``).
    """
    name = p.name.lower()
    return p.suffix.lower() in SLIDE_SUFFIXES and not name.startswith(".") and not name.endswith(_NOT_SLIDES)


def scan_folder(folder: Path, exclude: Sequence[Path] = ()) -> list[Path]:
    """Slide files under ``folder``: recursive, hidden names skipped, one ``.dcm`` per folder.

    Parameters
    ----------
    folder : Path
    exclude : sequence of Path
        Folders not to descend into (e.g. the output folder inside the watched one).

    Returns
    -------
    list of Path
        Sorted by folder, then name. The files of a DICOM series are one slide: any one of them opens it.
        Folders that cannot be listed are left out, and so are names that are not regular files (a FIFO
        named ``x.tiff`` would block whoever opened it; a dangling link is no slide). Symbolic links to folders
        are not followed.

    Raises
    ------
    InvalidInputError
        ``folder`` is the file-system root (``/``): her2fast never searches a whole file system.
    """
    if is_root(folder):
        raise InvalidInputError(
            f"refusing to search the whole file system ({folder}) for slides; pass the scanner's folder, e.g. "
            "/data/scans/today"
        )
    skip = {os.path.abspath(e) for e in exclude}
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and os.path.abspath(os.path.join(root, d)) not in skip
        )
        dicom = False
        for f in sorted(files):
            p = Path(root) / f
            if not is_slide_name(p):
                continue
            try:
                if file_kind(p) != "file":
                    continue
            except OSError:
                continue
            if p.suffix.lower() == ".dcm":  # a DICOM WSI series: one file per level, any one opens it
                if dicom:
                    continue
                dicom = True
            found.append(p)
    return found


#: Largest slide list read (bytes): a list of paths is some 100 bytes per slide.
_MAX_LIST_BYTES = 16 << 20


def _read_list(path: Path) -> list[Path]:
    """The entries of a slide list. Its lines are never quoted in errors: a file that is not a slide list (a
    password file, a slide of an unknown format) must not be printed."""
    try:
        size = path.stat().st_size
        if size > _MAX_LIST_BYTES:
            raise InvalidInputError(
                f"{path} is not a slide file ({', '.join(sorted(SLIDE_SUFFIXES))}) and, at {size / 1e6:.0f} MB, "
                f"too large for a slide list (limit {_MAX_LIST_BYTES >> 20} MiB)"
            )
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read the slide list: {os_error_text(path, exc)}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = ""
    if not text and data or "\x00" in text:
        raise InvalidInputError(
            f"{path} is not a slide file ({', '.join(sorted(SLIDE_SUFFIXES))}) nor a slide list (a UTF-8 text file "
            "with one path per line); check its name and suffix"
        )
    found: list[Path] = []
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.strip()
        if entry and not entry.startswith("#"):
            try:
                found += _expand(entry, from_list=path)
            except _ListEntryError as exc:
                raise InvalidInputError(
                    f"{path}: line {number} is {exc.reason}; is it a slide list (one slide file, folder or glob per "
                    "line)? Its lines are not shown here"
                ) from None
    return found


class _ListEntryError(InvalidInputError):
    """A line of a slide list that is no slide, folder or glob; ``reason`` does not quote the line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _kind(p: Path, from_list: Path | None = None) -> str:
    try:
        return file_kind(p)
    except OSError as exc:  # a name too long, no permission
        if from_list is not None:
            raise _ListEntryError("a path the file system cannot look up (too long, or not permitted)") from None
        raise InvalidInputError(os_error_text(p, exc)) from None


def _expand(item: str | os.PathLike, *, from_list: Path | None = None) -> list[Path]:
    text = os.fspath(item)
    p = Path(text).expanduser()
    if from_list is not None and not p.is_absolute():
        p = from_list.parent / p
    kind = _kind(p, from_list)
    if kind == "dir":
        return scan_folder(p)
    if kind == "file":
        if p.suffix.lower() in SLIDE_SUFFIXES:
            return [p]
        if from_list is not None:
            raise _ListEntryError("a file that is neither a slide nor a folder (slide lists do not nest)")
        return _read_list(p)
    if kind == "other" and p.suffix.lower() in SLIDE_SUFFIXES:
        return [p]  # a FIFO or device named like a slide: never opened, it gets a 'failed' row
    if _GLOB_CHARS & set(text):
        static = Path(*[part for part in p.parts[: next(i for i, q in enumerate(p.parts) if _GLOB_CHARS & set(q))]])
        if is_root(static or "."):
            raise InvalidInputError(
                "refusing a glob that searches the whole file system from its root; start it at the scanner's "
                "folder, e.g. '/data/scans/*/*.svs'"
            )
        out: list[Path] = []
        for m in sorted(glob.glob(str(p), recursive=True)):
            mp = Path(m)
            out += scan_folder(mp) if mp.is_dir() else [mp] if is_slide_name(mp) else []
        return out
    if p.suffix.lower() in SLIDE_SUFFIXES:
        return [p]  # a named slide that is missing: it gets a 'failed' row ("slide file not found")
    if from_list is not None:
        raise _ListEntryError("no slide file or folder that exists, and no glob pattern")
    raise InvalidInputError(f"{text}: no such slide file, folder or slide list (and no glob pattern)")


def find_slides(inputs: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """The slide files named by a folder, a glob, a list file, a slide path, or a sequence of these.

    Parameters
    ----------
    inputs : str, PathLike or sequence of them
        Each one is

        - a folder: its slide files (suffixes :data:`SLIDE_SUFFIXES`), searched recursively, skipping
          hidden names, her2fast's own pictures (``*.overlay.png``, ...) and all but one ``.dcm`` per folder
          (the files of a DICOM series are one slide);
        - a glob (``/scans/2026-*/*.svs``, ``**`` allowed): the matching slide files (matching folders are
          searched as above);
        - a slide file: itself (a missing one is kept: scoring records "slide file not found");
        - any other file: a list, one path (or folder, or glob) per line, ``#`` starts a comment line,
          relative paths are relative to the list's folder.

    Returns
    -------
    list of Path
        Absolute paths, sorted, each once.

    Raises
    ------
    InvalidInputError
        Nothing matched, or an input is neither a slide, a folder, a glob nor a readable list.

    Examples
    --------
    >>> from her2fast.service.batch import find_slides
    >>> find_slides("/scans/today")  # doctest: +SKIP
    [PosixPath('/scans/today/A-1.svs'), PosixPath('/scans/today/A-2.svs')]
    """
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    if not items:
        raise InvalidInputError("no slides given: pass a folder, a glob, a slide list or slide files")
    found: dict[str, Path] = {}
    for item in items:
        if not isinstance(item, (str, os.PathLike)):
            raise InvalidInputError(f"inputs must be paths (str or PathLike), got {type(item).__name__}")
        for p in _expand(item):
            a = os.path.abspath(p)
            found[a] = Path(a)
    if not found:
        shown = ", ".join(os.fspath(i) for i in items[:3]) + (", ..." if len(items) > 3 else "")
        raise InvalidInputError(f"no slide files found in {shown} (looked for {', '.join(sorted(SLIDE_SUFFIXES))})")
    return [found[k] for k in sorted(found)]


def batch_order(inputs) -> list[Path]:
    """The slides of a batch in the order it reports them.

    A sequence of slide files keeps its order and repeats (and a missing one stays, to get a ``failed``
    row); anything else is :func:`find_slides`.
    """
    if not isinstance(inputs, (str, os.PathLike)):
        items = list(inputs)
        if items and all(
            isinstance(i, (str, os.PathLike))
            and Path(os.fspath(i)).suffix.lower() in SLIDE_SUFFIXES
            and not (_GLOB_CHARS & set(os.fspath(i)))
            and _kind(Path(os.fspath(i)).expanduser()) != "dir"
            for i in items
        ):
            return [Path(os.path.abspath(Path(os.fspath(i)).expanduser())) for i in items]
    return find_slides(inputs)
