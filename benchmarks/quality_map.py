"""The quality map (her2fast.qc.quality_map) against phantom artefacts with exact masks.

    python benchmarks/quality_map.py [--size 1024] [--seeds 6] [--first-seed 7000] [--json FILE]
    python benchmarks/quality_map.py --cost [--cost-size 4096] [--repeats 3]
    python benchmarks/quality_map.py --agree
    python benchmarks/quality_map.py --real
    python benchmarks/quality_map.py --slides [--slide-seeds 100,101,102,103]

``--real`` runs the map on the real HER2 fields (``../shared/data/ihc``: ``her2-ihc-40x`` at 0.6 um/px,
``real-fields/tune`` at 420 um / width, ``real-fields/evaluate`` at the ``approx_mpp`` of ``labels.csv``;
fields coarser than 2 um/px are skipped) and prints, per group, the largest and mean share of the tissue
each reason removes: none of them has an artefact the map looks for, so it should be about 0.
``evaluate`` is measured only: no threshold was chosen on it.

``--slides`` runs the map on whole clean phantom slides (:func:`her2fast.synth.make_slide`, 2048^2 at
0.5 um/px, categories 0, 1+, 2+ and 3+ for each seed; tissue with glass around it, unlike the tiles) and
prints what each reason removes: it should be nothing.

``--cost`` times ``her2fast.score`` on one phantom slide (2+ typical, seed 906) with
``ScoreSettings(quality_map=True)`` and ``False``, alternating, and prints the ratio of the medians (and the
map's share of the worker time, ``timings["quality"]``). ``--agree`` scores six held-out phantoms
(``make_slide`` seeds 904 and 905, categories 0, 1+ and 3+, 2048^2) with the map on and off and prints
both categories and what the map removed.

``look_for`` of :class:`her2fast.qc.QualityRules` times the map with every reason and with only
``out_of_focus`` and ``pen_ink`` (three times each, alternating; medians), so the cost of the other
detectors is printed beside the whole; and on the tile's top-left 512^2 pixels with every reason and
without ``glass_edge`` (five times each, alternating), so the glass-edge detector's cost per 512^2 tile is
printed beside the whole map's.

For every seed a phantom tile (:func:`her2fast.synth.make_tile`, presets cycled: 0, 1+, 2+, 3+ typical, 3+
heterogeneous, 2+, 1+ and 0+ near-threshold; 0.5 um/px, JPEG 90) gets each artefact of
:mod:`her2fast.synth.artefacts` on its own -- an out-of-focus band (sigma 2.5 um, 150 um wide) and a
marker stroke (250 um wide, colour drawn per seed), a tissue fold (120 um wide), an over-stained,
saturated patch (mean radius 70 um), an air bubble (radius 63-117 um), DAB precipitate (two clusters of
mean radius 40 um of 1.5-5 um dark brown granules) and a glass edge (a grey line with a shadow band of
28-52 um and a brightness step beyond it) -- and the map is computed on the clean tile, on the
tile with each artefact, and on the clean tile under a uniform 0.6 um blur (a soft but usable scan, the
blur of ``benchmarks/robustness.py``). Printed per artefact, over all seeds, at image resolution:

- IoU of the map's pixels for that reason with the artefact's mask on tissue;
- % of the artefact's area on tissue that the map keeps out of the score (any reason);
- % of the clean tissue (outside the artefact) the map removes (any reason);

"Tissue" is what the map calls tissue on the clean tile (not glass: the phantom's holes and fat are
glass), so an artefact over a hole is not counted as missed; an artefact with less than a quarter of its area on
tissue is left out of the table and counted beside it.

and for the clean and softly blurred tiles the % of tissue removed; and for two look-alikes of a glass
edge that are tissue (:func:`her2fast.synth.artefacts.add_stained_lines`, dark membranes side by side across
the tile in brown or in the hematoxylin-DAB mixture nearest grey, drawn per seed, and
:func:`~her2fast.synth.artefacts.add_stained_border`) the % of tissue removed as ``glass_edge`` (should be 0). Seeds 7000 + i are held out: the
thresholds of :class:`her2fast.qc.QualityRules` were set on seeds 0-5 (``--first-seed 0``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

PRESETS = [("0", "typical"), ("1+", "typical"), ("2+", "typical"), ("3+", "typical"), ("3+", "heterogeneous")]
PRESETS += [("2+", "near-threshold"), ("1+", "near-threshold"), ("0+", "near-threshold")]
#: The artefact conditions of the table, in order.
CONDITIONS = ("blur", "ink", "fold", "saturation", "bubble", "precipitate", "glass_edge")


def _alternate(a, b, repeats: int) -> tuple[list[float], list[float]]:
    """Seconds of ``repeats`` calls of ``a`` and of ``b``, called in turn (ABBA...)."""
    ta: list[float] = []
    tb: list[float] = []
    for rep in range(repeats):
        for first in (True, False) if rep % 2 == 0 else (False, True):
            t0 = time.perf_counter()
            (a if first else b)()
            (ta if first else tb).append(time.perf_counter() - t0)
    return ta, tb


def measure(size: int, seed: int, index: int) -> list[dict]:
    """Rows (one per condition) for one phantom tile."""
    from her2fast.qc import QUALITY_REASONS, QualityRules, quality_map
    from her2fast.synth import make_tile
    from her2fast.synth.artefacts import (
        add_blur_band,
        add_bubble,
        add_fold,
        add_glass_edge,
        add_ink,
        add_precipitate,
        add_saturation,
        add_stained_border,
        add_stained_lines,
    )
    from her2fast.synth.perturb import blur

    mpp = 0.5
    cat, var = PRESETS[index % len(PRESETS)]
    tile = make_tile(size, category=cat, variant=var, seed=seed)
    rgb = tile.rgb
    rows = []
    # time the map with every reason and with only the first two (focus and ink), alternating; and on a
    # 512^2 crop, with every reason and with all but glass_edge
    first_two = QualityRules(look_for=("out_of_focus", "pen_ink"))
    dt, dt2 = _alternate(lambda: quality_map(rgb, mpp), lambda: quality_map(rgb, mpp, rules=first_two), 3)
    crop = np.ascontiguousarray(rgb[:512, :512])
    no_edge = QualityRules(look_for=tuple(r for r in QUALITY_REASONS if r != "glass_edge"))
    dt3, dt4 = _alternate(lambda: quality_map(crop, mpp), lambda: quality_map(crop, mpp, rules=no_edge), 5)
    clean = quality_map(rgb, mpp)
    shape = rgb.shape[:2]
    # tissue: map pixels of the clean tile that are not glass (holes and fat in the phantom are glass)
    on_tissue = np.repeat(np.repeat(clean.tissue, clean.step_px, 0), clean.step_px, 1)[: shape[0], : shape[1]]
    base = {"seed": seed, "preset": f"{cat}/{var}"}
    rows.append(
        {
            **base,
            "condition": "clean",
            "removed": float(clean.upsample(shape).mean()),
            "seconds": float(np.median(dt)),
            "seconds_focus_ink": float(np.median(dt2)),
            "seconds_512": float(np.median(dt3)),
            "seconds_512_no_edge": float(np.median(dt4)),
        }
    )
    soft = quality_map(blur(rgb, 0.6 / mpp), mpp)
    rows.append({**base, "condition": "soft_0.6um", "removed": float(soft.upsample(shape).mean())})
    # look-alikes of a glass edge (tissue, not artefacts): what the map removes as glass_edge
    for kind, look in (
        ("lines", add_stained_lines(rgb, mpp, seed=seed)),
        ("border", add_stained_border(rgb, mpp, seed=seed)),
    ):
        q = quality_map(look.rgb, mpp)
        rows.append(
            {
                **base,
                "condition": kind,
                "colour": look.params["colour"],
                "removed": float((q.upsample(shape, "glass_edge") & on_tissue).sum())
                / max(float(on_tissue.sum()), 1.0),
            }
        )
    for kind, reason, art in (
        ("blur", "out_of_focus", add_blur_band(rgb, mpp, seed=seed)),
        ("ink", "pen_ink", add_ink(rgb, mpp, seed=seed)),
        ("fold", "fold", add_fold(rgb, mpp, seed=seed)),
        ("saturation", "saturated", add_saturation(rgb, mpp, seed=seed)),
        ("bubble", "bubble", add_bubble(rgb, mpp, seed=seed)),
        ("precipitate", "precipitate", add_precipitate(rgb, mpp, seed=seed)),
        ("glass_edge", "glass_edge", add_glass_edge(rgb, mpp, seed=seed)),
    ):
        q = quality_map(art.rgb, mpp)
        found = q.upsample(shape, reason) & on_tissue
        out = q.upsample(shape) & on_tissue
        truth = art.mask & on_tissue
        if truth.sum() < 0.25 * art.mask.sum():  # the artefact fell mostly on the phantom's glass
            rows.append({**base, "condition": kind, "on_glass": True})
            continue
        inter = float((found & truth).sum())
        union = float((found | truth).sum())
        rows.append(
            {
                **base,
                "condition": kind,
                "iou": inter / max(union, 1.0),
                "kept_out": float((out & truth).sum()) / max(float(truth.sum()), 1.0),
                "clean_removed": float((out & ~art.mask & on_tissue).sum())
                / max(float((~art.mask & on_tissue).sum()), 1.0),
                "params": {k: v for k, v in art.params.items() if k != "centre_px"},
                "by_reason": {
                    r: float((q.upsample(shape, r) & on_tissue).sum()) / max(float(on_tissue.sum()), 1.0)
                    for r in q.reasons
                },
            }
        )
    return rows


def real(groups: tuple[str, ...] = ("40x", "tune", "evaluate")) -> None:
    """The share of tissue each reason removes on the real fields (see the module docstring)."""
    import csv
    import re
    from pathlib import Path

    from PIL import Image

    from her2fast.qc import QUALITY_REASONS, quality_map

    ihc = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ihc"
    items: list[tuple[str, Path, float]] = [("40x", p, 0.6) for p in sorted((ihc / "her2-ihc-40x").glob("*.png"))]
    with open(ihc / "real-fields" / "labels.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            p = ihc / "real-fields" / r["path"]
            if r["split"] == "tune":
                items.append(("tune", p, 420.0 / float(r["width"])))
            elif r["split"] == "evaluate":
                m = re.search(r"~\s*([0-9.]+)(?:-[0-9.]+)?\s*(x?)", r["approx_mpp"] or "")
                mpp = 1.0 if not m else (10.0 / float(m.group(1)) if m.group(2) == "x" else float(m.group(1)))
                items.append(("evaluate", p, mpp))
    reasons = [*QUALITY_REASONS, "any"]
    print(f"{'group':9s} {'n':>3s} {'skipped':>7s} " + " ".join(f"{r:>18s}" for r in reasons))
    for group in groups:
        fracs, skipped = [], 0
        for _, path, mpp in (i for i in items if i[0] == group):
            if mpp > 2.0:
                skipped += 1
                continue
            with Image.open(path) as im:
                rgb = np.asarray(im.convert("RGB"))
            removed = quality_map(rgb, mpp).removed_fraction()
            fracs.append([removed[r] for r in reasons])
            if removed["any"] > 0.0:
                print(f"  {group} {path.name}: " + " ".join(f"{r}={100 * v:.2f}%" for r, v in removed.items() if v))
        a = np.asarray(fracs).reshape(-1, len(reasons))
        cells = " ".join(
            f"{f'{100 * a[:, j].max():.2f}/{100 * a[:, j].mean():.2f}%' if len(a) else '-':>18s}"
            for j in range(len(reasons))
        )
        print(f"{group:9s} {len(a):3d} {skipped:7d} {cells}", flush=True)
    print("(largest / mean % of each field's tissue removed)")


def slides(seeds: list[int]) -> None:
    """The share of tissue each reason removes on clean phantom slides (see the module docstring)."""
    import tempfile
    from pathlib import Path

    from her2fast.qc import QUALITY_REASONS, quality_map
    from her2fast.synth import make_slide
    from her2fast.synth.perturb import read_level0

    worst = dict.fromkeys([*QUALITY_REASONS, "any"], 0.0)
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for cat in ("0", "1+", "2+", "3+"):
                gt = make_slide(Path(tmp) / f"s{seed}_{cat[0]}.tiff", category=cat, width=2048, height=2048, seed=seed)
                rgb, mpp = read_level0(gt.path)
                removed = quality_map(rgb, mpp).removed_fraction()
                worst = {r: max(v, removed[r]) for r, v in worst.items()}
                print(
                    f"slide seed {seed} {cat:3s} " + " ".join(f"{r}={100 * v:.2f}%" for r, v in removed.items()),
                    flush=True,
                )
    print(
        f"{4 * len(seeds)} clean phantom slides, largest % of tissue removed: "
        + " ".join(f"{r}={100 * v:.2f}%" for r, v in worst.items())
    )


def _settings(on: bool):
    from her2fast.pipeline import ScoreSettings

    return ScoreSettings(quality_map=on)


def cost(size: int, repeats: int) -> None:
    """Time her2fast.score with the map on and off on one phantom, alternating; print the ratio."""
    import tempfile
    from pathlib import Path

    import her2fast
    from her2fast.synth import make_slide

    with tempfile.TemporaryDirectory() as tmp:
        gt = make_slide(Path(tmp) / "cost.tiff", category="2+", width=size, height=size, seed=906)
        her2fast.score(gt.path, progress=False, settings=_settings(False))  # warm-up: model load, caches
        times: dict[bool, list[float]] = {False: [], True: []}
        share: list[float] = []
        for k in range(repeats):
            for on in (False, True) if k % 2 == 0 else (True, False):
                t0 = time.perf_counter()
                r = her2fast.score(gt.path, progress=False, settings=_settings(on))
                dt = time.perf_counter() - t0
                times[on].append(dt)
                extra = ""
                if on:
                    busy = sum(
                        v
                        for key, v in r.timings.items()
                        if key in ("read", "deconvolve", "membrane", "nuclei", "cells", "quality")
                    )
                    share.append(r.timings.get("quality", 0.0) / busy if busy else 0.0)
                    extra = (
                        f" quality {r.timings.get('quality', 0.0):.2f} s busy ({100 * share[-1]:.1f} % of tile work)"
                    )
                print(
                    f"repeat {k} map {'on ' if on else 'off'} {dt:7.2f} s  {r.score} cells {len(r.cells)}{extra}",
                    flush=True,
                )
    on_s, off_s = float(np.median(times[True])), float(np.median(times[False]))
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {size}^2 phantom 2+ seed 906")
    print(f"median score time: map off {off_s:.2f} s, map on {on_s:.2f} s -> on / off = {on_s / off_s:.3f}")
    print(f"map share of the tile work (busy seconds): {100 * float(np.median(share)):.1f} %")


def agree() -> int:
    """Score the held-out phantoms with the map on and off; print the categories. Returns the disagreements."""
    import tempfile
    from pathlib import Path

    import her2fast
    from her2fast.synth import make_slide

    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for seed in (904, 905):
            for cat in ("0", "1+", "3+"):
                gt = make_slide(Path(tmp) / f"s{seed}_{cat[0]}.tiff", category=cat, width=2048, height=2048, seed=seed)
                off = her2fast.score(gt.path, progress=False, settings=_settings(False))
                on = her2fast.score(gt.path, progress=False, settings=_settings(True))
                q = on.provenance["qc"]["quality"]
                same = on.category == off.category
                bad += not same
                print(
                    f"seed {seed} {cat:3s} truth {gt.category:3s} off {off.category} on {on.category} "
                    f"{'same' if same else 'DIFFERENT'}  cells {len(off.cells)} -> {len(on.cells)}  "
                    f"removed {q['removed_percent_of_tissue']['any']:.2f} % of tissue, "
                    f"{q['removed_percent_of_tumour']['any']:.2f} % of tumour",
                    flush=True,
                )
    print(f"{6 - bad} of 6 held-out phantoms give the same category with the quality map on and off")
    return bad


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--first-seed", type=int, default=7000)
    ap.add_argument("--json", default=None)
    ap.add_argument("--by-reason", action="store_true", help="print the tissue each reason removed per tile")
    ap.add_argument("--cost", action="store_true", help="time her2fast.score with the map on and off")
    ap.add_argument("--cost-size", type=int, default=4096)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--agree", action="store_true", help="categories of six held-out phantoms, map on and off")
    ap.add_argument("--real", action="store_true", help="share removed per reason on the real HER2 fields")
    ap.add_argument("--slides", action="store_true", help="share removed per reason on clean phantom slides")
    ap.add_argument("--slide-seeds", default="100,101,102,103")
    args = ap.parse_args(argv)
    if args.real:
        real()
        return 0
    if args.slides:
        slides([int(s) for s in args.slide_seeds.split(",")])
        return 0
    if args.cost or args.agree:
        if args.cost:
            cost(args.cost_size, args.repeats)
        if args.agree:
            return int(agree() > 0)
        return 0
    rows: list[dict] = []
    for i in range(args.seeds):
        seed = args.first_seed + i
        part = measure(args.size, seed, i)
        rows += part
        for r in part:
            figs = " ".join(
                f"{k}={r[k]:.3f}" for k in ("iou", "kept_out", "clean_removed", "removed", "seconds") if k in r
            )
            print(f"seed {seed:5d} {r['preset']:18s} {r['condition']:11s} {figs}", flush=True)
            if "iou" in r and args.by_reason:
                print("      removed by reason: " + " ".join(f"{k}={v:.3f}" for k, v in r["by_reason"].items()))
    print(f"\n{platform.processor() or platform.machine()}, {args.seeds} tiles of {args.size}^2 px at 0.5 um/px")
    print(
        f"{'condition':11s} {'n':>3s} {'IoU min':>8s} {'IoU mean':>9s} {'kept out min':>13s} {'clean removed max':>18s}"
    )

    def n_glass(cond: str) -> int:
        return sum(1 for r in rows if r["condition"] == cond and r.get("on_glass"))

    for cond in CONDITIONS:
        sel = [r for r in rows if r["condition"] == cond and "iou" in r]
        iou = [r["iou"] for r in sel]
        ko = [r["kept_out"] for r in sel]
        cr = [r["clean_removed"] for r in sel]
        print(
            f"{cond:11s} {len(sel):3d} {min(iou):8.3f} {np.mean(iou):9.3f} {100 * min(ko):12.1f}% "
            f"{100 * max(cr):17.2f}%" + (f"  ({glass} more on glass, not counted)" if (glass := n_glass(cond)) else "")
        )
    for cond in ("clean", "soft_0.6um"):
        rem = [r["removed"] for r in rows if r["condition"] == cond]
        print(f"{cond:11s} {len(rem):3d} tissue removed: max {100 * max(rem):.2f}%, mean {100 * np.mean(rem):.2f}%")
    for cond in ("lines", "border"):
        rem = [r["removed"] for r in rows if r["condition"] == cond]
        print(
            f"{cond:11s} {len(rem):3d} removed as glass_edge: max {100 * max(rem):.2f}%, mean {100 * np.mean(rem):.2f}%"
        )
    secs = [r["seconds"] for r in rows if "seconds" in r]
    secs2 = [r["seconds_focus_ink"] for r in rows if "seconds" in r]
    print(
        f"map time per {args.size}^2 tile: {np.mean(secs):.3f} s "
        f"(focus and ink only: {np.mean(secs2):.3f} s; fold, saturated, bubble, precipitate and glass_edge add "
        f"{1000 * (np.mean(secs) - np.mean(secs2)):.1f} ms)"
    )
    t512 = float(np.mean([r["seconds_512"] for r in rows if "seconds" in r]))
    t512n = float(np.mean([r["seconds_512_no_edge"] for r in rows if "seconds" in r]))
    print(
        f"glass_edge per 512^2 tile: {1000 * (t512 - t512n):.1f} ms of {1000 * t512:.1f} ms for the whole map "
        f"({100 * (t512 - t512n) / t512:.1f} %)"
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
