"""Batch workers end with the batch: after ``kill -9`` of the parent, no worker lives on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


def children(pid: int) -> set[int]:
    """Pids whose parent is ``pid`` (from /proc)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.add(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_gone(pids: set[int], seconds: float) -> set[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    return {p for p in pids if alive(p)}


@pytest.mark.slow
def test_kill_9_of_the_batch_parent_ends_its_workers(tmp_path):
    from her2fast.synth import make_slide

    slides = tmp_path / "slides"
    slides.mkdir()
    for i in range(4):
        make_slide(slides / f"s{i}.tiff", category="2+", width=1024, height=1024, seed=70 + i)
    cmd = [sys.executable, "-m", "her2fast", "batch", str(slides), "--out", str(tmp_path / "out"), "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        workers: set[int] = set()
        while time.monotonic() < deadline and proc.poll() is None:
            # spawn workers run `python -c "from multiprocessing.spawn ..."`; the resource tracker is not one
            workers = {
                p
                for p in children(proc.pid)
                if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()  # noqa: SIM118
            }
            if len(workers) >= 2:
                break
            time.sleep(0.1)
        assert proc.poll() is None and len(workers) >= 2, "no workers seen"
        time.sleep(1.0)  # the workers are busy scoring
        os.kill(proc.pid, signal.SIGKILL)  # the parent only, not its process group
        proc.wait(30)
        left = wait_gone(workers, 5.0)
        assert not left, f"workers {sorted(left)} outlived the batch"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


WATCHDOG = textwrap.dedent("""
    import multiprocessing as mp, os, sys, time

    def child(parent):
        from her2fast.service.batch import workers
        workers._watch_parent(parent, every=0.2)  # the fallback alone, without the parent-death signal
        print(os.getpid(), flush=True)
        time.sleep(120)

    if __name__ == "__main__":
        p = mp.get_context("spawn").Process(target=child, args=(os.getpid(),))
        p.start()
        time.sleep(120)
""")


def test_the_watchdog_alone_ends_an_orphaned_worker(tmp_path):
    script = tmp_path / "watchdog.py"
    script.write_text(WATCHDOG)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        child = int(proc.stdout.readline())
        assert alive(child)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        assert not wait_gone({child}, 5.0), "the orphaned child lived on"
    finally:
        proc.stdout.close()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
