"""What the slide quality control adds to the time of scoring a slide, and what that makes of a 40,000^2 slide.

    python benchmarks/qc_cost.py [--size 6144] [--repeats 3] [--seed 906] [--category 2+]

Writes one phantom slide (:func:`her2fast.synth.make_slide`, ``--size``^2 px at 0.5 um/px) to a temporary
folder (outside the repository; removed afterwards), scores it once to warm up (model load, caches), then
``--repeats`` times with the quality control on and as many times off, alternating (on/off, off/on, ...):

- on: ``ScoreSettings()`` (the defaults: ``stain_gate=True``, ``quality_map=True``);
- off: ``ScoreSettings(stain_gate=False, quality_map=False)``.

The colour check (:func:`her2fast.qc.check_colour`) runs in both (it cannot be switched off). Printed: each
run's seconds, the medians and their ratio; the stain gate's seconds (``timings["stain_gate"]``, read from
the thumbnail and four tiles whatever the slide's size: a fixed cost per slide); the quality map's busy
seconds (``timings["quality"]``, summed over the workers) per segmented tile; and the tile stream's wall
seconds (``timings["tiles_wall"]``) on and off, whose difference per segmented tile is what the map adds
to the wall time per tile.

The extrapolation to a slide of ``--target`` ^2 px (40,000 by default) with the same share of tissue takes
the tile stream's wall time per tile (QC off) times the number of tiles (which grows with the area), and
everything else in the run without quality control (tissue detection, stain vectors, epithelium, merging)
as fixed: those parts grow with the slide too, so the share printed is an upper bound for the per-tile
cost given. QC adds the stain gate (fixed) and, per tile, either the wall time measured (on minus off,
which other work on the machine makes noisy) or the map's share of the tile workers' busy seconds
(``q / (busy - q)``: what it adds where the tile workers are the bottleneck and every second of theirs is
wall time, as on a CPU whose cores all do tile work).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def _cpu() -> str:
    """The CPU's model name (``lscpu``'s, from /proc/cpuinfo where there is one)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=6144, help="phantom slide side, px at 0.5 um/px")
    ap.add_argument("--repeats", type=int, default=3, help="runs with QC on and as many off (>= 3)")
    ap.add_argument("--seed", type=int, default=906)
    ap.add_argument("--category", default="2+")
    ap.add_argument("--target", type=int, default=40000, help="side (px) of the slide to extrapolate to")
    args = ap.parse_args(argv)
    if args.repeats < 3:
        ap.error("--repeats must be 3 or more")

    import her2fast
    from her2fast.pipeline import ScoreSettings
    from her2fast.synth import make_slide

    settings = {True: ScoreSettings(), False: ScoreSettings(stain_gate=False, quality_map=False)}
    runs: dict[bool, list[dict]] = {True: [], False: []}
    with tempfile.TemporaryDirectory(prefix="her2fast-qc-cost-") as tmp:
        t0 = time.perf_counter()
        gt = make_slide(
            Path(tmp) / "slide.tiff", category=args.category, width=args.size, height=args.size, seed=args.seed
        )
        print(
            f"phantom {args.size}^2 {args.category} seed {args.seed} (truth {gt.category}) written in "
            f"{time.perf_counter() - t0:.1f} s"
        )
        her2fast.score(gt.path, progress=False, settings=settings[False])  # warm-up: model load, caches
        for k in range(args.repeats):
            for on in (True, False) if k % 2 == 0 else (False, True):
                t0 = time.perf_counter()
                r = her2fast.score(gt.path, progress=False, settings=settings[on])
                dt = time.perf_counter() - t0
                tiles = int(r.counts.get("tiles_segmented", 0))
                runs[on].append(
                    {
                        "s": dt,
                        "tiles": tiles,
                        "tiles_wall": float(r.timings.get("tiles_wall", 0.0)),
                        "gate": float(r.timings.get("stain_gate", 0.0)),
                        "quality": float(r.timings.get("quality", 0.0)),
                        "busy": sum(
                            float(v)
                            for key, v in r.timings.items()
                            if key in ("read", "deconvolve", "membrane", "nuclei", "cells", "quality")
                        ),
                        "score": r.score,
                        "cells": len(r.cells),
                    }
                )
                print(
                    f"repeat {k} QC {'on ' if on else 'off'} {dt:7.2f} s  score {r.score}  cells {len(r.cells)}  "
                    f"tiles {tiles}  tile stream {runs[on][-1]['tiles_wall']:.2f} s  "
                    f"gate {runs[on][-1]['gate']:.2f} s  quality map {runs[on][-1]['quality']:.2f} s busy",
                    flush=True,
                )

    def med(on: bool, key: str) -> float:
        return float(np.median([x[key] for x in runs[on]]))

    on_s, off_s = med(True, "s"), med(False, "s")
    tiles = runs[True][0]["tiles"]
    gate = med(True, "gate")
    q_tile_ms = 1000.0 * med(True, "quality") / max(tiles, 1)
    wall_on, wall_off = med(True, "tiles_wall"), med(False, "tiles_wall")
    add_tile_ms = 1000.0 * (wall_on - wall_off) / max(tiles, 1)
    off_tile_ms = 1000.0 * wall_off / max(tiles, 1)
    print(f"\n{_cpu()}, {os.cpu_count()} CPUs, {args.size}^2 phantom {args.category} seed {args.seed}, {tiles} tiles")
    print(f"median score time: QC off {off_s:.2f} s, QC on {on_s:.2f} s -> on / off = {on_s / off_s:.3f}")
    share = med(True, "quality") / max(med(True, "busy"), 1e-9)
    print(
        f"quality map share of the tile work (busy seconds): {100 * share:.1f} % "
        "(its share of the wall time per tile where the tile workers are the bottleneck)"
    )
    print(
        f"stain gate {gate:.2f} s per slide (fixed); quality map {q_tile_ms:.1f} ms busy per tile; "
        f"tile stream {off_tile_ms:.1f} ms wall per tile off, {add_tile_ms:+.1f} ms per tile with the map"
    )
    # extrapolation: tiles grow with the area, the rest of the run without QC is taken as fixed
    n_big = tiles * (args.target / args.size) ** 2
    fixed_off = off_s - wall_off
    big_off = fixed_off + n_big * off_tile_ms / 1000.0
    for what, per_tile in (
        ("measured wall time per tile", add_tile_ms / off_tile_ms),
        ("map's share of the tile work", share / (1.0 - share)),
    ):
        big_add = gate + n_big * per_tile * off_tile_ms / 1000.0
        print(
            f"{args.target}^2 slide (~{n_big:.0f} tiles) by the {what} ({100 * per_tile:+.1f} % per tile): "
            f"QC off ~{big_off:.0f} s, QC adds ~{big_add:.0f} s -> {100 * big_add / big_off:+.1f} % "
            f"(the stain gate {100 * gate / big_off:.2f} % of it)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
