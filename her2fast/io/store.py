"""The results store: one row per slide run, in an embedded SQLite database.

A row is written in one transaction, and only once the run's outputs are complete, so a crash
(even ``kill -9``) leaves either the whole row or nothing. A slide already scored with the same
content hash and the same package and model versions is found with :meth:`ResultsStore.find_done`,
which is what makes batches resumable and idempotent. Several processes may write at once (WAL
journal, busy timeout) -- on a local disk: SQLite's locking does not work on network file systems,
so keep the database on the machine that runs ``her2fast batch`` / ``her2fast watch``.

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

A row and its files describe the same slide bytes: ``slide_sha256`` is the hash of the bytes that were
scored (the file was unchanged from before it was hashed until its report was complete), the result JSON
records the same hash (``provenance.slide.sha256``), and ``output_sha256`` the hash of each file as written.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import _csv as safe_csv
from .._files import atomic_write, file_kind, os_error_text, snapshot, text_path
from ..errors import Her2FastError, InvalidInputError, SlideChangedError

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


@dataclass(frozen=True)
class SlideIdentity:
    """What identifies a slide's content: path, size, mtime and the sha256 of its bytes.

    ``snapshot`` (not stored, not compared) is :func:`her2fast._files.snapshot` of the slide's files while they
    were hashed: the same snapshot later means the same bytes. ``path`` is text (a name that is not UTF-8 is
    written with ``\\xNN`` escapes, :func:`her2fast._files.text_path`); ``file`` (not stored, not compared) is
    the path as the operating system names it, for opening the file again (:attr:`location`).
    """

    path: str
    size: int
    mtime: float
    sha256: str
    snapshot: tuple = field(default=(), compare=False, repr=False)
    file: str = field(default="", compare=False, repr=False)

    @property
    def location(self) -> str:
        """The path to open the slide's files with (``file`` when known, else ``path``)."""
        return self.file or self.path


def slide_files(path: str | os.PathLike) -> list[Path]:
    """The files that make up a slide: the file itself, plus the folder of a multi-file format (MRXS)."""
    path = Path(path)
    files = [path]
    companion = path.with_suffix("")
    if path.suffix.lower() == ".mrxs" and companion.is_dir():
        files += sorted(p for p in companion.rglob("*") if p.is_file())
    return files


_slide_files = slide_files  # older private name


def slide_stat(path: str | os.PathLike) -> tuple[int, float, int]:
    """``(total size, newest mtime, number of files)`` of a slide's files, without reading them.

    Raises
    ------
    OSError
        When a file vanishes while it is looked at.
    """
    size, mtime, files = 0, 0.0, slide_files(path)
    for f in files:
        st = f.stat()
        size += st.st_size
        mtime = max(mtime, st.st_mtime)
    return size, mtime, len(files)


def slide_identity(path: str | os.PathLike, *, chunk: int = 8 << 20) -> SlideIdentity:
    """Size, mtime and sha256 of a slide's bytes (all its files for MRXS), read in 8 MiB chunks.

    Raises
    ------
    InvalidInputError
        When the file does not exist, is not a regular file (a folder, FIFO or device: never opened, so a FIFO
        cannot block) or cannot be looked at. The identity's ``path`` is :func:`her2fast._files.text_path`
        of the resolved path (a name that is not UTF-8 is stored with ``\\xNN`` escapes).
    SlideChangedError
        When a file changed (rewritten or replaced) while it was hashed.
    """
    p = Path(path)
    try:
        kind = file_kind(p)
    except OSError as exc:  # a name too long, no permission
        raise InvalidInputError(os_error_text(p, exc)) from None
    if kind == "missing":
        raise InvalidInputError(f"slide file not found: {text_path(p)}")
    if kind != "file":
        what = "a folder" if kind == "dir" else "not a regular file (a FIFO, device or socket)"
        raise InvalidInputError(f"{text_path(p)} is {what}, not a slide file")
    digest = hashlib.sha256()
    size, mtime = 0, 0.0
    files = slide_files(p)
    before = snapshot(files)
    for i, f in enumerate(files):
        st = f.stat()
        size += st.st_size
        mtime = max(mtime, st.st_mtime)
        if i:  # companion files of a multi-file slide: their names are part of the content
            digest.update(str(f.relative_to(p.parent)).encode() + b"\0")
        with f.open("rb") as fh:
            while block := fh.read(chunk):
                digest.update(block)
    if snapshot(files) != before or slide_files(p) != files:
        raise SlideChangedError(
            f"{text_path(p)} changed while it was read (it is still being written, or was replaced); "
            "score it again once it is complete"
        )
    resolved = p.resolve()
    return SlideIdentity(
        path=text_path(resolved),
        size=size,
        mtime=mtime,
        sha256=digest.hexdigest(),
        snapshot=before,
        file=os.fspath(resolved),
    )


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


