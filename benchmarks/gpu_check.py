"""The GPU check (run by benchmarks/gpu.sh on a machine with a GPU; also runs on a CPU as a dry run).

1. CPU/GPU agreement: the membrane probabilities of phantom tiles from the CPU provider and from the
   GPU provider (max abs difference; the issue asks <= 1e-3 for fp32).
2. Throughput: ``her2fast bench pipeline`` on a large phantom with the GPU provider, large batches
   and the GPU thread plan (readers and post-processing workers on every other core); prints tiles/s
   and the projected seconds for a 3,000-tile slide (target <= 10 s on one modern GPU).

    python benchmarks/gpu_check.py [--providers CUDAExecutionProvider] [--size 8192] [--batch 32]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--providers", default="TensorrtExecutionProvider,CUDAExecutionProvider")
    ap.add_argument("--size", type=int, default=8192)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--tiles", type=int, default=8, help="phantom tiles for the agreement check")
    ap.add_argument("--out", default="her2fast_gpu")
    ap.add_argument(
        "--crop",
        action="store_true",
        help="also time windows around the epithelium (varying shapes: TensorRT builds an engine per "
        "shape, so the main run segments whole tiles in full batches)",
    )
    args = ap.parse_args()

    import onnxruntime as ort

    from her2fast.bench.pipeline import main as bench_main
    from her2fast.stages.membrane import MembraneSession, predict_maps_batch
    from her2fast.synth import make_tile

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    available = ort.get_available_providers()
    wanted = [p for p in args.providers.split(",") if p in available]
    print(f"onnxruntime {ort.__version__}, available providers {available}; using {wanted or 'NONE'}", flush=True)
    if not wanted:
        print(
            "no GPU provider in this onnxruntime build: install onnxruntime-gpu for this machine's CUDA "
            "(see docs/throughput.md); dry run on the CPU provider",
            flush=True,
        )
        wanted = ["CPUExecutionProvider"]
    gpu = MembraneSession(providers=wanted)
    print(f"session providers: {gpu.providers}", flush=True)

    tiles = [make_tile(544, category=c, seed=900 + i).rgb for i, c in enumerate(["3+", "2+", "1+", "0"] * 4)][
        : args.tiles
    ]
    cpu_maps = predict_maps_batch(tiles, 0.5, providers=["CPUExecutionProvider"], batch_size=4)
    t0 = time.perf_counter()
    gpu_maps = predict_maps_batch(tiles, 0.5, providers=wanted, batch_size=args.batch)
    first = time.perf_counter() - t0
    diff = max(float(np.abs(a.membrane - b.membrane).max()) for a, b in zip(cpu_maps, gpu_maps))
    flips = sum(int(((a.membrane >= 0.5) != (b.membrane >= 0.5)).sum()) for a, b in zip(cpu_maps, gpu_maps))
    n_px = sum(a.membrane.size for a in cpu_maps)
    print(
        f"agreement: max |p_gpu - p_cpu| = {diff:.2e} over {len(tiles)} tiles; mask flips {flips} of {n_px} px "
        f"({first:.2f} s first call incl. warm-up)",
        flush=True,
    )
    code = bench_main(
        size=args.size,
        category="2+",
        providers=",".join(wanted),
        batch=args.batch,
        reference=False,
        json_path=str(out / "bench_gpu.json"),
        work_dir=str(out),
        crop=False,
    )
    if args.crop and code == 0:
        code = bench_main(
            size=args.size,
            category="2+",
            providers=",".join(wanted),
            batch=args.batch,
            reference=False,
            json_path=str(out / "bench_gpu_windows.json"),
            work_dir=str(out),
            crop=True,
        )
    (out / "agreement.json").write_text(
        json.dumps({"max_abs_diff": diff, "mask_flips": flips, "pixels": n_px, "providers": gpu.providers}, indent=1)
    )
    return code


if __name__ == "__main__":
    sys.exit(main())
