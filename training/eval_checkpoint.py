"""Held-out test Dice of a training checkpoint or weights file, calibrated as the export would be.

Usage::

    python -m training.eval_checkpoint training/runs/membrane_w16_probe/checkpoint.npz
    python -m training.eval_checkpoint training/runs/membrane_w8_full/weights.npz

The model's width and depth come from the file's metadata (a checkpoint holds its training config, a
weights file its ``unet`` block). The membrane probability is calibrated on the validation phantoms
exactly as :mod:`training.export_membrane` does (the logit shift that makes 0.5 the Dice-optimal
threshold), then pooled over the held-out test phantoms (``training/cache/test.npz``, the 48 tiles of
``benchmarks/membrane.py eval``) in PyTorch: for comparing runs (e.g. the width probes of the seventh
session) without exporting each one. Prints one line.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from .checkpoint import _load_state
from .data import load_cache
from .export_membrane import CalibratedWrapper, calibrate, torch_probs
from .metrics import confusion, scores
from .model import MembraneUNet, UNetConfig

__all__ = ["evaluate_file", "main"]


def _model_config(meta: dict) -> UNetConfig:
    if "unet" in meta:  # a weights file
        u = meta["unet"]
        return UNetConfig(
            width=u["width"], depth=u["depth"], dropout=u["dropout"], mean=tuple(u["mean"]), std=tuple(u["std"])
        )
    m = meta["config"]["model"]  # a checkpoint: its training config
    return UNetConfig(width=m["width"], depth=m["depth"], dropout=m["dropout"])


def evaluate_file(
    path: str, val_cache: str = "training/cache/val.npz", test_cache: str = "training/cache/test.npz"
) -> dict:
    """Calibrate on `val_cache`, then pooled Dice / precision / recall on `test_cache`, overall and by category."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        model = MembraneUNet(_model_config(meta))
        _load_state(model, z)
    model.eval()
    va = load_cache(val_cache)
    bias, thr, val_dice = calibrate(model, va["rgb"], va["membrane"])
    te = load_cache(test_cache)
    wrapper = CalibratedWrapper(model, bias).eval()
    total = np.zeros(4, np.int64)
    by_cat: dict[str, np.ndarray] = {}
    for i in range(0, len(te["rgb"]), 4):
        x = te["rgb"][i : i + 4].transpose(0, 3, 1, 2).astype(np.float32) / 255
        for j, p in enumerate(torch_probs(wrapper, x)[0][:, 0]):
            c = confusion(p, te["membrane"][i + j])
            total += c
            cat = str(te["preset"][i + j]).split("/")[0]
            by_cat[cat] = by_cat.get(cat, np.zeros(4, np.int64)) + c
    res = scores(total)
    step = meta.get("step", meta.get("train", {}).get("steps"))
    return {
        "step": step,
        "val_dice": val_dice,
        "threshold": thr,
        "test_dice": res["dice"],
        "precision": res["precision"],
        "recall": res["recall"],
        "dice_by_category": {k: scores(v)["dice"] for k, v in sorted(by_cat.items()) if v[0] + v[2] > 0},
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", help="checkpoint.npz or weights.npz of a membrane training run")
    ap.add_argument("--val-cache", default="training/cache/val.npz")
    ap.add_argument("--test-cache", default="training/cache/test.npz")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    r = evaluate_file(args.path, args.val_cache, args.test_cache)
    cats = ", ".join(f"{k} {v:.3f}" for k, v in r["dice_by_category"].items())
    print(
        f"{args.path}: step {r['step']}: val Dice {r['val_dice']:.4f} (softmax threshold {r['threshold']:.3f}); "
        f"test Dice {r['test_dice']:.4f}, precision {r['precision']:.4f}, recall {r['recall']:.4f}; by category {cats}"
    )


if __name__ == "__main__":
    main()
