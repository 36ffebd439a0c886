"""What identifies a slide's content: its files, their size and mtime, and the sha256 of its bytes.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> from her2fast.io.store.identity import slide_identity
>>> with tempfile.TemporaryDirectory() as folder:
...     (Path(folder) / "a.svs").write_bytes(b"abc")
...     slide_identity(Path(folder) / "a.svs").sha256[:16]
3
'ba7816bf8f01cfea'
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..._files import file_kind, os_error_text, snapshot, text_path
from ...errors import InvalidInputError, SlideChangedError

__all__ = ["SlideIdentity", "slide_files", "slide_identity", "slide_stat"]


@dataclass(frozen=True)
class SlideIdentity:
    """What identifies a slide's content: path, size, mtime and the sha256 of its bytes.

    ``snapshot`` (not stored, not compared) is :func:`her2fast._files.snapshot` of the slide's files while they
    were hashed: the same snapshot later means the same bytes. ``path`` is text (a name that is not UTF-8 is
    written with ``\\xNN`` escapes, :func:`her2fast._files.text_path`); ``file`` (not stored, not compared) is
    the path as the operating system names it, for opening the file again (:attr:`location`).
    """

    path: str
    size: int
    mtime: float
    sha256: str
    snapshot: tuple = field(default=(), compare=False, repr=False)
    file: str = field(default="", compare=False, repr=False)

    @property
    def location(self) -> str:
        """The path to open the slide's files with (``file`` when known, else ``path``)."""
        return self.file or self.path


def slide_files(path: str | os.PathLike) -> list[Path]:
    """The files that make up a slide: the file itself, plus the folder of a multi-file format (MRXS)."""
    path = Path(path)
    files = [path]
    companion = path.with_suffix("")
    if path.suffix.lower() == ".mrxs" and companion.is_dir():
        files += sorted(p for p in companion.rglob("*") if p.is_file())
    return files


_slide_files = slide_files  # older private name


def slide_stat(path: str | os.PathLike) -> tuple[int, float, int]:
    """``(total size, newest mtime, number of files)`` of a slide's files, without reading them.

    Raises
    ------
    OSError
        When a file vanishes while it is looked at.
    """
    size, mtime, files = 0, 0.0, slide_files(path)
    for f in files:
        st = f.stat()
        size += st.st_size
        mtime = max(mtime, st.st_mtime)
    return size, mtime, len(files)


def slide_identity(path: str | os.PathLike, *, chunk: int = 8 << 20) -> SlideIdentity:
    """Size, mtime and sha256 of a slide's bytes (all its files for MRXS), read in 8 MiB chunks.

    Raises
    ------
    InvalidInputError
        When the file does not exist, is not a regular file (a folder, FIFO or device: never opened, so a FIFO
        cannot block) or cannot be looked at. The identity's ``path`` is :func:`her2fast._files.text_path`
        of the resolved path (a name that is not UTF-8 is stored with ``\\xNN`` escapes).
    SlideChangedError
        When a file changed (rewritten or replaced) while it was hashed.
    """
    p = Path(path)
    try:
        kind = file_kind(p)
    except OSError as exc:  # a name too long, no permission
        raise InvalidInputError(os_error_text(p, exc)) from None
    if kind == "missing":
        raise InvalidInputError(f"slide file not found: {text_path(p)}")
    if kind != "file":
        what = "a folder" if kind == "dir" else "not a regular file (a FIFO, device or socket)"
        raise InvalidInputError(f"{text_path(p)} is {what}, not a slide file")
    digest = hashlib.sha256()
    size, mtime = 0, 0.0
    files = slide_files(p)
    before = snapshot(files)
    for i, f in enumerate(files):
        st = f.stat()
        size += st.st_size
        mtime = max(mtime, st.st_mtime)
        if i:  # companion files of a multi-file slide: their names are part of the content
            digest.update(str(f.relative_to(p.parent)).encode() + b"\0")
        with f.open("rb") as fh:
            while block := fh.read(chunk):
                digest.update(block)
    if snapshot(files) != before or slide_files(p) != files:
        raise SlideChangedError(
            f"{text_path(p)} changed while it was read (it is still being written, or was replaced); "
            "score it again once it is complete"
        )
    resolved = p.resolve()
    return SlideIdentity(
        path=text_path(resolved),
        size=size,
        mtime=mtime,
        sha256=digest.hexdigest(),
        snapshot=before,
        file=os.fspath(resolved),
    )
