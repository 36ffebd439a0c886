"""Small file helpers shared by the model loaders and the readers of user files."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def file_kind(path: str | os.PathLike) -> str:
    """What a path names: ``"file"`` (regular), ``"dir"``, ``"missing"`` or ``"other"`` (FIFO, device, socket).

    Symbolic links are followed. Raises ``OSError`` for anything else (a name too long, no permission);
    :func:`os_error_text` words it.
    """
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    if stat.S_ISREG(st.st_mode):
        return "file"
    return "dir" if stat.S_ISDIR(st.st_mode) else "other"


def os_error_text(path: str | os.PathLike, exc: OSError) -> str:
    """One sentence about an ``OSError`` met on ``path``: what happened and the fix."""
    shown = os.fsdecode(path)
    if len(shown) > 120:
        shown = shown[:60] + "..." + shown[-40:]
    if exc.errno == errno.ENAMETOOLONG:
        longest = max((len(os.fsencode(p)) for p in Path(os.fsdecode(path)).parts), default=0)
        return (
            f"the path {shown} is too long for the file system (its longest name is {longest} bytes; names may "
            f"have at most 255 bytes and paths 4096); check the path, or rename the file or folder"
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"no permission to read {shown}; fix its permissions"
    if exc.errno == errno.ELOOP:
        return f"{shown} is a loop of symbolic links; fix the link"
    return f"cannot use {shown}: {exc.strerror or exc}"


def text_path(path: str | os.PathLike) -> str:
    """``path`` (or any text) as text every UTF-8 writer accepts.

    A file name's bytes that are not UTF-8 (which Python keeps as lone surrogates) are written ``\\xNN``; other
    lone surrogates as ``\\udNNN``. Text that is already valid is returned unchanged, so equal paths give equal
    text and ordinary names are not touched.
    """
    text = os.fspath(path)
    if isinstance(text, bytes):
        return text.decode("utf-8", "backslashreplace")
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def is_root(path: str | os.PathLike) -> bool:
    """Whether ``path`` is the file-system root (``/``, ``//``, ``/..``, a link to ``/``), which her2fast never
    searches."""
    try:
        a, b = os.stat(path), os.stat(os.sep)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
