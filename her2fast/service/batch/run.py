"""``her2fast batch``: many slides scored into the results store (:func:`run_batch`), or one (:func:`score_to_store`).

The guarantees (outputs before the row, resumable, workers end with the batch, a bad slide does not
stop the batch) are described in :mod:`her2fast.service.batch`.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ... import __version__
from ..._files import input_keys
from ...errors import InvalidInputError
from ...io.store import ResultsStore
from ..slide_jobs import clean_stale_temp, model_versions, row_of
from ..slides import batch_order
from .pools import run_dask, run_local
from .progress import BatchProgress
from .workers import Job, process_one

__all__ = ["BatchSummary", "default_workers", "run_batch", "score_to_store"]


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
    from ...pipeline import ScoreSettings

    settings = ScoreSettings() if settings is None else settings
    if profile is not None:
        from ...api import apply_profile

        settings, profile = apply_profile(profile, settings)
    versions = model_versions(settings, profile)
    out = Path(os.path.abspath(out_dir))
    record, _kind, identity = process_one(
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
    from ..._validate import as_int
    from ...pipeline import ScoreSettings

    t0 = time.perf_counter()
    settings = ScoreSettings() if settings is None else settings
    if not isinstance(settings, ScoreSettings):
        raise InvalidInputError(f"settings must be a her2fast.ScoreSettings, got {type(settings).__name__}")
    if profile is not None:
        from ...api import apply_profile

        settings, profile = apply_profile(profile, settings)
    workers = default_workers() if workers is None else as_int(workers, "workers", 1, 1024)
    slides = batch_order(inputs)
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
        jobs = [Job(i, u, Path(u).stem) for i, u in enumerate(unique)]
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
        ui = BatchProgress(len(jobs), enabled=progress)
        n = min(workers, len(jobs))
        runner = run_local(jobs, shared, n, ui) if scheduler is None else run_dask(jobs, shared, scheduler, n, ui)
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
