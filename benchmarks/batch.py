"""Throughput of `her2fast batch` against `her2fast score` run once per slide, measured in the same run.

    python benchmarks/batch.py --n 4 --size 1024 --workers 1,2

Makes N phantom slides, then times (a) one `her2fast score SLIDE` process per slide, one after the other
(what a shell loop does), and (b) `her2fast batch DIR` on the same slides with each worker count given, each
into a fresh output folder. Prints seconds, slides per minute and the ratio (a) / (b).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode not in (0, 3):
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr}")
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=4, help="phantom slides (default: %(default)s)")
    ap.add_argument("--size", type=int, default=1024, help="phantom side in px at 0.5 um/px (default: %(default)s)")
    ap.add_argument("--workers", default="", help="comma-separated worker counts for batch (default: batch's default)")
    ap.add_argument("--no-pictures", action="store_true", help="skip the PNG pictures in both")
    args = ap.parse_args()

    from her2fast.service.batch import default_workers
    from her2fast.synth import make_slide

    her2fast = [sys.executable, "-m", "her2fast"]
    extra = ["--no-pictures"] if args.no_pictures else []
    counts = [int(w) for w in args.workers.split(",") if w] or [default_workers()]
    with tempfile.TemporaryDirectory(prefix="her2fast-bench-batch-") as tmp:
        root = Path(tmp)
        slides = root / "slides"
        slides.mkdir()
        cats = ["3+", "1+", "2+", "0", "0+"]
        paths = [
            make_slide(
                slides / f"b{i}.tiff", category=cats[i % len(cats)], width=args.size, height=args.size, seed=1200 + i
            ).path
            for i in range(args.n)
        ]
        for p in list(slides.iterdir()):  # keep only the slides (no sidecars)
            if p not in paths:
                p.unlink()
        print(
            f"{args.n} phantom slides {args.size}x{args.size} px; {os.cpu_count()} CPUs; "
            f"load average {os.getloadavg()[0]:.2f} before timing"
        )
        seq = sum(timed([*her2fast, "score", str(p), "--out", str(root / "seq"), "-q", *extra]) for p in paths)
        print(f"her2fast score, one process per slide, sequential: {seq:7.1f} s  ({60 * args.n / seq:5.2f} slides/min)")
        for w in counts:
            t = timed(
                [*her2fast, "batch", str(slides), "--out", str(root / f"batch{w}"), "--workers", str(w), "-q", *extra]
            )
            print(
                f"her2fast batch --workers {w}:                         {t:7.1f} s  ({60 * args.n / t:5.2f} slides/min)"
                f"  ratio {seq / t:.2f}x"
            )
        t = timed([*her2fast, "batch", str(slides), "--out", str(root / f"batch{counts[0]}"), "-q", *extra])
        print(f"her2fast batch rerun (all skipped):                 {t:7.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
