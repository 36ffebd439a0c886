"""her2fast.store: one row per run, atomic, idempotent, safe with several writer processes."""

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
from her2fast.store import ResultsStore, RunRecord, StoreError, slide_identity


def make_slide(tmp_path, name="s.tiff", content=b"slide-bytes"):
    p = tmp_path / name
    p.write_bytes(content)
    return p


def ok_run(identity, version="0.1.0", models=None, category="2+"):
    return RunRecord(slide=identity, status="ok", package_version=version, model_versions=models or {"unet": "abc"},
                     category=category, score=category, percentages={"3+": 4.0}, confidence=0.8, timings={"total": 1.0})


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
    from her2fast.store import ResultsStore, RunRecord, slide_identity

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
        from her2fast.store import ResultsStore, RunRecord, slide_identity
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
