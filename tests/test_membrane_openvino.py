"""The OpenVINO runtime of the membrane U-Net (``providers=["OpenVINO"]``) and how ``providers="auto"``
chooses it: same probabilities as ONNX Runtime in fp32, lanes that run at once, the probe rule, and
clear errors. The tests hold on any x86 CPU: where it has bf16 units OpenVINO really runs bf16, and
the assertions that depend on it say so."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

from her2fast.errors import InvalidInputError, ModelError
from her2fast.stages import membrane
from her2fast.synth import make_tile

pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")


def _batch(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray((rgb.astype(np.float32) / 255).transpose(2, 0, 1)[None])


@pytest.fixture(scope="module")
def tiles():
    return [
        make_tile(s, category=c, seed=seed, jpeg_quality=None).rgb
        for s, c, seed in (((256, 320), "2+", 41), ((192, 128), "3+", 42), ((96, 160), "1+", 43))
    ]


def test_openvino_f32_gives_onnxruntime_s_probabilities(tiles):
    ort_s = membrane.MembraneSession(providers=["CPUExecutionProvider"], threads=1)
    ov_s = membrane.MembraneSession(providers=["OpenVINO:f32"], threads=1)
    assert ov_s.providers == ["OpenVINO:f32"] and ov_s.session is None and ov_s.selection is None
    assert not ov_s.fell_back
    for rgb in tiles:  # shapes vary from call to call, as the slide stream's windows do
        a, b = ort_s.run(_batch(rgb)), ov_s.run(_batch(rgb))
        for x, y in zip(a, b):
            assert x.shape == y.shape == (1, *rgb.shape[:2]) and y.dtype == np.float32
            assert np.abs(x - y).max() < 1e-4
    # a batch of two
    two = np.concatenate([_batch(tiles[0]), _batch(tiles[0][::-1].copy())])
    np.testing.assert_allclose(ov_s.run(two)[0], ort_s.run(two)[0], atol=1e-4)
    # "OpenVINO" is bf16 where the CPU has it, fp32 here otherwise; the name says which ran
    best = membrane.MembraneSession(providers=["OpenVINO"], threads=1)
    assert best.providers == [f"OpenVINO:{'bf16' if membrane.openvino_bf16() else 'f32'}"]


def test_openvino_calls_at_once_each_get_a_compiled_model(tiles):
    s = membrane.MembraneSession(providers=["OpenVINO:f32"], threads=1)
    want = [s.run(_batch(rgb))[0] for rgb in tiles]
    assert s._runner.compiles == 1  # one at a time: the one compiled with the session
    got: dict[int, list] = {}
    start = threading.Barrier(3)

    def lane(k: int) -> None:
        start.wait()
        got[k] = [s.run(_batch(rgb))[0] for rgb in tiles for _ in range(2)][::2]

    for _ in range(2):  # a second "slide" with new threads compiles nothing new
        threads = [threading.Thread(target=lane, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for k in range(3):
            for w, g in zip(want, got[k]):
                np.testing.assert_array_equal(g, w)
        compiled = s._runner.compiles
        assert 1 <= compiled <= 3 and len(s._runner._idle) == compiled


def test_auto_probe_takes_openvino_only_when_the_rule_says_so(monkeypatch):
    monkeypatch.setenv("HER2FAST_AUTO_OPENVINO", "1")  # conftest turns the choice off for the other tests
    monkeypatch.setattr(membrane.runtime, "openvino_bf16", lambda: True)  # as on an AMX / AVX512-BF16 CPU
    seen = {}

    def rule(diff, flips, ms_ov, ms_ort):
        seen.update(diff=diff, flips=flips, ms_ov=ms_ov, ms_ort=ms_ort)
        return True

    monkeypatch.setattr(membrane.runtime, "prefer_openvino", rule)
    s = membrane.MembraneSession(threads=1)
    assert s.providers[0].startswith("OpenVINO:") and s.session is None
    sel = s.selection
    assert sel["chosen"] == s.providers
    assert sel["max_abs_diff"] == pytest.approx(seen["diff"], abs=1e-6)
    assert sel["flip_fraction"] == pytest.approx(seen["flips"], abs=1e-6)  # recorded rounded
    # what OpenVINO ran in depends on this CPU: fp32 agrees to rounding, bf16 (AMX / AVX512-BF16) within
    # the rule's own limits; the test stubs the rule, so it bounds what the probe measured itself
    if s.providers == ["OpenVINO:f32"]:
        assert seen["diff"] < 1e-4 and seen["flips"] == 0.0
    else:
        assert s.providers == ["OpenVINO:bf16"]
        assert seen["diff"] < 0.1 and seen["flips"] < 0.01
    assert sel["ms_openvino"] > 0 and sel["ms_onnxruntime"] > 0
    monkeypatch.setattr(membrane.runtime, "prefer_openvino", lambda *a: False)
    s = membrane.MembraneSession(threads=1)
    assert s.providers == ["CPUExecutionProvider"] and s.selection["chosen"] == ["CPUExecutionProvider"]
    # HER2FAST_AUTO_OPENVINO=0: no probe, ONNX Runtime
    monkeypatch.setattr(membrane.runtime, "prefer_openvino", lambda *a: True)
    monkeypatch.setenv("HER2FAST_AUTO_OPENVINO", "0")
    s = membrane.MembraneSession(threads=1)
    assert s.providers == ["CPUExecutionProvider"] and s.selection is None
    # an explicit list is obeyed without a probe
    s = membrane.MembraneSession(providers=["CPUExecutionProvider"], threads=1)
    assert s.selection is None


def test_auto_without_bf16_is_onnxruntime_without_a_probe(monkeypatch):
    monkeypatch.setenv("HER2FAST_AUTO_OPENVINO", "1")
    monkeypatch.setattr(membrane.runtime, "openvino_bf16", lambda: False)
    s = membrane.MembraneSession(threads=1)
    assert s.providers == ["CPUExecutionProvider"] and s.selection is None


@pytest.mark.parametrize(
    "diff, flips, ms_ov, ms_ort, take",
    [
        (0.004, 0.0, 30.0, 110.0, True),
        (0.004, 0.0, 99.0, 110.0, True),  # 0.9 of the time exactly: taken
        (0.004, 0.0, 100.0, 110.0, False),  # within noise: not worth another runtime
        (0.03, 0.0, 30.0, 110.0, False),  # disagrees
        (0.004, 0.002, 30.0, 110.0, False),  # flips too many pixels
    ],
)
def test_prefer_openvino_rule(diff, flips, ms_ov, ms_ort, take):
    assert membrane.prefer_openvino(diff, flips, ms_ov, ms_ort) is take


def test_openvino_errors(monkeypatch):
    with pytest.raises(InvalidInputError, match="OpenVINO runs alone"):
        membrane.MembraneSession(providers=["OpenVINO", "CPUExecutionProvider"])
    assert not membrane.uses_gpu(["OpenVINO"])
    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(ModelError, match=r"pip install 'her2fast\[openvino\]'"):
        membrane.MembraneSession(providers=["OpenVINO"])

    class Broken:  # an installed runtime whose shared libraries do not load
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "openvino":
                raise OSError("libopenvino.so: cannot open shared object file")

    monkeypatch.delitem(sys.modules, "openvino")
    monkeypatch.setattr(sys, "meta_path", [Broken(), *sys.meta_path])
    with pytest.raises(ModelError, match="cannot be loaded"):
        membrane.MembraneSession(providers=["OpenVINO"])


def test_a_slide_scored_with_openvino_matches_onnxruntime(tmp_path):
    import her2fast
    from her2fast.pipeline import ScoreSettings, ThreadPlan
    from her2fast.synth import make_slide

    slide = make_slide(tmp_path / "s.tiff", category="2+", width=1024, height=1024, seed=715)
    settings = ScoreSettings(tile_size=448)
    plan = ThreadPlan(readers=1, inference_threads=1, post_workers=1, queue_tiles=2, inference_lanes=2)
    a, b = (
        her2fast.score(slide.path, progress=False, providers=p, settings=settings, threads=plan)
        for p in (["CPUExecutionProvider"], ["OpenVINO:f32"])
    )
    assert b.provenance["providers"] == ["OpenVINO:f32"]
    assert a.score == b.score and len(a.cells) == len(b.cells) > 100
    np.testing.assert_array_equal(a.cells.x, b.cells.x)
    agree = (a.cells.cell_class() == b.cells.cell_class()).mean()
    assert agree >= 0.995, agree
