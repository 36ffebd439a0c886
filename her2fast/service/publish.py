"""A scored slide's report files in the output folder: a name that is this slide's alone, written whole.

- :func:`free_name` -- the report names a slide may take in the output folder, in order of preference;
- :func:`publish_report` -- write a scored slide's report into a temporary folder, check the slide did not
  change, claim a name no other slide's report holds and rename the files into place;
- :func:`report_owner` -- the slide a result JSON in the folder belongs to;
- :func:`clean_stale_temp` -- remove the temporary report folders of killed processes;
- :func:`describe_output_error` -- why the outputs cannot be written, naming the folder and the fix.

Examples
--------
>>> from her2fast.service.publish import free_name
>>> free_name("A-1", "0123456789abcdef" * 4)[:2]
['A-1', 'A-1-01234567']
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import time
import uuid
from collections.abc import Collection, Mapping
from pathlib import Path

from .._files import file_sha256, fsync_folder, input_keys, is_regular_file, snapshot
from ..errors import OutputError, SlideChangedError
from ..io.store import SlideIdentity, slide_files

__all__ = ["clean_stale_temp", "describe_output_error", "free_name", "publish_report", "report_owner"]

_TMP_PREFIX = ".her2fast-tmp-"


def describe_output_error(out_dir: Path, exc: OSError) -> str:
    """Why the outputs cannot be written to ``out_dir`` (naming the folder, the cause and the fix)."""
    import errno

    hint = ""
    if exc.errno in (errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", -1)):
        hint = " (the output folder's disk is full, or a file size or quota limit was hit); free space and rerun"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = " (no permission to write there); fix the permissions or choose another --out"
    return f"cannot write the outputs to {out_dir}: {exc.strerror or exc}{hint}"


def report_owner(json_path: Path) -> str | None:
    """The slide sha256 a result JSON records (``provenance.slide.sha256``), or None.

    None as well when the path is not a regular file itself (a link, a folder), is over 64 MiB or is not
    her2fast's JSON: such a name belongs to no slide and is never written to.
    """
    if not is_regular_file(json_path):
        return None
    try:
        with open(json_path, "rb") as fh:
            data = fh.read(64 << 20)
        owner = json.loads(data)["provenance"]["slide"]["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return owner if isinstance(owner, str) else None


def _claim(tmp_json: Path, dest: Path, sha256: str, owners: Mapping[str, str]) -> bool:
    """Make ``dest`` this slide's report JSON: create it if absent (atomically), replace it if this slide's."""
    try:
        os.link(tmp_json, dest)  # fails if dest exists in any form (file, link, dangling link, folder)
        return True
    except FileExistsError:
        pass
    except OSError:  # a file system without hard links: claim with an exclusive create instead
        try:
            os.close(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644))
        except FileExistsError:
            pass
        else:
            os.replace(tmp_json, dest)
            return True
    owner = report_owner(dest)
    if owner is None and is_regular_file(dest):
        owner = owners.get(str(dest))  # a report written before result JSONs recorded the slide's hash
    if owner != sha256:
        return False
    os.replace(tmp_json, dest)
    return True


def publish_report(
    result,
    identity: SlideIdentity,
    out_dir: Path,
    name: str,
    *,
    pictures: bool,
    geojson: bool,
    protect: Collection[tuple[int, int]] = (),
    owners: Mapping[str, str] | None = None,
) -> tuple[dict[str, str], dict[str, str]]:
    """Write a scored slide's report into ``out_dir`` under a name that is this slide's alone.

    The files are written into a temporary folder inside ``out_dir`` and flushed; then the slide is checked
    unchanged since it was hashed (:attr:`SlideIdentity.snapshot`); then the first of :func:`free_name`'s
    names whose result JSON is absent or records this slide's content hash, and whose files are none of
    ``protect``, is claimed (the JSON created with an atomic hard link, or replaced when it is this slide's)
    and the files are renamed into place. Two runs for different slides never write the same name, even
    at the same time from different processes; nothing is written through a link or onto an input.

    Parameters
    ----------
    result : SlideResult
        Written with ``provenance["slide"]["sha256"]`` = ``identity.sha256`` (a copy; ``result`` is unchanged).
    identity : SlideIdentity
        From :func:`identify`, with its snapshot.
    out_dir : Path
    name : str
        Wanted name (the slide's file name without suffix).
    pictures, geojson : bool
    protect : collection of (int, int)
        (device, inode) keys of the run's inputs (:func:`her2fast._files.input_keys`).
    owners : mapping of str to str, optional
        Result-JSON path -> content hash from the results store, for reports written before result JSONs
        recorded the hash.

    Returns
    -------
    (dict of str to str, dict of str to str)
        Kind -> file path, and kind -> sha256 of that file.

    Raises
    ------
    SlideChangedError
        The slide changed while it was scored: nothing was published.
    OutputError
        No free name (every candidate is another slide's or an input).
    OSError
        The folder is not writable, the disk is full, ...
    """
    import fcntl

    from .report import report_paths, write_report

    owners = owners or {}
    protect = frozenset(protect) | input_keys(slide_files(identity.location))
    provenance = dict(result.provenance)
    provenance["slide"] = {**provenance.get("slide", {}), "sha256": identity.sha256}
    result = dataclasses.replace(result, provenance=provenance)  # the caller's result is left as it was
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f"{_TMP_PREFIX}{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    lock = -1
    try:
        lock = os.open(tmp / ".lock", os.O_CREAT | os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))  # held while writing
        fcntl.flock(lock, fcntl.LOCK_EX)
        files = write_report(result, tmp, name=name, pictures=pictures, geojson=geojson)
        hashes = {k: file_sha256(f) for k, f in files.items()}
        if identity.snapshot:
            try:
                changed = snapshot(slide_files(identity.location)) != identity.snapshot
            except OSError:
                changed = True
            if changed:
                raise SlideChangedError(
                    f"{identity.path} changed while it was scored (rewritten or replaced); nothing was written "
                    "for it: score it again once it is complete"
                )
        for candidate in free_name(name, identity.sha256):
            dests = report_paths(out_dir, candidate)
            if any(input_keys([dests[k]]) & protect for k in files):
                continue  # would replace an input
            if not _claim(files["json"], dests["json"], identity.sha256, owners):
                continue
            final = {"json": str(dests["json"])}
            for kind, f in files.items():
                if kind != "json":
                    os.replace(f, dests[kind])
                    final[kind] = str(dests[kind])
            fsync_folder(out_dir)
            return final, hashes
        raise OutputError(
            f"no free report name for {identity.path} in {out_dir}: {name}.her2fast.json and its variants belong to "
            "other slides or inputs; choose another --out"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if lock >= 0:
            os.close(lock)


def clean_stale_temp(out_dir: Path) -> None:
    """Remove the temporary report folders that killed processes of this machine left in ``out_dir``.

    A folder is stale when its writer's lock is free (or, for one killed before it took its lock, when it
    is over an hour old). Folders of other machines (Dask workers sharing the output folder) are left to
    them. Partly written files of :func:`her2fast._files.atomic_write` (``.her2fast-part-*``) over an hour
    old go too.

    Parameters
    ----------
    out_dir : Path
        The output folder of a batch or of the watch service.
    """
    import fcntl

    from .._files import TEMP_PREFIX

    for f in out_dir.glob(TEMP_PREFIX + "*"):
        try:
            if is_regular_file(f) and time.time() - f.lstat().st_mtime > 3600:
                f.unlink()
        except OSError:
            pass

    host = socket.gethostname()
    for d in out_dir.glob(_TMP_PREFIX + "*"):
        if d.name[len(_TMP_PREFIX) :].rsplit("-", 2)[0] != host:
            continue  # another machine's (Dask worker): it cleans its own
        try:
            fd = os.open(d / ".lock", os.O_RDWR)
        except FileNotFoundError:
            try:
                if time.time() - d.stat().st_mtime > 3600:  # killed before it took its lock
                    shutil.rmtree(d, ignore_errors=True)
            except OSError:
                pass
            continue
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # a live writer holds it
        else:
            shutil.rmtree(d, ignore_errors=True)
        finally:
            os.close(fd)


def free_name(name: str, sha256: str) -> list[str]:
    """The report names a slide may take, in order: ``name``, then ``name`` with 8, 16 and 64 hex of its sha256.

    Parameters
    ----------
    name : str
        Wanted name (the slide's file name without suffix).
    sha256 : str
        The slide's content hash.

    Returns
    -------
    list of str
        :func:`publish_report` takes the first whose result JSON is absent or this content's: the same slide
        always gets the same name in a folder, another slide of the same file name ``name-<8 hex>``.
    """
    return [name] + [f"{name}-{sha256[:n]}" for n in (8, 16, 64)]
