"""Static int8 quantisation of the shipped membrane U-Net (ONNX QDQ, per-channel weights).

Usage::

    python -m training.quantize_membrane [--out /tmp/membrane_int8] [--tiles 24] [--install]

Steps: ``quant_pre_process`` (shape inference and graph clean-up) on the shipped fp32 model, then
``onnxruntime.quantization.quantize_static``: QDQ format, activations uint8 (asymmetric), weights int8
per output channel (symmetric), MinMax calibration. The calibration tiles are phantoms from
:func:`her2fast.synth.make_tile` with training seeds (``0 .. tiles - 1``, the seeds the U-Net was trained
on), every one of the 12 presets in turn, 512² at 0.5 µm/px, JPEG 90, fed as the slide pipeline feeds a
tile (RGB / 255 with the model's mirrored margin). Held-out phantom seeds (tiles 200000-200047, slides
901-914) and the real evaluate fields are never used.

The same inputs give the same file: MinMax calibration over a fixed tile list and a fixed graph
(``--check`` quantises twice and compares the sha256). Writes ``model_int8.onnx`` and
``model_int8.json`` (sha256, recipe, calibration tiles) to ``--out``; ``--install`` copies both into
``her2fast/models/membrane_unet/``. Needs the ``onnx`` package (``onnxruntime.quantization`` imports it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = ROOT / "her2fast" / "models" / "membrane_unet"
INT8_FILE = "model_int8.onnx"
INT8_META = "model_int8.json"
#: the recipe recorded in model_int8.json (and what :func:`quantize` does)
RECIPE = {
    "tool": "onnxruntime.quantization.quantize_static",
    "format": "QDQ",
    "activations": "QUInt8 (asymmetric, per tensor)",
    "weights": "QInt8 (symmetric, per output channel)",
    "calibration": "MinMax",
    "reduce_range": False,
}
#: the input normalisation and the first convolution (3 input channels: little to gain; quantised, it costs
#: held-out Dice on AVX2 CPUs, whose int8 kernels without VNNI can saturate the int16 pair sums of its u8 x s8
#: products; see ``--int8-first-conv``)
FIRST_NODES = ("/net/Sub", "/net/Mul", "/net/enc.0/conv1/Conv")
#: the nodes after the last U-Net block: 1x1 head conv, slices, logit difference, logit bias, sigmoids (two
#: logits whose difference is the membrane probability)
HEAD_NODES = (
    "/net/head/Conv",
    "/net/Slice",
    "/net/Slice_1",
    "/Slice",
    "/Slice_1",
    "/Sub",
    "/Add",
    "/Sigmoid",
    "/Sigmoid_1",
)
#: nodes left in fp32
KEEP_FP32 = FIRST_NODES + HEAD_NODES
PRESET_ORDER = (
    "0/typical",
    "0+/typical",
    "0+/near-threshold",
    "1+/typical",
    "1+/near-threshold",
    "2+/typical",
    "2+/near-threshold",
    "2+/unusual",
    "2+/heterogeneous",
    "3+/typical",
    "3+/near-threshold",
    "3+/heterogeneous",
)
#: seeds the U-Net never saw in training or validation; calibration must not use them
HELD_OUT_TILE_SEEDS = range(200_000, 200_048)
HELD_OUT_SLIDE_SEEDS = (901, 902, 903, 904, 905, 906, 911, 912, 913, 914)


def calibration_plan(tiles: int) -> list[tuple[str, int]]:
    """(preset, seed) of each calibration tile: seeds ``0 .. tiles - 1``, the presets in turn.

    Examples
    --------
    >>> calibration_plan(3)
    [('0/typical', 0), ('0+/typical', 1), ('0+/near-threshold', 2)]
    """
    plan = [(PRESET_ORDER[i % len(PRESET_ORDER)], i) for i in range(tiles)]
    for _, seed in plan:
        if seed in HELD_OUT_TILE_SEEDS or seed in HELD_OUT_SLIDE_SEEDS:
            raise ValueError(f"calibration seed {seed} is a held-out seed")
    return plan


def calibration_inputs(tiles: int, size: int = 512) -> np.ndarray:
    """(n, 3, H, W) float32 network inputs of the calibration tiles (as the pipeline builds them)."""
    from her2fast.stages.membrane import load_model_config
    from her2fast.stages.membrane.predict import _single_pass_input
    from her2fast.synth import make_tile

    cfg = load_model_config()
    out = []
    for preset, seed in calibration_plan(tiles):
        cat, _, variant = preset.partition("/")
        rgb = make_tile(size, category=cat, variant=variant, seed=seed, mpp=cfg.mpp, jpeg_quality=90).rgb
        out.append(_single_pass_input(rgb, cfg.overlap, cfg.multiple))
    return np.stack(out)


def quantize(
    fp32: Path, out: Path, calib: np.ndarray, exclude: tuple[str, ...] = KEEP_FP32, reduce_range: bool = False
) -> Path:
    """Quantise ``fp32`` to ``out`` (QDQ, per-channel int8 weights, MinMax on ``calib``, nodes ``exclude``
    left in fp32); returns ``out``."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(calib)

        def get_next(self) -> dict | None:
            x = next(self._it, None)
            return None if x is None else {"rgb": x[None]}

    out = Path(out).resolve()
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # the quantisation helpers leave scratch files in the working directory
        try:
            pre = Path(tmp) / "pre.onnx"
            quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
            quantize_static(
                str(pre),
                str(out),
                _Reader(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                reduce_range=reduce_range,
                nodes_to_exclude=list(exclude),
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
            )
        finally:
            os.chdir(cwd)
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------------ agreement


def model_dir_for(onnx_path: Path, work: Path) -> Path:
    """A model directory (``config.json`` + the ONNX file) for ``onnx_path``: the shipped config with
    its ``file`` and ``sha256`` replaced, so that :class:`~her2fast.stages.membrane.MembraneSession` loads it."""
    from her2fast.stages.membrane import load_model_config

    raw = dict(load_model_config().raw)
    d = Path(work) / f"dir_{Path(onnx_path).stem}"
    d.mkdir(parents=True, exist_ok=True)
    shutil.copy(onnx_path, d / Path(onnx_path).name)
    raw.update(file=Path(onnx_path).name, sha256=_sha256(onnx_path))
    (d / "config.json").write_text(json.dumps(raw, indent=1))
    return d


def runtimes(int8_dir: Path, names: str = "") -> dict[str, tuple[Path | None, list[str]]]:
    """name -> (model directory, providers) of every runtime compared (None: the shipped fp32 model)."""
    out: dict[str, tuple[Path | None, list[str]]] = {
        "onnxruntime-fp32": (None, ["CPUExecutionProvider"]),
        "onnxruntime-int8": (int8_dir, ["CPUExecutionProvider"]),
    }
    import importlib.util

    if importlib.util.find_spec("openvino") is not None:
        out["openvino-fp32"] = (None, ["OpenVINO:f32"])
        out["openvino-int8"] = (int8_dir, ["OpenVINO:f32"])  # OpenVINO runs the QDQ graph's convolutions in u8
    if names:
        keep = ["onnxruntime-fp32", *(n for n in names.split(",") if n and n != "onnxruntime-fp32")]
        out = {n: out[n] for n in keep}
    return out


def tile_agreement(int8_dir: Path, threads: int) -> dict:
    """Membrane probabilities of the 48 held-out test tiles (seeds 200000-200047) under every runtime
    against ONNX Runtime fp32: max / mean |dp|, fraction of pixels across 0.5, pooled Dice vs the truth."""
    from her2fast.stages.membrane import MembraneSession, load_model_config
    from her2fast.stages.membrane.predict import _single_pass_input
    from training.data import CacheSpec, build_cache, load_cache

    cache = build_cache(
        ROOT / "training/cache/test.npz", CacheSpec(n=48, seed0=200000, mpp_range=(0.5, 0.5), jpeg_range=(90, 90))
    )
    te = load_cache(cache)
    cfg = load_model_config()
    o = cfg.overlap
    x = [_single_pass_input(t, o, cfg.multiple)[None] for t in te["rgb"]]
    truth = te["membrane"].astype(bool)
    probs = {}
    for name, (d, prov) in runtimes(int8_dir).items():
        s = MembraneSession(d, prov, threads)
        probs[name] = np.stack([s.run(b)[0][0, o : o + truth.shape[1], o : o + truth.shape[2]] for b in x])
    ref = probs["onnxruntime-fp32"]
    out = {}
    for name, p in probs.items():
        d = np.abs(p - ref)
        m = p >= 0.5
        dice = 2 * np.count_nonzero(m & truth) / max(np.count_nonzero(m) + np.count_nonzero(truth), 1)
        out[name] = {
            "max_abs_diff": round(float(d.max()), 4),
            "mean_abs_diff": round(float(d.mean()), 5),
            "flip_fraction": round(float((m != (ref >= 0.5)).mean()), 5),
            "dice": round(float(dice), 4),
        }
        print(
            f"  {name:18s} max |dp| {out[name]['max_abs_diff']:.4f}  mean |dp| {out[name]['mean_abs_diff']:.5f}  "
            f"pixels across 0.5 {100 * out[name]['flip_fraction']:.3f} %  Dice vs truth {out[name]['dice']:.4f}",
            flush=True,
        )
    return out


def slide_agreement(
    int8_dir: Path, seeds: list[int], presets: list[str], size: int, folder: Path, names: str = ""
) -> dict:
    """Score held-out phantom slides (``make_slide`` seeds ``seeds``, every preset) under every runtime;
    the category and % complete of each against ONNX Runtime fp32's."""
    import her2fast
    from her2fast.stages.membrane import model as membrane_model
    from her2fast.stages.membrane import runtime as membrane_runtime
    from her2fast.synth import is_current_phantom, make_slide

    folder.mkdir(parents=True, exist_ok=True)
    shipped = membrane_model.default_model_dir
    rts = runtimes(int8_dir, names)
    rows = []
    print(f"  {'slide':36s} " + " ".join(f"{n:>24s}" for n in rts), flush=True)
    for seed in seeds:
        for preset in presets:
            cat, _, variant = preset.partition("/")
            path = folder / f"heldout_{cat.replace('+', 'p')}_{variant}_{seed}_{size}.tiff"
            if not is_current_phantom(path):
                make_slide(path, category=cat, width=size, height=size, seed=seed, variant=variant)
            row = {"slide": path.name, "preset": preset, "seed": seed, "runtimes": {}}
            for name, (d, prov) in rts.items():
                membrane_runtime._SESSIONS.clear()
                if d is not None:  # the pipeline loads the shipped model directory: point it at the int8 one
                    membrane_model.default_model_dir = lambda d=d: Path(d)
                try:
                    r = her2fast.score(path, providers=prov, progress=False)
                finally:
                    membrane_model.default_model_dir = shipped
                    membrane_runtime._SESSIONS.clear()
                row["runtimes"][name] = {
                    "category": r.category,
                    "percent_complete": None if r.percent_complete is None else round(float(r.percent_complete), 3),
                    "providers": list(r.provenance.get("providers", [])),
                    "membrane_sha256": r.provenance.get("models", {}).get("membrane_unet"),
                }
            rows.append(row)
            cells = [
                f"{v['category']!s:>5s} {float('nan') if v['percent_complete'] is None else v['percent_complete']:6.2f}"
                for v in row["runtimes"].values()
            ]
            print(f"  {path.name:36s} " + " ".join(f"{c:>24s}" for c in cells), flush=True)
    summary = {}
    for name in rts:
        same = sum(r["runtimes"][name]["category"] == r["runtimes"]["onnxruntime-fp32"]["category"] for r in rows)
        dpc = [
            abs(r["runtimes"][name]["percent_complete"] - r["runtimes"]["onnxruntime-fp32"]["percent_complete"])
            for r in rows
            if r["runtimes"][name]["percent_complete"] is not None
            and r["runtimes"]["onnxruntime-fp32"]["percent_complete"] is not None
        ]
        summary[name] = {
            "slides": len(rows),
            "categories_equal": same,
            "max_abs_diff_percent_complete": round(max(dpc), 3) if dpc else None,
            "mean_abs_diff_percent_complete": round(float(np.mean(dpc)), 3) if dpc else None,
        }
        print(
            f"  {name:18s} categories equal to onnxruntime-fp32 {same}/{len(rows)}; % complete |diff| max "
            f"{summary[name]['max_abs_diff_percent_complete']} mean {summary[name]['mean_abs_diff_percent_complete']}",
            flush=True,
        )
    return {"rows": rows, "summary": summary}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "membrane_int8"))
    ap.add_argument("--tiles", type=int, default=24, help="calibration tiles (default: %(default)s)")
    ap.add_argument(
        "--int8-first-conv",
        action="store_true",
        help="quantise the input normalisation and first convolution too (to see what keeping them fp32 buys)",
    )
    ap.add_argument("--check", action="store_true", help="quantise twice and require the same sha256")
    ap.add_argument("--install", action="store_true", help=f"copy the result into {MODEL_DIR.relative_to(ROOT)}")
    ap.add_argument("--agreement", action="store_true", help="held-out test tiles under every runtime vs fp32")
    ap.add_argument("--slides", default="", help="held-out slide seeds to score under every runtime, e.g. 904,905")
    ap.add_argument("--presets", default=",".join(PRESET_ORDER), help="presets of --slides (default: all 12)")
    ap.add_argument("--size", type=int, default=2048, help="side of the --slides phantoms (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=2, help="intra-op threads of --agreement (default: %(default)s)")
    ap.add_argument("--runtimes", default="", help="runtimes of --slides (default: all)")
    ap.add_argument("--json", default=None, help="write the figures here too")
    args = ap.parse_args(argv)

    from her2fast.stages.membrane import load_model_config

    cfg = load_model_config()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / INT8_FILE
    if not path.is_file() or not (args.agreement or args.slides):
        calib = calibration_inputs(args.tiles)
        print(
            f"calibration: {len(calib)} phantom tiles {calib.shape[2]}x{calib.shape[3]} (training seeds 0-{args.tiles - 1})"
        )
        keep = tuple(n for n in KEEP_FP32 if n not in FIRST_NODES) if args.int8_first_conv else KEEP_FP32
        path = quantize(cfg.path, path, calib, keep)
        digest = _sha256(path)
        if args.check:
            again = quantize(cfg.path, out_dir / "again.onnx", calib, keep)
            same = _sha256(again) == digest
            again.unlink()
            print(f"deterministic: {'yes' if same else 'NO'}")
            if not same:
                return 1
        meta = {
            "file": INT8_FILE,
            "sha256": digest,
            "size_bytes": path.stat().st_size,
            "from": {"file": cfg.path.name, "sha256": cfg.sha256},
            "recipe": {**RECIPE, "not_quantised": list(keep)},
            "calibration": {
                "tiles": [{"preset": p, "seed": s} for p, s in calibration_plan(args.tiles)],
                "size": 512,
                "mpp": cfg.mpp,
                "jpeg_quality": 90,
            },
            "command": f"python -m training.quantize_membrane --tiles {args.tiles}",
        }
        (out_dir / INT8_META).write_text(json.dumps(meta, indent=2) + "\n")
        print(f"wrote {path} ({meta['size_bytes'] / 1e6:.2f} MB, sha256 {digest[:12]})")
        if args.install:
            for name in (INT8_FILE, INT8_META):
                shutil.copy(out_dir / name, MODEL_DIR / name)
            print(f"installed into {MODEL_DIR}")
    res: dict = {"int8": str(path), "sha256": _sha256(path)}
    int8_dir = model_dir_for(path, out_dir)
    if args.agreement:
        print("held-out test tiles (48 x 512^2, seeds 200000-200047), membrane probability vs onnxruntime-fp32:")
        res["tiles"] = tile_agreement(int8_dir, args.threads)
    if args.slides:
        seeds = [int(s) for s in args.slides.split(",") if s]
        presets = [p if "/" in p else f"{p}/typical" for p in args.presets.split(",") if p]
        print(f"held-out phantom slides ({args.size}^2, seeds {seeds}, {len(presets)} presets) under every runtime:")
        res["slides"] = slide_agreement(int8_dir, seeds, presets, args.size, out_dir / "slides", args.runtimes)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
