"""her2fast.io.store: one row per run, atomic, idempotent, safe with several writer processes."""

from __future__ import annotations

import csv
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from her2fast import InvalidInputError
from her2fast.io.store import ResultsStore, RunRecord, StoreError, slide_identity


def make_slide(tmp_path, name="s.tiff", content=b"slide-bytes"):
    p = tmp_path / name
    p.write_bytes(content)
    return p


def ok_run(identity, version="0.1.0", models=None, category="2+"):
    return RunRecord(
        slide=identity,
        status="ok",
        package_version=version,
        model_versions=models or {"unet": "abc"},
        category=category,
        score=category,
        percentages={"3+": 4.0},
        confidence=0.8,
        timings={"total": 1.0},
    )


def test_identity_hashes_content(tmp_path):
    a = slide_identity(make_slide(tmp_path, "a.tiff", b"x" * 100))
    b = slide_identity(make_slide(tmp_path, "b.tiff", b"x" * 100))
    c = slide_identity(make_slide(tmp_path, "c.tiff", b"y" * 100))
    assert a.sha256 == b.sha256 != c.sha256 and a.size == 100
    with pytest.raises(InvalidInputError, match="slide file not found"):
        slide_identity(tmp_path / "missing.svs")


def test_record_is_idempotent_per_content_and_versions(tmp_path):
    ident = slide_identity(make_slide(tmp_path))
    with ResultsStore(tmp_path) as store:
        assert store.path.name == "results.db"
        assert store.record(ok_run(ident))
        assert not store.record(ok_run(ident))  # same content, same versions: skipped
        assert store.record(ok_run(ident, version="0.2.0"))  # new package version: a new run
        assert store.record(ok_run(ident, models={"unet": "def"}))
        failed = RunRecord(slide=ident, status="failed", package_version="0.1.0", error="boom")
        assert store.record(failed) and store.record(failed)  # failures are history, never deduplicated
        assert store.find_done(ident.sha256, "0.1.0", {"unet": "abc"})["category"] == "2+"
        assert store.find_done(ident.sha256, "9.9", {"unet": "abc"}) is None
        rows = list(store.rows())
    assert len(rows) == 5 and rows[0]["percentages"] == {"3+": 4.0}


