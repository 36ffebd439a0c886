"""OpenVINO vs ONNX Runtime for the membrane U-Net on this CPU: agreement, Dice against the phantoms'
truth, and speed, in one run (speed compared at equal Dice).

On a CPU with bf16 units (Intel AMX, AVX512-BF16) ``providers=["OpenVINO"]`` runs bf16; elsewhere fp32
(then the figures only show that the two runtimes agree). ``benchmarks/gpu.sh`` runs this on the device
machine's CPU too.

    python benchmarks/openvino_check.py [--tiles 12] [--size 512] [--threads 1] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def _dice(prob: np.ndarray, truth: np.ndarray) -> float:
    p = prob >= 0.5
    return float(2 * np.count_nonzero(p & truth) / max(np.count_nonzero(p) + np.count_nonzero(truth), 1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiles", type=int, default=12, help="phantom tiles (1+, 2+, 3+ in turn; default: %(default)s)")
    ap.add_argument("--size", type=int, default=512, help="tile side in px at 0.5 um/px (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads of each runtime (default: %(default)s)")
    ap.add_argument("--reps", type=int, default=3, help="timed passes over the tiles, best kept (default: %(default)s)")
    ap.add_argument("--json", default=None, help="write the figures here too")
    args = ap.parse_args(argv)

    from her2fast.stages import membrane
    from her2fast.synth import make_tile

    cats = ["1+", "2+", "3+"]  # stained membranes to find (0: none)
    tiles = [make_tile(args.size, category=cats[i % 3], seed=880_000 + i, jpeg_quality=85) for i in range(args.tiles)]
    batches = [np.ascontiguousarray((t.rgb.astype(np.float32) / 255).transpose(2, 0, 1)[None]) for t in tiles]
    sessions = {
        "onnxruntime": membrane.MembraneSession(providers=["CPUExecutionProvider"], threads=args.threads),
        "openvino": membrane.MembraneSession(providers=["OpenVINO"], threads=args.threads),
    }
    probs, ms = {}, {}
    for name, s in sessions.items():
        probs[name] = [s.run(b)[0][0] for b in batches]  # also warms the runtime up
        best = float("inf")
        for _ in range(args.reps):
            t0 = time.perf_counter()
            for b in batches:
                s.run(b)
            best = min(best, time.perf_counter() - t0)
        ms[name] = 1e3 * best / len(batches)
    a, b = probs["onnxruntime"], probs["openvino"]
    diff = max(float(np.abs(x - y).max()) for x, y in zip(a, b))
    flips = float(np.mean([((x >= 0.5) != (y >= 0.5)).mean() for x, y in zip(a, b)]))
    dice = {name: float(np.mean([_dice(p, t.membrane_mask) for p, t in zip(probs[name], tiles)])) for name in probs}
    out = {
        "cpu_bf16": membrane.openvino_bf16(),
        "openvino": sessions["openvino"].providers[0],
        "tiles": args.tiles,
        "size": args.size,
        "threads": args.threads,
        "ms_per_tile": {k: round(v, 2) for k, v in ms.items()},
        "speed_ratio": round(ms["onnxruntime"] / ms["openvino"], 3),
        "max_abs_diff": round(diff, 6),
        "flip_fraction": round(flips, 6),
        "dice": {k: round(v, 4) for k, v in dice.items()},
        "auto_would_take_openvino": membrane.prefer_openvino(diff, flips, ms["openvino"], ms["onnxruntime"]),
    }
    print(
        f"openvino check: {out['openvino']} vs ONNX Runtime fp32 (CPU bf16 units: {out['cpu_bf16']}), "
        f"{args.tiles} tiles of {args.size}^2, {args.threads} thread(s)"
    )
    print(
        f"  ms per tile: ONNX Runtime {ms['onnxruntime']:.1f}, OpenVINO {ms['openvino']:.1f} "
        f"-> {out['speed_ratio']:.2f}x"
    )
    print(
        f"  agreement: max |dp| {diff:.2e}, pixels across 0.5: {100 * flips:.4f} %; "
        f"Dice vs truth: ONNX Runtime {dice['onnxruntime']:.4f}, OpenVINO {dice['openvino']:.4f}"
    )
    print(f"  providers='auto' would take OpenVINO here: {out['auto_would_take_openvino']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
