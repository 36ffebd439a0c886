"""her2fast.service.batch / `her2fast batch`: finding slides, the store rows, resume after kill -9, faults, Dask."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from her2fast import InvalidInputError
from her2fast.io.store import ResultsStore, slide_identity
from her2fast.service.batch import BatchSummary, find_slides, model_versions, run_batch, score_to_store

SIZE = 768
CATEGORIES = ("3+", "1+", "2+", "0", "3+")


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory) -> list[Path]:
    """Five small phantom slides (768^2 at 0.5 um/px), each a few seconds to score."""
    from her2fast.synth import make_slide

    folder = tmp_path_factory.mktemp("batch_phantoms")
    return [
        make_slide(folder / f"ph{i}.tiff", category=c, width=SIZE, height=SIZE, seed=900 + i).path
        for i, c in enumerate(CATEGORIES)
    ]


def slides_dir(tmp_path: Path, phantoms: list[Path], n: int) -> Path:
    """A folder with copies of the first n phantom slides (no sidecars)."""
    d = tmp_path / "slides"
    d.mkdir()
    for p in phantoms[:n]:
        shutil.copy(p, d / p.name)
    return d


def cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "her2fast", *args], capture_output=True, text=True, timeout=600, **kw)


def check_outputs(row: dict) -> None:
    """The row's files exist and parse."""
    from her2fast import SlideResult
    from her2fast.scoring import CellTable

    outputs = row["outputs"]
    assert {"json", "cells"} <= set(outputs)
    result = SlideResult.from_json(Path(outputs["json"]))
    assert result.score == row["score"] and result.category == row["category"]
    assert result.percent_complete == pytest.approx(row["percent_complete"])
    CellTable.load_npz(outputs["cells"])
    if "geojson" in outputs:
        assert json.loads(Path(outputs["geojson"]).read_text())["type"] == "FeatureCollection"


def ok_rows_by_sha(db: Path) -> dict[str, int]:
    with ResultsStore(db) as store:
        rows = list(store.rows())
    counts: dict[str, int] = {}
    for r in rows:
        if r["status"] == "ok":
            counts[r["slide_sha256"]] = counts.get(r["slide_sha256"], 0) + 1
    return counts


# ------------------------------------------------------------------------------------ find_slides
def test_find_slides_folder_glob_list_sequence(tmp_path, monkeypatch):
    d = tmp_path / "scans"
    (d / "sub").mkdir(parents=True)
    (d / "series").mkdir()
    (d / ".hidden").mkdir()
    for name in (
        "a.svs",
        "b.tiff",
        "sub/c.ndpi",
        "series/l0.dcm",
        "series/l1.dcm",
        ".hidden/x.svs",
        ".y.svs",
        "a.overlay.png",
        "a.epithelium.png",
        "notes.txt",
        "b.tiff.part",
    ):
        (d / name).write_bytes(b"x")
    want = [d / "a.svs", d / "b.tiff", d / "series" / "l0.dcm", d / "sub" / "c.ndpi"]
    assert find_slides(d) == sorted(want, key=str)
    assert find_slides(str(d / "*.svs")) == [d / "a.svs"]
    assert find_slides(str(d / "**" / "*.ndpi")) == [d / "sub" / "c.ndpi"]
    listing = tmp_path / "list.txt"
    listing.write_text(f"# slides of today\n\nscans/a.svs\n{d / 'sub' / 'c.ndpi'}\nscans/a.svs\nscans/missing.svs\n")
    assert find_slides(listing) == sorted([d / "a.svs", d / "sub" / "c.ndpi", d / "missing.svs"], key=str)
    # a sequence: each item expanded, sorted, each once
    assert find_slides([d / "b.tiff", str(d / "a.svs"), d / "b.tiff"]) == [d / "a.svs", d / "b.tiff"]
    # relative paths come back absolute
    monkeypatch.chdir(tmp_path)
    assert find_slides("scans/a.svs") == [d / "a.svs"]


def test_find_slides_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidInputError, match="no slide files found"):
        find_slides(empty)
    with pytest.raises(InvalidInputError, match="no slide files found"):
        find_slides(str(tmp_path / "*.svs"))
    with pytest.raises(InvalidInputError, match="no such slide file, folder or slide list"):
        find_slides(tmp_path / "typo")
    with pytest.raises(InvalidInputError, match="no slides given"):
        find_slides([])
    nested = tmp_path / "a.txt"
    (tmp_path / "b.txt").write_text("x.svs\n")
    nested.write_text("b.txt\n")
    with pytest.raises(InvalidInputError, match="lists do not nest"):
        find_slides(nested)


