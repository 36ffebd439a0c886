"""Export trained membrane U-Net weights to ONNX, verify against PyTorch, install into the package.

Usage::

    python -m training.export_membrane --weights training/runs/membrane_w8/weights.npz \
        [--out her2fast/models/membrane_unet] [--opset 17]

Steps: load the weights (npz), calibrate the membrane probability on the validation phantoms (a
logit shift so that 0.5 is the Dice-optimal threshold; the shift is part of the graph), export the
probability graph (inputs ``rgb`` float32 (N, 3, H, W) = RGB / 255; outputs ``membrane`` and ``edge``
(N, 1, H, W); dynamic batch, height and width) with the TorchScript-based exporter at opset 17,
run ONNX Runtime against PyTorch on random and phantom tiles (max abs difference of the
probabilities must be <= 1e-4, else nothing is written), then write ``model.onnx``, ``config.json``
(sha256, µm/px, normalisation, classes, opset, training command and summary) and copy the
weights to ``training/weights/`` for fine-tuning.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .checkpoint import load_weights
from .data import load_cache
from .fold_upsampling import fold_file
from .metrics import confusion, scores
from .model import MembraneUNet, UNetConfig

__all__ = ["CalibratedWrapper", "export_onnx", "verify", "calibrate", "main"]

PARITY_TOL = 1e-4
DEFAULT_OUT = "her2fast/models/membrane_unet"


class CalibratedWrapper(nn.Module):
    """Probabilities of the two heads; ``membrane = sigmoid(l1 - l0 + bias)`` (= softmax when bias = 0)."""

    def __init__(self, net: MembraneUNet, bias: float = 0.0) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("bias", torch.tensor(float(bias)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mem, edge = self.net(x)
        return torch.sigmoid(mem[:, 1:2] - mem[:, 0:1] + self.bias), torch.sigmoid(edge)


def build_model(weights: str | Path) -> tuple[MembraneUNet, dict]:
    _, meta = load_weights(weights)
    u = meta["unet"]
    cfg = UNetConfig(
        width=u["width"], depth=u["depth"], dropout=u["dropout"], mean=tuple(u["mean"]), std=tuple(u["std"])
    )
    model = MembraneUNet(cfg)
    load_weights(weights, model)
    return model.eval(), meta


def torch_probs(wrapper: nn.Module, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with torch.inference_mode():
        m, e = wrapper(torch.from_numpy(x))
    return m.numpy(), e.numpy()


def calibrate(model: MembraneUNet, rgb: np.ndarray, membrane: np.ndarray) -> tuple[float, float, float]:
    """(bias, threshold, dice): the logit shift making 0.5 the Dice-optimal threshold on (rgb, membrane)."""
    w = CalibratedWrapper(model, 0.0).eval()
    probs = np.concatenate(
        [
            torch_probs(w, rgb[i : i + 4].transpose(0, 3, 1, 2).astype(np.float32) / 255)[0][:, 0]
            for i in range(0, len(rgb), 4)
        ]
    )
    grid = np.concatenate([np.arange(0.20, 0.95, 0.025), np.arange(0.95, 0.996, 0.005)])
    dices = [scores(confusion(probs, membrane, t))["dice"] for t in grid]
    t = float(grid[int(np.argmax(dices))])
    return float(-np.log(t / (1 - t))), t, float(max(dices))


def export_onnx(wrapper: nn.Module, path: Path, opset: int = 17) -> None:
    x = torch.rand(2, 3, 256, 256)
    import warnings

    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice; it is the one we use
        warnings.simplefilter("ignore", DeprecationWarning)
        _export(wrapper, x, path, opset)


def _export(wrapper: nn.Module, x: torch.Tensor, path: Path, opset: int) -> None:
    torch.onnx.export(
        wrapper,
        (x,),
        str(path),
        dynamo=False,
        opset_version=opset,
        input_names=["rgb"],
        output_names=["membrane", "edge"],
        do_constant_folding=True,
        dynamic_axes={
            "rgb": {0: "batch", 2: "height", 3: "width"},
            "membrane": {0: "batch", 2: "height", 3: "width"},
            "edge": {0: "batch", 2: "height", 3: "width"},
        },
    )


def verify(wrapper: nn.Module, path: Path, phantom_rgb: np.ndarray) -> dict[str, float]:
    """Max abs difference ORT vs PyTorch on random and phantom inputs (both outputs)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    inputs = {
        "random_2x256": rng.random((2, 3, 256, 256), dtype=np.float32),
        "random_1x128x192": rng.random((1, 3, 128, 192), dtype=np.float32),
        "phantom_4x512": phantom_rgb[:4].transpose(0, 3, 1, 2).astype(np.float32) / 255.0,
    }
    out = {}
    for name, x in inputs.items():
        tm, te = torch_probs(wrapper, x)
        om, oe = sess.run(["membrane", "edge"], {"rgb": x})
        out[name] = float(max(np.abs(tm - om).max(), np.abs(te - oe).max()))
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Export the membrane U-Net to ONNX and install it.")
    ap.add_argument("--weights", required=True)
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--val-cache", default="training/cache/val.npz")
    ap.add_argument("--test-cache", default="training/cache/test.npz")
    ap.add_argument("--no-calibrate", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    model, meta = build_model(args.weights)
    if args.no_calibrate:
        bias, thr, vdice = 0.0, 0.5, float("nan")
    else:
        va = load_cache(args.val_cache)
        bias, thr, vdice = calibrate(model, va["rgb"], va["membrane"])
    print(f"calibration: softmax threshold {thr:.3f} -> logit bias {bias:+.4f} (val Dice {vdice:.4f})")
    wrapper = CalibratedWrapper(model, bias).eval()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        export_onnx(wrapper, onnx_path, args.opset)
        # the decoder's nearest upsampling folded into its convolutions (same outputs, ~8 % faster on
        # CPU); the parity check below then compares the folded graph with PyTorch
        n_folded, fold_diff = fold_file(onnx_path)
        diffs = verify(wrapper, onnx_path, load_cache(args.test_cache)["rgb"])
        print("ORT vs PyTorch max abs diff:", {k: f"{v:.2e}" for k, v in diffs.items()})
        if max(diffs.values()) > PARITY_TOL:
            raise SystemExit(f"parity check failed (> {PARITY_TOL}); nothing written")
        shutil.copyfile(onnx_path, out / "model.onnx")
    u = meta["unet"]
    old = {}
    if (out / "config.json").exists():
        old = json.loads((out / "config.json").read_text())
    config = {
        "name": "membrane_unet",
        "file": "model.onnx",
        "sha256": sha256(out / "model.onnx"),
        "size_bytes": (out / "model.onnx").stat().st_size,
        "format": f"ONNX opset {args.opset}, float32",
        "opset": args.opset,
        "mpp": 0.5,
        "input": {
            "name": "rgb",
            "layout": "NCHW",
            "dtype": "float32",
            "range": "RGB / 255 in [0, 1]",
            "tile_size": 512,
            "overlap": 32,
            "multiple": 2 ** u["depth"],
            "dynamic_axes": ["batch", "height", "width"],
        },
        "normalisation": {
            "inside_graph": True,
            "formula": "(rgb / 255 - mean) / std",
            "mean": u["mean"],
            "std": u["std"],
        },
        "outputs": [
            {
                "name": "membrane",
                "shape": "(N, 1, H, W)",
                "meaning": "probability of stained membrane (class 1 of classes)",
            },
            {"name": "edge", "shape": "(N, 1, H, W)", "meaning": "probability of the membrane centre line"},
        ],
        "class_names": ["background", "membrane"],
        "threshold": 0.5,
        "calibration": {
            "softmax_threshold": thr,
            "logit_bias": bias,
            "val_dice": vdice,
            "note": "membrane = sigmoid(l_membrane - l_background + logit_bias): 0.5 is the "
            "Dice-optimal threshold on the validation phantoms",
        },
        "architecture": {
            "kind": "modified U-Net (Khameneh et al. 2019)",
            "width": u["width"],
            "depth": u["depth"],
            "dropout": u["dropout"],
            "parameters": int(sum(p.numel() for p in model.parameters())),
        },
        "training": {
            "command": f"python -m training.train_membrane --config training/configs/{meta['train']['name']}.toml",
            "export_command": "python -m training.export_membrane --weights " + str(args.weights),
            "steps": meta["train"]["steps"],
            "minutes": round(meta["train"]["minutes"], 1),
            "val_at_end": meta["train"]["val"],
            "data": "phantoms (her2fast.synth), see MODEL_CARD.md",
        },
        "parity": {"max_abs_diff_ort_vs_torch": diffs, "tolerance": PARITY_TOL},
        "graph": {
            "nearest_upsampling_folded": n_folded,
            "max_abs_diff_vs_unfolded": fold_diff,
            "command": "training.fold_upsampling (in the export)",
        },
        "metrics": old.get("metrics", {}),
    }
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    written = [str(out / "model.onnx"), str(out / "config.json")]
    if out.resolve() == Path(DEFAULT_OUT).resolve():  # the shipped model: keep its weights for fine-tuning
        wdir = Path("training/weights")
        wdir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.weights, wdir / f"membrane_unet_w{u['width']}.npz")
        written.append(str(wdir / f"membrane_unet_w{u['width']}.npz"))
    print(f"sha256 {config['sha256']}, {config['size_bytes'] / 1e6:.2f} MB; wrote {', '.join(written)}")


if __name__ == "__main__":
    main()
