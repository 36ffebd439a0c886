"""`her2fast bench pipeline` end to end on a small phantom (a smoke run: the figures themselves are not checked)."""

from __future__ import annotations

import json

import pytest

from her2fast.cli import main
from her2fast.pipeline import ThreadPlan


@pytest.mark.slow
def test_bench_pipeline_prints_and_writes_ratios(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(
        [
            "bench",
            "pipeline",
            "--size",
            "1024",
            "--category",
            "3+",
            "--reference-tiles",
            "2",
            "--threads",
            "2",
            "--json",
            str(out),
            "--work-dir",
            str(tmp_path),
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    for needle in (
        "tiles/s of 512^2",
        "peak RSS",
        "projected 3,000-tile",
        "reference:",
        "ratio ours/reference",
        "windows around the epithelium",
        "ours, whole tiles (--no-crop)",
    ):
        assert needle in text, needle
    d = json.loads(out.read_text())
    assert d["ours"]["tiles"] > 0 and d["ours"]["tiles_per_s"] > 0 and d["ours"]["peak_rss_mb"] > 0
    assert d["reference"]["tiles"] == min(2, d["ours"]["tiles"]) and d["ratio"]["tile_phase"] > 0
    assert d["threads"] == ThreadPlan.for_machine(2).to_dict()  # --threads 2: the plan for 2 cores
    assert d["ours"]["crop_to_epithelium"] and 0 < d["ours"]["window_fraction"] <= 1
    assert d["ours_whole_tiles"]["tiles_per_s"] > 0 and d["ours_whole_tiles"]["ratio_tile_phase"] > 0


def test_bench_pipeline_refuses_zero_reference_tiles(tmp_path, capsys):
    # a reference of no tiles has no rate: an error that names the way out, not an "inf x" ratio
    rc = main(["bench", "pipeline", "--size", "512", "--reference-tiles", "0", "--json", str(tmp_path / "b.json")])
    assert rc != 0
    assert "--no-reference" in capsys.readouterr().err
    assert not (tmp_path / "b.json").exists()
