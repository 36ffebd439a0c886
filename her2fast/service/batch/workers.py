"""What runs in a batch's worker process (local or Dask): one slide identified, scored and written; no store.

- :func:`process_one` -- one slide: identify it, skip it when done, else score it and publish its report;
- :func:`work` -- :func:`process_one` with the batch's shared options, the pipeline's tile progress sent to
  the parent (local workers);
- :func:`init_worker` / :func:`work_local` -- the local process pool's initializer and task;
- :func:`died` -- the ``failed`` outcome of a slide whose worker died.

A local worker ends when the batch process does, even when that one is killed with ``kill -9``: a
parent-death signal on Linux, a watchdog thread on the parent's pid everywhere.
"""

from __future__ import annotations

import io
import os
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ... import __version__
from ..._files import input_keys
from ...io.store import RunRecord, SlideIdentity
from ..slide_jobs import identify, score_one

__all__ = ["Job", "Outcome", "died", "init_worker", "process_one", "work", "work_local"]


def process_one(path: str, out: Path, name: str, versions, done, owners, *, protect=(), **options):
    """(record or None when skipped, failure kind, identity) of one slide; ``protect``: keys of the inputs.

    ``done`` holds the content hashes with an ``ok`` row for ``versions``: such a slide is skipped.
    """
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


@dataclass(frozen=True)
class Job:
    """One slide of the batch: its place in the input, path and wanted report name."""

    index: int
    path: str
    name: str


@dataclass
class Outcome:
    """What a worker hands back: the slide's identity and its run record (None: skipped)."""

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


def init_worker(shared: dict, queue, parent_pid: int | None = None) -> None:
    """Initializer of a local worker process: end with ``parent_pid``, leave Ctrl-C to the parent, keep the options."""
    import signal

    if parent_pid is not None:
        _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and ends the workers
    _WORKER["shared"], _WORKER["queue"] = shared, queue


def work(path: str, name: str, shared: dict, queue=None) -> Outcome:
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
        record, _kind, identity = process_one(
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
    return Outcome(identity, record)


_PROTECTED: dict[str, frozenset] = {}


def _protected(shared: dict) -> frozenset:
    """(device, inode) keys of every slide of the batch, looked up once per worker process (on its machine)."""
    key = shared["batch_id"]
    if key not in _PROTECTED:
        _PROTECTED.clear()
        _PROTECTED[key] = input_keys(shared["inputs"])
    return _PROTECTED[key]


def work_local(path: str, name: str) -> Outcome:
    """The local process pool's task: :func:`work` with what :func:`init_worker` kept."""
    return work(path, name, _WORKER["shared"], _WORKER["queue"])


def died(path: str, versions: Mapping[str, str], why: str) -> Outcome:
    """The ``failed`` outcome of a slide whose worker died (``why``), or that cannot be read."""
    identity, error = identify(path)
    return Outcome(
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
