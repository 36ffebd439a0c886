"""Many slides: find them, score each one into the results store, locally or on a Dask cluster.

:func:`run_batch` is ``her2fast batch``: it scores every slide of a folder, glob or list with a local
process pool (default) or one task per slide on a Dask ``distributed`` cluster, and records one row per
slide in the :class:`~her2fast.io.store.ResultsStore` (``results.db`` in the output folder).

Guarantees
----------
- **Outputs before the row.** A slide's report files are written into a temporary folder inside the
  output folder, flushed to disk and renamed into place under a name no other slide's report holds
  (claimed by content hash, safe between processes), never through a link or onto an input; only then is
  its row committed (one SQLite transaction). A slide that changed while it was scored publishes nothing.
  A crash or ``kill -9`` at any moment leaves either the whole row with all its files, or no row
  (possibly with files of an unfinished run, which the rerun overwrites).
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
:mod:`her2fast.service.slide_jobs`, which the watch-folder service uses too; which files are slides is
:mod:`her2fast.service.slides` (:func:`find_slides`).

Modules
-------
- :mod:`~her2fast.service.batch.run`: :func:`run_batch`, :class:`BatchSummary`, :func:`score_to_store`,
  :func:`default_workers`.
- :mod:`~her2fast.service.batch.workers`: what runs in a worker process (local or Dask): one slide scored
  and written, never the store; a local worker ends with the batch.
- :mod:`~her2fast.service.batch.pools`: the slides run on a local process pool (a crashed worker costs one
  slide) or on a Dask cluster.
- :mod:`~her2fast.service.batch.progress`: the progress line on stderr.

Every public name of these modules, and :func:`find_slides`, :data:`SLIDE_SUFFIXES` and
:func:`model_versions`, is importable from ``her2fast.service.batch``.
"""

from __future__ import annotations

from ..slide_jobs import model_versions
from ..slides import SLIDE_SUFFIXES, find_slides
from .run import BatchSummary, default_workers, run_batch, score_to_store

__all__ = [
    "SLIDE_SUFFIXES",
    "BatchSummary",
    "find_slides",
    "model_versions",
    "default_workers",
    "score_to_store",
    "run_batch",
]
