"""``her2fast bench kernels``: the native kernels against their references, in one run.

Single-threaded times on real-image mosaics (scikit-image's IHC sample, 512^2 and 2048^2): ours and
the reference called alternately N times each (default 5), the median of each, the ratio of the
medians -- the figure that counts on a noisy machine -- and the min-max of the run-by-run ratios.
Then throughput on independent tiles with two threads against one (GIL released), medians likewise.

Targets: SLIC >= 25x skimage.segmentation.slic, uniform LBP >= 25x
skimage.feature.local_binary_pattern, features >= 5x the numpy reference, 2 threads >= 1.7x.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .. import __version__
from ..stages.cells import membrane_skeleton
from ..stages.superpixels import slic, superpixel_features
from ..stages.texture import local_binary_pattern
from .reference import grey_level, membrane_like_mask, real_ihc_mosaic, superpixel_features_reference

COMPACTNESS = 10.0
MAX_ITER = 10
PIXELS_PER_SUPERPIXEL = 655  # n_segments = 400 on 512 x 512


def paired_seconds(
    ours: Callable[[], object], reference: Callable[[], object], repeats: int
) -> tuple[list[float], list[float]]:
    """Wall times of ``ours`` and ``reference``, called alternately ``repeats`` times each.

    Alternating puts both under the same machine noise; one warm-up call each first. Returns the
    two lists of seconds, run by run (run i of ours was timed next to run i of the reference).
    """
    ours(), reference()
    t_ours: list[float] = []
    t_ref: list[float] = []
    for _ in range(repeats):
        for fn, times in ((ours, t_ours), (reference, t_ref)):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return t_ours, t_ref


def _row(kernel: str, size: int, ours: list[float], ref: list[float], reference: str, target: float | None) -> dict:
    o, r = statistics.median(ours), statistics.median(ref)
    pairs = [b / a for a, b in zip(ours, ref)]
    return {
        "kernel": kernel,
        "size": size,
        "runs": len(ours),
        "ours_ms": o * 1e3,
        "ours_ms_min_max": [min(ours) * 1e3, max(ours) * 1e3],
        "reference": reference,
        "reference_ms": r * 1e3,
        "reference_ms_min_max": [min(ref) * 1e3, max(ref) * 1e3],
        "ratio": r / o,
        "ratio_runs_min_max": [min(pairs), max(pairs)],
        "target": target,
        "meets_target": None if target is None else r / o >= target,
    }


def single_thread_rows(size: int, repeats: int) -> list[dict]:
    from skimage.feature import local_binary_pattern as sk_lbp
    from skimage.morphology import skeletonize, thin
    from skimage.segmentation import slic as sk_slic

    img = real_ihc_mosaic(size)
    grey = grey_level(img)
    n_segments = size * size // PIXELS_PER_SUPERPIXEL
    ref_repeats = repeats
    rows = []
    ours, ref = paired_seconds(
        lambda: slic(img, n_segments, COMPACTNESS, MAX_ITER),
        lambda: sk_slic(img, n_segments=n_segments, compactness=COMPACTNESS, max_num_iter=MAX_ITER, start_label=0),
        ref_repeats,
    )
    rows.append(_row(f"slic (n_segments={n_segments})", size, ours, ref, "skimage.segmentation.slic", 25.0))
    ours, ref = paired_seconds(
        lambda: local_binary_pattern(grey, 8, 1.0), lambda: sk_lbp(grey, 8, 1.0, method="uniform"), repeats
    )
    rows.append(_row("uniform LBP (P=8, R=1)", size, ours, ref, "skimage.feature.local_binary_pattern", 25.0))
    labels = slic(img, n_segments, COMPACTNESS, MAX_ITER)
    ours, ref = paired_seconds(
        lambda: superpixel_features(img, labels), lambda: superpixel_features_reference(img, labels), ref_repeats
    )
    rows.append(_row("superpixel features", size, ours, ref, "numpy bincount + skimage LBP", 5.0))
    codes = local_binary_pattern(grey, 8, 1.0)
    ours, ref = paired_seconds(
        lambda: superpixel_features(img, labels),
        lambda: superpixel_features_reference(img, labels, lbp_codes=codes),
        ref_repeats,
    )
    rows.append(_row("superpixel features", size, ours, ref, "numpy bincount, LBP codes given", None))
    membrane = membrane_like_mask(size)
    ours, ref = paired_seconds(lambda: membrane_skeleton(membrane), lambda: thin(membrane), ref_repeats)
    rows.append(_row("membrane skeleton (Guo-Hall)", size, ours, ref, "skimage.morphology.thin (equal output)", None))
    ours, ref = paired_seconds(lambda: membrane_skeleton(membrane), lambda: skeletonize(membrane), ref_repeats)
    rows.append(_row("membrane skeleton (Guo-Hall)", size, ours, ref, "skimage.morphology.skeletonize", None))
    return rows


def two_thread_rows(repeats: int) -> list[dict]:
    """Throughput on independent 512^2 tiles: 2 threads vs 1 (the kernels release the GIL)."""
    big = real_ihc_mosaic(1024)
    tiles = [np.ascontiguousarray(big[i : i + 512, j : j + 512]) for i in (0, 512) for j in (0, 512)] * 2
    greys = [grey_level(t) for t in tiles]
    labels = [slic(t, 400) for t in tiles]
    work = {
        "slic": lambda i: slic(tiles[i], 400, COMPACTNESS, MAX_ITER),
        "uniform LBP": lambda i: local_binary_pattern(greys[i], 8, 1.0),
        "superpixel features": lambda i: superpixel_features(tiles[i], labels[i]),
    }
    rows = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        for name, fn in work.items():
            # Enough tiles that a batch lasts >= 0.25 s (thread hand-off is then negligible); each of
            # the two threads loops over its own half, with no per-tile hand-off.
            t0 = time.perf_counter()
            fn(0)
            per_tile = time.perf_counter() - t0
            items = list(range(len(tiles))) * max(1, int(np.ceil(0.25 / (len(tiles) * per_tile))))

            def run_all(part: list[int], fn=fn) -> None:
                for i in part:
                    fn(i)

            def sequential(items: list[int] = items) -> None:
                run_all(items)

            def threaded(items: list[int] = items) -> None:
                for f in (pool.submit(run_all, items[0::2]), pool.submit(run_all, items[1::2])):
                    f.result()

            sequential()
            threaded()
            # One thread and two threads alternate (median of N each), so noise hits both alike.
            ones: list[float] = []
            twos: list[float] = []
            for _ in range(max(repeats, 5)):
                for run, times in ((sequential, ones), (threaded, twos)):
                    t0 = time.perf_counter()
                    run()
                    times.append(time.perf_counter() - t0)
            one, two = statistics.median(ones) / len(items), statistics.median(twos) / len(items)  # s per tile
            rows.append(
                {
                    "kernel": name,
                    "tiles": len(items),
                    "one_thread_tiles_per_s": 1.0 / one,
                    "two_threads_tiles_per_s": 1.0 / two,
                    "speedup": one / two,
                    "target": 1.7,
                    "meets_target": one / two >= 1.7,
                }
            )
    return rows


def main(repeats: int = 5, json_path: str | None = None, quick: bool = False) -> int:
    """Run the benchmark, print the tables, optionally write JSON. Returns 0."""
    sizes = [512] if quick else [512, 2048]
    repeats = min(repeats, 3) if quick else repeats
    print(
        f"her2fast {__version__} kernels benchmark: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, single thread, median of {repeats} runs alternating with the reference "
        "(ratio of the medians; in brackets the min-max of the run-by-run ratios)"
    )
    header = (
        f"{'kernel':34s} {'size':>9s} {'ours ms':>9s} {'ref ms':>9s} {'ratio':>7s} {'runs min-max':>13s} "
        f"{'target':>7s}  reference"
    )
    print(header)
    print("-" * len(header))
    rows: list[dict] = []
    for size in sizes:
        for row in single_thread_rows(size, repeats):
            rows.append(row)
            target = "" if row["target"] is None else f">={row['target']:.0f}x"
            flag = "" if row["meets_target"] is None else (" ok" if row["meets_target"] else " MISSED")
            lo, hi = row["ratio_runs_min_max"]
            print(
                f"{row['kernel']:34s} {size:>4d}x{size:<4d} {row['ours_ms']:9.2f} {row['reference_ms']:9.2f} "
                f"{row['ratio']:6.1f}x {f'({lo:.1f}-{hi:.1f}x)':>13s} {target:>7s}  {row['reference']}{flag}"
            )
    print()
    print(f"{'two threads, independent 512x512 tiles':40s} {'1 thread/s':>11s} {'2 threads/s':>12s} {'speedup':>8s}")
    threads = two_thread_rows(repeats)
    for row in threads:
        flag = " ok" if row["meets_target"] else " MISSED (target 1.7x)"
        print(
            f"{row['kernel']:40s} {row['one_thread_tiles_per_s']:11.1f} {row['two_threads_tiles_per_s']:12.1f} "
            f"{row['speedup']:7.2f}x{flag}"
        )
    if json_path:
        with open(json_path, "w", encoding="utf-8") as fh:
            json.dump(
                {
                    "version": __version__,
                    "machine": platform.machine(),
                    "cpus": os.cpu_count(),
                    "repeats": repeats,
                    "statistic": "median",
                    "single_thread": rows,
                    "two_threads": threads,
                },
                fh,
                indent=2,
            )
        print(f"\nwrote {json_path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
