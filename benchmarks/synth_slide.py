"""Time and peak memory of writing a phantom slide (default: 20,000 x 20,000 px at 0.5 um/px).

    python benchmarks/synth_slide.py [--size 20000] [--mpp 0.5] [--category 2+]

Runs make_slide in a child process and reports wall time, time per megapixel and per 512-px tile,
the child's peak RSS (ru_maxrss) and its growth over the imports, and the file size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

CHILD = """
import json, os, resource, sys, time
from her2fast.synth import make_slide
size, mpp, cat, d = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
gt = make_slide(os.path.join(d, "bench.tiff"), category=cat, width=size, height=size, mpp=mpp, seed=0)
wall = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"wall_s": wall, "peak_rss_mb": peak / 1024, "import_rss_mb": base / 1024,
                  "file_mb": os.path.getsize(gt.path) / 2**20, "levels": len(gt.level_dimensions),
                  "cells": len(gt.cells), "category": gt.category}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=20000)
    ap.add_argument("--mpp", type=float, default=0.5)
    ap.add_argument("--category", default="2+")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(args.size), str(args.mpp), args.category, d],
            capture_output=True,
            text=True,
            check=True,
        )
    r = json.loads(out.stdout)
    mpx = args.size**2 / 1e6
    tiles = (-(-args.size // 512)) ** 2
    print(
        f"slide {args.size}x{args.size} px at {args.mpp} um/px ({args.category}): {r['wall_s']:.1f} s "
        f"({1e3 * r['wall_s'] / mpx:.1f} ms/Mpx, {1e3 * r['wall_s'] / tiles:.0f} ms per 512-px tile), "
        f"peak RSS {r['peak_rss_mb']:.0f} MB ({r['peak_rss_mb'] - r['import_rss_mb']:.0f} MB over imports), "
        f"file {r['file_mb']:.1f} MB, {r['levels']} levels, {r['cells']} cells, true category {r['category']}"
    )
    full = 20000
    if args.size != full:
        est = r["wall_s"] * (full / args.size) ** 2
        print(f"extrapolated (time ~ pixel count) to {full}x{full}: {est / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
