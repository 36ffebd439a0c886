"""Train the membrane U-Net on cached phantom tiles.

Usage::

    python -m training.train_membrane --config training/configs/membrane_w8.toml [--fresh]

Seeded (numpy sampler + torch), resumable (``<out_dir>/checkpoint.npz`` is picked up automatically
unless ``--fresh``), progress and loss printed every ``log_every`` steps, held-out validation Dice every
``val_every`` steps. Writes ``<out_dir>/weights.npz`` (weights + meta, no pickle) and
``<out_dir>/metrics.json``. SGD (lr 0.01, momentum 0.9, as the paper) with a linear warm-up and a
cosine decay to ``min_lr_ratio * lr``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from .checkpoint import load_checkpoint, save_checkpoint, save_weights
from .config import TrainConfig, load_config
from .data import CacheSpec, TileSampler, build_cache, load_cache
from .losses import membrane_loss
from .metrics import confusion, scores
from .model import MembraneUNet, UNetConfig

__all__ = ["train", "evaluate_tiles", "predict_tiles", "main"]


def predict_tiles(model: MembraneUNet, rgb: np.ndarray, batch: int = 4) -> np.ndarray:
    """Membrane probabilities (n, h, w) of uint8 tiles (n, h, w, 3), h and w multiples of 2**depth."""
    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(rgb), batch):
            x = torch.from_numpy(rgb[i : i + batch].transpose(0, 3, 1, 2).astype(np.float32) / 255.0)
            mem, _ = model(x.contiguous(memory_format=torch.channels_last))
            out.append(torch.softmax(mem, 1)[:, 1].numpy())
    return np.concatenate(out)


def evaluate_tiles(model: MembraneUNet, rgb: np.ndarray, membrane: np.ndarray) -> dict[str, float]:
    """Pooled Dice/precision/recall at 0.5 and the Dice-optimal threshold on a tile set."""
    prob = predict_tiles(model, rgb)
    res = scores(confusion(prob, membrane))
    best = max(
        ((t, scores(confusion(prob, membrane, t))["dice"]) for t in np.arange(0.3, 0.96, 0.05)), key=lambda tv: tv[1]
    )
    res["best_threshold"], res["best_dice"] = float(best[0]), float(best[1])
    return res


def _lr(cfg: TrainConfig, progress: float, step: int) -> float:
    o = cfg.optim
    if step < o.warmup_steps:
        return o.lr * (step + 1) / o.warmup_steps
    return o.lr * (o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def train(cfg: TrainConfig, fresh: bool = False, verbose: bool = True) -> dict:
    """Run (or resume) the training described by `cfg`; returns the final metrics."""
    torch.set_num_threads(cfg.run.threads)
    torch.manual_seed(cfg.run.seed)
    rng = np.random.default_rng([cfg.run.seed, 0x7EA1])
    out = Path(cfg.run.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    d = cfg.data
    cache = Path(d.cache_dir)
    tr = load_cache(
        build_cache(cache / "train.npz", CacheSpec(n=d.train_n, size=d.tile_size, seed0=d.train_seed0), verbose=verbose)
    )
    va = load_cache(
        build_cache(cache / "val.npz", CacheSpec(n=d.val_n, size=d.tile_size, seed0=d.val_seed0), verbose=verbose)
    )
    ucfg = UNetConfig(width=cfg.model.width, depth=cfg.model.depth, dropout=cfg.model.dropout)
    model = MembraneUNet(ucfg).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(
        model.parameters(), lr=cfg.optim.lr, momentum=cfg.optim.momentum, weight_decay=cfg.optim.weight_decay
    )
    sampler = TileSampler(tr["rgb"], tr["membrane"], tr["edge"], d.crop, rng)
    step, elapsed, history = 0, 0.0, []
    ckpt = out / "checkpoint.npz"
    if ckpt.exists() and not fresh:
        meta = load_checkpoint(ckpt, model, opt, rng)
        step, elapsed, history = meta["step"], meta["elapsed"], meta["history"]
        if verbose:
            print(f"resumed from {ckpt} at step {step} ({elapsed / 60:.1f} min)", flush=True)
    limit_s = cfg.optim.max_minutes * 60.0
    t_start = time.time() - elapsed
    run_loss = []

    def done() -> bool:
        return (step >= cfg.optim.steps) if limit_s <= 0 else (time.time() - t_start >= limit_s)

    while not done():
        el = time.time() - t_start
        progress = step / cfg.optim.steps if limit_s <= 0 else el / limit_s
        lr = _lr(cfg, progress, step)
        for g in opt.param_groups:
            g["lr"] = lr
        model.train()
        x, m, e = sampler.batch(d.batch)
        x = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
        mem_logits, edge_logits = model(x)
        loss, ce, dl, dm = membrane_loss(
            mem_logits,
            edge_logits,
            torch.from_numpy(m),
            torch.from_numpy(e),
            cfg.loss.edge_weight,
            cfg.loss.beta_power,
            cfg.loss.membrane_dice_weight,
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        run_loss.append((loss.item(), ce.item(), dl.item(), dm.item()))
        if verbose and step % cfg.run.log_every == 0:
            lo = np.mean(run_loss, axis=0)
            print(
                f"step {step:5d}  loss {lo[0]:.4f}  ce {lo[1]:.4f}  dice_edge {lo[2]:.4f}  dice_membrane {lo[3]:.4f}  "
                f"lr {lr:.4g}  {(time.time() - t_start) / 60:.1f} min",
                flush=True,
            )
            run_loss = []
        if step % cfg.run.val_every == 0 or done():
            v = evaluate_tiles(model, va["rgb"], va["membrane"])
            v.update(step=step, minutes=(time.time() - t_start) / 60)
            history.append(v)
            if verbose:
                print(
                    f"  val step {step}: dice {v['dice']:.4f} (prec {v['precision']:.3f} rec {v['recall']:.3f}); "
                    f"best dice {v['best_dice']:.4f} at threshold {v['best_threshold']:.2f}",
                    flush=True,
                )
        if step % cfg.run.ckpt_every == 0 or done():
            save_checkpoint(ckpt, model, opt, step, time.time() - t_start, rng, cfg.to_dict(), history)
    if not history or history[-1]["step"] != step:
        v = evaluate_tiles(model, va["rgb"], va["membrane"])
        v.update(step=step, minutes=(time.time() - t_start) / 60)
        history.append(v)
    final = {
        "name": cfg.name,
        "steps": step,
        "minutes": (time.time() - t_start) / 60,
        "val": history[-1],
        "history": history,
        "config": cfg.to_dict(),
    }
    save_weights(
        out / "weights.npz",
        model,
        {
            "unet": ucfg.__dict__ | {"mean": list(ucfg.mean), "std": list(ucfg.std)},
            "train": {k: final[k] for k in ("name", "steps", "minutes", "val")},
            "config": cfg.to_dict(),
        },
    )
    (out / "metrics.json").write_text(json.dumps(final, indent=2))
    if verbose:
        print(
            f"done: {step} steps in {final['minutes']:.1f} min; val dice {history[-1]['dice']:.4f}; "
            f"weights {out / 'weights.npz'}",
            flush=True,
        )
    return final


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Train the her2fast membrane U-Net on phantom tiles.")
    ap.add_argument("--config", required=True, help="TOML file (training/configs/*.toml)")
    ap.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint and start over")
    args = ap.parse_args(argv)
    train(load_config(args.config), fresh=args.fresh)


if __name__ == "__main__":
    main()