def test_export_csv(tmp_path):
    ident = slide_identity(make_slide(tmp_path))
    with ResultsStore(tmp_path / "db.sqlite") as store:
        store.record(ok_run(ident))
        n = store.export_csv(tmp_path / "out.csv")
    with open(tmp_path / "out.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert n == 1 and rows[0]["category"] == "2+" and rows[0]["slide_sha256"] == ident.sha256


def test_bad_locations(tmp_path):
    with pytest.raises(InvalidInputError, match="unsupported results store URL"):
        ResultsStore("postgresql://host/db")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot open results store"):
        ResultsStore(blocker / "sub" / "results.db")
    with pytest.raises(InvalidInputError, match="status must be"):
        RunRecord(slide=slide_identity(make_slide(tmp_path)), status="maybe", package_version="0")


def _writer(db: str, slide: str, n: int) -> None:
    from her2fast.io.store import ResultsStore, RunRecord, slide_identity

    ident = slide_identity(slide)
    with ResultsStore(db) as store:
        for i in range(n):
            store.record(RunRecord(slide=ident, status="ok", package_version=f"v{i}", model_versions={}))


def test_several_processes_write_without_loss_or_duplicates(tmp_path):
    slide = str(make_slide(tmp_path))
    db = str(tmp_path / "results.db")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(db, slide, 20)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with ResultsStore(db) as store:
        versions = [r["package_version"] for r in store.rows()]
    assert sorted(versions) == sorted(f"v{i}" for i in range(20))  # each version once, none lost


def test_kill_9_mid_writing_leaves_whole_rows_only(tmp_path):
    slide = make_slide(tmp_path)
    db = tmp_path / "results.db"
    script = textwrap.dedent(f"""
        import sys
        from her2fast.io.store import ResultsStore, RunRecord, slide_identity
        ident = slide_identity({str(slide)!r})
        store = ResultsStore({str(db)!r})
        i = 0
        while True:
            store.record(RunRecord(slide=ident, status="ok", package_version=f"v{{i}}", model_versions={{}},
                                   percentages={{"x": float(i)}}))
            if i == 5:
                print("ready", flush=True)
            i += 1
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    proc.stdout.close()
    with ResultsStore(db) as store:
        rows = list(store.rows())
    assert len(rows) >= 6
    versions = [r["package_version"] for r in rows]
    assert versions == [f"v{i}" for i in range(len(rows))]  # no gap, no duplicate, no half row
    assert all(r["percentages"] == {"x": float(i)} for i, r in enumerate(rows))


OLD_SCHEMA = """
CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, slide_path TEXT, slide_size INTEGER, slide_mtime REAL,
  slide_sha256 TEXT, status TEXT, category TEXT, score TEXT, stratum TEXT, percentages TEXT, confidence REAL,
  timings TEXT, error TEXT, package_version TEXT, model_versions TEXT, started_at REAL, finished_at REAL, outputs TEXT,
  models_key TEXT NOT NULL);
CREATE UNIQUE INDEX one_ok_run ON runs (slide_sha256, package_version, models_key) WHERE status = 'ok';
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
INSERT INTO meta VALUES ('schema_version', '1');
INSERT INTO runs (slide_path, slide_size, slide_mtime, slide_sha256, status, category, score, percentages,
  package_version, model_versions, outputs, timings, models_key)
  VALUES ('/s.svs', 3, 1.0, 'abc', 'ok', '2+', '2+', '{"3+": 1.0}', '0.0.9', '{}', '{}', '{}', '{}');
"""


def test_schema_1_database_is_migrated(tmp_path):
    import sqlite3

    db = tmp_path / "results.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(OLD_SCHEMA)
    with ResultsStore(db) as store:
        [old] = list(store.rows())
        assert old["category"] == "2+" and old["percent_complete"] is None and old["flags"] == []
        assert old["not_scorable"] is None and old["percentages"] == {"3+": 1.0}
        assert store.find_done("abc", "0.0.9", {})["id"] == old["id"]
        ident = slide_identity(make_slide(tmp_path))
        run = ok_run(ident)
        run.percent_complete, run.flags, run.not_scorable = 12.5, ["near_cutoff"], None
        inserted, row = store.insert(run)
        assert inserted and row["percent_complete"] == 12.5 and row["flags"] == ["near_cutoff"]
        assert store.insert(ok_run(ident)) == (False, row)
        assert store.get(row["id"]) == row
        version = store._conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
        assert int(version) == 3 and store.integrity_check() == "ok"
    with ResultsStore(db) as store:  # opening a migrated database again changes nothing
        assert len(list(store.rows())) == 2


def test_lookups_and_quarantine(tmp_path):
    ident = slide_identity(make_slide(tmp_path))
    run = ok_run(ident)
    run.outputs = {"json": "/out/s.her2fast.json"}
    with ResultsStore(tmp_path / "new-folder") as store:  # a missing path without suffix: a folder
        assert store.path == tmp_path / "new-folder" / "results.db"
        store.record(run)
        assert store.done_hashes("0.1.0", {"unet": "abc"}) == {ident.sha256}
        assert store.done_hashes("0.1.0", {"unet": "other"}) == frozenset()
        assert store.find_file(ident.path, ident.size, ident.mtime, "0.1.0", {"unet": "abc"})["status"] == "ok"
        assert store.find_file(ident.path, ident.size + 1, ident.mtime, "0.1.0", {"unet": "abc"}) is None
        assert store.output_owners() == {"/out/s.her2fast.json": ident.sha256}
        assert not store.is_quarantined(ident.sha256)
        store.quarantine(ident, "corrupt")
        store.quarantine(ident, "still corrupt")  # one entry per content
        assert store.is_quarantined(ident.sha256)
        assert [q["reason"] for q in store.quarantined()] == ["still corrupt"]
        assert store.find_quarantined_file(ident.path, ident.size, ident.mtime)["slide_sha256"] == ident.sha256
        assert store.export_quarantine_csv(tmp_path / "q.csv") == 1
        assert store.release(ident.sha256) and not store.release(ident.sha256)
        assert store.quarantined() == []
    with open(tmp_path / "q.csv", encoding="utf-8") as fh:
        assert list(csv.DictReader(fh))[0]["reason"] == "still corrupt"


def test_mrxs_slide_is_its_file_and_folder(tmp_path):
    from her2fast.io.store import slide_files, slide_stat

    mrxs = make_slide(tmp_path, "a.mrxs", b"index")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "Data0000.dat").write_bytes(b"x" * 10)
    assert slide_files(mrxs) == [mrxs, tmp_path / "a" / "Data0000.dat"]
    size, _, n = slide_stat(mrxs)
    assert (size, n) == (15, 2)
    before = slide_identity(mrxs)
    (tmp_path / "a" / "Data0001.dat").write_bytes(b"y")  # the scanner is still writing the folder
    assert slide_stat(mrxs)[2] == 3 and slide_identity(mrxs).sha256 != before.sha256
