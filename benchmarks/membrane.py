"""Membrane segmentation: evaluation (phantoms, real patches) and speed (ONNX Runtime vs PyTorch).

Usage::

    taskset -c 1 python benchmarks/membrane.py eval  [--update-config]   # held-out phantoms + real patches
    python benchmarks/membrane.py speed [--threads 2] [--batch 4]        # ORT vs torch eager, ms per 512^2 tile
    taskset -c 1 python benchmarks/membrane.py widths                    # width sweep table (needs torch + runs)

``eval``: the paper's Table 2 (Dice, pixel accuracy, precision, recall, F1, AUC; pooled over all
pixels) for the U-Net and the classical baseline on the held-out phantom tiles
(``training/cache/test.npz``: 48 tiles, seeds 200000-200047, 0.5 µm/px, never seen in training or
validation; rendered on first use), and the predicted membrane fraction of the four real
HER2-IHC-40x patches (~0.6 µm/px) with overlays written to ``docs/membrane_real_<score>.png``.
Results go to ``docs/membrane_metrics.json`` (and into the model's config.json with
``--update-config``).

``speed``: the shipped ONNX model in ONNX Runtime (CPU) against the same weights in PyTorch eager
(NCHW and channels_last), same threads, same batch, in one run; ratios printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from her2fast import membrane  # noqa: E402

REAL_DIR = ROOT.parent / "shared" / "data" / "ihc" / "her2-ihc-40x"
REAL_SCORES = ["0", "1+", "2+", "3+"]
REAL_MPP = 0.6
DOCS = ROOT / "docs"
METRICS_JSON = DOCS / "membrane_metrics.json"


def _pooled(probs: list[np.ndarray], truths: list[np.ndarray]) -> dict[str, float]:
    from training.metrics import auc, confusion, scores

    c = sum(confusion(p, t) for p, t in zip(probs, truths))
    res = scores(c)
    res["auc"] = auc(np.concatenate([p.ravel() for p in probs]), np.concatenate([t.ravel() for t in truths]))
    return {k: round(float(v), 4) for k, v in res.items()}


def _tolerant(probs: list[np.ndarray], truths: list[np.ndarray], tol: int = 1) -> dict[str, float]:
    """Boundary-tolerant scores (as edge benchmarks do): a predicted pixel counts as correct when a
    true membrane pixel lies within `tol` px (chessboard), a true pixel as found when a predicted one does."""
    from scipy.ndimage import binary_dilation

    st = np.ones((2 * tol + 1, 2 * tol + 1), bool)
    hit_p = n_p = hit_t = n_t = 0
    for p, t in zip(probs, truths):
        pm = p >= 0.5
        hit_p += np.count_nonzero(pm & binary_dilation(t, st))
        n_p += np.count_nonzero(pm)
        hit_t += np.count_nonzero(t & binary_dilation(pm, st))
        n_t += np.count_nonzero(t)
    prec, rec = hit_p / max(n_p, 1), hit_t / max(n_t, 1)
    return {
        f"precision_tol{tol}px": round(prec, 4),
        f"recall_tol{tol}px": round(rec, 4),
        f"f1_tol{tol}px": round(2 * prec * rec / max(prec + rec, 1e-12), 4),
    }


def _test_set() -> dict[str, np.ndarray]:
    from training.data import CacheSpec, build_cache, load_cache

    path = build_cache(
        ROOT / "training/cache/test.npz", CacheSpec(n=48, seed0=200000, mpp_range=(0.5, 0.5), jpeg_range=(90, 90))
    )
    return load_cache(path)


def overlay(rgb: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """Image | image with the membrane mask (prob >= 0.5) in green, side by side."""
    ov = rgb.copy()
    m = prob >= 0.5
    ov[m] = (0.35 * ov[m] + 0.65 * np.array([0, 255, 0])).astype(np.uint8)
    gap = np.full((rgb.shape[0], 6, 3), 255, np.uint8)
    return np.concatenate([rgb, gap, ov], axis=1)


def run_eval(threads: int, update_config: bool) -> dict:
    from PIL import Image

    te = _test_set()
    res: dict = {
        "test_set": {
            "tiles": int(len(te["rgb"])),
            "seeds": [int(te["seed"][0]), int(te["seed"][-1])],
            "mpp": 0.5,
            "presets": sorted(set(te["preset"].tolist())),
        }
    }
    for method in ("unet", "classical"):
        t0 = time.perf_counter()
        probs = [membrane.predict(im, 0.5, method=method, threads=threads) for im in te["rgb"]]
        dt = time.perf_counter() - t0
        res[method] = _pooled(probs, list(te["membrane"]))
        res[method]["seconds_per_tile"] = round(dt / len(probs), 3)
        per_tile = []
        for p, t in zip(probs, te["membrane"]):
            if t.sum() > 100:
                inter = np.count_nonzero((p >= 0.5) & t)
                per_tile.append(2 * inter / (np.count_nonzero(p >= 0.5) + t.sum()))
        res[method]["mean_tile_dice"] = round(float(np.mean(per_tile)), 4)
        res[method].update(_tolerant(probs, list(te["membrane"])))
        by_cat = {}
        for cat in ("0", "0+", "1+", "2+", "3+"):
            idx = [i for i, p in enumerate(te["preset"]) if str(p).split("/")[0] == cat]
            if idx and te["membrane"][idx].any():
                by_cat[cat] = _pooled([probs[i] for i in idx], [te["membrane"][i] for i in idx])["dice"]
        res[method]["dice_by_category"] = by_cat
    real = {}
    DOCS.mkdir(exist_ok=True)
    panels = []
    for s in REAL_SCORES:
        path = REAL_DIR / f"her2ihc40x_score{s}.png"
        if not path.exists():
            continue
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"))
        pu = membrane.predict(rgb, REAL_MPP, threads=threads)
        pc = membrane.predict(rgb, REAL_MPP, method="classical")
        real[s] = {
            "unet_fraction": round(float((pu >= 0.5).mean()), 4),
            "unet_mean_prob": round(float(pu.mean()), 4),
            "classical_fraction": round(float((pc >= 0.5).mean()), 4),
        }
        ov = overlay(rgb, pu)
        Image.fromarray(ov).save(DOCS / f"membrane_real_{s}.png")
        panels.append(ov)
    if real:
        fr = [real[s]["unet_fraction"] for s in REAL_SCORES if s in real]
        res["real"] = {
            "mpp": REAL_MPP,
            "patches": real,
            "unet_monotonic_0<1+<2+<3+": bool(len(fr) == 4 and all(a < b for a, b in zip(fr, fr[1:]))),
        }
    print(json.dumps(res, indent=2))
    METRICS_JSON.write_text(json.dumps(res, indent=2) + "\n")
    print_table(res)
    if update_config:
        cfg_path = membrane.default_model_dir() / "config.json"
        cfg = json.loads(cfg_path.read_text())
        cfg["metrics"] = {k: res[k] for k in ("test_set", "unet", "classical", "real") if k in res}
        cfg_path.write_text(json.dumps(cfg, indent=2) + "\n")
        print(f"metrics written into {cfg_path}")
    return res


def print_table(res: dict) -> None:
    print("\nheld-out phantoms (pooled pixels)")
    print(f"{'method':10s} {'Dice':>7s} {'Acc':>7s} {'Prec':>7s} {'Recall':>7s} {'F1':>7s} {'AUC':>7s}")
    for m in ("unet", "classical"):
        r = res[m]
        print(
            f"{m:10s} {r['dice']:7.4f} {r['accuracy']:7.4f} {r['precision']:7.4f} {r['recall']:7.4f} "
            f"{r['f1']:7.4f} {r['auc']:7.4f}   (F1 with 1-px tolerance {r['f1_tol1px']:.4f}; "
            f"by category {r['dice_by_category']})"
        )
    if "real" in res:
        print("\nreal patches: predicted membrane fraction (U-Net / classical)")
        for s, r in res["real"]["patches"].items():
            print(f"  {s:3s} {r['unet_fraction']:.4f} / {r['classical_fraction']:.4f}")


def _time(fn, repeats: int) -> float:
    fn()
    best = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best.append(time.perf_counter() - t0)
    return float(np.median(best))


def run_speed(threads: int, batch: int, repeats: int, weights: str | None) -> dict:
    import onnxruntime as ort

    cfg = membrane.load_model_config()
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(cfg.path), so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((batch, 3, 512, 512), dtype=np.float32)
    t_ort = _time(lambda: sess.run(None, {"rgb": x}), repeats) / batch
    res = {"threads": threads, "batch": batch, "ort_ms_per_tile": round(1000 * t_ort, 1)}
    try:
        import torch
    except ImportError:
        print("torch not installed: ORT only")
    else:
        from training.export_membrane import CalibratedWrapper, build_model

        torch.set_num_threads(threads)
        wpath = weights or str(ROOT / f"training/weights/membrane_unet_w{cfg.raw['architecture']['width']}.npz")
        model, _ = build_model(wpath)
        w = CalibratedWrapper(model, cfg.raw["calibration"]["logit_bias"]).eval()
        xt = torch.from_numpy(x)
        with torch.inference_mode():
            t_nchw = _time(lambda: w(xt), repeats) / batch
            wcl = CalibratedWrapper(build_model(wpath)[0], cfg.raw["calibration"]["logit_bias"]).eval()
            wcl = wcl.to(memory_format=torch.channels_last)
            xcl = xt.contiguous(memory_format=torch.channels_last)
            t_cl = _time(lambda: wcl(xcl), repeats) / batch
        res.update(
            torch_eager_nchw_ms_per_tile=round(1000 * t_nchw, 1),
            torch_eager_channels_last_ms_per_tile=round(1000 * t_cl, 1),
            ort_speedup_vs_nchw=round(t_nchw / t_ort, 2),
            ort_speedup_vs_channels_last=round(t_cl / t_ort, 2),
        )
    print(json.dumps(res, indent=2))
    return res


def run_widths(threads: int, widths: list[int], runs_dir: Path) -> list[dict]:
    """ORT ms per 512^2 tile (batch 4) per width (random weights: speed does not depend on them) and
    held-out Dice of the sweep runs ``<runs_dir>/sweep_w<width>/weights.npz`` where they exist."""
    import tempfile

    import onnxruntime as ort
    import torch

    from training.data import load_cache
    from training.export_membrane import CalibratedWrapper, build_model, calibrate, export_onnx
    from training.metrics import confusion, scores
    from training.model import MembraneUNet, UNetConfig, count_flops

    torch.set_num_threads(threads)
    te = _test_set()
    va = load_cache(ROOT / "training/cache/val.npz")
    rows = []
    x = np.random.default_rng(0).random((4, 3, 512, 512), dtype=np.float32)
    for wd in widths:
        row = {"width": wd, "gflop_per_512_tile": round(count_flops(UNetConfig(width=wd)), 1)}
        wpath = runs_dir / f"sweep_w{wd}" / "weights.npz"
        if wpath.exists():
            model, meta = build_model(wpath)
            bias, thr, _ = calibrate(model, va["rgb"], va["membrane"])
            row["train_steps"] = meta["train"]["steps"]
            row["train_minutes"] = round(meta["train"]["minutes"], 1)
        else:
            model, bias = MembraneUNet(UNetConfig(width=wd)).eval(), 0.0
        wrapper = CalibratedWrapper(model, bias).eval()
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / "m.onnx"
            export_onnx(wrapper, p)
            so = ort.SessionOptions()
            so.intra_op_num_threads = threads
            sess = ort.InferenceSession(str(p), so, providers=["CPUExecutionProvider"])
            xb = x if wd <= 32 else x[:1]  # width 64 at batch 1: seconds per tile on one core
            row["batch"] = len(xb)
            row["ort_ms_per_tile"] = round(
                1000
                * _time(lambda: sess.run(None, {"rgb": xb}), 2 if wd <= 16 else 1)  # noqa: B023
                / len(xb),
                1,
            )
            if wpath.exists():
                probs = [
                    sess.run(
                        ["membrane"], {"rgb": te["rgb"][i : i + 4].transpose(0, 3, 1, 2).astype(np.float32) / 255}
                    )[0][:, 0]
                    for i in range(0, len(te["rgb"]), 4)
                ]
                row["test_dice"] = round(scores(confusion(np.concatenate(probs), te["membrane"]))["dice"], 4)
        print(row, flush=True)
        rows.append(row)
    out = DOCS / "membrane_widths.json"
    out.write_text(json.dumps({"threads": threads, "rows": rows}, indent=2) + "\n")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["eval", "speed", "widths"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--weights", default=None, help="training weights for the torch side of `speed`")
    ap.add_argument("--widths", default="8,16,32,64")
    ap.add_argument("--runs-dir", default=str(ROOT / "training/runs"))
    ap.add_argument("--update-config", action="store_true")
    args = ap.parse_args()
    if args.what == "eval":
        run_eval(args.threads, args.update_config)
    elif args.what == "speed":
        run_speed(args.threads, args.batch, args.repeats, args.weights)
    else:
        run_widths(args.threads, [int(w) for w in args.widths.split(",")], Path(args.runs_dir))


if __name__ == "__main__":
    main()
