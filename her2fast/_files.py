"""File helpers: hashing, atomic writes that never follow a link or replace an input, file snapshots, and the
naming of paths in messages.

- :func:`file_sha256` -- hex sha256 of a file's bytes.
- :func:`atomic_write` / :func:`atomic_write_text` -- write a file completely under a fresh temporary name in
  the destination's folder (created with ``O_EXCL | O_NOFOLLOW``: never an existing file or link), flush it,
  then ``os.replace`` it onto the destination. A reader sees the old file or the new one, never half of one;
  a symbolic link planted at the destination is replaced, never written through; a destination that is the
  same file (device, inode) as one of ``protect`` -- the inputs of the run -- is refused with
  :class:`~her2fast.errors.OutputError`.
- :func:`file_key` / :func:`input_keys` -- the (device, inode) identity of files, for ``protect``.
- :func:`snapshot` -- (device, inode, size, mtime_ns, ctime_ns) of files: equal snapshots before and after
  reading mean nothing replaced or rewrote them in between (``ctime`` changes on every write and cannot be
  set back).
- :func:`file_kind`, :func:`os_error_text`, :func:`text_path`, :func:`is_root` -- what a path names, an
  ``OSError`` in words, a path as text every UTF-8 writer accepts, the file-system root.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import uuid
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import BinaryIO

from .errors import OutputError

#: Prefix of the temporary files of :func:`atomic_write` (hidden: slide searches skip them).
TEMP_PREFIX = ".her2fast-part-"


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


def file_key(path: str | os.PathLike, *, follow: bool = True) -> tuple[int, int] | None:
    """``(st_dev, st_ino)`` of a file (of the link itself with ``follow=False``), or None when it does not exist."""
    try:
        st = os.stat(path, follow_symlinks=follow)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def input_keys(paths: Iterable[str | os.PathLike]) -> frozenset[tuple[int, int]]:
    """The (device, inode) keys of the files that exist among ``paths`` (links followed): what no output may replace."""
    return frozenset(k for k in (file_key(p) for p in paths) if k is not None)


def snapshot(paths: Iterable[str | os.PathLike]) -> tuple[tuple[int, int, int, int, int], ...]:
    """``(dev, inode, size, mtime_ns, ctime_ns)`` of each file (links followed).

    Raises
    ------
    OSError
        A file is missing or cannot be looked at.
    """
    out = []
    for p in paths:
        st = os.stat(p)
        out.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return tuple(out)


def check_not_input(dest: Path, protect: Collection[tuple[int, int]]) -> None:
    """Raise :class:`OutputError` when ``dest`` is (a hard link of) one of the files in ``protect``."""
    if protect and file_key(dest, follow=False) in protect:
        raise OutputError(
            f"refusing to write {dest}: it is one of this run's input files; choose an output folder "
            "(--out) that holds no input, or rename the input"
        )


def fsync_folder(folder: str | os.PathLike) -> None:
    """Flush a folder's entries (renames into it) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(
    dest: str | os.PathLike,
    write: Callable[[BinaryIO], object],
    *,
    protect: Collection[tuple[int, int]] = (),
    fsync: bool = True,
) -> Path:
    """Write ``dest`` atomically: ``write(fh)`` fills a fresh temporary file beside it, which then replaces ``dest``.

    Parameters
    ----------
    dest : path
        The file to write; its folder must exist.
    write : callable
        Called with a binary file object opened for writing.
    protect : collection of (int, int)
        (device, inode) keys of files that must never be replaced (:func:`input_keys` of the run's inputs).
    fsync : bool
        Flush the file to disk before it replaces ``dest``.

    Returns
    -------
    Path
        ``dest``.

    Raises
    ------
    OutputError
        ``dest`` is one of ``protect``.
    OSError
        The folder is not writable, the disk is full, ...
    """
    dest = Path(dest)
    check_not_input(dest, protect)
    tmp = dest.parent / f"{TEMP_PREFIX}{uuid.uuid4().hex[:12]}-{dest.name}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(tmp, flags, 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        check_not_input(dest, protect)
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return dest


def atomic_write_text(
    dest: str | os.PathLike, text: str, *, protect: Collection[tuple[int, int]] = (), encoding: str = "utf-8"
) -> Path:
    """:func:`atomic_write` of a text (UTF-8 by default)."""
    data = text.encode(encoding)
    return atomic_write(dest, lambda fh: fh.write(data), protect=protect)


def is_regular_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a regular file itself (not a link, folder, FIFO, device)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except (OSError, ValueError):
        return False