def test_model_versions_match_what_the_loaders_check():
    from her2fast.pipeline import ScoreSettings
    from her2fast.stages.epithelium import default_model
    from her2fast.stages.membrane import load_model_config

    v = model_versions()
    assert set(v) == {"epithelium_svm", "membrane_unet", "settings"}
    assert v["epithelium_svm"] == default_model().sha256 and v["membrane_unet"] == load_model_config().sha256
    c = model_versions(ScoreSettings(membrane_method="classical"))
    assert set(c) == {"epithelium_svm", "settings"} and c["settings"] != v["settings"]
    # any setting is part of the key: a result scored with other rules is never reused
    from her2fast.scoring import ScoringRules
    from her2fast.stages.cells import CellSettings

    r = ScoringRules(ultralow_fraction=0.0)
    other = model_versions(ScoreSettings(rules=r, cells=CellSettings(rules=r)))
    assert other["settings"] != v["settings"] and model_versions(ScoreSettings())["settings"] == v["settings"]
    # any valid settings hash: infinite bands, numpy scalars
    import numpy as np

    odd = ScoringRules(strong_od=float("inf"))
    assert model_versions(ScoreSettings(rules=odd, cells=CellSettings(rules=odd)))["settings"] != v["settings"]
    np_w = model_versions(ScoreSettings(cells=CellSettings(cytoplasm_weight=np.float32(0.5))))
    assert np_w["settings"] == model_versions(ScoreSettings(cells=CellSettings(cytoplasm_weight=0.5)))["settings"]


# --------------------------------------------------------------------------------- score_to_store
def test_score_to_store_rows_skip_names_and_failures(tmp_path, phantoms, monkeypatch):
    out = tmp_path / "out"
    with ResultsStore(out) as store:
        # disk full while writing the report: a clear 'failed' row naming the folder, no file left behind
        import her2fast.service.report

        def full(*a, **k):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(her2fast.service.report, "write_report", full)
        row = score_to_store(phantoms[0], out, store=store, pictures=False)
        assert row["status"] == "failed" and not row["skipped"]
        assert f"cannot write the outputs to {out}" in row["error"] and "disk is full" in row["error"]
        assert sorted(p.name for p in out.iterdir()) == ["results.db", "results.db-shm", "results.db-wal"]
        monkeypatch.undo()

        row = score_to_store(phantoms[0], out, store=store, pictures=False)
        assert row["status"] == "ok" and not row["skipped"] and row["error"] is None
        assert row["slide_sha256"] == slide_identity(phantoms[0]).sha256
        assert row["model_versions"] == model_versions() and row["package_version"]
        assert row["score"] in ("0", "1+", "2+", "3+") and isinstance(row["percent_complete"], float)
        assert isinstance(row["flags"], list) and row["timings"]["total"] > 0
        assert Path(row["outputs"]["json"]) == out / "ph0.her2fast.json"
        check_outputs(row)
        again = score_to_store(phantoms[0], out, store=store, pictures=False)
        assert again["skipped"] and again["id"] == row["id"]

        # another slide with the same file name: its outputs get their own name
        other = tmp_path / "elsewhere" / "ph0.tiff"
        other.parent.mkdir()
        shutil.copy(phantoms[1], other)
        row2 = score_to_store(other, out, store=store, pictures=False, geojson=False)
        sha2 = slide_identity(other).sha256
        assert row2["status"] == "ok" and Path(row2["outputs"]["json"]) == out / f"ph0-{sha2[:8]}.her2fast.json"
        check_outputs(row2)
        assert json.loads(Path(row["outputs"]["json"]).read_text())["path"] == str(phantoms[0])

        # bad slides give 'failed' rows, never exceptions
        bad = tmp_path / "bad.svs"
        bad.write_bytes(b"not a slide" * 100)
        failed = score_to_store(bad, out, store=store)
        assert failed["status"] == "failed" and "UnsupportedSlideError" in failed["error"] and not failed["outputs"]
        missing = score_to_store(tmp_path / "gone.svs", out, store=store)
        assert missing["status"] == "failed" and "slide file not found" in missing["error"]
        assert store.integrity_check() == "ok"
        assert [r["status"] for r in store.rows()] == ["failed", "ok", "ok", "failed", "failed"]


