"""Int8 static quantisation of the membrane U-Net: accuracy on held-out phantoms and CPU speed vs fp32.

Usage::

    taskset -c 1 python benchmarks/quantize_membrane.py [--variants all] [--repeats 7] [--out /tmp/membrane_int8_work]
    taskset -c 1 python benchmarks/quantize_membrane.py --fp32-options     # ORT session options for the fp32 model

Needs the ``onnx`` package (``onnxruntime.quantization`` imports it); it is not a her2fast dependency.

Steps: (1) ``quant_pre_process`` on the shipped fp32 model; (2) ``quantize_static`` for every variant
(format, per-channel, reduce_range, calibration method, nodes excluded), calibrated on the validation
tiles (``training/cache/val.npz``) plus every 20th training tile, never the test tiles; (3) pooled
Dice / precision / recall at threshold 0.5 of the ``membrane`` output on the 48 held-out test tiles
(``training/cache/test.npz``, run as :func:`her2fast.stages.membrane.predict` does: one pass over the tile with
the model's mirrored margin), and the max |p_int8 - p_fp32|; (4) one intra-op thread, ms per batch of
2 x 800^2 and 4 x 512^2, models alternated within each repeat, medians and ratios vs fp32.

Writes quantised models and ``results.json`` under ``--out``; with ``--save-best`` a variant that is
>= 1.3x faster than fp32 on both shapes with Dice within 0.005 is copied to ``--save-dir``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import training.quantize_membrane as _recipe  # noqa: E402
from her2fast.stages.membrane import _single_pass_input, load_model_config  # noqa: E402

FP32 = ROOT / "her2fast/models/membrane_unet/model.onnx"
#: the nodes after the last U-Net block and the input normalisation + first conv (as the int8 model keeps them)
HEAD_NODES = list(_recipe.HEAD_NODES)
FIRST_NODES = list(_recipe.FIRST_NODES)


def variants() -> dict[str, dict]:
    base = dict(fmt="QDQ", per_channel=True, reduce_range=False, method="MinMax", exclude=[], ops=None, weight="QInt8")
    v = {
        "qdq_pc_minmax": {},
        "qdq_pc_minmax_rr": dict(reduce_range=True),
        "qdq_pc_minmax_rr_xhead": dict(reduce_range=True, exclude=HEAD_NODES),
        "qdq_pc_minmax_rr_xheadfirst": dict(reduce_range=True, exclude=HEAD_NODES + FIRST_NODES),
        "qdq_pc_minmax_rr_convonly": dict(reduce_range=True, ops=["Conv"]),
        "qop_pc_minmax_rr": dict(fmt="QOperator", reduce_range=True),
        "qdq_pc_pct_rr": dict(reduce_range=True, method="Percentile"),
        "qdq_pc_entropy_rr": dict(reduce_range=True, method="Entropy"),
        # u8u8: MLAS's AVX2 u8u8 kernel widens to 16 bit (vpmaddwd), no u8s8 saturation, full 8-bit weights
        "qdq_pc_minmax_u8u8": dict(weight="QUInt8"),
        "qdq_pc_minmax_u8u8_xheadfirst": dict(weight="QUInt8", exclude=HEAD_NODES + FIRST_NODES),
    }
    return {k: {**base, **d} for k, d in v.items()}


# ---------------------------------------------------------------------------------------------- data


def _prep(tiles: np.ndarray) -> np.ndarray:
    """(n, 3, H', W') network inputs as her2fast.stages.membrane.predict builds them for one tile."""
    cfg = load_model_config()
    return np.stack([_single_pass_input(t, cfg.overlap, cfg.multiple) for t in tiles])


def calibration_inputs(n_train: int) -> np.ndarray:
    from training.data import load_cache

    va = load_cache(ROOT / "training/cache/val.npz")["rgb"]
    tr = load_cache(ROOT / "training/cache/train.npz")["rgb"]
    idx = np.linspace(0, len(tr) - 1, n_train).round().astype(int) if n_train else np.array([], int)
    return _prep(np.concatenate([va, tr[idx]]))


def test_set() -> dict[str, np.ndarray]:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from membrane import _test_set  # benchmarks/membrane.py

    return _test_set()


# ------------------------------------------------------------------------------------- quantisation


def quantise(pre: Path, out: Path, spec: dict, calib: np.ndarray) -> float:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(calib)

        def get_next(self):
            x = next(self.it, None)
            return None if x is None else {"rgb": x[None]}

    extra = {}
    if spec["method"] == "Percentile":
        extra["CalibPercentile"] = 99.999
    t0 = time.perf_counter()
    quantize_static(
        str(pre),
        str(out),
        Reader(),
        quant_format=QuantFormat.QDQ if spec["fmt"] == "QDQ" else QuantFormat.QOperator,
        op_types_to_quantize=spec["ops"],
        per_channel=spec["per_channel"],
        reduce_range=spec["reduce_range"],
        activation_type=QuantType.QUInt8,
        weight_type=getattr(QuantType, spec["weight"]),
        nodes_to_exclude=spec["exclude"],
        calibrate_method=getattr(CalibrationMethod, spec["method"]),
        extra_options=extra,
    )
    return time.perf_counter() - t0


# ------------------------------------------------------------------------------------------ sessions


def session(path: Path, threads: int = 1, opt: str = "ALL", spinning: bool | None = None):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = getattr(
        ort.GraphOptimizationLevel, f"ORT_ENABLE_{opt}" if opt != "DISABLE" else "ORT_DISABLE_ALL"
    )
    if spinning is not None:
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])


def evaluate(sess, x: np.ndarray, truth: np.ndarray, o: int, ref: np.ndarray | None) -> tuple[dict, np.ndarray]:
    from training.metrics import confusion, scores

    probs = []
    for b in range(0, len(x), 4):
        pm, _ = sess.run(["membrane", "edge"], {"rgb": x[b : b + 4]})
        probs.extend(pm[:, 0, o : o + truth.shape[1], o : o + truth.shape[2]])
    probs = np.stack(probs)
    c = sum(confusion(p, t) for p, t in zip(probs, truth))
    s = scores(c)
    res = {k: round(float(s[k]), 4) for k in ("dice", "precision", "recall")}
    res["dice_raw"] = float(s["dice"])
    if ref is not None:
        d = np.abs(probs - ref)
        res["max_abs_diff"] = round(float(d.max()), 4)
        res["mean_abs_diff"] = round(float(d.mean()), 5)
        res["mask_flip_frac"] = round(float(((probs >= 0.5) != (ref >= 0.5)).mean()), 5)
    return res, probs


def time_models(sessions: dict, shapes: list[tuple[int, ...]], repeats: int, warmup: int = 2) -> dict:
    """ms per batch: for each shape, models alternated inside each repeat (order rotated), medians."""
    rng = np.random.default_rng(0)
    out: dict = {}
    for shape in shapes:
        x = rng.random(shape, dtype=np.float32)
        names = list(sessions)
        for n in names:
            for _ in range(warmup):
                sessions[n].run(None, {"rgb": x})
        ts: dict[str, list[float]] = {n: [] for n in names}
        for r in range(repeats):
            order = names[r % len(names) :] + names[: r % len(names)]
            for n in order:
                t0 = time.perf_counter()
                sessions[n].run(None, {"rgb": x})
                ts[n].append((time.perf_counter() - t0) * 1e3)
        key = "x".join(map(str, shape))
        out[key] = {n: {"median_ms": round(statistics.median(v), 1), "min_ms": round(min(v), 1)} for n, v in ts.items()}
        print(f"  timed {key}: " + ", ".join(f"{n} {out[key][n]['median_ms']:.0f}" for n in names), flush=True)
    return out


def node_profile(sess_path: Path, x: np.ndarray, tag: str, workdir: Path) -> dict[str, float]:
    """ms per op type of one run (ORT profiler), to see where the int8 graph spends its time."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.enable_profiling = True
    so.profile_file_prefix = str(workdir / f"prof_{tag}")
    s = ort.InferenceSession(str(sess_path), sess_options=so, providers=["CPUExecutionProvider"])
    for _ in range(3):
        s.run(None, {"rgb": x})
    prof = json.loads(Path(s.end_profiling()).read_text())
    by: dict[str, float] = {}
    for e in prof:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            op = e["args"].get("op_name", "?")
            by[op] = by.get(op, 0.0) + e["dur"] / 1e3 / 3
    return {k: round(v, 1) for k, v in sorted(by.items(), key=lambda kv: -kv[1])}


