"""Many slides: find them, score each one into the results store, locally or on a Dask cluster.

:func:`run_batch` is ``her2fast batch``: it scores every slide of a folder, glob or list with a local
process pool (default) or one task per slide on a Dask ``distributed`` cluster, and records one row per
slide in the :class:`~her2fast.io.store.ResultsStore` (``results.db`` in the output folder).

Guarantees
----------
- **Outputs before the row.** A slide's report files are written into a temporary folder inside the
  output folder, flushed to disk and renamed into place under a name no other slide's report holds
  (claimed by content hash, safe between processes), never through a link or onto an input; only then is
  its row committed (one SQLite transaction). A slide that changed while it was scored publishes nothing. A crash or ``kill -9`` at any moment leaves either the whole row with all its files, or
  no row (possibly with files of an unfinished run, which the rerun overwrites).
- **Resumable, idempotent.** A slide whose content hash already has an ``ok`` row for the versions that
  would be used (:func:`model_versions` -- the package version and the sha256 of each model the settings
  use, read from the models' ``config.json``) is skipped; rerunning an interrupted batch scores the
  rest and nothing twice.
- **Workers end with the batch.** A local worker process ends when the batch process does, even when it
  is killed with ``kill -9`` (a parent-death signal on Linux, a watchdog thread on the parent's pid
  everywhere): nothing keeps scoring, or holding memory, for a batch that is gone.
- **A bad slide does not stop the batch.** Its error is recorded as a ``failed`` row (failed rows are
  history: a rerun tries the slide again). The batch stops only when the store itself cannot be
  written (:class:`~her2fast.io.store.StoreError`, e.g. a full disk), leaving the database intact.

The slide is scored in the worker (local process or Dask worker); the row is written by the calling
process, so Dask workers need the slides and the output folder (shared paths, the same on every
machine) but never the database. The steps of one slide (identify, score, write, record) are in
:mod:`her2fast.service.slide_jobs`, which the watch-folder service uses too.
"""

from __future__ import annotations

import glob
import hashlib
import io
import math
import os
import re
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from .._files import file_kind, input_keys, is_root, os_error_text
from ..errors import InvalidInputError, ModelError
from ..io.store import ResultsStore, RunRecord, SlideIdentity
from .slide_jobs import (
    SLIDE_SUFFIXES,
    clean_stale_temp,
    describe_error,
    identify,
    is_slide_name,
    row_of,
    scan_folder,
    score_one,
)

__all__ = [
    "SLIDE_SUFFIXES",
    "BatchSummary",
    "find_slides",
    "model_versions",
    "default_workers",
    "score_to_store",
    "run_batch",
]

_GLOB_CHARS = frozenset("*?[")


# ------------------------------------------------------------------------------------ finding slides
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


def _batch_order(inputs) -> list[Path]:
    """The batch's slides: a list of slide files keeps its order and repeats, anything else :func:`find_slides`."""
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


