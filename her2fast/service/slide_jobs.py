"""One slide of a batch or of the watch-folder service: find it, identify it, score it, record its row.

What :mod:`her2fast.service.batch` and :mod:`her2fast.service.watch` share:

- :func:`scan_folder` -- the slide files under a folder (:data:`SLIDE_SUFFIXES`, :func:`is_slide_name`);
- :func:`identify` -- a slide's content identity (path, size, mtime, sha256) or why it cannot be read;
- :func:`free_name` -- the report names a slide may take in the output folder, in order of preference;
- :func:`publish_report` -- write a scored slide's report into a temporary folder, check the slide did not
  change, claim a name no other slide's report holds and rename the files into place;
- :func:`score_one` -- score a slide and publish its report, giving the run record to store;
- :func:`row_of` -- commit that record to the results store (or find the run a skip refers to);
- :func:`clean_stale_temp` -- remove the temporary report folders of killed processes;
- :func:`describe_error` -- the one-line form of an error stored in a ``failed`` row.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import time
import uuid
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from .._files import file_kind, file_sha256, fsync_folder, input_keys, is_regular_file, is_root, snapshot
from ..errors import Her2FastError, InvalidInputError, OutputError, SlideChangedError
from ..io.store import ResultsStore, RunRecord, SlideIdentity, StoreError, slide_files, slide_identity

__all__ = [
    "SLIDE_SUFFIXES",
    "clean_stale_temp",
    "describe_error",
    "describe_output_error",
    "free_name",
    "identify",
    "is_slide_name",
    "publish_report",
    "row_of",
    "scan_folder",
    "score_one",
]

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
_TMP_PREFIX = ".her2fast-tmp-"


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


# ------------------------------------------------------------------------------------- one slide
def describe_error(exc: BaseException) -> str:
    """``"<ErrorType>: <message>"``: how an error is written into a ``failed`` row."""
    return f"{type(exc).__name__}: {exc}"


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


def identify(path: str) -> tuple[SlideIdentity, str | None]:
    """The content identity of a slide file, or why it cannot be read.

    Parameters
    ----------
    path : str

    Returns
    -------
    (SlideIdentity, str or None)
        The identity (:func:`her2fast.io.store.slide_identity`: absolute path, size, mtime, sha256) and
        None; or, for a missing or unreadable file, an identity with an empty sha256 and the reason.
    """
    try:
        return slide_identity(path), None
    except (InvalidInputError, SlideChangedError) as exc:
        return SlideIdentity(os.path.abspath(path), 0, 0.0, ""), str(exc)
    except OSError as exc:
        return SlideIdentity(os.path.abspath(path), 0, 0.0, ""), f"cannot read {path}: {exc}"


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


def score_one(
    path: str,
    identity: SlideIdentity,
    out_dir: Path,
    name: str,
    versions: Mapping[str, str],
    *,
    mpp,
    settings,
    providers,
    progress: bool,
    pictures: bool,
    geojson: bool,
    profile=None,
    protect: Collection[tuple[int, int]] = (),
    owners: Mapping[str, str] | None = None,
) -> tuple[RunRecord, str | None]:
    """Score a slide and write its report; the run record to store and the kind of failure.

    The report is complete on disk (:func:`publish_report`: written into a temporary folder, flushed,
    renamed into place under a name that is this slide's alone) before this returns, and describes the
    bytes ``identity`` hashed: a slide that changed meanwhile publishes nothing. Nothing raises for a bad
    slide or an unwritable output folder: the record is ``failed`` with the reason.

    Parameters
    ----------
    path : str
        The slide.
    identity : SlideIdentity
        From :func:`identify`.
    out_dir : Path
        Report folder.
    name : str
        Wanted report name (the slide's file name without suffix; see :func:`free_name`).
    versions : mapping of str to str
        :func:`her2fast.service.batch.model_versions` of ``settings``, stored with the record.
    mpp, settings, providers, progress
        As :func:`her2fast.score`.
    pictures, geojson : bool
        Write the PNG pictures / the QuPath GeoJSON.
    profile : CalibrationProfile, optional
        As :func:`her2fast.score` (``settings`` should already hold its thresholds:
        :func:`her2fast.api.apply_profile`).
    protect, owners
        As :func:`publish_report`.

    Returns
    -------
    (RunRecord, str or None)
        The record, and None when it is ``ok``; else ``"slide"`` (the slide cannot be read or scored),
        ``"changed"`` (the slide changed while it was scored: score it again once it is complete) or
        ``"output"`` (its report cannot be written, e.g. a full disk: worth trying again later).
    """
    from ..api import score

    started = time.time()
    common: dict[str, Any] = dict(
        slide=identity, package_version=__version__, model_versions=dict(versions), started_at=started
    )

    def failed(error: str, kind: str) -> tuple[RunRecord, str]:
        return RunRecord(status="failed", error=error, finished_at=time.time(), **common), kind

    def changed() -> bool:
        try:
            return bool(identity.snapshot) and snapshot(slide_files(path)) != identity.snapshot
        except OSError:
            return True

    def changed_error() -> tuple[RunRecord, str]:
        exc = SlideChangedError(
            f"{path} changed while it was scored (rewritten or replaced); nothing was written for it: "
            "score it again once it is complete"
        )
        return failed(describe_error(exc), "changed")

    try:
        result = score(path, mpp=mpp, providers=providers, settings=settings, progress=progress, profile=profile)
    except (Her2FastError, OSError) as exc:
        return changed_error() if changed() else failed(describe_error(exc), "slide")
    except Exception as exc:  # noqa: BLE001 - a bug met on this slide must not stop the batch
        if changed():
            return changed_error()
        return failed(f"unexpected error, please report it: {describe_error(exc)}", "slide")
    t0 = time.perf_counter()
    try:
        outputs, hashes = publish_report(
            result, identity, out_dir, name, pictures=pictures, geojson=geojson, protect=protect, owners=owners
        )
    except SlideChangedError:
        return changed_error()
    except OSError as exc:
        return failed(describe_output_error(out_dir, exc), "output")
    except Her2FastError as exc:  # the slide reopened for the pictures, or no free name
        return changed_error() if changed() else failed(describe_error(exc), "slide")
    except Exception as exc:  # noqa: BLE001
        return failed(f"unexpected error while writing the report, please report it: {describe_error(exc)}", "slide")
    d = result.to_dict(include_cells=False)
    timings = {k: float(v) for k, v in d["timings"].items()}
    timings["outputs"] = round(time.perf_counter() - t0, 4)
    return RunRecord(
        status="ok",
        category=d["category"],
        score=d["score"],
        stratum=d["stratum"],
        percentages=d["percentages"],
        confidence=d["confidence"],
        timings=timings,
        outputs=outputs,
        output_sha256=hashes,
        finished_at=time.time(),
        percent_complete=d["percent_complete"],
        not_scorable=d["not_scorable"],
        flags=list(d["flags"]),
        **common,
    ), None


def row_of(store: ResultsStore, identity: SlideIdentity, record: RunRecord | None, versions: Mapping[str, str]) -> dict:
    """Commit a run to the results store, or look up the run a skip refers to.

    Parameters
    ----------
    store : ResultsStore
    identity : SlideIdentity
    record : RunRecord or None
        The run to commit; None when the slide was skipped (an ``ok`` run of the same content and versions
        is stored).
    versions : mapping of str to str
        The versions the skip was decided for.

    Returns
    -------
    dict
        The stored row (as :meth:`~her2fast.io.store.ResultsStore.rows` yields it) plus ``skipped``: True
        when nothing new was stored.

    Raises
    ------
    StoreError
        The store cannot be written, or the ``ok`` run a skip refers to is gone.
    """
    if record is None:
        row = store.find_done(identity.sha256, __version__, versions)
        if row is None:
            raise StoreError(
                f"the ok run of {identity.path} disappeared from results store {store.path} during the batch"
            )
        return {**row, "skipped": True}
    inserted, row = store.insert(record)
    return {**row, "skipped": not inserted}
