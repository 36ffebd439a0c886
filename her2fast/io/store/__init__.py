"""The results store: one row per slide run, in an embedded SQLite database.

A row is written in one transaction, and only once the run's outputs are complete, so a crash
(even ``kill -9``) leaves either the whole row or nothing. A slide already scored with the same
content hash and the same package and model versions is found with :meth:`ResultsStore.find_done`,
which is what makes batches resumable and idempotent. Several processes may write at once (WAL
journal, busy timeout) -- on a local disk: SQLite's locking does not work on network file systems,
so keep the database on the machine that runs ``her2fast batch`` / ``her2fast watch``.

A row and its files describe the same slide bytes: ``slide_sha256`` is the hash of the bytes that were
scored (the file was unchanged from before it was hashed until its report was complete), the result JSON
records the same hash (``provenance.slide.sha256``), and ``output_sha256`` the hash of each file as written.

The schema (tables ``runs``, ``quarantine``, ``reviews``, ``meta``) is described in
:mod:`her2fast.io.store.schema`.

Modules
-------
- :mod:`~her2fast.io.store.identity`: a slide's content identity (:class:`SlideIdentity`,
  :func:`slide_identity`) and its files (:func:`slide_files`, :func:`slide_stat`).
- :mod:`~her2fast.io.store.schema`: the tables and their columns, :class:`RunRecord` (one row),
  :class:`StoreError`, and bringing a database written by an older her2fast up to date.
- :mod:`~her2fast.io.store.results`: :class:`ResultsStore`, the queries: runs, reviews, quarantine, CSV
  exports.

Every public name of these modules is importable from ``her2fast.io.store``.

Examples
--------
>>> import tempfile
>>> from her2fast.io.store import ResultsStore
>>> with tempfile.TemporaryDirectory() as folder, ResultsStore(folder) as store:
...     store.path.name, list(store.rows()), store.integrity_check()
('results.db', [], 'ok')
"""

from __future__ import annotations

from .identity import SlideIdentity, slide_files, slide_identity, slide_stat
from .identity import _slide_files as _slide_files  # older private name
from .results import ResultsStore
from .results import now as now
from .schema import MAX_REASON, MAX_REVIEWER, REVIEW_SCORES, RunRecord, StoreError
from .schema import SCHEMA_VERSION as SCHEMA_VERSION

__all__ = [
    "MAX_REASON",
    "MAX_REVIEWER",
    "REVIEW_SCORES",
    "SlideIdentity",
    "RunRecord",
    "ResultsStore",
    "slide_identity",
    "slide_files",
    "slide_stat",
    "StoreError",
]
