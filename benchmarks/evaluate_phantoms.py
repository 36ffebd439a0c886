"""Slide-level agreement of her2fast.score with held-out phantom slides of every category.

    python benchmarks/evaluate_phantoms.py [--size 2048] [--seeds 901,902] [--categories 0,0+,1+,2+,3+]
                                           [--method unet] [--folder /tmp/h2f_eval] [--json FILE]
                                           [--cells cap_reach_um=0,outside_reach_um=0] [--bands 0.09,0.26,0.92]

``--categories`` takes ``category`` or ``category/variant`` items (``2+/unusual``; a bare category uses
``--variant``). ``--cells`` overrides :class:`her2fast.stages.cells.CellSettings` fields (e.g. to measure the
old defaults against the new ones in the same run).

Phantoms come from :func:`her2fast.synth.make_slide` with seeds the models never saw (the membrane
U-Net trained on ``make_tile`` seeds, the epithelium SVM on slide seeds 101-104); the reference is each
phantom's true category (computed from its true cells by the same rules). Printed: per slide the true
and predicted category, % complete membranes (true / measured), per-cell class accuracy of the
matched tumour cells, seconds and peak RSS; then accuracy and Cohen's kappa (unweighted, quadratic) in
the four ASCO/CAP 2018 classes, the confusion matrix in the paper's Table 5 layout (rows predicted,
columns reference) via :mod:`her2fast.validation.evaluate`, and the 5-way (null/ultralow split) accuracy.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def match_cells(pred, truth, max_um: float, mpp: float):
    """Indices (pred, truth) of tumour cells matched one-to-one by nearest centre within ``max_um``."""
    from scipy.spatial import cKDTree

    p = np.flatnonzero(pred.is_tumour)
    t = np.flatnonzero(truth.is_tumour)
    if not p.size or not t.size:
        return np.zeros(0, int), np.zeros(0, int)
    tree = cKDTree(np.stack([truth.x[t], truth.y[t]], 1))
    d, j = tree.query(np.stack([pred.x[p], pred.y[p]], 1), distance_upper_bound=max_um / mpp)
    ok = np.isfinite(d)
    pi, ti, dd = p[ok], t[j[ok]], d[ok]
    order = np.argsort(dd)
    seen, keep = set(), []
    for k in order:
        if ti[k] not in seen:
            seen.add(ti[k])
            keep.append(k)
    keep = np.array(sorted(keep), int)
    return pi[keep], ti[keep]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--seeds", default="901,902")
    ap.add_argument("--categories", default="0,0+,1+,2+,3+")
    ap.add_argument("--variant", default="typical")
    ap.add_argument("--method", default="unet", choices=["unet", "classical"])
    ap.add_argument("--folder", default="/tmp/h2f_eval")
    ap.add_argument("--json", default=None)
    ap.add_argument("--cells", default="", help="CellSettings overrides, e.g. cap_reach_um=0,outside_reach_um=0")
    ap.add_argument("--bands", default="", help="intensity OD bands faint,weak,strong (ScoringRules, cells and slide)")
    args = ap.parse_args()

    import her2fast
    from her2fast.scoring import slide_summary
    from her2fast.synth import is_current_phantom, load_ground_truth, make_slide
    from her2fast.validation.evaluate import SCORES, agreement_summary

    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    from dataclasses import replace

    from her2fast.stages.cells import CellSettings

    overrides = {
        k: int(v) if v.lstrip("-").isdigit() and k == "n_rays" else float(v)
        for k, v in (kv.split("=") for kv in args.cells.split(",") if kv)
    }
    from her2fast.scoring import ScoringRules

    rules = ScoringRules()
    if args.bands:
        f, w, st = (float(v) for v in args.bands.split(","))
        rules = replace(rules, faint_od=f, weak_od=w, strong_od=st)
    settings = her2fast.ScoreSettings(
        membrane_method=args.method, rules=rules, cells=replace(CellSettings(), rules=rules, **overrides)
    )
    rows = []
    print(
        f"her2fast {her2fast.__version__}, membrane {args.method}, {args.size}^2 px phantoms at 0.5 um/px, "
        f"variant {args.variant}"
    )
    print(
        f"{'slide':28s} {'truth':>5s} {'pred':>5s} {'stratum':>8s} {'%cmpl t/m':>11s} {'cell acc':>8s} "
        f"{'tumour t/m':>11s} {'s':>6s} {'RSS MB':>7s}"
    )
    for seed in (int(s) for s in args.seeds.split(",") if s):
        for spec in (c for c in args.categories.split(",") if c):
            cat, _, variant = spec.partition("/")
            variant = variant or args.variant
            path = folder / f"eval_{cat.replace('+', 'p')}_{seed}_{args.size}_{variant}.tiff"
            gt = (
                load_ground_truth(path)
                if is_current_phantom(path)
                else make_slide(path, category=cat, width=args.size, height=args.size, seed=seed, variant=variant)
            )
            t0 = time.perf_counter()
            r = her2fast.score(path, settings=settings, progress=False)
            secs = time.perf_counter() - t0
            true_pc = slide_summary(gt.cells).percent_complete
            pi, ti = match_cells(r.cells, gt.cells, 4.0, gt.mpp)
            rules = settings.rules
            cell_acc = (
                float((r.cells.cell_class(rules)[pi] == gt.cells.cell_class(rules)[ti]).mean())
                if pi.size
                else float("nan")
            )
            pred5 = r.category if r.category is not None else "none"
            row = {
                "slide": path.name,
                "seed": seed,
                "preset": cat,
                "truth": gt.category,
                "pred": pred5,
                "score": r.score,
                "stratum": r.stratum,
                "flags": r.flags,
                "percent_complete_true": round(true_pc, 2),
                "percent_complete": None if r.percent_complete is None else round(r.percent_complete, 2),
                "cell_class_accuracy": round(cell_acc, 4),
                "matched_cells": int(pi.size),
                "tumour_true": int(gt.cells.is_tumour.sum()),
                "tumour_found": r.counts.get("tumour_cells", 0),
                "seconds": round(secs, 2),
                "timings": {k: round(v, 2) for k, v in r.timings.items()},
                "peak_rss_mb": round(peak_rss_mb(), 1),
            }
            rows.append(row)
            pc = "-" if r.percent_complete is None else f"{r.percent_complete:.1f}"
            print(
                f"{path.name:28s} {gt.category:>5s} {pred5:>5s} {str(r.stratum):>8s} "
                f"{true_pc:5.1f}/{pc:>5s} {cell_acc:8.3f} {row['tumour_true']:5d}/{row['tumour_found']:<5d} "
                f"{secs:6.1f} {row['peak_rss_mb']:7.0f}",
                flush=True,
            )
    scored = [r for r in rows if r["pred"] != "none"]
    if len(scored) < len(rows):
        print(f"{len(rows) - len(scored)} slide(s) not scorable (counted as errors below as '0')")
    pred = [r["pred"] if r["pred"] != "none" else "0" for r in rows]
    ref = [r["truth"] for r in rows]
    s = agreement_summary(pred, ref, n_boot=500)
    acc5 = float(np.mean([p == t for p, t in zip(pred, ref)]))
    print(
        f"\nslides {len(rows)}; accuracy (0/1+/2+/3+) {s.accuracy:.3f}; kappa unweighted {s.kappa['unweighted']:.3f}, "
        f"quadratic {s.kappa['quadratic']:.3f} (95 % bootstrap {s.kappa_interval['quadratic'][0]:.2f}.."
        f"{s.kappa_interval['quadratic'][1]:.2f}); 5-way (null/ultralow split) accuracy {acc5:.3f}"
    )
    cell_accs = [r["cell_class_accuracy"] for r in rows if np.isfinite(r["cell_class_accuracy"])]
    pc_diff = [r["percent_complete"] - r["percent_complete_true"] for r in rows if r["percent_complete"] is not None]
    pc_err = np.abs(pc_diff)
    print(
        f"per-cell class accuracy (matched tumour cells) mean {np.mean(cell_accs):.3f}; "
        f"% complete-membrane error mean {np.mean(pc_err):.1f} points, max {np.max(pc_err):.1f}, "
        f"bias {np.mean(pc_diff):+.1f}"
    )
    print("confusion matrix (rows predicted, columns reference):")
    print("        " + "".join(f"{lab:>6s}" for lab in SCORES))
    for lab, line in zip(SCORES, s.confusion):
        print(f"  {lab:>4s}  " + "".join(f"{v:6d}" for v in line))
    secs = [r["seconds"] for r in rows]
    print(f"seconds per slide: mean {np.mean(secs):.1f}, max {np.max(secs):.1f}; peak RSS {peak_rss_mb():.0f} MB")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "rows": rows,
                    "accuracy": s.accuracy,
                    "kappa": s.kappa,
                    "confusion": s.confusion.tolist(),
                    "accuracy_5way": acc5,
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
