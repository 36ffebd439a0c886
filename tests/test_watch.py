"""her2fast.service.watch / `her2fast watch`: a real background service fed by slow copies, a corrupt file, SIGTERM,
a restart that picks up what arrived meanwhile and scores nothing twice."""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from her2fast import InvalidInputError
from her2fast.io.store import ResultsStore, slide_identity
from her2fast.service.watch import watch


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory) -> list[Path]:
    """Two small phantom slides (768^2)."""
    from her2fast.synth import make_slide

    folder = tmp_path_factory.mktemp("watch_phantoms")
    return [
        make_slide(folder / f"w{i}.tiff", category=c, width=768, height=768, seed=950 + i).path
        for i, c in enumerate(("3+", "1+"))
    ]


def db_rows(db: Path) -> list[dict]:
    """The runs table, read-only (does not disturb the service)."""
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute("SELECT * FROM runs ORDER BY id")]
    except sqlite3.Error:
        return []


def wait_for(condition, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the watch process exited ({proc.returncode}) while waiting for {what}")
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def slow_copy(src: Path, dest: Path, chunks: int = 8, pause: float = 0.2) -> None:
    """Write ``dest`` in pieces with pauses, like a scanner or a network copy."""
    data = src.read_bytes()
    step = len(data) // chunks + 1
    with open(dest, "wb") as fh:
        for i in range(0, len(data), step):
            fh.write(data[i : i + step])
            fh.flush()
            time.sleep(pause)


@pytest.mark.slow
def test_watch_service_partial_writes_corrupt_file_sigterm_restart(tmp_path, phantoms):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    db, log = out / "results.db", out / "her2fast-watch.log"
    cmd = [
        sys.executable,
        "-m",
        "her2fast",
        "watch",
        str(inbox),
        "--out",
        str(out),
        "--settle",
        "1.5",
        "--poll",
        "0.1",
        "--no-pictures",
    ]
    with open(tmp_path / "stderr.txt", "wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
    try:
        wait_for(lambda: log.exists() and "watching" in log.read_text(), 120, "the service to start", proc)
        slow_copy(phantoms[0], inbox / "slide1.tiff")  # 8 pieces over ~1.6 s, each pause well below --settle
        copied = time.time()
        garbage = np.random.default_rng(1).integers(0, 256, 30_000, dtype=np.uint8).tobytes()
        (inbox / "garbage.svs").write_bytes(garbage)
        wait_for(lambda: len(db_rows(db)) >= 2, 240, "a row for each file", proc)
        time.sleep(1)  # ten more polls: nothing else may happen
        rows = db_rows(db)
        by_name = {Path(r["slide_path"]).name: r for r in rows}
        assert len(rows) == 2 and set(by_name) == {"slide1.tiff", "garbage.svs"}
        ok = by_name["slide1.tiff"]
        assert ok["status"] == "ok" and ok["slide_sha256"] == slide_identity(phantoms[0]).sha256
        assert ok["slide_size"] == phantoms[0].stat().st_size and ok["started_at"] >= copied - 0.5
        assert by_name["garbage.svs"]["status"] == "failed"
        assert "garbage.svs" in (out / "quarantine.csv").read_text()

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    text = log.read_text()
    assert "SIGTERM received" in text and "stopped: 1 scored" in text
    assert text.count(f"scoring {inbox / 'slide1.tiff'}") == 1
    assert f"quarantined {inbox / 'garbage.svs'}" in text

    # while the service is down a second slide arrives; the restart scores it and nothing else
    shutil.copy(phantoms[1], inbox / "slide2.tiff")
    start = len(text)
    again = subprocess.run(cmd + ["--once"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    second = log.read_text()[start:]
    assert second.count("scoring ") == 1 and f"scoring {inbox / 'slide2.tiff'}" in second
    rows = db_rows(db)
    assert len(rows) == 3 and [Path(r["slide_path"]).name for r in rows if r["status"] == "ok"] == [
        "slide1.tiff",
        "slide2.tiff",
    ]
    with ResultsStore(db) as store:
        assert store.integrity_check() == "ok" and len(store.quarantined()) == 1


def test_watch_in_process_once_copy_under_new_name_and_lock(tmp_path, phantoms):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    shutil.copy(phantoms[0], inbox / "a.tiff")
    (inbox / "a.tiff.part").write_bytes(b"being written")  # not a slide name: never looked at
    summary = watch(inbox, out, settle=0.3, poll=0.05, once=True, pictures=False, geojson=False)
    assert (summary.scored, summary.quarantined) == (1, 0)
    # the same content under another name is recognised by its hash
    shutil.copy(phantoms[0], inbox / "copy-of-a.tiff")
    summary = watch(inbox, out, settle=0.3, poll=0.05, once=True, pictures=False, geojson=False)
    assert (summary.scored, summary.skipped) == (0, 1)
    assert len(db_rows(out / "results.db")) == 1

    # one watcher per output folder; a stop event ends the loop
    stop = threading.Event()
    first = threading.Thread(
        target=watch, args=(tmp_path / "empty", out), kwargs=dict(poll=0.05, stop=stop), daemon=True
    )
    (tmp_path / "empty").mkdir()
    first.start()
    log = out / "her2fast-watch.log"
    deadline = time.monotonic() + 60
    while log.read_text().count("watching") < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    with pytest.raises(InvalidInputError, match="already writing"):
        watch(inbox, out, once=True)
    stop.set()
    first.join(30)
    assert not first.is_alive()
    with pytest.raises(InvalidInputError, match="not a folder"):
        watch(tmp_path / "nope", out)
