"""The results store: one row per slide run, in an embedded SQLite database (issue 8, first part).

A row is written in one transaction, and only once the run's outputs are complete, so a crash
(even ``kill -9``) leaves either the whole row or nothing. A slide already scored with the same
content hash and the same package and model versions is found with :meth:`ResultsStore.find_done`,
which is what makes batches resumable and idempotent. Several processes may write at once (WAL
journal, busy timeout).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import Her2FastError, InvalidInputError

__all__ = ["SlideIdentity", "RunRecord", "ResultsStore", "slide_identity", "StoreError"]

SCHEMA_VERSION = 1
_COLUMNS = (
    "slide_path", "slide_size", "slide_mtime", "slide_sha256", "status", "category", "score", "stratum",
    "percentages", "confidence", "timings", "error", "package_version", "model_versions", "started_at",
    "finished_at", "outputs",
)


class StoreError(Her2FastError):
    """The results database cannot be opened or written (path, permissions, disk full, corrupt file)."""


@dataclass(frozen=True)
class SlideIdentity:
    """What identifies a slide's content: path, size, mtime and the sha256 of its bytes."""

    path: str
    size: int
    mtime: float
    sha256: str


def _slide_files(path: Path) -> list[Path]:
    """The files that make up a slide: the file itself, plus the folder of a multi-file format (MRXS)."""
    files = [path]
    companion = path.with_suffix("")
    if path.suffix.lower() == ".mrxs" and companion.is_dir():
        files += sorted(p for p in companion.rglob("*") if p.is_file())
    return files


def slide_identity(path: str | os.PathLike, *, chunk: int = 8 << 20) -> SlideIdentity:
    """Size, mtime and sha256 of a slide's bytes (all its files for MRXS), read in 8 MiB chunks.

    Raises
    ------
    InvalidInputError
        When the file does not exist.
    """
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"slide file not found: {p}")
    digest = hashlib.sha256()
    size, mtime = 0, 0.0
    for i, f in enumerate(_slide_files(p)):
        st = f.stat()
        size += st.st_size
        mtime = max(mtime, st.st_mtime)
        if i:  # companion files of a multi-file slide: their names are part of the content
            digest.update(str(f.relative_to(p.parent)).encode() + b"\0")
        with f.open("rb") as fh:
            while block := fh.read(chunk):
                digest.update(block)
    return SlideIdentity(path=str(p.resolve()), size=size, mtime=mtime, sha256=digest.hexdigest())


@dataclass
class RunRecord:
    """One slide run as stored (``status`` is ``"ok"`` or ``"failed"``)."""

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

    def __post_init__(self) -> None:
        if self.status not in ("ok", "failed"):
            raise InvalidInputError(f"status must be 'ok' or 'failed', got {self.status!r}")


def _models_key(model_versions: Mapping[str, str]) -> str:
    return json.dumps(dict(sorted(model_versions.items())), separators=(",", ":"))


def _database_path(location: str | os.PathLike) -> Path:
    text = str(location)
    if text.startswith("sqlite:///"):
        return Path(text[len("sqlite:///"):])
    if "://" in text:
        raise InvalidInputError(f"unsupported results store URL {text!r}: use a file path or sqlite:///path")
    p = Path(text)
    return p / "results.db" if p.is_dir() else p


class ResultsStore:
    """SQLite results database (``results.db`` in the output folder by default).

    Parameters
    ----------
    location : str or PathLike
        A folder (the database is ``results.db`` inside), a file path, or ``sqlite:///path``.
    """

    def __init__(self, location: str | os.PathLike) -> None:
        self.path = _database_path(location)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            with self._transaction():
                self._conn.execute(
                    "CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                    + ", ".join(f"{c} {'REAL' if c in ('slide_mtime', 'confidence', 'started_at', 'finished_at') else 'INTEGER' if c == 'slide_size' else 'TEXT'}" for c in _COLUMNS)
                    + ", models_key TEXT NOT NULL)"
                )
                self._conn.execute(
                    "CREATE UNIQUE INDEX IF NOT EXISTS one_ok_run ON runs (slide_sha256, package_version, models_key) "
                    "WHERE status = 'ok'"
                )
                self._conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
                self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open results store {self.path}: {exc}") from exc

    def _transaction(self):
        conn = self._conn

        class _Tx:
            def __enter__(self_inner):
                conn.execute("BEGIN IMMEDIATE")

            def __exit__(self_inner, exc_type, exc, tb):
                conn.execute("ROLLBACK" if exc_type else "COMMIT")
                return False

        return _Tx()

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def find_done(self, sha256: str, package_version: str, model_versions: Mapping[str, str]) -> dict | None:
        """The successful run of this content with these versions, or None."""
        cur = self._conn.execute(
            "SELECT * FROM runs WHERE slide_sha256 = ? AND package_version = ? AND models_key = ? AND status = 'ok'",
            (sha256, package_version, _models_key(model_versions)),
        )
        row = cur.fetchone()
        return None if row is None else dict(zip([d[0] for d in cur.description], row))

    def record(self, run: RunRecord) -> bool:
        """Write one run in a single transaction. Returns False (and writes nothing) when an ``ok``
        run of the same content and versions is already stored."""
        values = asdict(run)
        slide = values.pop("slide")
        row = {
            "slide_path": slide["path"], "slide_size": slide["size"], "slide_mtime": slide["mtime"],
            "slide_sha256": slide["sha256"], **{k: values[k] for k in ("status", "category", "score", "stratum",
                                                                       "confidence", "error", "package_version",
                                                                       "started_at", "finished_at")},
            "percentages": json.dumps(dict(run.percentages)), "timings": json.dumps(dict(run.timings)),
            "model_versions": json.dumps(dict(run.model_versions)), "outputs": json.dumps(dict(run.outputs)),
        }
        try:
            with self._transaction():
                if run.status == "ok" and self.find_done(slide["sha256"], run.package_version, run.model_versions):
                    return False
                self._conn.execute(
                    f"INSERT INTO runs ({', '.join(_COLUMNS)}, models_key) VALUES ({', '.join('?' * len(_COLUMNS))}, ?)",
                    (*[row[c] for c in _COLUMNS], _models_key(run.model_versions)),
                )
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot write to results store {self.path}: {exc}") from exc
        return True

    def rows(self) -> Iterator[dict]:
        """All runs, oldest first, as dicts of column -> value (JSON columns decoded)."""
        cur = self._conn.execute("SELECT * FROM runs ORDER BY id")
        names = [d[0] for d in cur.description]
        for values in cur:
            row = dict(zip(names, values))
            for key in ("percentages", "timings", "model_versions", "outputs"):
                row[key] = json.loads(row[key]) if row[key] else {}
            yield row

    def export_csv(self, path: str | os.PathLike) -> int:
        """Write every run to a CSV file (JSON columns as JSON text). Returns the number of rows."""
        n = 0
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(("id", *_COLUMNS))
            cur = self._conn.execute(f"SELECT id, {', '.join(_COLUMNS)} FROM runs ORDER BY id")
            for values in cur:
                writer.writerow(values)
                n += 1
        return n


def now() -> float:
    """Wall-clock time stamp used for started_at / finished_at (seconds since the epoch)."""
    return time.time()