# ------------------------------------------------------------------------------------- versions
def model_versions(settings=None, profile=None) -> dict[str, str]:
    """The sha256 of every model a run with these settings uses, of the settings themselves, and of the profile.

    Cheap (no model is loaded): the epithelium classifier (shipped, or ``$HER2FAST_EPITHELIUM_MODEL``)
    and, for ``membrane_method="unet"``, the membrane U-Net, from the models' ``config.json`` (the
    loaders check the files against these hashes, so a run that succeeds used exactly these models);
    ``"settings"`` is the sha256 of the canonical JSON of ``settings.to_dict()`` (first 16 hex digits),
    so that the results store never hands back a result computed with other thresholds, bands or
    tiles (including defaults changed by a newer her2fast of the same version number).

    A calibration profile adds ``"profile"``, the first 16 hex digits of its sha256: a result is
    handed back only for the same profile (its provenance names the profile).

    Parameters
    ----------
    settings : ScoreSettings, optional
        With the profile's thresholds already in (:func:`her2fast.api.apply_profile`).
    profile : CalibrationProfile, optional

    Returns
    -------
    dict of str to str
        ``{"epithelium_svm": sha256[, "membrane_unet": sha256], "settings": sha256[:16][, "profile": sha256[:16]]}``.

    Raises
    ------
    ModelError
        A model's config.json is missing or unreadable.
    """
    import json
    from importlib.resources import files

    from ..pipeline import ScoreSettings
    from ..stages.membrane import load_model_config

    settings = ScoreSettings() if settings is None else settings
    folder = os.environ.get("HER2FAST_EPITHELIUM_MODEL") or str(files("her2fast") / "models" / "epithelium_svm")
    cfg = Path(folder) / "config.json"
    try:
        epi = str(json.loads(cfg.read_text())["sha256"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(
            f"cannot read the epithelium model's sha256 from {cfg}: {exc}; reinstall her2fast or fix "
            "$HER2FAST_EPITHELIUM_MODEL"
        ) from None
    versions = {"epithelium_svm": epi}
    if settings.membrane_method == "unet":
        versions["membrane_unet"] = load_model_config().sha256
    # repr of floats (inf included) and of numpy scalars: any valid settings hash, equal settings alike
    canonical = json.dumps(
        settings.to_dict(),
        sort_keys=True,
        separators=(",", ":"),
        default=lambda v: v.item() if hasattr(v, "item") else repr(v),
    )
    versions["settings"] = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    if profile is not None:
        versions["profile"] = profile.sha256[:16]
    return versions


def default_workers() -> int:
    """Worker processes of a local batch: one per two CPU cores (at least one).

    One slide already keeps two cores busy (ONNX Runtime's intra-op threads, the epithelium thread pool);
    on the 2-core reference machine two workers were no faster than one (``docs/batch.md``).
    """
    return max(1, (os.cpu_count() or 1) // 2)


def score_to_store(
    path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    store: ResultsStore,
    mpp: float | None = None,
    settings=None,
    providers="auto",
    progress: bool = False,
    pictures: bool = True,
    geojson: bool = True,
    profile=None,
) -> dict:
    """Score one slide unless already done, write its report files, then record its row.

    The report is complete on disk (written to a temporary folder and renamed into place) before the row
    is committed. A slide with an ``ok`` row for the same content and versions is skipped.

    Parameters
    ----------
    path : str or PathLike
        The slide.
    out_dir : str or PathLike
        Report folder (``<name>.her2fast.json``, ``.cells.npz``, ``.geojson``, pictures). ``<name>`` is
        the slide's file name without suffix, with ``-<first 8 hex of its sha256>`` appended when another
        slide's report holds that name (:func:`her2fast.service.slide_jobs.publish_report`).
    store : ResultsStore
    mpp, settings, providers, progress
        As :func:`her2fast.score`.
    pictures, geojson : bool
        Write the PNG pictures / the QuPath GeoJSON.
    profile : CalibrationProfile, str or PathLike, optional
        A calibration profile (:func:`her2fast.api.apply_profile`).

    Returns
    -------
    dict
        The stored row (as :meth:`ResultsStore.rows` yields it) plus ``skipped``: True when nothing was
        scored. A slide that cannot be read or scored, or whose outputs cannot be written, gives a
        ``failed`` row with the reason in ``error``; this function does not raise for a bad slide.

    Raises
    ------
    StoreError
        The results store cannot be written.
    ModelError
        A model's config.json is missing (every slide would fail).
    """
    from ..pipeline import ScoreSettings

    settings = ScoreSettings() if settings is None else settings
    if profile is not None:
        from ..api import apply_profile

        settings, profile = apply_profile(profile, settings)
    versions = model_versions(settings, profile)
    out = Path(os.path.abspath(out_dir))
    record, _kind, identity = _process_one(
        str(path),
        out,
        Path(path).stem,
        versions,
        store.done_hashes(__version__, versions),
        store.output_owners(),
        protect=input_keys([path]),
        mpp=mpp,
        settings=settings,
        providers=providers,
        progress=progress,
        pictures=pictures,
        geojson=geojson,
        profile=profile,
    )
    return row_of(store, identity, record, versions)


def _process_one(path: str, out: Path, name: str, versions, done, owners, *, protect=(), **options):
    """(record or None when skipped, failure kind, identity) of one slide; ``protect``: keys of the inputs."""
    identity, error = identify(path)
    if error is not None:
        return (
            RunRecord(
                slide=identity,
                status="failed",
                package_version=__version__,
                model_versions=dict(versions),
                error=error,
                started_at=time.time(),
                finished_at=time.time(),
            ),
            "slide",
            identity,
        )
    if identity.sha256 in done:
        return None, None, identity
    record, kind = score_one(path, identity, out, name, versions, protect=protect, owners=owners, **options)
    return record, kind, identity


# --------------------------------------------------------------------------------------- workers
@dataclass(frozen=True)
class _Job:
    index: int
    path: str
    name: str


@dataclass
class _Outcome:
    identity: SlideIdentity
    record: RunRecord | None  # None: skipped (already done)


_WORKER: dict = {}
_TILES = re.compile(r"^(?P<name>.+?): (?P<done>\d+)/(?P<total>\d+) tiles")


class _TileTap(io.TextIOBase):
    """Stands in for stderr in a local worker: pipeline progress lines go to the parent as (slide, done, total)."""

    def __init__(self, queue, key: str, fallback) -> None:
        self.queue, self.key, self.fallback = queue, key, fallback

    def write(self, text: str) -> int:
        for line in text.replace("\r", "\n").split("\n"):
            m = _TILES.match(line.strip())
            if m:
                self.queue.put((self.key, int(m["done"]), int(m["total"])))
            elif line.strip():
                self.fallback.write(line + "\n")
        return len(text)

    def isatty(self) -> bool:
        return False

    def flush(self) -> None:
        self.fallback.flush()


def _set_parent_death_signal() -> bool:
    """Ask Linux to SIGKILL this process when the thread that started it ends (``prctl(PR_SET_PDEATHSIG)``).

    Returns False where that is not available (other systems, no C library).
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(1, int(signal.SIGKILL), 0, 0, 0) == 0  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid: int, every: float = 1.0) -> None:
    """End this process as soon as ``parent_pid`` is no longer its parent (a daemon thread polls getppid)."""
    import threading

    def watchdog() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(70)  # the batch is gone: nobody would store this worker's result
            time.sleep(every)

    threading.Thread(target=watchdog, name="her2fast-parent-watchdog", daemon=True).start()


def _die_with_parent(parent_pid: int) -> None:
    """Make a worker end with the batch process that started it, even when that one is killed with ``kill -9``.

    A worker blocks reading the pool's call queue, whose pipe it holds both ends of, so it would never see
    the parent go: the parent-death signal (Linux) ends it at once, the watchdog thread within a second
    everywhere else.
    """
    _set_parent_death_signal()
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(70)
    _watch_parent(parent_pid)


def _init_worker(shared: dict, queue, parent_pid: int | None = None) -> None:
    import signal

    if parent_pid is not None:
        _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and ends the workers
    _WORKER["shared"], _WORKER["queue"] = shared, queue


def _work(path: str, name: str, shared: dict, queue=None) -> _Outcome:
    """One slide in a worker (local process or Dask): score it, write its outputs; no store access."""
    options = dict(
        mpp=shared["mpp"],
        settings=shared["settings"],
        providers=shared["providers"],
        pictures=shared["pictures"],
        geojson=shared["geojson"],
        progress=queue is not None,
        profile=shared.get("profile"),
    )
    real = sys.stderr
    if queue is not None:
        sys.stderr = _TileTap(queue, path, real)
    try:
        record, _kind, identity = _process_one(
            path,
            Path(shared["out_dir"]),
            name,
            shared["versions"],
            shared["done"],
            shared["owners"],
            protect=_protected(shared),
            **options,
        )
    finally:
        sys.stderr = real
    return _Outcome(identity, record)


_PROTECTED: dict[str, frozenset] = {}


def _protected(shared: dict) -> frozenset:
    """(device, inode) keys of every slide of the batch, looked up once per worker process (on its machine)."""
    key = shared["batch_id"]
    if key not in _PROTECTED:
        _PROTECTED.clear()
        _PROTECTED[key] = input_keys(shared["inputs"])
    return _PROTECTED[key]


def _work_local(path: str, name: str) -> _Outcome:
    return _work(path, name, _WORKER["shared"], _WORKER["queue"])


def _died(path: str, versions: Mapping[str, str], why: str) -> _Outcome:
    identity, error = identify(path)
    return _Outcome(
        identity,
        RunRecord(
            slide=identity,
            status="failed",
            package_version=__version__,
            model_versions=dict(versions),
            error=error or why,
            started_at=time.time(),
            finished_at=time.time(),
        ),
    )


_CRASH = (
    "the worker process died while scoring this slide (a crash in a native library, or killed, e.g. by the "
    "out-of-memory killer); see the system log"
)


def _stop_pool(pool) -> None:
    pool.shutdown(wait=False, cancel_futures=True)
    procs = getattr(pool, "_processes", None) or {}
    for p in list(procs.values()):
        if p.is_alive():
            p.terminate()
    for p in list(procs.values()):
        p.join(10)


def _run_local(
    jobs: Sequence[_Job], shared: dict, workers: int, ui: _BatchProgress
) -> Generator[tuple[_Job, _Outcome], None, None]:
    """A spawn-context process pool, at most ``workers`` slides in flight; a crashed worker costs one slide."""
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool
    from queue import Empty

    ctx = mp.get_context("spawn")  # never fork a parent that may hold ONNX Runtime threads
    queue = ctx.Queue() if ui.enabled else None

    def new_pool(n: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=n, mp_context=ctx, initializer=_init_worker, initargs=(shared, queue, os.getpid())
        )

    def drain() -> None:
        if queue is None:
            return
        while True:
            try:
                key, d, t = queue.get_nowait()
            except (Empty, OSError, ValueError):
                return
            ui.tiles(key, d, t)

    pending = deque(jobs)
    pool = new_pool(workers)
    inflight: dict = {}
    try:
        while pending or inflight:
            while pending and len(inflight) < workers:
                job = pending.popleft()
                inflight[pool.submit(_work_local, job.path, job.name)] = job
                ui.started(job.path)
            done, _ = wait(list(inflight), timeout=0.5, return_when=FIRST_COMPLETED)
            drain()
            suspects: list[_Job] = []
            for fut in done:
                job = inflight.pop(fut)
                try:
                    outcome = fut.result()
                except BrokenProcessPool:
                    suspects.append(job)
                    continue
                yield job, outcome
            if not suspects:
                continue
            # A worker died: every slide in flight failed with it. Run each alone to find the culprit.
            suspects += list(inflight.values())
            inflight.clear()
            _stop_pool(pool)
            for job in sorted(suspects, key=lambda j: j.index):
                solo = new_pool(1)
                try:
                    outcome = solo.submit(_work_local, job.path, job.name).result()
                except BrokenProcessPool:
                    outcome = _died(job.path, shared["versions"], _CRASH)
                finally:
                    _stop_pool(solo)
                drain()
                yield job, outcome
            pool = new_pool(workers)
    finally:
        _stop_pool(pool)
        if queue is not None:
            queue.close()
            queue.cancel_join_thread()


def _run_dask(
    jobs: Sequence[_Job], shared: dict, scheduler, workers: int, ui: _BatchProgress
) -> Generator[tuple[_Job, _Outcome], None, None]:
    """One task per slide on a Dask distributed cluster; results come back here to be stored."""
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise InvalidInputError(
            "the Dask path needs the 'distributed' package: pip install 'her2fast[cluster]'"
        ) from None
    cluster = client = None
    own = True
    try:
        if isinstance(scheduler, str) and scheduler in ("local", "dask"):
            cluster = LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
            )
            client = Client(cluster)
        elif isinstance(scheduler, str):
            try:
                client = Client(scheduler, timeout="30s")
            except (OSError, TimeoutError) as exc:
                raise InvalidInputError(
                    f"cannot reach the Dask scheduler at {scheduler}: {exc}; start it with "
                    "`dask scheduler` and its workers with `dask worker <address>`"
                ) from None
        elif hasattr(scheduler, "submit") and hasattr(scheduler, "scatter"):
            client, own = scheduler, False
        else:
            raise InvalidInputError(
                f"scheduler must be an address like 'tcp://host:8786', 'local' or a "
                f"distributed.Client, got {scheduler!r}"
            )
        [shared_future] = client.scatter([shared], broadcast=True)
        tag = uuid.uuid4().hex[:8]
        futures = {}
        for job in jobs:
            fut = client.submit(
                _work, job.path, job.name, shared_future, pure=False, key=f"her2fast-score-{job.index}-{tag}"
            )
            futures[fut] = job
        try:
            for fut in as_completed(list(futures)):
                job = futures[fut]
                try:
                    outcome = fut.result()
                except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker: the slide took workers down
                    outcome = _died(job.path, shared["versions"], f"the Dask task failed: {describe_error(exc)}")
                fut.release()
                yield job, outcome
        finally:
            pending = [f for f in futures if not f.done()]
            if pending:
                client.cancel(pending)
    finally:
        if own and client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


# -------------------------------------------------------------------------------------- progress
def _fmt_seconds(s: float) -> str:
    if not math.isfinite(s):
        return "?"
    s = int(round(s))
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class _BatchProgress:
    """``slides 3/10 (1 failed), now: A-4 45/120 tiles, ETA 1m20s`` on stderr (rewritten in place on a terminal)."""

    def __init__(self, total: int, *, enabled: bool, stream=None) -> None:
        self.total, self.enabled = total, enabled
        self.stream = stream if stream is not None else sys.stderr
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.t0 = time.perf_counter()
        self.done = self.skipped = self.failed = 0
        self.current: dict[str, tuple[int, int]] = {}
        self._width = 0

    def started(self, key: str) -> None:
        self.current.setdefault(key, (0, 0))

    def tiles(self, key: str, done: int, total: int) -> None:
        self.current[key] = (done, total)
        if self._tty:
            self._print()

    def slide_done(self, key: str, row: Mapping) -> None:
        self.current.pop(key, None)
        self.done += 1
        self.skipped += bool(row.get("skipped"))
        self.failed += row.get("status") == "failed"
        self._print()

    def line(self) -> str:
        elapsed = time.perf_counter() - self.t0
        scored = self.done - self.skipped
        eta = elapsed / scored * (self.total - self.done) if scored else float("nan")
        parts = [f"slides {self.done}/{self.total}"]
        extra = [f"{self.failed} failed"] * bool(self.failed) + [f"{self.skipped} skipped"] * bool(self.skipped)
        if extra:
            parts[0] += f" ({', '.join(extra)})"
        now = [f"{Path(k).stem} {d}/{t} tiles" if t else Path(k).stem for k, (d, t) in self.current.items()]
        if now:
            parts.append("now: " + ", ".join(now))
        parts.append(f"{_fmt_seconds(elapsed)} elapsed")
        if self.done < self.total:
            parts.append(f"ETA {_fmt_seconds(eta)}")
        return ", ".join(parts)

    def _print(self) -> None:
        if not self.enabled:
            return
        text = self.line()
        if self._tty:
            self.stream.write("\r" + text.ljust(self._width))
            self._width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled and self._tty and self._width:
            self.stream.write("\n")
            self.stream.flush()


# ----------------------------------------------------------------------------------------- batch
@dataclass
class BatchSummary:
    """What :func:`run_batch` did.

    Attributes
    ----------
    rows : list of dict
        One per input slide, in input order (:func:`find_slides` order; a list of slide files keeps its
        own order and repeats): the stored row (:meth:`ResultsStore.rows` shape) plus ``skipped``.
    n_scored, n_skipped, n_failed : int
        Distinct slides scored now (``ok``), skipped (already done), failed.
    seconds : float
        Wall time of the batch.
    """

    rows: list[dict] = field(default_factory=list)
    n_scored: int = 0
    n_skipped: int = 0
    n_failed: int = 0
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        """``her2fast batch``'s exit status: the number of failed slides, at most 100 (0: all good)."""
        return min(self.n_failed, 100)


def run_batch(
    inputs,
    out_dir: str | os.PathLike,
    *,
    store: ResultsStore | str | os.PathLike | None = None,
    workers: int | None = None,
    mpp: float | None = None,
    settings=None,
    providers="auto",
    progress: bool = True,
    scheduler=None,
    pictures: bool = True,
    geojson: bool = True,
    on_row: Callable[[dict], None] | None = None,
    profile=None,
) -> BatchSummary:
    """Score many slides into the results store: resumable, idempotent, one bad slide never stops it.

    Parameters
    ----------
    inputs : str, PathLike or sequence
        Folder, glob, slide list file, slide files (see :func:`find_slides`).
    out_dir : str or PathLike
        Report files of every slide, and ``results.db`` unless ``store`` says otherwise. With a Dask
        cluster it must be a folder every worker writes to under the same path (a shared file system).
    store : ResultsStore, str or PathLike, optional
        The results store (an open one, or a folder / file / ``sqlite:///`` URL); default
        ``out_dir/results.db``.
    workers : int, optional
        Local worker processes (default :func:`default_workers`), or Dask workers of ``scheduler="local"``.
    mpp, settings, providers
        As :func:`her2fast.score`.
    progress : bool
        One progress line on stderr (slides done/total, the current slides' tiles, ETA).
    scheduler : str or distributed.Client, optional
        None: a local process pool. ``"tcp://host:8786"``: one task per slide on that Dask scheduler's
        workers. ``"local"``: a Dask ``LocalCluster`` of ``workers`` processes on this machine.
    pictures, geojson : bool
        Write the PNG pictures / the QuPath GeoJSON.
    on_row : callable, optional
        Called with each slide's row as soon as it is stored.
    profile : CalibrationProfile, str or PathLike, optional
        A calibration profile (``her2fast calibrate``): checked against the models once, before any slide
        (:func:`her2fast.api.apply_profile`), its thresholds used for every slide and named in every
        result's provenance.

    Returns
    -------
    BatchSummary

    Raises
    ------
    InvalidInputError
        No slides found, or bad arguments.
    StoreError
        The results store cannot be written (the batch stops; what was stored stays intact).
    ModelError
        A model is missing.
    ProfileError
        The profile cannot be read or does not fit these models, this her2fast or these settings.

    Examples
    --------
    >>> from her2fast.service.batch import run_batch
    >>> summary = run_batch("/scans/today", "/results/today")  # doctest: +SKIP
    >>> summary.n_scored, summary.n_failed  # doctest: +SKIP
    (42, 1)
    """
    from .._validate import as_int
    from ..pipeline import ScoreSettings

    t0 = time.perf_counter()
    settings = ScoreSettings() if settings is None else settings
    if not isinstance(settings, ScoreSettings):
        raise InvalidInputError(f"settings must be a her2fast.ScoreSettings, got {type(settings).__name__}")
    if profile is not None:
        from ..api import apply_profile

        settings, profile = apply_profile(profile, settings)
    workers = default_workers() if workers is None else as_int(workers, "workers", 1, 1024)
    slides = _batch_order(inputs)
    out = Path(os.path.abspath(out_dir))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(f"cannot create the output folder {out}: {exc}") from None
    versions = model_versions(settings, profile)
    own = not isinstance(store, ResultsStore)
    st = store if isinstance(store, ResultsStore) else ResultsStore(out if store is None else store)
    by_path: dict[str, dict] = {}
    try:
        clean_stale_temp(out)
        unique = list(dict.fromkeys(str(p) for p in slides))
        # the wanted report name is the file name; publish_report gives a slide of the same name but other
        # content <name>-<8 hex of its sha256>, whichever batch or process writes first
        jobs = [_Job(i, u, Path(u).stem) for i, u in enumerate(unique)]
        shared = dict(
            batch_id=uuid.uuid4().hex,
            inputs=unique,
            done=st.done_hashes(__version__, versions),
            owners=st.output_owners(),
            versions=versions,
            out_dir=str(out),
            mpp=mpp,
            settings=settings,
            providers=providers,
            pictures=pictures,
            geojson=geojson,
            profile=profile,
        )
        ui = _BatchProgress(len(jobs), enabled=progress)
        n = min(workers, len(jobs))
        runner = _run_local(jobs, shared, n, ui) if scheduler is None else _run_dask(jobs, shared, scheduler, n, ui)
        try:
            for job, outcome in runner:
                row = row_of(st, outcome.identity, outcome.record, versions)
                by_path[job.path] = row
                ui.slide_done(job.path, row)
                if on_row is not None:
                    on_row(dict(row))
        finally:
            runner.close()
            ui.finish()
    finally:
        if own:
            st.close()
    rows = [dict(by_path[str(p)]) for p in slides]
    distinct = list(by_path.values())
    return BatchSummary(
        rows=rows,
        n_scored=sum(r["status"] == "ok" and not r["skipped"] for r in distinct),
        n_skipped=sum(r["status"] == "ok" and r["skipped"] for r in distinct),
        n_failed=sum(r["status"] == "failed" for r in distinct),
        seconds=time.perf_counter() - t0,
    )