# --------------------------------------------------------------------------------------- run_batch
def test_batch_bad_and_partial_slides_then_rerun(tmp_path, phantoms):
    """A corrupt and a partially written slide fail with their reasons, the rest is scored; a rerun after the
    partial file is complete scores just that one: nothing lost, nothing duplicated."""
    d = tmp_path / "slides"
    d.mkdir()
    shutil.copy(phantoms[0], d / "good.tiff")
    full = phantoms[1].read_bytes()
    (d / "partial.tiff").write_bytes(full[: len(full) // 3])
    (d / "corrupt.svs").write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    out = tmp_path / "out"
    seen: list[dict] = []
    summary = run_batch(d, out, workers=1, progress=False, pictures=False, geojson=False, on_row=seen.append)
    assert isinstance(summary, BatchSummary)
    assert [Path(r["slide_path"]).name for r in summary.rows] == ["corrupt.svs", "good.tiff", "partial.tiff"]
    status = {Path(r["slide_path"]).name: r for r in summary.rows}
    assert status["good.tiff"]["status"] == "ok"
    assert status["corrupt.svs"]["status"] == "failed" and "corrupt" in status["corrupt.svs"]["error"]
    assert status["partial.tiff"]["status"] == "failed" and status["partial.tiff"]["error"]
    assert (summary.n_scored, summary.n_skipped, summary.n_failed, summary.exit_code) == (1, 0, 2, 2)
    assert len(seen) == 3
    check_outputs(status["good.tiff"])

    (d / "partial.tiff").write_bytes(full)  # the copy finished
    again = run_batch(d, out, workers=1, progress=False, pictures=False, geojson=False)
    st = {Path(r["slide_path"]).name: r for r in again.rows}
    assert st["good.tiff"]["skipped"] and st["good.tiff"]["id"] == status["good.tiff"]["id"]
    assert st["partial.tiff"]["status"] == "ok" and not st["partial.tiff"]["skipped"]
    assert (again.n_scored, again.n_skipped, again.n_failed) == (1, 1, 1)
    counts = ok_rows_by_sha(out / "results.db")
    assert counts == {slide_identity(d / "good.tiff").sha256: 1, slide_identity(d / "partial.tiff").sha256: 1}

    # a list of slide files keeps its order and repeats (one row per input)
    listed = run_batch([d / "partial.tiff", d / "good.tiff", d / "partial.tiff"], out, progress=False)
    assert [Path(r["slide_path"]).name for r in listed.rows] == ["partial.tiff", "good.tiff", "partial.tiff"]
    assert all(r["skipped"] for r in listed.rows) and listed.n_skipped == 2


@pytest.mark.slow
def test_kill_9_mid_batch_then_rerun_loses_and_duplicates_nothing(tmp_path, phantoms):
    d = slides_dir(tmp_path, phantoms, 5)
    out = tmp_path / "out"
    db = out / "results.db"
    cmd = [sys.executable, "-m", "her2fast", "batch", str(d), "--out", str(out), "--workers", "2", "--no-pictures"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    n = 0
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists():
                try:
                    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                        n = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
                except sqlite3.Error:
                    n = 0
                if n >= 1:
                    break
            time.sleep(0.05)  # slides of this size score in about a second: kill soon after the first
        assert proc.poll() is None, "the batch finished before it could be killed"
        assert n >= 1
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the parent and its workers, mid-slide
        proc.wait(30)
    with ResultsStore(db) as store:
        assert store.integrity_check() == "ok"
        before = list(store.rows())
    assert 1 <= len(before) < 5 and all(r["status"] == "ok" for r in before)
    for r in before:
        check_outputs(r)

    rerun = cli("batch", str(d), "--out", str(out), "--workers", "2", "--no-pictures")
    assert rerun.returncode == 0, rerun.stderr
    assert "already done" in rerun.stdout and "5 slides" in rerun.stderr
    with ResultsStore(db) as store:
        rows = list(store.rows())
    assert len(rows) == 5 and [r["id"] for r in rows[: len(before)]] == [r["id"] for r in before]
    assert sorted(Path(r["slide_path"]).name for r in rows) == sorted(p.name for p in phantoms)
    assert all(r["status"] == "ok" for r in rows)
    assert ok_rows_by_sha(db) == {slide_identity(d / p.name).sha256: 1 for p in phantoms}
    for r in rows:
        check_outputs(r)
    assert not list(out.glob(".her2fast-tmp-*"))  # the killed workers' temporary folders are gone
    with open(out / "results.csv", encoding="utf-8") as fh:
        assert len(fh.read().splitlines()) == 6


DISK_FULL = textwrap.dedent("""
    import resource, signal, sys
    limit = int(sys.argv[1])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    from her2fast.cli import main
    sys.exit(main(sys.argv[2:]))
""")


@pytest.mark.slow
def test_disk_full_on_output_folder(tmp_path, phantoms):
    """Files can't grow past a limit (RLIMIT_FSIZE): the outputs fail with a clear error, the store stays
    sound; with a limit so small the store can't be written either, the batch stops with a clear error;
    without the limit, a rerun completes with one ok row."""
    d = slides_dir(tmp_path, phantoms, 1)
    out = tmp_path / "out"
    ResultsStore(out).close()
    args = ["batch", str(d), "--out", str(out), "--no-pictures", "-q"]

    small = subprocess.run(
        [sys.executable, "-c", DISK_FULL, str(64 << 10), *args], capture_output=True, text=True, timeout=300
    )
    assert small.returncode == 1, small.stderr
    with ResultsStore(out) as store:
        assert store.integrity_check() == "ok"
        rows = list(store.rows())
    assert [r["status"] for r in rows] == ["failed"]
    assert f"cannot write the outputs to {out}" in rows[0]["error"] and "File too large" in rows[0]["error"]
    assert not [p for p in out.iterdir() if not p.name.startswith("results.")]  # no partial outputs

    tiny = subprocess.run([sys.executable, "-c", DISK_FULL, "2048", *args], capture_output=True, text=True, timeout=300)
    assert tiny.returncode != 0
    assert "results store" in tiny.stderr and str(out) in tiny.stderr
    with ResultsStore(out) as store:
        assert store.integrity_check() == "ok"
        assert [r["status"] for r in store.rows()] in (["failed"], ["failed", "failed"])

    fine = cli(*args)
    assert fine.returncode == 0, fine.stderr
    assert ok_rows_by_sha(out / "results.db") == {slide_identity(d / phantoms[0].name).sha256: 1}
    with ResultsStore(out) as store:
        for r in store.rows():
            if r["status"] == "ok":
                check_outputs(r)


def test_cli_batch_help_and_bad_input(tmp_path):
    h = cli("batch", "--help")
    assert h.returncode == 0 and "number of slides that failed" in " ".join(h.stdout.split())
    r = cli("batch", str(tmp_path / "nothing-here"), "--out", str(tmp_path / "o"))
    assert r.returncode == 1 and "no such slide file, folder or slide list" in r.stderr


# -------------------------------------------------------------------------------------------- Dask
@pytest.mark.slow
def test_dask_cluster_scores_into_the_same_store(tmp_path, phantoms):
    distributed = pytest.importorskip("distributed")

    d = slides_dir(tmp_path, phantoms, 3)
    out = tmp_path / "out"
    (d / "broken.svs").write_bytes(b"\0" * 4096)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        summary = run_batch(d, out, scheduler=cluster.scheduler_address, progress=False, pictures=False)
        assert (summary.n_scored, summary.n_failed, summary.exit_code) == (3, 1, 1)
        again = run_batch(d, out, scheduler=cluster.scheduler_address, progress=False, pictures=False)
        assert (again.n_scored, again.n_skipped, again.n_failed) == (0, 3, 1)
    for r in summary.rows:
        if r["status"] == "ok":
            check_outputs(r)
    assert ok_rows_by_sha(out / "results.db") == {slide_identity(d / p.name).sha256: 1 for p in phantoms[:3]}


def _worker_pids(parent: int) -> list[int]:
    """Pool worker processes (spawned children running spawn_main, not the resource tracker)."""
    pids = []
    for child in Path(f"/proc/{parent}/task/{parent}/children").read_text().split():
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
        if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
            pids.append(int(child))
    return pids


def _worker_inside_a_slide(parent: int, folder: Path) -> int | None:
    """A pool worker that has a slide of ``folder`` open (it is scoring it), or None."""
    for pid in _worker_pids(parent):
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    if os.readlink(fd).startswith(str(folder.resolve()) + os.sep):
                        return pid
                except OSError:  # closed meanwhile
                    continue
        except OSError:  # the worker exited meanwhile
            continue
    return None


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_a_dead_worker_costs_no_slide(tmp_path, phantoms):
    """A worker killed mid-slide (as by the out-of-memory killer): the slides in flight are rerun one at a time,
    the batch finishes with every slide scored once."""
    d = slides_dir(tmp_path, phantoms, 3)
    out = tmp_path / "out"
    with subprocess.Popen(
        [sys.executable, "-m", "her2fast", "batch", str(d), "--out", str(out), "--workers", "2", "--no-pictures", "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            # the moment a worker has one of the slides open it is inside that slide (a slide of this size
            # scores in about a second: a fixed wait could find the batch finished)
            deadline = time.monotonic() + 120
            victim = None
            while time.monotonic() < deadline and proc.poll() is None and victim is None:
                victim = _worker_inside_a_slide(proc.pid, d)
                time.sleep(0.02)
            assert victim is not None, "no worker found inside a slide"
            os.kill(victim, signal.SIGKILL)
            _, err = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert ok_rows_by_sha(out / "results.db") == {slide_identity(d / p.name).sha256: 1 for p in phantoms[:3]}
    with ResultsStore(out) as store:
        assert len(list(store.rows())) == 3  # no failed row either: the killed slide was scored again
