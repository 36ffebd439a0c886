"""The fuzz harness (benchmarks/fuzz.py) for a short, bounded run: mutated slides and reference CSVs give
her2fast errors only, within the time limit of each call.

The long run is ``python benchmarks/fuzz.py --minutes 10`` (or ``HER2FAST_FUZZ_SECONDS=600 pytest
tests/test_fuzz.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parents[1] / "benchmarks" / "fuzz.py"
SECONDS = float(os.environ.get("HER2FAST_FUZZ_SECONDS", "20"))

pytest.importorskip("hypothesis")


def run_fuzz(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    figures = tmp_path / "figures.json"
    proc = subprocess.run(
        [sys.executable, str(FUZZ), f"--json={figures}", f"--crashes={tmp_path / 'crashes'}", *args],
        capture_output=True,
        text=True,
        timeout=SECONDS + 300,
    )
    assert figures.exists(), proc.stdout + proc.stderr
    return proc, json.loads(figures.read_text())


@pytest.mark.parametrize("target, share", [("slides", 0.75), ("csv", 0.5)])
def test_readers_raise_only_her2fast_errors_in_bounded_time(tmp_path, target, share):
    # one run per target, each with its own time, so that on a busy CPU (the suite runs on every core) neither
    # target's share depends on the other's speed; the time includes making the seed files and starting the child (a few seconds on a busy CPU)
    proc, figures = run_fuzz(tmp_path, f"--target={target}", f"--seconds={SECONDS * share}", "--limit-s=20")
    print(proc.stdout)
    assert figures["examples"][target] >= 20, proc.stdout
    if target == "slides":  # the mutations reach past the headers: some mutated files are still read
        assert figures["read_without_error"].get("slides", 0) >= 1, proc.stdout
    failures = (figures["non_her2fast_exceptions"], figures["hangs"], figures["crashes"])
    assert failures == (0, 0, 0), (
        proc.stdout + "\n" + "\n".join(p.read_text() for p in sorted((tmp_path / "crashes").glob("*.txt"))[:3])
    )
    assert proc.returncode == 0


@pytest.mark.slow
def test_the_harness_reports_what_it_finds(tmp_path, monkeypatch):
    """A reader that raises a non-her2fast error, and one that hangs, are both counted and kept."""
    sitecustomize = tmp_path / "site" / "sitecustomize.py"
    sitecustomize.parent.mkdir()
    sitecustomize.write_text(
        "import os, time\n"
        "import her2fast.validation.reference_csv as r\n"
        "def broken(path, check_files=True):\n"
        "    if os.environ.get('FUZZ_HANG') and b'3+' in open(path, 'rb').read():\n"
        "        time.sleep(60)\n"
        "    raise KeyError('planted')\n"
        "r.read_reference_csv = broken\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(sitecustomize.parent) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc, figures = run_fuzz(tmp_path, "--seconds=8", "--target=csv")
    assert proc.returncode == 1 and figures["non_her2fast_exceptions"] >= 1, proc.stdout
    assert any("KeyError" in k for k in figures["kinds"]), figures["kinds"]
    assert list((tmp_path / "crashes").glob("csv-KeyError-*.csv"))
    monkeypatch.setenv("FUZZ_HANG", "1")
    proc, figures = run_fuzz(tmp_path, "--seconds=12", "--target=csv", "--limit-s=1")
    assert proc.returncode == 1 and figures["hangs"] >= 1, proc.stdout
    assert list((tmp_path / "crashes").glob("csv-hang-*"))
