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
SECONDS = float(os.environ.get("HER2FAST_FUZZ_SECONDS", "10"))

pytest.importorskip("hypothesis")


WARM_UP = """
from hypothesis import given, settings, strategies as st

@settings(max_examples=5, database=None)
@given(st.text(max_size=12))
def draw(text):
    pass

draw()
"""


@pytest.fixture(scope="session")
def hypothesis_home(tmp_path_factory) -> Path:
    """Hypothesis's storage folder for every fuzz run of the session, its Unicode tables already built.

    Hypothesis keeps the tables behind ``st.text()`` (seconds of CPU to build) under ``.hypothesis`` of the
    working folder unless told otherwise, and the fuzz child runs in a fresh folder: without this, every
    run and every restart after a hang would build them again, inside its time budget.
    """
    home = tmp_path_factory.mktemp("hypothesis")
    env = {**os.environ, "HYPOTHESIS_STORAGE_DIRECTORY": str(home)}
    subprocess.run([sys.executable, "-c", WARM_UP], env=env, cwd=home, check=True, timeout=300)
    return home


def run_fuzz(tmp_path: Path, home: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    figures = tmp_path / "figures.json"
    proc = subprocess.run(
        [sys.executable, str(FUZZ), f"--json={figures}", f"--crashes={tmp_path / 'crashes'}", *args],
        capture_output=True,
        text=True,
        timeout=SECONDS + 300,
        env={**os.environ, "HYPOTHESIS_STORAGE_DIRECTORY": str(home)},
    )
    assert figures.exists(), proc.stdout + proc.stderr
    return proc, json.loads(figures.read_text())


def test_readers_raise_only_her2fast_errors_in_bounded_time(tmp_path, hypothesis_home):
    # one run over both targets: one set of seed files and one child process; the child gives the targets
    # turns of 10 examples each, so each gets its share of the examples whatever their speed
    proc, figures = run_fuzz(tmp_path, hypothesis_home, "--target=all", f"--seconds={SECONDS}", "--limit-s=20")
    print(proc.stdout)
    for target in ("slides", "csv"):
        assert figures["examples"].get(target, 0) >= 20, proc.stdout
    # the mutations reach past the headers: some mutated slides are still read
    assert figures["read_without_error"].get("slides", 0) >= 1, proc.stdout
    failures = (figures["non_her2fast_exceptions"], figures["hangs"], figures["crashes"])
    assert failures == (0, 0, 0), (
        proc.stdout + "\n" + "\n".join(p.read_text() for p in sorted((tmp_path / "crashes").glob("*.txt"))[:3])
    )
    assert proc.returncode == 0


@pytest.mark.slow
def test_the_harness_reports_what_it_finds(tmp_path, monkeypatch, hypothesis_home):
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
    proc, figures = run_fuzz(tmp_path, hypothesis_home, "--seconds=8", "--target=csv")
    assert proc.returncode == 1 and figures["non_her2fast_exceptions"] >= 1, proc.stdout
    assert any("KeyError" in k for k in figures["kinds"]), figures["kinds"]
    assert list((tmp_path / "crashes").glob("csv-KeyError-*.csv"))
    monkeypatch.setenv("FUZZ_HANG", "1")
    proc, figures = run_fuzz(tmp_path, hypothesis_home, "--seconds=8", "--target=csv", "--limit-s=1")
    assert proc.returncode == 1 and figures["hangs"] >= 1, proc.stdout
    assert list((tmp_path / "crashes").glob("csv-hang-*"))
