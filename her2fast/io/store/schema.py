"""The results store's tables: their columns (:data:`SCHEMA_VERSION`), one row (:class:`RunRecord`), migration.

Schema (version 3)
------------------
Table ``runs``, one row per slide run (failed runs are history and are never de-duplicated; at most one
``ok`` row per content hash, package version and model versions, enforced by a unique index):

=================  =======  ====================================================================
column             type     meaning
=================  =======  ====================================================================
id                 INTEGER  row number, in commit order
slide_path         TEXT     absolute path of the slide when it was scored
slide_size         INTEGER  bytes (all files of a multi-file slide such as MRXS)
slide_mtime        REAL     newest modification time of those files (Unix seconds)
slide_sha256       TEXT     sha256 of the slide's bytes ("" when the file could not be read)
status             TEXT     ``ok`` or ``failed``
category           TEXT     0, 0+, 1+, 2+, 3+ (:attr:`her2fast.SlideResult.category`) or NULL
score              TEXT     ASCO/CAP 2018 score 0, 1+, 2+, 3+ or NULL (not scorable)
stratum            TEXT     2023 stratum (null, ultralow, 1+, 2+, 3+) or NULL
percent_complete   REAL     % of tumour cells with a stained complete membrane (schema 2)
percentages        TEXT     JSON: % of tumour cells per class
confidence         REAL     :attr:`her2fast.SlideResult.confidence`
timings            TEXT     JSON: seconds per stage (``total``; ``outputs`` = writing the report)
error              TEXT     why a run failed (names the file or folder and the fix)
not_scorable       TEXT     why an ``ok`` run has no score (schema 2)
flags              TEXT     JSON list of the result's flags (schema 2)
package_version    TEXT     her2fast version
model_versions     TEXT     JSON: model name -> sha256 of every model such a run uses
started_at         REAL     Unix time the run started
finished_at        REAL     Unix time the outputs were complete
outputs            TEXT     JSON: kind (json, cells, geojson, overlay, zoom, heatmap) -> file path
output_sha256      TEXT     JSON: kind -> sha256 of that file as this run wrote it (schema 3)
models_key         TEXT     canonical JSON of model_versions (for the unique index)
=================  =======  ====================================================================

``percent_complete`` is its own column (not a key of ``percentages``). Table ``quarantine``
(schema 2): slides that cannot be scored, keyed by content hash, with the reason (``her2fast watch``
never retries them until their content changes). Table ``reviews`` (schema 3): a pathologist's sign-off of a
run (:meth:`ResultsStore.add_review`), one row per sign-off, never changing the run's own row:

=================  =======  ====================================================================
column             type     meaning
=================  =======  ====================================================================
id                 INTEGER  row number, in commit order
run_id             INTEGER  the ``runs.id`` signed off
slide_sha256       TEXT     that run's content hash
reviewer           TEXT     who signed off (as they typed their name)
at                 REAL     Unix time of the sign-off
action             TEXT     ``accept`` (the algorithm's score stands) or ``override``
score_before       TEXT     the run's score (NULL: not scorable)
score_after        TEXT     the score reported after review (NULL: accepted as not scorable)
reason             TEXT     why the score was overridden ("" for an accept without a comment)
=================  =======  ====================================================================

The newest review of a run is the one in force. Table ``meta`` holds ``schema_version``. A database
written by an older her2fast is migrated when opened (missing columns and tables are added).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import Her2FastError, InvalidInputError
from .identity import SlideIdentity

__all__ = ["MAX_REASON", "MAX_REVIEWER", "REVIEW_SCORES", "SCHEMA_VERSION", "RunRecord", "StoreError", "migrate"]

SCHEMA_VERSION = 3
_COLUMNS = (
    "slide_path",
    "slide_size",
    "slide_mtime",
    "slide_sha256",
    "status",
    "category",
    "score",
    "stratum",
    "percentages",
    "confidence",
    "timings",
    "error",
    "package_version",
    "model_versions",
    "started_at",
    "finished_at",
    "outputs",
    "percent_complete",
    "not_scorable",
    "flags",
    "output_sha256",
)
_REAL = ("slide_mtime", "confidence", "started_at", "finished_at", "percent_complete")
_JSON = {
    "percentages": dict,
    "timings": dict,
    "model_versions": dict,
    "outputs": dict,
    "flags": list,
    "output_sha256": dict,
}
_QUARANTINE = ("slide_sha256", "slide_path", "slide_size", "slide_mtime", "reason", "at")
_REVIEWS = ("run_id", "slide_sha256", "reviewer", "at", "action", "score_before", "score_after", "reason")
_REVIEW_KEYS = ("action", "score_after", "reviewer", "at", "reason")
_REVIEW_CSV = ("review_action", "review_score", "reviewer", "reviewed_at", "review_reason")
#: the scores a review may give (ASCO/CAP 2018)
REVIEW_SCORES = ("0", "1+", "2+", "3+")
#: the longest reviewer name and reason a review stores (characters)
MAX_REVIEWER, MAX_REASON = 200, 4000


def _sql_type(column: str) -> str:
    return "REAL" if column in _REAL else "INTEGER" if column == "slide_size" else "TEXT"


class StoreError(Her2FastError):
    """The results database cannot be opened or written (path, permissions, disk full, corrupt file)."""


@dataclass
class RunRecord:
    """One slide run as stored (``status`` is ``"ok"`` or ``"failed"``); fields are the columns of ``runs``."""

    slide: SlideIdentity
    status: str
    package_version: str
    model_versions: Mapping[str, str] = field(default_factory=dict)
    category: str | None = None
    score: str | None = None
    stratum: str | None = None
    percentages: Mapping[str, float] = field(default_factory=dict)
    confidence: float | None = None
    timings: Mapping[str, float] = field(default_factory=dict)
    error: str | None = None
    outputs: Mapping[str, str] = field(default_factory=dict)
    started_at: float = 0.0
    finished_at: float = 0.0
    percent_complete: float | None = None
    not_scorable: str | None = None
    flags: Sequence[str] = ()
    output_sha256: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in ("ok", "failed"):
            raise InvalidInputError(f"status must be 'ok' or 'failed', got {self.status!r}")


def _models_key(model_versions: Mapping[str, str]) -> str:
    return json.dumps(dict(sorted(model_versions.items())), separators=(",", ":"))


def _database_path(location: str | os.PathLike) -> Path:
    text = str(location)
    if text.startswith("sqlite:///"):
        return Path(text[len("sqlite:///") :])
    if "://" in text:
        raise InvalidInputError(f"unsupported results store URL {text!r}: use a file path or sqlite:///path")
    p = Path(text)
    # a folder, or a path that does not exist yet and has no suffix (a folder to create)
    return p / "results.db" if p.is_dir() or (not p.exists() and not p.suffix) else p


def _decode(names: Sequence[str], values: Sequence) -> dict:
    row = dict(zip(names, values))
    for key, kind in _JSON.items():
        if key in row:
            row[key] = json.loads(row[key]) if row[key] else kind()
    return row


def migrate(conn: sqlite3.Connection, transaction) -> None:
    """Create the tables, or bring a database written by an older her2fast up to :data:`SCHEMA_VERSION`.

    Missing columns of ``runs`` and missing tables and indexes are added (nothing is ever dropped), in one
    transaction (``transaction()``: a context manager around ``BEGIN IMMEDIATE`` / ``COMMIT``), after
    switching the database to the WAL journal.

    Raises
    ------
    sqlite3.Error, OSError
        As SQLite raises them; :class:`~her2fast.io.store.ResultsStore` turns them into :class:`StoreError`.
    """
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    with transaction():
        conn.execute(
            "CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            + ", ".join(f"{c} {_sql_type(c)}" for c in _COLUMNS)
            + ", models_key TEXT NOT NULL)"
        )
        have = {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
        for c in _COLUMNS:  # migrate a database written by an older her2fast
            if c not in have:
                conn.execute(f"ALTER TABLE runs ADD COLUMN {c} {_sql_type(c)}")
        conn.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS one_ok_run ON runs (slide_sha256, package_version, models_key) "
            "WHERE status = 'ok'"
        )
        conn.execute("CREATE INDEX IF NOT EXISTS runs_by_path ON runs (slide_path)")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS quarantine (slide_sha256 TEXT PRIMARY KEY, slide_path TEXT, "
            "slide_size INTEGER, slide_mtime REAL, reason TEXT, at REAL)"
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS reviews (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id INTEGER NOT NULL, "
            "slide_sha256 TEXT, reviewer TEXT NOT NULL, at REAL NOT NULL, action TEXT NOT NULL, "
            "score_before TEXT, score_after TEXT, reason TEXT NOT NULL)"
        )
        conn.execute("CREATE INDEX IF NOT EXISTS reviews_by_run ON reviews (run_id)")
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None or int(row[0]) < SCHEMA_VERSION:
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
