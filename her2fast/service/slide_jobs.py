"""One slide of a batch or of the watch-folder service: find it, identify it, score it, record its row.

What :mod:`her2fast.service.batch` and :mod:`her2fast.service.watch` share:

- :func:`scan_folder` -- the slide files under a folder (:data:`SLIDE_SUFFIXES`, :func:`is_slide_name`);
- :func:`identify` -- a slide's content identity (path, size, mtime, sha256) or why it cannot be read;
- :func:`free_name` -- the report name of a slide in the output folder (never another slide's);
- :func:`score_one` -- score a slide and write its report (outputs first: into a temporary folder, flushed,
  renamed into place), giving the run record to store;
- :func:`row_of` -- commit that record to the results store (or find the run a skip refers to);
- :func:`clean_stale_temp` -- remove the temporary report folders of killed processes;
- :func:`describe_error` -- the one-line form of an error stored in a ``failed`` row.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from .. import __version__
from .._files import file_kind, is_root
from ..errors import Her2FastError, InvalidInputError
from ..io.store import ResultsStore, RunRecord, SlideIdentity, StoreError, slide_identity

__all__ = [
    "SLIDE_SUFFIXES",
    "clean_stale_temp",
    "describe_error",
    "free_name",
    "identify",
    "is_slide_name",
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


def _output_error(out_dir: Path, exc: OSError) -> str:
    import errno

    hint = ""
    if exc.errno in (errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", -1)):
        hint = " (the output folder's disk is full, or a file size or quota limit was hit); free space and rerun"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = " (no permission to write there); fix the permissions or choose another --out"
    return f"cannot write the outputs to {out_dir}: {exc.strerror or exc}{hint}"


def _fsync(path: Path, *, folder: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if folder else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_outputs(result, out_dir: Path, name: str, *, pictures: bool, geojson: bool) -> dict[str, str]:
    """Write the report into a temporary folder, flush it, rename the files into ``out_dir``."""
    import fcntl

    from .report import write_report

    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f"{_TMP_PREFIX}{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    lock = -1
    try:
        lock = os.open(tmp / ".lock", os.O_CREAT | os.O_RDWR)  # held while writing: marks the folder in use
        fcntl.flock(lock, fcntl.LOCK_EX)
        files = write_report(result, tmp, name=name, pictures=pictures, geojson=geojson)
        for f in files.values():
            _fsync(f)
        final: dict[str, str] = {}
        for key, f in files.items():
            dest = out_dir / f.name
            os.replace(f, dest)
            final[key] = str(dest)
        _fsync(out_dir, folder=True)
        return final
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if lock >= 0:
            os.close(lock)


def clean_stale_temp(out_dir: Path) -> None:
    """Remove the temporary report folders that killed processes of this machine left in ``out_dir``.

    A folder is stale when its writer's lock is free (or, for one killed before it took its lock, when it
    is over an hour old). Folders of other machines (Dask workers sharing the output folder) are left to
    them.

    Parameters
    ----------
    out_dir : Path
        The output folder of a batch or of the watch service.
    """
    import fcntl

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
    except InvalidInputError as exc:
        return SlideIdentity(os.path.abspath(path), 0, 0.0, ""), str(exc)
    except OSError as exc:
        return SlideIdentity(os.path.abspath(path), 0, 0.0, ""), f"cannot read {path}: {exc}"


def free_name(name: str, sha256: str, out_dir: Path, owners: Mapping[str, str]) -> str:
    """The report name of a slide: ``name``, unless another slide's ``ok`` run already wrote it.

    Parameters
    ----------
    name : str
        Wanted name (the slide's file name without suffix).
    sha256 : str
        The slide's content hash.
    out_dir : Path
        The output folder.
    owners : mapping of str to str
        ``<out_dir>/<name>.her2fast.json`` -> sha256 of the slide whose ``ok`` run wrote it
        (:meth:`her2fast.io.store.ResultsStore.output_owners`).

    Returns
    -------
    str
        ``name``, or ``<name>-<first 8 hex of sha256>`` when that name belongs to other content.
    """
    owner = owners.get(str(out_dir / f"{name}.her2fast.json"))
    return name if owner in (None, sha256) else f"{name}-{sha256[:8]}"


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
) -> tuple[RunRecord, str | None]:
    """Score a slide and write its report; the run record to store and the kind of failure.

    The report is complete on disk (written into a temporary folder, flushed and renamed into place)
    before this returns. Nothing raises for a bad slide or an unwritable output folder: the record is
    ``failed`` with the reason.

    Parameters
    ----------
    path : str
        The slide.
    identity : SlideIdentity
        From :func:`identify`.
    out_dir : Path
        Report folder.
    name : str
        Report name (:func:`free_name`).
    versions : mapping of str to str
        :func:`her2fast.service.batch.model_versions` of ``settings``, stored with the record.
    mpp, settings, providers, progress
        As :func:`her2fast.score`.
    pictures, geojson : bool
        Write the PNG pictures / the QuPath GeoJSON.
    profile : CalibrationProfile, optional
        As :func:`her2fast.score` (``settings`` should already hold its thresholds:
        :func:`her2fast.api.apply_profile`).

    Returns
    -------
    (RunRecord, str or None)
        The record, and None when it is ``ok``; else ``"slide"`` (the slide cannot be read or scored) or
        ``"output"`` (its report cannot be written, e.g. a full disk: worth trying again later).
    """
    from ..api import score

    started = time.time()
    common = dict(slide=identity, package_version=__version__, model_versions=dict(versions), started_at=started)

    def failed(error: str, kind: str) -> tuple[RunRecord, str]:
        return RunRecord(status="failed", error=error, finished_at=time.time(), **common), kind

    try:
        result = score(path, mpp=mpp, providers=providers, settings=settings, progress=progress, profile=profile)
    except (Her2FastError, OSError) as exc:
        return failed(describe_error(exc), "slide")
    except Exception as exc:  # noqa: BLE001 - a bug met on this slide must not stop the batch
        return failed(f"unexpected error, please report it: {describe_error(exc)}", "slide")
    t0 = time.perf_counter()
    try:
        outputs = _write_outputs(result, out_dir, name, pictures=pictures, geojson=geojson)
    except OSError as exc:
        return failed(_output_error(out_dir, exc), "output")
    except Her2FastError as exc:  # the slide reopened for the pictures
        return failed(describe_error(exc), "slide")
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
