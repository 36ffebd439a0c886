"""``her2fast watch``: the scanner-side service that scores each slide once it has been written.

:func:`watch` polls a folder (recursively; polling works the same on local disks and network shares) and
treats a slide -- a file, or for MRXS the file plus its companion folder -- as complete once its total size,
newest mtime and number of files have stayed unchanged for ``settle`` seconds. It then scores the slide,
writes its report into the output folder and its row into the results store (outputs first, see
:mod:`her2fast.service.batch`), and moves on, one slide at a time.

- **Never twice.** What was done is in the results store, keyed by content hash (and package and model
  versions), so a restart picks up what arrived while the service was down and skips everything scored
  before (a file seen before is recognised by path, size and mtime without re-reading it).
- **Quarantine.** A slide that cannot be read or scored gets a ``failed`` row and goes on the store's
  quarantine list with the reason (also written to ``OUT/quarantine.csv``); it is not tried again until its
  content changes (or :meth:`~her2fast.io.store.ResultsStore.release` takes it off). A slide whose *outputs*
  cannot be written (disk full) is not quarantined: it is tried again after ``retry_after`` seconds.
- **Clean shutdown.** SIGTERM or SIGINT: the slide being scored is finished, then :func:`watch` returns
  (the command exits 0); a second signal aborts that slide without writing its row.
- **Logs** go to ``OUT/her2fast-watch.log`` (and stderr). Only one watcher may write to an output folder
  (a lock file, ``OUT/.her2fast-watch.lock``).

Scanners that write under a temporary name (``.name``, ``name.svs.part``) and rename at the end are
ideal: such names are not slides and are never looked at.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from .._files import file_kind, input_keys, is_root, os_error_text, text_path
from ..errors import InvalidInputError
from ..io.store import ResultsStore, StoreError, slide_stat
from .publish import clean_stale_temp
from .slide_jobs import identify, model_versions, row_of, score_one
from .slides import scan_folder

__all__ = ["MAX_WAIT_SECONDS", "WatchSummary", "watch"]

LOG_NAME = "her2fast-watch.log"
QUARANTINE_CSV = "quarantine.csv"


@dataclass
class WatchSummary:
    """What one :func:`watch` session did (counts of distinct slides)."""

    scored: int = 0
    skipped: int = 0
    quarantined: int = 0
    retried: int = 0


def _make_logger(path: Path) -> tuple[logging.Logger, list[logging.Handler]]:
    logger = logging.getLogger("her2fast.service.watch")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink():
            raise OSError(f"{path} is a symbolic link; remove it (the log is never written through a link)")
        handlers: list[logging.Handler] = [logging.FileHandler(path, encoding="utf-8", errors="backslashreplace")]
    except OSError as exc:
        raise InvalidInputError(f"cannot open the log file {path}: {exc}") from None
    handlers.append(logging.StreamHandler())
    for h in handlers:
        h.setFormatter(fmt)
        logger.addHandler(h)
    return logger, handlers


def _lock(out: Path):
    import fcntl

    path = out / ".her2fast-watch.lock"
    try:  # never through a link planted there (truncating the lock file would truncate its target)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as exc:
        raise InvalidInputError(
            f"cannot open the lock file {path}: {exc.strerror or exc} (a link there is refused); remove it"
        ) from None
    fh = os.fdopen(fd, "r+")
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        raise InvalidInputError(
            f"another `her2fast watch` is already writing to {out}; stop it first (one watcher per output folder)"
        ) from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"{os.getpid()}\n")
    fh.flush()
    return fh


def _write_quarantine_csv(store: ResultsStore, out: Path, logger: logging.Logger) -> None:
    path = out / QUARANTINE_CSV
    try:
        store.export_quarantine_csv(path)  # atomic, never through a link
    except OSError as exc:
        logger.error("cannot write %s: %s", path, exc)


class _Watcher:
    def __init__(
        self,
        folder: Path,
        out: Path,
        store: ResultsStore,
        logger: logging.Logger,
        versions: dict,
        options: dict,
        summary: WatchSummary,
    ) -> None:
        self.folder, self.out, self.store, self.log = folder, out, store, logger
        self.versions, self.options, self.summary = versions, options, summary

    def handle(self, path: Path, sig: tuple[int, float, int], inputs=()) -> str:
        """Score one settled slide: "done", "changed" (look again later) or "retry" (outputs not writable).

        ``inputs``: the slides of the watched folder, which no output may replace.
        """
        key = str(path)
        size, mtime, _ = sig
        st = self.store
        if st.find_file(key, size, mtime, __version__, self.versions) is not None:
            return "done"  # scored before (this file, unchanged)
        if st.find_quarantined_file(key, size, mtime) is not None:
            return "done"
        identity, error = identify(key)
        if error is not None:
            return "changed"  # vanished while being read
        if (identity.size, identity.mtime) != (size, mtime):
            return "changed"
        done = st.find_done(identity.sha256, __version__, self.versions)
        if done is not None:
            self.log.info("skip %s: already scored (same content as %s, run %s)", key, done["slide_path"], done["id"])
            self.summary.skipped += 1
            return "done"
        if st.is_quarantined(identity.sha256):
            self.log.info("skip %s: quarantined earlier (same content)", key)
            return "done"
        self.log.info("scoring %s (%.1f MB)", key, size / 1e6)
        record, kind = score_one(
            key,
            identity,
            self.out,
            path.stem,
            self.versions,
            progress=False,
            protect=input_keys([*inputs, key]),
            owners=st.output_owners(),
            **self.options,
        )
        if kind == "changed":  # replaced or rewritten while it was scored: nothing published, score it again
            self.log.warning("%s changed while it was scored; scoring it again once it has settled", key)
            return "changed"
        row = row_of(st, identity, record, self.versions)
        if kind is None:
            self.summary.scored += 1
            what = (
                f"HER2 {row['score']} ({row['stratum']}), {row['percent_complete']} % complete"
                if row["score"] is not None
                else f"not scorable: {row['not_scorable']}"
            )
            self.log.info(
                "scored %s: %s in %.1f s -> %s",
                key,
                what,
                row["finished_at"] - row["started_at"],
                row["outputs"].get("json"),
            )
            return "done"
        if kind == "output":
            self.summary.retried += 1
            self.log.error("%s: %s", key, record.error)
            return "retry"
        st.quarantine(identity, record.error or "failed")
        self.summary.quarantined += 1
        self.log.warning("quarantined %s: %s", key, record.error)
        _write_quarantine_csv(st, self.out, self.log)
        return "done"


def watch(
    folder: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    store: ResultsStore | str | os.PathLike | None = None,
    settle: float = 10.0,
    poll: float = 2.0,
    once: bool = False,
    log_file: str | os.PathLike | None = None,
    mpp: float | None = None,
    settings=None,
    providers="auto",
    pictures: bool = True,
    geojson: bool = True,
    retry_after: float = 60.0,
    stop: threading.Event | None = None,
    profile=None,
) -> WatchSummary:
    """Watch a scanner's output folder and score every slide once, after it has stopped growing.

    Parameters
    ----------
    folder : str or PathLike
        The folder the scanner writes into (searched recursively; ``out_dir`` is skipped if inside).
    out_dir : str or PathLike
        Report files, ``results.db`` (unless ``store``), ``quarantine.csv``, the log.
    store : ResultsStore, str or PathLike, optional
        The results store (default ``out_dir/results.db``).
    settle : float
        Seconds a slide's size, mtime and file count must stay unchanged before it is read.
    poll : float
        Seconds between looks at the folder.
    once : bool
        Score what is there (waiting for it to settle), then return.
    log_file : str or PathLike, optional
        Default ``out_dir/her2fast-watch.log``.
    mpp, settings, providers, pictures, geojson
        As :func:`her2fast.service.batch.score_to_store`.
    retry_after : float
        Seconds before a slide whose outputs could not be written (disk full) is tried again.
    stop : threading.Event, optional
        Set it to stop the loop (SIGTERM/SIGINT do the same when called from the main thread).
    profile : CalibrationProfile, str or PathLike, optional
        A calibration profile (``her2fast calibrate``), checked once at the start
        (:func:`her2fast.api.apply_profile`) and named in every result's provenance.

    Returns
    -------
    WatchSummary

    Raises
    ------
    InvalidInputError
        ``folder`` is not a folder (or is ``/``), ``settle``, ``poll`` or ``retry_after`` not a finite number of
        seconds up to :data:`MAX_WAIT_SECONDS` (``settle=inf`` would never let ``once`` return), bad settings, or
        another watcher holds ``out_dir``.
    StoreError
        The results store cannot be opened.
    """
    from ..pipeline import ScoreSettings

    src = Path(os.path.abspath(folder))
    try:
        kind = file_kind(src)
    except OSError as exc:
        raise InvalidInputError(f"watch folder: {os_error_text(src, exc)}") from None
    if kind != "dir":
        raise InvalidInputError(f"watch folder not found or not a folder: {text_path(src)}")
    if is_root(src):
        raise InvalidInputError("refusing to watch the whole file system (/); pass the folder the scanner writes into")
    settle = _seconds(settle, "settle", zero=True)
    poll = _seconds(poll, "poll", zero=False)
    retry_after = _seconds(retry_after, "retry_after", zero=True)
    settings = ScoreSettings() if settings is None else settings
    if profile is not None:
        from ..api import apply_profile

        settings, profile = apply_profile(profile, settings)
    out = Path(os.path.abspath(out_dir))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(f"cannot create the output folder {out}: {exc}") from None
    logger, handlers = _make_logger(Path(log_file) if log_file else out / LOG_NAME)
    stop = threading.Event() if stop is None else stop
    summary = WatchSummary()
    lock = previous = None
    st = None
    own = not isinstance(store, ResultsStore)
    try:
        lock = _lock(out)
        versions = model_versions(settings, profile)
        st = store if isinstance(store, ResultsStore) else ResultsStore(out if store is None else store)
        if threading.current_thread() is threading.main_thread():
            previous = _install_signals(stop, logger)
        clean_stale_temp(out)
        _write_quarantine_csv(st, out, logger)
        logger.info(
            "her2fast %s watching %s -> %s (store %s, settle %.1f s, poll %.1f s, models %s, pid %d)",
            __version__,
            src,
            out,
            st.path,
            settle,
            poll,
            ", ".join(f"{k} {v[:12]}" for k, v in versions.items()),
            os.getpid(),
        )
        options = dict(
            mpp=mpp, settings=settings, providers=providers, pictures=pictures, geojson=geojson, profile=profile
        )
        watcher = _Watcher(src, out, st, logger, versions, options, summary)
        try:
            _loop(watcher, src, out, settle=settle, poll=poll, once=once, retry_after=retry_after, stop=stop)
        except KeyboardInterrupt:
            logger.warning("aborted the slide being scored (no row written for it)")
        logger.info(
            "stopped: %d scored, %d skipped (already scored), %d quarantined",
            summary.scored,
            summary.skipped,
            summary.quarantined,
        )
        return summary
    except Exception as exc:
        logger.error("watch stopped by an error: %s: %s", type(exc).__name__, exc)
        raise
    finally:
        if previous is not None:
            for s, h in previous.items():
                signal.signal(s, h)
        if own and st is not None:
            st.close()
        if lock is not None:
            lock.close()
        for h in handlers:
            logger.removeHandler(h)
            h.close()


#: Longest settle, poll or retry time accepted (seconds): a day.
MAX_WAIT_SECONDS = 86400.0


def _seconds(value: object, name: str, *, zero: bool) -> float:
    """A finite number of seconds in [0 or >0, MAX_WAIT_SECONDS], or InvalidInputError naming it."""
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number of seconds, got {value!r}") from None
    low_ok = v >= 0 if zero else v > 0
    if not (math.isfinite(v) and low_ok and v <= MAX_WAIT_SECONDS):
        low = ">= 0" if zero else "> 0"
        raise InvalidInputError(
            f"{name} must be a finite number of seconds {low} and at most {MAX_WAIT_SECONDS:g} (a day), got {value!r}; "
            f"e.g. --{name.replace('_', '-')} 10"
        )
    return v


def _install_signals(stop: threading.Event, logger: logging.Logger) -> dict:
    count = [0]

    def handler(signum, frame):
        count[0] += 1
        name = signal.Signals(signum).name
        if count[0] == 1:
            logger.info("%s received: stopping after the current slide", name)
            stop.set()
        else:
            raise KeyboardInterrupt

    return {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}


def _loop(
    watcher: _Watcher,
    src: Path,
    out: Path,
    *,
    settle: float,
    poll: float,
    once: bool,
    retry_after: float,
    stop: threading.Event,
) -> None:
    observed: dict[str, tuple[tuple, float]] = {}  # path -> (signature, when it was first seen so)
    handled: dict[str, tuple] = {}  # path -> signature dealt with
    retry_at: dict[str, float] = {}
    log = watcher.log
    while not stop.is_set():
        try:
            slides = scan_folder(src, exclude=[out])
        except OSError as exc:
            log.warning("cannot list %s: %s", src, exc)
            slides = []
        waiting = 0
        for path in slides:
            if stop.is_set():
                break
            key = str(path)
            try:
                sig = slide_stat(path)
            except OSError:
                observed.pop(key, None)
                continue
            if handled.get(key) == sig:
                continue
            now = time.monotonic()
            prev = observed.get(key)
            if prev is None or prev[0] != sig:
                observed[key] = (sig, now)
                waiting += 1
                continue
            if now - prev[1] < settle or retry_at.get(key, 0.0) > now:
                waiting += 1
                continue
            try:
                result = watcher.handle(path, sig, slides)
            except StoreError as exc:
                log.error("%s: %s", key, exc)
                result = "retry"
            if result == "changed":
                observed.pop(key, None)
                waiting += 1
            elif result == "retry" and not once:
                retry_at[key] = time.monotonic() + retry_after
                waiting += 1
            else:
                handled[key] = sig
                observed.pop(key, None)
                retry_at.pop(key, None)
        present = {str(p) for p in slides}
        for d in (observed, handled, retry_at):
            for k in [k for k in d if k not in present]:
                del d[k]
        if once and waiting == 0:
            break
        stop.wait(poll)