class ResultsStore:
    """SQLite results database (``results.db`` in the output folder by default).

    One row per slide run in table ``runs`` (see the module docstring for the schema): ``percent_complete``
    is a column of its own; ``percentages``, ``timings``, ``model_versions``, ``outputs`` and ``flags`` are
    JSON and come back decoded from :meth:`rows` and :meth:`find_done`.

    Parameters
    ----------
    location : str or PathLike
        A folder (the database is ``results.db`` inside; a path that does not exist yet and has no suffix
        is taken for a folder to create), a file path (``runs.db``), or ``sqlite:///path``.

    read_only : bool
        Open an existing database for reading only (no migration, no writes; :meth:`add_review` and the
        other writers raise :class:`StoreError`). Several threads each open their own.

    Raises
    ------
    StoreError
        The database cannot be created, opened or migrated (with ``read_only``: it does not exist).
    """

    def __init__(self, location: str | os.PathLike, *, read_only: bool = False) -> None:
        self.path = _database_path(location)
        self.read_only = bool(read_only)
        if self.read_only:
            if not self.path.is_file():
                raise StoreError(f"no results store at {self.path}: score slides into it with her2fast batch first")
            try:
                self._conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=60.0)
                self._conn.execute("SELECT 1 FROM runs LIMIT 1").fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open results store {self.path} for reading: {exc}") from exc
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open results store {self.path}: {exc}") from exc
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            with self._transaction():
                self._conn.execute(
                    "CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                    + ", ".join(f"{c} {_sql_type(c)}" for c in _COLUMNS)
                    + ", models_key TEXT NOT NULL)"
                )
                have = {r[1] for r in self._conn.execute("PRAGMA table_info(runs)")}
                for c in _COLUMNS:  # migrate a database written by an older her2fast
                    if c not in have:
                        self._conn.execute(f"ALTER TABLE runs ADD COLUMN {c} {_sql_type(c)}")
                self._conn.execute(
                    "CREATE UNIQUE INDEX IF NOT EXISTS one_ok_run ON runs (slide_sha256, package_version, models_key) "
                    "WHERE status = 'ok'"
                )
                self._conn.execute("CREATE INDEX IF NOT EXISTS runs_by_path ON runs (slide_path)")
                self._conn.execute(
                    "CREATE TABLE IF NOT EXISTS quarantine (slide_sha256 TEXT PRIMARY KEY, slide_path TEXT, "
                    "slide_size INTEGER, slide_mtime REAL, reason TEXT, at REAL)"
                )
                self._conn.execute(
                    "CREATE TABLE IF NOT EXISTS reviews (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id INTEGER NOT NULL, "
                    "slide_sha256 TEXT, reviewer TEXT NOT NULL, at REAL NOT NULL, action TEXT NOT NULL, "
                    "score_before TEXT, score_after TEXT, reason TEXT NOT NULL)"
                )
                self._conn.execute("CREATE INDEX IF NOT EXISTS reviews_by_run ON reviews (run_id)")
                self._conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
                row = self._conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                if row is None or int(row[0]) < SCHEMA_VERSION:
                    self._conn.execute(
                        "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                    )
        except (sqlite3.Error, OSError) as exc:
            self._conn.close()
            raise StoreError(f"cannot open results store {self.path}: {exc}") from exc

    def _transaction(self):
        conn = self._conn

        class _Tx:
            def __enter__(self_inner):
                conn.execute("BEGIN IMMEDIATE")

            def __exit__(self_inner, exc_type, exc, tb):
                if exc_type is None:
                    try:
                        conn.execute("COMMIT")
                    except BaseException:
                        if conn.in_transaction:
                            conn.execute("ROLLBACK")
                        raise
                elif conn.in_transaction:
                    conn.execute("ROLLBACK")
                return False

        return _Tx()

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _select(self, sql: str, params: Sequence = ()) -> list[dict]:
        try:
            cur = self._conn.execute(sql, tuple(params))
            names = [d[0] for d in cur.description]
            return [_decode(names, values) for values in cur]
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read results store {self.path}: {exc}") from exc

    def find_done(self, sha256: str, package_version: str, model_versions: Mapping[str, str]) -> dict | None:
        """The successful run of this content with these versions (a row as :meth:`rows` yields), or None."""
        rows = self._select(
            "SELECT * FROM runs WHERE slide_sha256 = ? AND package_version = ? AND models_key = ? AND status = 'ok'",
            (sha256, package_version, _models_key(model_versions)),
        )
        return rows[0] if rows else None

    def done_hashes(self, package_version: str, model_versions: Mapping[str, str]) -> frozenset[str]:
        """Content hashes of every slide with an ``ok`` run of these versions (what a batch skips)."""
        try:
            cur = self._conn.execute(
                "SELECT slide_sha256 FROM runs WHERE package_version = ? AND models_key = ? AND status = 'ok'",
                (package_version, _models_key(model_versions)),
            )
            return frozenset(r[0] for r in cur)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read results store {self.path}: {exc}") from exc

    def find_file(
        self, path: str | os.PathLike, size: int, mtime: float, package_version: str, model_versions: Mapping[str, str]
    ) -> dict | None:
        """The ``ok`` run of the file at ``path`` with this size and mtime and these versions, or None.

        A cheap check (no hashing) for files seen before; :meth:`find_done` is the authority.
        """
        rows = self._select(
            "SELECT * FROM runs WHERE slide_path = ? AND slide_size = ? AND slide_mtime = ? AND package_version = ? "
            "AND models_key = ? AND status = 'ok'",
            (text_path(path), int(size), float(mtime), package_version, _models_key(model_versions)),
        )
        return rows[0] if rows else None

    def output_owners(self) -> dict[str, str]:
        """Result-JSON path -> content hash of the slide whose ``ok`` run wrote it (the newest run wins)."""
        owners: dict[str, str] = {}
        for row in self._select("SELECT slide_sha256, outputs FROM runs WHERE status = 'ok' ORDER BY id"):
            if row["outputs"].get("json"):
                owners[str(row["outputs"]["json"])] = row["slide_sha256"]
        return owners

    def insert(self, run: RunRecord) -> tuple[bool, dict]:
        """Write one run in a single transaction.

        Returns
        -------
        (bool, dict)
            Whether the row was written, and the row as :meth:`rows` yields it: the new row, or -- when an
            ``ok`` run of the same content and versions is already stored -- that one (nothing is written).
        """
        values = asdict(run)
        slide = values.pop("slide")
        values["error"] = None if values["error"] is None else text_path(values["error"])  # it may quote a path
        row = {
            "slide_path": text_path(slide["path"]),
            "slide_size": slide["size"],
            "slide_mtime": slide["mtime"],
            "slide_sha256": slide["sha256"],
            **{
                k: values[k]
                for k in (
                    "status",
                    "category",
                    "score",
                    "stratum",
                    "confidence",
                    "error",
                    "package_version",
                    "started_at",
                    "finished_at",
                    "percent_complete",
                    "not_scorable",
                )
            },
            "percentages": json.dumps(dict(run.percentages)),
            "timings": json.dumps(dict(run.timings)),
            "model_versions": json.dumps(dict(run.model_versions)),
            "outputs": json.dumps(dict(run.outputs)),
            "flags": json.dumps(list(run.flags)),
            "output_sha256": json.dumps(dict(run.output_sha256)),
        }
        try:
            with self._transaction():
                if run.status == "ok":
                    existing = self.find_done(slide["sha256"], run.package_version, run.model_versions)
                    if existing is not None:
                        return False, existing
                cur = self._conn.execute(
                    f"INSERT INTO runs ({', '.join(_COLUMNS)}, models_key) VALUES ({', '.join('?' * len(_COLUMNS))}, ?)",
                    (*[row[c] for c in _COLUMNS], _models_key(run.model_versions)),
                )
                new_id = cur.lastrowid
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot write to results store {self.path}: {exc}") from exc
        return True, self.get(new_id)  # type: ignore[arg-type]  # lastrowid is an int after an INSERT

    def record(self, run: RunRecord) -> bool:
        """Write one run in a single transaction. Returns False (and writes nothing) when an ``ok``
        run of the same content and versions is already stored."""
        return self.insert(run)[0]

    def get(self, row_id: int) -> dict:
        """The row with this ``id`` (as :meth:`rows` yields it).

        Raises
        ------
        StoreError
            When there is no such row.
        """
        rows = self._select("SELECT * FROM runs WHERE id = ?", (int(row_id),))
        if not rows:
            raise StoreError(f"no run with id {row_id} in results store {self.path}")
        return rows[0]

    def rows(self) -> Iterator[dict]:
        """All runs, oldest first, as dicts of column -> value (JSON columns decoded)."""
        yield from self._select("SELECT * FROM runs ORDER BY id")

    def export_csv(self, path: str | os.PathLike) -> int:
        """Write every run to a CSV file (JSON columns as JSON text), atomically. Returns the number of rows.

        The last columns are the run's review in force (:meth:`latest_reviews`): ``review_action``,
        ``review_score`` (the score after review), ``reviewer``, ``reviewed_at`` and ``review_reason``;
        empty for a run nobody has signed off.
        """
        n = 0
        reviews = self.latest_reviews()

        def write(raw) -> None:
            nonlocal n
            fh = io.TextIOWrapper(raw, encoding="utf-8", newline="", write_through=True)
            writer = safe_csv.writer(fh)
            writer.writerow(("id", *_COLUMNS, *_REVIEW_CSV))
            cur = self._conn.execute(f"SELECT id, {', '.join(_COLUMNS)} FROM runs ORDER BY id")
            for values in cur:
                r = reviews.get(values[0])
                extra = ("",) * len(_REVIEW_CSV) if r is None else tuple(r[k] for k in _REVIEW_KEYS)
                writer.writerow((*values, *extra))
                n += 1
            fh.detach()

        atomic_write(path, write)
        return n

    # ------------------------------------------------------------------------------ reviews
    def add_review(
        self, run_id: int, reviewer: str, action: str, *, score_after: str | None = None, reason: str = ""
    ) -> dict:
        """Store a pathologist's sign-off of a run as a new row of table ``reviews``.

        The run's own row is never changed: the algorithm's result stays as it was computed, and the
        newest review of a run is the one in force.

        Parameters
        ----------
        run_id : int
            ``id`` of an ``ok`` run.
        reviewer : str
            Who signs off (1 to :data:`MAX_REVIEWER` characters).
        action : {"accept", "override"}
            ``accept``: the run's score stands (``score_after`` must be None or equal to it);
            ``override``: ``score_after`` (one of :data:`REVIEW_SCORES`) replaces it, with a ``reason``.
        score_after : str, optional
        reason : str
            Required for an override (at most :data:`MAX_REASON` characters).

        Returns
        -------
        dict
            The stored review (columns of ``reviews`` plus ``id``).

        Raises
        ------
        InvalidInputError
            A bad argument (the message names it).
        StoreError
            No such run, a failed run, or the store cannot be written (read-only, disk full).
        """
        if self.read_only:
            raise StoreError(f"results store {self.path} is open read-only; open it without read_only to sign off")
        reviewer = reviewer.strip() if isinstance(reviewer, str) else ""
        reason = reason.strip() if isinstance(reason, str) else ""
        if not reviewer or len(reviewer) > MAX_REVIEWER:
            raise InvalidInputError(f"reviewer: give your name (1 to {MAX_REVIEWER} characters)")
        if len(reason) > MAX_REASON:
            raise InvalidInputError(f"reason: at most {MAX_REASON} characters, got {len(reason)}")
        if action not in ("accept", "override"):
            raise InvalidInputError(f"action must be 'accept' or 'override', got {action!r}")
        run = self.get(int(run_id))
        if run["status"] != "ok":
            raise StoreError(f"run {run_id} failed ({run['error']}); there is no score to sign off")
        before = run["score"]
        if action == "accept":
            if score_after not in (None, "", before):
                raise InvalidInputError(
                    f"score_after {score_after!r} differs from the run's score {before!r}: that is an override"
                )
            after = before
        else:
            if score_after not in REVIEW_SCORES:
                raise InvalidInputError(f"score_after must be one of {', '.join(REVIEW_SCORES)}, got {score_after!r}")
            if not reason:
                raise InvalidInputError("reason: an override needs the reason the score was changed")
            after = score_after
        values = (int(run_id), run["slide_sha256"], reviewer, time.time(), action, before, after, reason)
        try:
            with self._transaction():
                cur = self._conn.execute(
                    f"INSERT INTO reviews ({', '.join(_REVIEWS)}) VALUES ({', '.join('?' * len(_REVIEWS))})", values
                )
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot write to results store {self.path}: {exc}") from exc
        return {"id": cur.lastrowid, **dict(zip(_REVIEWS, values))}

    def reviews(self, run_id: int | None = None) -> list[dict]:
        """Reviews, oldest first (of one run, or of all); an empty list for a database without the table."""
        where, params = ("WHERE run_id = ?", (int(run_id),)) if run_id is not None else ("", ())
        try:
            return self._select(f"SELECT id, {', '.join(_REVIEWS)} FROM reviews {where} ORDER BY id", params)
        except StoreError:
            if self._has_table("reviews"):
                raise
            return []  # a database of an older her2fast opened read-only: nobody has signed off yet

    def latest_reviews(self) -> dict[int, dict]:
        """``run_id`` -> the newest review of that run (the one in force)."""
        return {r["run_id"]: r for r in self.reviews()}

    def _has_table(self, name: str) -> bool:
        row = self._conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
        return row is not None

    # ------------------------------------------------------------------------------ quarantine
    def quarantine(self, slide: SlideIdentity, reason: str) -> None:
        """Put a slide's content on the quarantine list with the reason (replaces an older entry)."""
        try:
            with self._transaction():
                self._conn.execute(
                    f"INSERT OR REPLACE INTO quarantine ({', '.join(_QUARANTINE)}) VALUES (?, ?, ?, ?, ?, ?)",
                    (slide.sha256, text_path(slide.path), slide.size, slide.mtime, text_path(reason), time.time()),
                )
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot write to results store {self.path}: {exc}") from exc

    def release(self, sha256: str) -> bool:
        """Take a slide's content off the quarantine list (``her2fast watch`` tries it again); True if it was on."""
        try:
            with self._transaction():
                cur = self._conn.execute("DELETE FROM quarantine WHERE slide_sha256 = ?", (sha256,))
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot write to results store {self.path}: {exc}") from exc
        return cur.rowcount > 0

    def quarantined(self) -> list[dict]:
        """The quarantine list, oldest first: ``slide_sha256, slide_path, slide_size, slide_mtime, reason, at``."""
        return self._select(f"SELECT {', '.join(_QUARANTINE)} FROM quarantine ORDER BY at, slide_path")

    def is_quarantined(self, sha256: str) -> bool:
        """Whether this content is on the quarantine list."""
        return bool(self._select("SELECT 1 AS x FROM quarantine WHERE slide_sha256 = ?", (sha256,)))

    def find_quarantined_file(self, path: str | os.PathLike, size: int, mtime: float) -> dict | None:
        """The quarantine entry of the file at ``path`` with this size and mtime (no hashing), or None."""
        rows = self._select(
            f"SELECT {', '.join(_QUARANTINE)} FROM quarantine WHERE slide_path = ? AND slide_size = ? AND slide_mtime = ?",
            (text_path(path), int(size), float(mtime)),
        )
        return rows[0] if rows else None

    def export_quarantine_csv(self, path: str | os.PathLike) -> int:
        """Write the quarantine list to a CSV file, atomically. Returns the number of entries."""
        rows = self.quarantined()

        def write(raw) -> None:
            fh = io.TextIOWrapper(raw, encoding="utf-8", newline="", write_through=True)
            writer = safe_csv.writer(fh)
            writer.writerow(_QUARANTINE)
            for r in rows:
                writer.writerow([r[c] for c in _QUARANTINE])
            fh.detach()

        atomic_write(path, write)
        return len(rows)

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check``: ``"ok"`` for a sound database, else the problems found."""
        try:
            return "\n".join(str(r[0]) for r in self._conn.execute("PRAGMA integrity_check"))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read results store {self.path}: {exc}") from exc


def now() -> float:
    """Wall-clock time stamp used for started_at / finished_at (seconds since the epoch)."""
    return time.time()
