"""`her2fast bench pipeline`: each side in its own process, alternated runs, medians and spreads, the
CPU's flags and the membrane runtime each run used (a smoke run on a small phantom: the figures
themselves are not checked, their structure is)."""

from __future__ import annotations

import json
import os

import pytest

from her2fast.bench.pipeline import CPU_FLAGS, cpu_info, runtimes, spread
from her2fast.cli import main
from her2fast.pipeline import ThreadPlan

CPUINFO = """processor\t: 0
model name\t: AMD EPYC 9R14 96-Core Processor
flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni
processor\t: 1
model name\t: AMD EPYC 9R14 96-Core Processor
flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni
"""


def test_cpu_info_reads_model_cpus_and_flags():
    info = cpu_info(CPUINFO)
    assert info["model"] == "AMD EPYC 9R14 96-Core Processor" and info["cpus"] == 2
    assert set(info["flags"]) == set(CPU_FLAGS)
    assert info["flags"]["avx512_bf16"] and info["flags"]["avx512_vnni"] and info["flags"]["avx2"]
    assert not info["flags"]["amx_bf16"] and not info["flags"]["avx_vnni"]
    assert all(v is None for v in cpu_info("")["flags"].values())  # unknown, not "absent"
    here = cpu_info()  # this machine: every flag known on Linux
    assert here["cpus"] >= 1 and here["model"]


def test_runtimes_all_lists_what_is_installed_and_bf16_only_on_bf16_cpus():
    import importlib.util

    plain = dict(runtimes("all", {"avx2": True, "avx512_bf16": False, "amx_bf16": False}))
    bf16 = dict(runtimes("all", {"avx2": True, "avx512_bf16": True, "amx_bf16": False}))
    assert plain["onnxruntime-cpu-fp32"] == "CPUExecutionProvider"
    assert "openvino-bf16" not in plain
    if importlib.util.find_spec("openvino") is not None:
        assert plain["openvino-fp32"] == "OpenVINO:f32" and bf16["openvino-bf16"] == "OpenVINO"
    else:
        assert not any(name.startswith("openvino") for name in bf16)
    assert runtimes("CPUExecutionProvider", {}) == [("CPUExecutionProvider", "CPUExecutionProvider")]


def test_spread_is_median_and_range():
    s = spread([4.0, 1.0, 2.0, 10.0])
    assert (s["median"], s["min"], s["max"]) == (3.0, 1.0, 10.0) and s["runs"] == [4.0, 1.0, 2.0, 10.0]


@pytest.mark.slow
def test_bench_pipeline_alternates_sides_in_their_own_processes(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(
        [
            "bench",
            "pipeline",
            "--size",
            "512",
            "--category",
            "3+",
            "--reference-tiles",
            "1",
            "--threads",
            "2",
            "--repeats",
            "3",
            "--json",
            str(out),
            "--work-dir",
            str(tmp_path),
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    for needle in (
        "cpu: ",
        "avx512_bf16",
        "tiles/s median (min-max)",
        "tiles/s of 512^2",
        "peak RSS",
        "projected 3,000-tile",
        "ratio ours/reference: tile phase",
        "ratio of medians",
        "windows around the epithelium",
        "ours, whole tiles (--no-crop, one run)",
        "membrane ran on",
    ):
        assert needle in text, needle
    d = json.loads(out.read_text())
    assert d["repeats"] == 3 and set(d["cpu"]["flags"]) == set(CPU_FLAGS) and d["cpu"]["model"]
    assert len(d["runtimes"]) == 1
    rt = d["runtimes"][0]
    ours, ref = rt["ours"], rt["reference"]
    for side in (ours, ref):
        tps = side["tiles_per_s"]
        assert len(tps["runs"]) == 3 and tps["min"] <= tps["median"] <= tps["max"] and tps["min"] > 0
    assert rt["ratio"]["tile_phase_of_medians"] == pytest.approx(
        ours["tiles_per_s"]["median"] / ref["tiles_per_s"]["median"], rel=0.01
    )
    pids = {d["bench_pid"], ours["pid"], ref["pid"], d["reference"]["pid"]}
    assert len(pids) == 3 and os.getpid() == d["bench_pid"]  # each side in a process of its own
    assert ref["tiles"] == min(1, ours["tiles"]) and ours["tiles"] > 0  # --reference-tiles 1
    assert rt["providers"] == ["CPUExecutionProvider"] and rt["probe"] is None  # the tests keep auto on ORT
    assert [r["providers"] for r in ours["runs_detail"]] == [["CPUExecutionProvider"]] * 3
    assert ours["peak_rss_mb"] > 0 and ref["peak_rss_mb"] > 0 and len(ours["cpu_percent_tiles"]["runs"]) == 3
    assert rt["threads"] == ThreadPlan.for_machine(2).to_dict()  # --threads 2: the plan for 2 cores
    assert ours["crop_to_epithelium"] and 0 < ours["window_fraction"] <= 1
    assert rt["ours_whole_tiles"]["tiles_per_s"] > 0 and rt["ours_whole_tiles"]["ratio_tile_phase"] > 0


def test_bench_pipeline_refuses_zero_reference_tiles(tmp_path, capsys):
    # a reference of no tiles has no rate: an error that names the way out, not an "inf x" ratio
    rc = main(["bench", "pipeline", "--size", "512", "--reference-tiles", "0", "--json", str(tmp_path / "b.json")])
    assert rc != 0
    assert "--no-reference" in capsys.readouterr().err
    assert not (tmp_path / "b.json").exists()


def test_bench_pipeline_refuses_fewer_than_three_repeats(tmp_path, capsys):
    rc = main(["bench", "pipeline", "--size", "512", "--repeats", "2", "--json", str(tmp_path / "b.json")])
    assert rc != 0
    assert "--repeats 3" in capsys.readouterr().err
    assert not (tmp_path / "b.json").exists()


def test_bench_pipeline_reports_a_side_that_fails(tmp_path, capsys):
    # the reference process cannot open the slide: the error says which process stopped, no table
    bad = tmp_path / "missing.tiff"
    rc = main(["bench", "pipeline", "--slide", str(bad), "--reference-tiles", "1", "--json", str(tmp_path / "b.json")])
    assert rc != 0
    assert "reference process stopped" in capsys.readouterr().err
    assert not (tmp_path / "b.json").exists()


def test_bench_network_command_times_the_network_alone(tmp_path, capsys):
    out = tmp_path / "net.json"
    args = ["bench", "network", "--providers", "CPUExecutionProvider", "--tiles", "1", "--size", "64"]
    assert main([*args, "--repeats", "3", "--threads", "1", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert [r["name"] for r in res["runtimes"]] == ["CPUExecutionProvider"]
    assert len(res["runtimes"][0]["tiles_per_s"]["runs"]) == 3
    assert "CPUExecutionProvider" in capsys.readouterr().out
    assert main([*args, "--repeats", "2"]) == 1  # a median and a spread need three runs
    assert "repeats must be >= 3" in capsys.readouterr().err
