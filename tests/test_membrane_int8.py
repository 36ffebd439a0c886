"""The int8 membrane model of ``training/quantize_membrane.py`` (static QDQ quantisation, per-channel weights)
and the network bench that times it: the recipe keeps the first convolution and the head in fp32, the model
agrees with fp32 on a phantom tile, calibration uses training seeds only, and ``network_main`` times every
runtime it is given. No int8 model is shipped: these tests quantise one from a few phantom tiles."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from her2fast.errors import InvalidInputError
from her2fast.stages import membrane
from her2fast.synth import make_tile

ROOT = Path(__file__).resolve().parents[1]
onnx = pytest.importorskip("onnx")  # onnxruntime.quantization needs it (test extra)
pytest.importorskip("onnxruntime")
sys.path.insert(0, str(ROOT))
from training import quantize_membrane as qm  # noqa: E402


@pytest.fixture(scope="module")
def int8_dir(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("int8")
    calib = qm.calibration_inputs(4, size=256)  # a few training-seed tiles are enough for the ranges
    path = qm.quantize(membrane.load_model_config().path, work / qm.INT8_FILE, calib)
    return qm.model_dir_for(path, work)


def _batch(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray((rgb.astype(np.float32) / 255).transpose(2, 0, 1)[None])


def test_calibration_uses_training_seeds_and_every_preset():
    plan = qm.calibration_plan(24)
    assert [s for _, s in plan] == list(range(24))
    assert {p for p, _ in plan} == set(qm.PRESET_ORDER) == set(membrane_presets())
    assert not {s for _, s in plan} & (set(qm.HELD_OUT_TILE_SEEDS) | set(qm.HELD_OUT_SLIDE_SEEDS))


def membrane_presets() -> list[str]:
    from her2fast.synth import preset_names

    return list(preset_names())


def test_first_convolution_and_head_stay_fp32(int8_dir):
    g = onnx.load(str(int8_dir / qm.INT8_FILE)).graph
    producers = {o: n for n in g.node for o in n.output}
    convs = {n.name: n for n in g.node if n.op_type == "Conv"}
    inits = {i.name for i in g.initializer}

    def weight_is_int8(conv) -> bool:
        w = producers.get(conv.input[1])
        return w is not None and w.op_type == "DequantizeLinear"

    for name in ("/net/enc.0/conv1/Conv", "/net/head/Conv"):
        assert not weight_is_int8(convs[name]) and convs[name].input[1] in inits
    quantised = [n for n, c in convs.items() if weight_is_int8(c)]
    assert len(quantised) == len(convs) - 2  # every other convolution has int8 weights


def test_int8_agrees_with_fp32_on_a_phantom_tile(int8_dir):
    rgb = make_tile(512, category="2+", seed=200_003, jpeg_quality=90).rgb  # a held-out test seed
    fp32 = membrane.MembraneSession(providers=["CPUExecutionProvider"], threads=1)
    int8 = membrane.MembraneSession(int8_dir, ["CPUExecutionProvider"], threads=1)
    a, b = fp32.run(_batch(rgb))[0], int8.run(_batch(rgb))[0]
    d = np.abs(a - b)
    assert 0 < d.max() <= 0.6  # int8 does differ, by little (0.96 with the first convolution in int8 on AVX2)
    assert d.mean() <= 0.004
    assert ((a >= 0.5) != (b >= 0.5)).mean() <= 0.005  # pixels across the threshold


def test_network_bench_times_every_runtime(int8_dir, tmp_path, capsys):
    from her2fast.bench.pipeline.network import network_main

    out = tmp_path / "net.json"
    assert (
        network_main(
            providers="CPUExecutionProvider",
            int8_model_dir=str(int8_dir),
            repeats=3,
            tiles=1,
            size=64,
            json_path=str(out),
        )
        == 0
    )
    res = json.loads(out.read_text())
    names = [r["name"] for r in res["runtimes"]]
    assert names == ["CPUExecutionProvider", "onnxruntime-cpu-int8"]
    for r in res["runtimes"]:
        assert len(r["tiles_per_s"]["runs"]) == 3 and r["tiles_per_s"]["median"] > 0
        assert r["ran_as"] == ["CPUExecutionProvider"] and r["cpu_s_per_tile"]["median"] >= 0
    assert res["runtimes"][0]["ratio_to_first"] == 1.0
    printed = capsys.readouterr().out
    assert "onnxruntime-cpu-int8" in printed and "load average before" in printed
    with pytest.raises(InvalidInputError, match="repeats"):
        network_main(providers="CPUExecutionProvider", repeats=2)
    with pytest.raises(InvalidInputError, match="multiple of 16"):
        network_main(providers="CPUExecutionProvider", size=100)


def test_network_runtimes_add_the_int8_model_to_each_runtime_family():
    import importlib.util

    from her2fast.bench.pipeline.network import network_runtimes

    names = [n for n, _, _ in network_runtimes("all", {"avx512_bf16": False}, "d")]
    assert names[0] == "onnxruntime-cpu-fp32" and "onnxruntime-cpu-int8" in names
    if importlib.util.find_spec("openvino") is not None:
        assert ("openvino-int8", "OpenVINO:f32", "d") in network_runtimes("all", {}, "d")
        assert "openvino-fp32" in names and "openvino-bf16" not in names
    assert [n for n, _, _ in network_runtimes("all", {}, None)] == [n for n, _ in membrane_runtimes("all")]


def membrane_runtimes(providers: str) -> list[tuple[str, str]]:
    from her2fast.bench.pipeline import runtimes

    return runtimes(providers, {})
