"""Fine-tune the membrane U-Net on a lab's own tiles (PNG pairs), then export it like the shipped one.

Usage::

    python -m training.finetune_membrane --pairs my_tiles/ --mpp 0.25 --out training/runs/finetune \
        [--weights training/weights/membrane_unet_w8.npz] [--steps 300] [--lr 0.002] [--export DIR]

``--pairs`` holds ``<name>.png`` (RGB tile) and ``<name>_mask.png`` (membrane mask: non-zero =
membrane) pairs at ``--mpp`` µm/px; tiles are resampled to the model's 0.5 µm/px, the edge target
(membrane centre line) is the mask's skeleton. Training uses the same loss, sampler and
augmentation as :mod:`training.train_membrane` (SGD, momentum 0.9, cosine decay from ``--lr``),
starting from the shipped weights. With ``--export DIR`` the result is exported, verified and written
as a model directory that ``her2fast.stages.membrane.predict(..., model_dir=DIR)`` loads (calibrated on the
pairs themselves, so hold some out to judge it).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch

from .checkpoint import save_weights
from .data import TileSampler
from .export_membrane import build_model
from .losses import membrane_loss

__all__ = ["load_pairs", "finetune", "main"]


def load_pairs(
    folder: str | Path, mpp: float, model_mpp: float = 0.5, min_size: int = 64
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """RGB tiles, membrane masks and centre lines (skeletons) of the PNG pairs in `folder`, at `model_mpp`."""
    from PIL import Image
    from skimage.morphology import skeletonize

    folder = Path(folder)
    rgbs, masks, edges = [], [], []
    for img_path in sorted(folder.glob("*.png")):
        if img_path.stem.endswith("_mask"):
            continue
        mask_path = img_path.with_name(img_path.stem + "_mask.png")
        if not mask_path.exists():
            raise FileNotFoundError(f"no mask for {img_path}: expected {mask_path}")
        with Image.open(img_path) as im, Image.open(mask_path) as mk:
            z = mpp / model_mpp
            size = (max(min_size, round(im.width * z)), max(min_size, round(im.height * z)))
            rgb = np.asarray(im.convert("RGB").resize(size, Image.Resampling.BILINEAR))
            mask = np.asarray(mk.convert("L").resize(size, Image.Resampling.NEAREST)) > 0
        rgbs.append(rgb)
        masks.append(mask)
        edges.append(skeletonize(mask))
    if not rgbs:
        raise FileNotFoundError(f"no <name>.png + <name>_mask.png pairs in {folder}")
    return rgbs, masks, edges


def _stack_padded(arrs: list[np.ndarray], side: int) -> np.ndarray:
    out = []
    for a in arrs:
        ph, pw = max(0, side - a.shape[0]), max(0, side - a.shape[1])
        pad = ((0, ph), (0, pw)) + ((0, 0),) * (a.ndim - 2)
        out.append(np.pad(a, pad, mode="symmetric")[:side, :side])
    return np.stack(out)


def finetune(
    pairs: str | Path,
    mpp: float,
    out: str | Path,
    weights: str | Path,
    steps: int = 300,
    lr: float = 0.002,
    crop: int = 256,
    batch: int = 8,
    seed: int = 0,
    threads: int = 1,
) -> Path:
    """Fine-tune from `weights` on the PNG pairs; writes ``<out>/weights.npz`` and returns its path."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng([seed, 0xF17E])
    rgbs, masks, edges = load_pairs(pairs, mpp)
    side = max(crop, max(max(a.shape[:2]) for a in rgbs))
    # tiles of different sizes: pad (mirror) each to a common square; crops are drawn anywhere in it
    sampler = TileSampler(
        _stack_padded(rgbs, side), _stack_padded(masks, side), _stack_padded(edges, side), min(crop, side), rng
    )
    model, meta = build_model(weights)
    # the loss the model was trained with (its config's [loss] section; the paper's loss for older weights)
    lsec = meta.get("config", {}).get("loss", {})
    loss_args = {k: float(lsec[k]) for k in ("edge_weight", "beta_power", "membrane_dice_weight") if k in lsec}
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    t0 = time.time()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        model.train()
        x, m, e = sampler.batch(batch)
        ml, el = model(torch.from_numpy(x).contiguous(memory_format=torch.channels_last))
        loss, ce, dl, _ = membrane_loss(ml, el, torch.from_numpy(m), torch.from_numpy(e), **loss_args)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % 10 == 0 or step + 1 == steps:
            print(
                f"finetune step {step + 1}/{steps}  loss {loss.item():.4f}  ce {ce.item():.4f}  "
                f"dice_edge {dl.item():.4f}  {time.time() - t0:.0f} s",
                flush=True,
            )
    out = Path(out)
    meta["train"] = {
        "name": meta["train"]["name"] + "+finetune",
        "steps": meta["train"]["steps"] + steps,
        "minutes": meta["train"]["minutes"] + (time.time() - t0) / 60,
        "val": {"note": f"fine-tuned on {len(rgbs)} PNG pairs from {pairs}"},
    }
    save_weights(out / "weights.npz", model.eval(), meta)
    print(f"wrote {out / 'weights.npz'}")
    return out / "weights.npz"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Fine-tune the membrane U-Net on PNG tile + mask pairs.")
    ap.add_argument("--pairs", required=True, help="folder with <name>.png and <name>_mask.png")
    ap.add_argument("--mpp", type=float, required=True, help="µm/px of the PNG tiles")
    ap.add_argument("--out", required=True)
    ap.add_argument("--weights", default="training/weights/membrane_unet_w8.npz")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--lr", type=float, default=0.002)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--export", default=None, help="also export + verify into this model directory")
    args = ap.parse_args(argv)
    w = finetune(
        args.pairs,
        args.mpp,
        args.out,
        args.weights,
        args.steps,
        args.lr,
        args.crop,
        args.batch,
        args.seed,
        args.threads,
    )
    if args.export:
        import tempfile

        from .export_membrane import main as export_main

        # calibrate and verify on the pairs themselves (as npz caches, the format export reads)
        rgbs, masks, _ = load_pairs(args.pairs, args.mpp)
        side = max(64, min(512, max(max(a.shape[:2]) for a in rgbs)))
        side -= side % 16
        with tempfile.TemporaryDirectory() as tmp:
            cache = Path(tmp) / "pairs.npz"
            np.savez(cache, rgb=_stack_padded(rgbs, side), membrane=_stack_padded(masks, side))
            export_main(
                ["--weights", str(w), "--out", args.export, "--val-cache", str(cache), "--test-cache", str(cache)]
            )


if __name__ == "__main__":
    main()
