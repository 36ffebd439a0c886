"""Calibrate the OD bands of the intensity classes (ScoringRules.faint_od / weak_od / strong_od) on the
quantity the pipeline measures, on TRAINING-seed phantom tiles; check them on held-out seeds.

    taskset -c 0 python benchmarks/calibrate_intensity.py [--train-seeds 100,101,102] [--test-seeds 5000,5001]
                                                        [--size 800] [--cache /tmp/h2f_diag]

Why: the phantom draws each stained cell's membrane OD at the membrane *centre line, before blur*
(docs/synth.md: faint 0.12-0.30, weak-moderate 0.50-1.00, strong 1.50-2.80), and the default bands
(0.08 / 0.40 / 1.20) sit between those ranges. :func:`her2fast.stages.cells.measure_tile` measures the median
over covered rays of the peak *deconvolved* DAB OD along the membrane run: after the optics (PSF
sigma 0.35-0.5 um) a 0.6-1.0 um membrane's peak is lower, and the submembranous stain, the cytoplasmic
blush and a neighbour's membrane add to a faint one. The bands are therefore re-fitted on measured
cells, exactly as the pipeline measures them (U-Net membrane probability, stain vectors estimated on the
tile, deconvolved DAB, ``segment_nuclei``).

Fit: measured tumour cells are matched to true ones (nearest centre < 3 um, one to one); each boundary
(none|faint, faint|weak, weak|strong) is the OD that minimises the misclassified cells of the two
classes it separates (a 1-D search over the measured ODs of those cells). Printed: the bands, and the
intensity-class agreement with the default and with the fitted bands on the training and held-out
tiles. The U-Net outputs are cached (``--cache``), so a rerun with another model needs an empty cache.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

CATEGORIES = "0+,1+,2+,3+,1+/near-threshold,2+/near-threshold,3+/near-threshold,2+/unusual,2+/heterogeneous"


def collect(seeds, categories, size, cache):
    """(measured OD, true intensity class) of matched tumour cells, pipeline inputs (c)."""
    from diagnose_cells import match, measure_inputs, tile_inputs, true_core_cells

    od, cls = [], []
    for seed in seeds:
        for spec in categories:
            cat, _, variant = spec.partition("/")
            gt, dab, nuc, prob = tile_inputs(cat, variant or "typical", seed, size, cache)
            true = true_core_cells(gt)
            meas = measure_inputs(gt, dab, nuc, prob)["c"]
            meas = meas.select(meas.is_tumour)
            i, j = match(meas, true, 3.0 / gt.mpp)
            od.append(meas.membrane_dab_od[i])
            cls.append(true.intensity[j])
    return np.concatenate(od).astype(np.float64), np.concatenate(cls).astype(np.int64)


def best_cut(od: np.ndarray, cls: np.ndarray, lo: int) -> float:
    """OD threshold between class lo and lo + 1 with the fewest misclassified cells of the two."""
    a = np.sort(od[cls == lo])
    b = np.sort(od[cls == lo + 1])
    cand = np.unique(np.concatenate([a, b]))
    cand = np.concatenate([cand, [cand[-1] + 1e-3]]) if cand.size else np.array([0.1])
    # cut at c: class lo errs where od >= c, class lo + 1 errs where od < c
    err = (a.size - np.searchsorted(a, cand, side="left")) + np.searchsorted(b, cand, side="left")
    k = np.flatnonzero(err == err.min())
    # the middle of the best plateau, halfway between the neighbouring measured values
    lo_c, hi_c = cand[k[0]], cand[k[-1]]
    return float(0.5 * (lo_c + hi_c))


def agreement(od, cls, rules) -> float:
    from her2fast.scoring import intensity_class_from_od

    return float((intensity_class_from_od(od.astype(np.float32), rules) == cls).mean())


def tile_arguments(description: str) -> argparse.ArgumentParser:
    """The options of the scripts that fit on training-seed tiles and check on held-out ones."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--train-seeds", default="100,101,102")
    ap.add_argument("--test-seeds", default="5000,5001")
    ap.add_argument("--categories", default=CATEGORIES)
    ap.add_argument("--size", type=int, default=800)
    ap.add_argument("--cache", default="/tmp/h2f_diag")
    return ap


def main() -> int:
    args = tile_arguments(__doc__.splitlines()[0]).parse_args()

    from her2fast.scoring import DEFAULT_RULES, ScoringRules

    cats = args.categories.split(",")
    train = [int(s) for s in args.train_seeds.split(",")]
    if max(train) >= 1000:
        raise SystemExit("training seeds must be < 1000 (held-out tiles use >= 5000)")
    od, cls = collect(train, cats, args.size, Path(args.cache))
    cuts = [best_cut(od, cls, k) for k in range(3)]
    fitted = ScoringRules(faint_od=max(round(cuts[0], 2), 0.01), weak_od=round(cuts[1], 2), strong_od=round(cuts[2], 2))
    print(f"training tiles: seeds {train}, {len(cats)} presets, {od.size} matched tumour cells")
    for k in range(4):
        q = np.percentile(od[cls == k], [10, 50, 90]) if (cls == k).any() else [np.nan] * 3
        print(
            f"  true class {k}: {int((cls == k).sum()):5d} cells, measured OD p10/p50/p90 {q[0]:.3f} {q[1]:.3f} {q[2]:.3f}"
        )
    print(
        f"fitted bands: faint_od {fitted.faint_od}, weak_od {fitted.weak_od}, strong_od {fitted.strong_od} "
        f"(default {DEFAULT_RULES.faint_od}, {DEFAULT_RULES.weak_od}, {DEFAULT_RULES.strong_od})"
    )
    print(
        f"intensity agreement, training: default {agreement(od, cls, DEFAULT_RULES):.3f}, fitted {agreement(od, cls, fitted):.3f}"
    )
    if args.test_seeds:
        test = [int(s) for s in args.test_seeds.split(",")]
        od_t, cls_t = collect(test, cats, args.size, Path(args.cache))
        print(
            f"intensity agreement, held-out seeds {test} ({od_t.size} cells): default "
            f"{agreement(od_t, cls_t, DEFAULT_RULES):.3f}, fitted {agreement(od_t, cls_t, fitted):.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
