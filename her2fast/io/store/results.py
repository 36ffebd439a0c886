"""The results store's queries: :class:`ResultsStore` over one SQLite database (runs, reviews, quarantine, CSV)."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict

from ... import _csv as safe_csv
from ..._files import atomic_write, text_path
from ...errors import InvalidInputError
from .identity import SlideIdentity
from .schema import (
    _COLUMNS,
    _QUARANTINE,
    _REVIEW_CSV,
    _REVIEW_KEYS,
    _REVIEWS,
    MAX_REASON,
    MAX_REVIEWER,
    REVIEW_SCORES,
    RunRecord,
    StoreError,
    _database_path,
    _decode,
    _models_key,
    migrate,
)

__all__ = ["ResultsStore", "now"]


class ResultsStore:
    """SQLite results database (``results.db`` in the output folder by default).

    One row per slide run in table ``runs`` (the schema is in :mod:`her2fast.io.store.schema`):
    ``percent_complete`` is a column of its own; ``percentages``, ``timings``, ``model_versions``, ``outputs``
    and ``flags`` are JSON and come back decoded from :meth:`rows` and :meth:`find_done`.

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
            migrate(self._conn, self._transaction)
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