# ---------------------------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default="all", help="comma-separated names or 'all' (" + ", ".join(variants()) + ")")
    ap.add_argument("--out", default="/tmp/membrane_int8_work")
    ap.add_argument("--n-train", type=int, default=12, help="training tiles added to the 12 validation tiles")
    ap.add_argument("--n-calib-hist", type=int, default=12, help="calibration tiles for Percentile/Entropy")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--profile", action="store_true", help="ORT per-op-type profile of fp32 and each variant")
    ap.add_argument("--fp32-options", action="store_true", help="only time fp32 session-option variants")
    ap.add_argument("--save-best", action="store_true")
    ap.add_argument("--save-dir", default="/tmp/membrane_int8")
    args = ap.parse_args()
    work = Path(args.out).resolve()
    work.mkdir(parents=True, exist_ok=True)
    os.chdir(work)  # onnx/ORT quantisation helpers leave '<uuid>.data' external-data files in the cwd
    shapes = [(2, 3, 800, 800), (4, 3, 512, 512)]

    if args.fp32_options:
        sess = {
            "default(ALL)": session(FP32),
            "spin=0": session(FP32, spinning=False),
            "spin=1": session(FP32, spinning=True),
            "EXTENDED": session(FP32, opt="EXTENDED"),
            "BASIC": session(FP32, opt="BASIC"),
            "DISABLE": session(FP32, opt="DISABLE"),
        }
        t = time_models(sess, shapes, args.repeats)
        print_speed(t, "default(ALL)")
        (work / "fp32_options.json").write_text(json.dumps(t, indent=2) + "\n")
        return

    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = work / "fp32_pre.onnx"
    try:
        quant_pre_process(str(FP32), str(pre))
    except Exception as exc:  # symbolic shape inference gives up on the dynamic Resize shapes
        print(f"quant_pre_process: {exc}; retrying with skip_symbolic_shape=True", flush=True)
        quant_pre_process(str(FP32), str(pre), skip_symbolic_shape=True)
    allv = variants()
    names = list(allv) if args.variants == "all" else args.variants.split(",")
    print(f"calibration: 12 val + {args.n_train} train tiles ({args.n_calib_hist} for histogram methods)", flush=True)
    calib = calibration_inputs(args.n_train)
    models = {"fp32": FP32}
    recipe = {}
    for n in names:
        spec = allv[n]
        c = calib if spec["method"] == "MinMax" else calib[: args.n_calib_hist]
        p = work / f"{n}.onnx"
        try:
            dt = quantise(pre, p, spec, c)
        except Exception as exc:  # keep going with the other variants
            print(f"  {n}: quantisation failed: {exc!r}", flush=True)
            continue
        print(f"  {n}: quantised in {dt:.0f} s ({p.stat().st_size / 1e6:.2f} MB)", flush=True)
        models[n] = p
        recipe[n] = spec
    del calib

    te = test_set()
    o = load_model_config().overlap
    x = _prep(te["rgb"])
    truth = te["membrane"]
    acc: dict = {}
    ref = None
    for n, p in models.items():
        acc[n], probs = evaluate(session(p), x, truth, o, ref)
        if n == "fp32":
            ref = probs
        print(f"  eval {n}: {acc[n]}", flush=True)
    del x, ref

    res: dict = {"accuracy": acc, "recipes": recipe}
    if not args.no_speed:
        sess = {n: session(p) for n, p in models.items()}
        res["speed"] = time_models(sess, shapes, args.repeats)
        del sess
    if args.profile:
        xp = np.random.default_rng(1).random((1, 3, 512, 512), dtype=np.float32)
        res["profile_1x512"] = {n: node_profile(p, xp, n, work) for n, p in models.items()}
        for n, pr in res["profile_1x512"].items():
            print(f"  profile {n}: {pr}")
    (work / "results.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    print_table(res)

    if args.save_best and "speed" in res:
        ok = []
        for n in models:
            if n == "fp32":
                continue
            ratios = [res["speed"][k]["fp32"]["median_ms"] / res["speed"][k][n]["median_ms"] for k in res["speed"]]
            if min(ratios) >= 1.3 and acc["fp32"]["dice_raw"] - acc[n]["dice_raw"] <= 0.005:
                ok.append((min(ratios), n))
        if ok:
            best = max(ok)[1]
            d = Path(args.save_dir).resolve()
            d.mkdir(parents=True, exist_ok=True)
            shutil.copy(models[best], d / "model.onnx")
            (d / "recipe.json").write_text(json.dumps({"variant": best, **recipe[best], **acc[best]}, indent=2) + "\n")
            print(f"saved {best} -> {d / 'model.onnx'}")
        else:
            print("no variant is >= 1.3x faster with Dice within 0.005: nothing saved")


def print_speed(t: dict, base: str) -> None:
    for key, row in t.items():
        print(f"\nms per batch {key} (1 intra-op thread, median; ratio = {base} / model)")
        for n, v in row.items():
            print(
                f"  {n:32s} {v['median_ms']:9.1f}  (min {v['min_ms']:8.1f})  x{row[base]['median_ms'] / v['median_ms']:.2f}"
            )


def print_table(res: dict) -> None:
    acc = res["accuracy"]
    f = acc["fp32"]["dice_raw"]
    print(
        f"\n{'model':32s} {'dice':>7s} {'dDice':>8s} {'prec':>7s} {'rec':>7s} {'maxdiff':>8s} {'meandiff':>9s} {'flips':>8s}"
    )
    for n, a in acc.items():
        print(
            f"{n:32s} {a['dice']:7.4f} {a['dice_raw'] - f:+8.4f} {a['precision']:7.4f} {a['recall']:7.4f} "
            f"{a.get('max_abs_diff', 0):8.4f} {a.get('mean_abs_diff', 0):9.5f} {a.get('mask_flip_frac', 0):8.5f}"
        )
    if "speed" in res:
        print_speed(res["speed"], "fp32")


if __name__ == "__main__":
    main()
