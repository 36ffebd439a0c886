"""Tests of her2fast.stages.membrane: the shipped ONNX U-Net, its runtime, the classical baseline, and (when
torch is installed) export parity and a tiny training run of training/."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from her2fast.errors import InvalidInputError, ModelError
from her2fast.stages import membrane
from her2fast.synth import make_tile

ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = membrane.default_model_dir()
DICE_FLOOR = 0.80  # the shipped model reaches ~0.9 on phantoms; this catches a broken model or pipeline


def _dice(prob: np.ndarray, truth: np.ndarray) -> float:
    p = prob >= 0.5
    return 2 * np.count_nonzero(p & truth) / (np.count_nonzero(p) + np.count_nonzero(truth))


@pytest.fixture(scope="module")
def phantom():
    return make_tile(256, category="3+", seed=987654)


def test_shipped_model_files_and_sha256():
    cfg = json.loads((MODEL_DIR / "config.json").read_text())
    onnx_path = MODEL_DIR / cfg["file"]
    assert onnx_path.stat().st_size < 8 * 2**20
    assert hashlib.sha256(onnx_path.read_bytes()).hexdigest() == cfg["sha256"]
    assert cfg["opset"] >= 17 and cfg["mpp"] == 0.5 and cfg["class_names"] == ["background", "membrane"]
    assert (MODEL_DIR / "MODEL_CARD.md").exists()
    mc = membrane.load_model_config()
    assert mc.output_names == ("membrane", "edge") and mc.tile_size % mc.multiple == 0


def test_shipped_probe_tile_is_what_the_script_makes(monkeypatch):
    """The tile ``providers="auto"`` times both CPU runtimes on ships with the model as a PNG; it stays the
    tile ``scripts/make_probe_tile.py`` renders, so a change of the phantom generator shows here (then
    rerun the script)."""
    spec = importlib.util.spec_from_file_location("make_probe_tile", ROOT / "scripts" / "make_probe_tile.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.DEFAULT_OUT.relative_to(ROOT) == Path("her2fast", "models", "membrane_unet", membrane.PROBE_TILE)
    shipped = membrane.probe_tile()
    assert shipped.shape == (512, 512, 3) and shipped.dtype == np.uint8
    np.testing.assert_array_equal(
        shipped, script.probe_tile(), err_msg="the phantom generator changed: run python scripts/make_probe_tile.py"
    )
    monkeypatch.setattr(membrane.model, "PROBE_TILE", "no_such_probe.png")
    with pytest.raises(ModelError, match="probe tile .*no_such_probe.png.*reinstall"):
        membrane.probe_tile()


def test_predict_phantom_reaches_dice_floor(phantom):
    pytest.importorskip("onnxruntime")
    prob = membrane.predict(phantom.rgb, 0.5, threads=1)
    assert prob.shape == (256, 256) and prob.dtype == np.float32
    assert 0.0 <= prob.min() and prob.max() <= 1.0
    assert _dice(prob, phantom.membrane_mask) >= DICE_FLOOR


def test_unet_beats_classical_on_phantom(phantom):
    pytest.importorskip("onnxruntime")
    unet = _dice(membrane.predict(phantom.rgb, 0.5, threads=1), phantom.membrane_mask)
    classical = _dice(membrane.predict(phantom.rgb, 0.5, method="classical"), phantom.membrane_mask)
    assert 0.3 < classical < unet


def test_predict_any_size_and_mpp():
    pytest.importorskip("onnxruntime")
    t = make_tile((150, 610), category="2+", seed=5, mpp=0.4)
    maps = membrane.predict_maps(t.rgb, 0.4, threads=1, batch_size=3)
    assert maps.membrane.shape == maps.edge.shape == (150, 610)
    assert maps.membrane.dtype == maps.edge.dtype == np.float32
    # tiled + stitched (0.4 um/px -> 0.5: 488 px wide, 2 tiles) still finds the membrane
    assert _dice(maps.membrane, t.membrane_mask) >= DICE_FLOOR - 0.1
    tiny = membrane.predict(t.rgb[:5, :7], 0.4, threads=1)
    assert tiny.shape == (5, 7)


def test_session_is_cached_and_on_cpu():
    pytest.importorskip("onnxruntime")
    a = membrane.get_session(threads=1)
    assert membrane.get_session(threads=1) is a
    assert "CPUExecutionProvider" in a.providers
    s = membrane.get_session(providers=["CPUExecutionProvider"], threads=1)
    assert s.providers == ["CPUExecutionProvider"] and not s.fell_back


def test_invalid_inputs(phantom):
    with pytest.raises(InvalidInputError, match=r"image must be an RGB array of shape \(H, W, 3\)"):
        membrane.predict(phantom.rgb[..., 0], 0.5)
    with pytest.raises(InvalidInputError, match="dtype uint8"):
        membrane.predict(phantom.rgb.astype(np.float32) / 255, 0.5)
    with pytest.raises(InvalidInputError, match="mpp must be finite and > 0"):
        membrane.predict(phantom.rgb, 0.0)
    with pytest.raises(InvalidInputError, match="method must be one of"):
        membrane.predict(phantom.rgb, 0.5, method="otsu")
    pytest.importorskip("onnxruntime")
    with pytest.raises(InvalidInputError, match="not available"):
        membrane.predict(phantom.rgb, 0.5, providers=["NoSuchExecutionProvider"])
    with pytest.raises(InvalidInputError, match="batch must be float32"):
        membrane.get_session(threads=1).run(np.zeros((1, 3, 64, 64), np.float64))


def test_missing_and_corrupt_model(tmp_path, phantom):
    with pytest.raises(ModelError, match="config not found"):
        membrane.load_model_config(tmp_path)
    shutil.copy(MODEL_DIR / "config.json", tmp_path / "config.json")
    with pytest.raises(ModelError, match="model file not found"):
        membrane.load_model_config(tmp_path)
    pytest.importorskip("onnxruntime")
    (tmp_path / "model.onnx").write_bytes(b"not an onnx file")
    with pytest.raises(ModelError, match="sha256"):
        membrane.predict(phantom.rgb, 0.5, model_dir=tmp_path)


def test_gpu_fallback_is_detected(monkeypatch):
    class FakeSession:
        def __init__(self, path, sess_options=None, providers=None):
            self.requested = providers

        def get_providers(self):
            return ["CPUExecutionProvider"]

    class Opts:
        def add_session_config_entry(self, key, value):
            setattr(self, key, value)

    fake = types.SimpleNamespace(
        get_available_providers=lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"],
        SessionOptions=Opts,
        InferenceSession=FakeSession,
        ExecutionMode=types.SimpleNamespace(ORT_SEQUENTIAL=0),
        GraphOptimizationLevel=types.SimpleNamespace(ORT_ENABLE_ALL=99),
    )
    monkeypatch.setattr(membrane.runtime, "_import_ort", lambda: fake)
    with pytest.warns(RuntimeWarning, match="runs on the CPU"):
        s = membrane.MembraneSession(providers="auto")
    assert s.requested == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert s.fell_back and s.providers == ["CPUExecutionProvider"]


def test_clear_error_without_onnxruntime(monkeypatch, phantom):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ModelError, match=r"pip install 'her2fast\[cpu\]'"):
        membrane.MembraneSession()
    # the classical baseline needs no onnxruntime
    assert membrane.predict(phantom.rgb[:64, :64], 0.5, method="classical").shape == (64, 64)


def test_runs_without_torch():
    pytest.importorskip("onnxruntime")
    # a meta-path finder that refuses torch behaves as if torch were not installed
    code = (
        "import sys\n"
        "class NoTorch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "import numpy as np\n"
        "from her2fast import membrane\n"
        "img = np.full((64, 64, 3), 200, np.uint8)\n"
        "assert membrane.predict(img, 0.5, threads=1).shape == (64, 64)\n"
        "assert membrane.predict(img, 0.5, method='classical').shape == (64, 64)\n"
        "assert not any(m.split('.')[0] == 'torch' for m in sys.modules)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_classical_baseline(phantom):
    maps = membrane.predict_maps(phantom.rgb, 0.5, method="classical")
    assert maps.method == "classical" and maps.membrane.dtype == np.float32
    assert 0 <= maps.membrane.min() and maps.membrane.max() <= 1
    assert _dice(maps.membrane, phantom.membrane_mask) > 0.3
    blank = membrane.predict(np.full((64, 64, 3), 245, np.uint8), 0.5, method="classical")
    assert (blank >= 0.5).mean() == 0


# --- training/ (only when torch is installed; CI does not install it) -------------------------------------


def test_export_parity_with_torch(phantom):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    sys.path.insert(0, str(ROOT))
    from training.export_membrane import CalibratedWrapper, build_model

    cfg = membrane.load_model_config()
    weights = ROOT / "training" / "weights" / f"membrane_unet_w{cfg.raw['architecture']['width']}.npz"
    if not weights.exists():
        pytest.skip(f"training weights not present: {weights}")
    torch.set_num_threads(1)
    model, _ = build_model(weights)
    wrapper = CalibratedWrapper(model, cfg.raw["calibration"]["logit_bias"]).eval()
    x = np.concatenate([phantom.rgb[None], np.random.default_rng(0).integers(0, 256, (1, 256, 256, 3))])
    x = np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32) / 255
    with torch.inference_mode():
        tm, te = (a.numpy()[:, 0] for a in wrapper(torch.from_numpy(x)))
    om, oe = membrane.get_session(threads=1).run(x)
    assert np.abs(tm - om).max() <= 1e-4 and np.abs(te - oe).max() <= 1e-4


def test_tiny_training_run(tmp_path):
    torch = pytest.importorskip("torch")
    sys.path.insert(0, str(ROOT))
    from training.checkpoint import load_weights
    from training.config import TrainConfig
    from training.train_membrane import train

    cfg = TrainConfig.from_dict(
        {
            "name": "tiny",
            "model": {"width": 4, "depth": 2},
            "data": {
                "cache_dir": str(tmp_path / "cache"),
                "tile_size": 64,
                "train_n": 2,
                "val_n": 1,
                "crop": 48,
                "batch": 2,
            },
            "optim": {"steps": 3, "warmup_steps": 1},
            "run": {"out_dir": str(tmp_path / "run"), "log_every": 1, "val_every": 2, "ckpt_every": 2},
        }
    )
    first = train(cfg, verbose=False)
    assert first["steps"] == 3 and (tmp_path / "run" / "weights.npz").exists()
    cfg.optim.steps = 4  # resumes from the checkpoint at step 3
    second = train(cfg, verbose=False)
    assert second["steps"] == 4
    _, meta = load_weights(tmp_path / "run" / "weights.npz")
    assert meta["unet"]["width"] == 4 and torch.get_num_threads() >= 1
    # both kinds of file evaluate (the val tile stands in for the test set here)
    from training.eval_checkpoint import evaluate_file

    val = str(tmp_path / "cache" / "val.npz")
    for name in ("weights.npz", "checkpoint.npz"):
        r = evaluate_file(str(tmp_path / "run" / name), val_cache=val, test_cache=val)
        assert 0.0 <= r["test_dice"] <= 1.0 and 0.0 < r["threshold"] < 1.0 and r["step"] in (3, 4), (name, r)
    with pytest.raises(ValueError, match="unknown key"):
        TrainConfig.from_dict({"optim": {"learning_rate": 1.0}})


def test_training_cache_rerenders_when_the_generator_changes(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT))
    import her2fast.synth as synth
    from training.data import CacheSpec, build_cache, load_cache

    spec = CacheSpec(n=1, size=32, seed0=7)
    path = build_cache(tmp_path / "c.npz", spec, verbose=False)
    meta = json.loads(str(load_cache(path)["meta"]))
    assert meta["generator_version"] == synth.GENERATOR_VERSION
    stamp = path.stat().st_mtime_ns
    build_cache(path, spec, verbose=False)  # same spec and generator: kept
    assert path.stat().st_mtime_ns == stamp
    monkeypatch.setattr(synth, "GENERATOR_VERSION", synth.GENERATOR_VERSION + "-changed")
    build_cache(path, spec, verbose=False)  # another generator: rendered again
    assert json.loads(str(load_cache(path)["meta"]))["generator_version"].endswith("-changed")


def test_membrane_dice_term_of_the_loss():
    torch = pytest.importorskip("torch")
    sys.path.insert(0, str(ROOT))
    from training.losses import membrane_loss, soft_dice_membrane

    g = torch.from_numpy(np.random.default_rng(1).random((2, 16, 16)) < 0.2).long()
    sure = torch.stack([(1 - g) * 30.0 - 15.0, g * 30.0 - 15.0], 1)  # softmax ~ the labels
    assert float(soft_dice_membrane(sure, g)) < 1e-3
    assert float(soft_dice_membrane(-sure, g)) > 0.99  # every pixel wrong
    # reference: 1 - (2 sum(p g) + 1) / (sum p + sum g + 1) with p the membrane softmax
    logits = torch.from_numpy(np.random.default_rng(2).normal(size=(2, 2, 16, 16))).float()
    p = torch.softmax(logits, 1)[:, 1]
    ref = 1 - (2 * (p * g).sum() + 1) / (p.sum() + g.sum() + 1)
    assert float(soft_dice_membrane(logits, g)) == pytest.approx(float(ref), rel=1e-6)
    edge_logits, edge = torch.zeros(2, 1, 16, 16), torch.zeros(2, 1, 16, 16)
    paper, ce, dl, dm = membrane_loss(logits, edge_logits, g, edge)
    assert float(dm) == 0.0 and float(paper) == pytest.approx(float(ce + 1.1 * dl))
    total, ce2, dl2, dm2 = membrane_loss(logits, edge_logits, g, edge, membrane_dice_weight=0.5)
    assert float(dm2) == pytest.approx(float(ref), rel=1e-6)
    assert float(total) == pytest.approx(float(paper + 0.5 * dm2), rel=1e-6)


def test_finetune_on_png_pairs_and_export(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from PIL import Image

    sys.path.insert(0, str(ROOT))
    from training.finetune_membrane import main as finetune_main

    weights = ROOT / "training" / "weights" / "membrane_unet_w8.npz"
    if not weights.exists():
        pytest.skip(f"training weights not present: {weights}")
    pairs = tmp_path / "pairs"
    pairs.mkdir()
    for i, cat in enumerate(["3+", "2+"]):
        t = make_tile(160, category=cat, seed=50 + i, mpp=0.25)
        Image.fromarray(t.rgb).save(pairs / f"t{i}.png")
        Image.fromarray(t.membrane_mask.astype(np.uint8) * 255).save(pairs / f"t{i}_mask.png")
    finetune_main(
        [
            "--pairs",
            str(pairs),
            "--mpp",
            "0.25",
            "--out",
            str(tmp_path / "run"),
            "--steps",
            "2",
            "--crop",
            "64",
            "--batch",
            "2",
            "--weights",
            str(weights),
            "--export",
            str(tmp_path / "model"),
        ]
    )
    prob = membrane.predict(make_tile(96, category="3+", seed=3).rgb, 0.5, model_dir=tmp_path / "model", threads=1)
    assert prob.shape == (96, 96)


def test_predict_maps_batch_equals_predict_maps_per_image():
    from her2fast.stages.membrane import predict_maps, predict_maps_batch
    from her2fast.synth import make_tile

    tiles = [make_tile(160, category=c, seed=s).rgb for c, s in (("3+", 41), ("1+", 42), ("0", 43))]
    for batch_size in (1, 2, 4):
        got = predict_maps_batch(tiles, 0.5, batch_size=batch_size)
        for im, m in zip(tiles, got):
            ref = predict_maps(im, 0.5)
            np.testing.assert_array_equal(m.membrane, ref.membrane)
            np.testing.assert_array_equal(m.edge, ref.edge)
    # mixed shapes and another resolution fall back to one image at a time, same maps
    mixed = [tiles[0], tiles[1][:100, :120]]
    for im, m in zip(mixed, predict_maps_batch(mixed, 0.6)):
        np.testing.assert_array_equal(m.membrane, predict_maps(im, 0.6).membrane)
    assert predict_maps_batch([], 0.5) == []
    cl = predict_maps_batch(tiles[:1], 0.5, method="classical")
    np.testing.assert_array_equal(cl[0].membrane, predict_maps(tiles[0], 0.5, method="classical").membrane)
