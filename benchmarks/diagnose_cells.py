"""Where per-cell completeness and intensity are lost: measured cells vs the phantom's true cells.

    taskset -c 0 python benchmarks/diagnose_cells.py [--seeds 5000,5001] [--categories 1+,2+,3+,2+/unusual]
                                                   [--size 800] [--cache /tmp/h2f_diag]

On held-out phantom tiles (``make_tile`` seeds >= 5000 by default: the membrane U-Net trained on lower
seeds), :func:`her2fast.stages.cells.measure_tile` is run on three inputs:

- (a) ground-truth membrane mask + true DAB OD + true nuclei (the measurement alone);
- (b) ground-truth membrane mask + deconvolved DAB + ``segment_nuclei`` nuclei (adds stain and nuclei);
- (c) the shipped U-Net membrane probability + deconvolved DAB + ``segment_nuclei`` (the pipeline).

Measured tumour cells owned by the tile's core (a 48 px margin) are matched to true tumour cells by
nearest centre (< 3 um, one to one). Printed per input: completeness bias and MAE on stained true
cells, the fraction of truly complete (>= 0.9) stained cells measured complete, intensity-class
agreement, per-cell class agreement, and the slide-level % complete (true vs measured) of the matched
cells. U-Net outputs are cached in ``--cache`` (one network pass per tile).

    python benchmarks/diagnose_cells.py --slides /tmp/h2f_eval [--edge-margin 12]

scores every phantom slide ``eval_*.tiff`` of a folder written by ``benchmarks/evaluate_phantoms.py`` with the
default settings (the measured cell table is kept beside it as ``*.measured.npz`` and reused) and prints its
true category, the category read, and the category read without the cells whose centre lies within
``--edge-margin`` micrometres of the slide's edge (:meth:`her2fast.scoring.CellTable.away_from_edge`: the
rule ``benchmarks/real_fields.py --edge-margin`` applies to fields), with the accuracy of both, and the % of
tumour cells read stained (membrane OD >= ``faint_od``) and stained at ``1.5 * faint_od``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

MARGIN = 48


def tile_inputs(cat: str, variant: str, seed: int, size: int, cache: Path | None):
    """Ground truth, deconvolved DAB/H, segmented nuclei and U-Net probability of one phantom tile."""
    from her2fast.stages.membrane import predict
    from her2fast.stages.nuclei import segment_nuclei
    from her2fast.stages.stain import deconvolve, estimate_stain_vectors
    from her2fast.synth import make_tile

    gt = make_tile(size, category=cat, variant=variant, seed=seed)
    f = None if cache is None else cache / f"unet_{cat.replace('+', 'p')}_{variant}_{seed}_{size}.npy"
    if f is not None and f.exists():
        prob = np.load(f)
    else:
        prob = predict(gt.rgb, gt.mpp, threads=1)
        if f is not None:
            cache.mkdir(parents=True, exist_ok=True)
            np.save(f, prob)
    stains = estimate_stain_vectors(gt.rgb)
    conc = deconvolve(gt.rgb, stains)
    nuc = segment_nuclei(conc.hematoxylin, gt.mpp)
    return gt, conc.dab, nuc, prob


def match(meas, true, max_px: float):
    from scipy.spatial import cKDTree

    d, j = cKDTree(np.c_[true.x, true.y]).query(np.c_[meas.x, meas.y], distance_upper_bound=max_px)
    ok = np.flatnonzero(np.isfinite(d))
    order = ok[np.argsort(d[ok], kind="stable")]
    seen: set[int] = set()
    keep = []
    for k in order:
        if j[k] not in seen:
            seen.add(int(j[k]))
            keep.append(k)
    keep = np.array(sorted(keep), int)
    return keep, j[keep] if keep.size else np.zeros(0, int)


def measure_inputs(gt, dab, nuc, prob, settings=None):
    """Cells of the three inputs (a), (b), (c), owned by the tile minus its margin."""
    from her2fast.stages.cells import DEFAULT_CELL_SETTINGS, measure_tile

    settings = settings or DEFAULT_CELL_SETTINGS
    h, w = gt.membrane_mask.shape
    core = (MARGIN, MARGIN, w - MARGIN, h - MARGIN)
    true_nuc = np.where(gt.nuclei_mask, gt.cell_labels, 0)
    kw = dict(mpp=gt.mpp, core=core, epithelium=gt.epithelium_mask, settings=settings)
    return {
        "a": measure_tile(gt.membrane_mask, gt.dab_od, true_nuc, **kw).cells,
        "b": measure_tile(gt.membrane_mask, dab, nuc, **kw).cells,
        "c": measure_tile(prob, dab, nuc, **kw).cells,
    }


def true_core_cells(gt):
    h, w = gt.membrane_mask.shape
    t = gt.cells
    inner = (t.x >= MARGIN) & (t.x < w - MARGIN) & (t.y >= MARGIN) & (t.y < h - MARGIN) & t.is_tumour
    return t.select(inner)


def summarise(pairs, complete_fraction: float = 0.9) -> dict[str, float]:
    """pairs: list of (measured CellTable, true CellTable), row-matched; plus the unmatched true count."""
    from her2fast.scoring import CellTable

    m = CellTable.concatenate([p[0] for p in pairs])
    t = CellTable.concatenate([p[1] for p in pairs])
    stained = t.intensity > 0
    err = (m.completeness - t.completeness)[stained]
    tc = stained & (t.completeness >= complete_fraction)
    return {
        "n": len(t),
        "bias": float(err.mean()),
        "mae": float(np.abs(err).mean()),
        "complete_recall": float((m.completeness[tc] >= complete_fraction).mean()),
        "false_complete": float((m.completeness[stained & ~tc] >= complete_fraction).mean()),
        "int_agree": float((m.intensity == t.intensity).mean()),
        "int_agree_stained": float((m.intensity == t.intensity)[stained].mean()),
        "class_agree": float((m.cell_class() == t.cell_class()).mean()),
        "pct_true": 100 * float((t.completeness[stained] >= complete_fraction).sum() / len(t)),
        "pct_meas": 100 * float(((m.completeness >= complete_fraction) & (m.intensity > 0)).sum() / len(t)),
    }


def edge_slides(folder: Path, margin_um: float) -> int:
    """Phantom slides of ``folder``: true category, category read, and read without the edge cells."""
    import json
    import time

    import her2fast
    from her2fast.scoring import DEFAULT_RULES, CellTable, score_cells
    from her2fast.synth import is_current_phantom, load_ground_truth

    paths = sorted(folder.glob("eval_*.tiff"))
    if not paths:
        raise SystemExit(f"no eval_*.tiff in {folder}: write them with benchmarks/evaluate_phantoms.py --folder")
    print(
        f"{'slide':40s} {'truth':>5s} {'read':>5s} {f'w/o {margin_um:g} um edge':>16s} {'cells':>6s} {'kept':>6s} "
        f"{'stained %':>9s} {'at 1.5x faint_od':>16s}"
    )
    ok = ok_inner = 0
    four = {"0+": "0"}
    for path in paths:
        if not is_current_phantom(path):
            print(f"{path.name}: not a current phantom, skipped")
            continue
        gt = load_ground_truth(path)
        cached = path.with_suffix(".measured.npz")
        meta = path.with_suffix(".measured.json")
        if cached.exists() and meta.exists():
            cells, info = CellTable.load_npz(cached), json.loads(meta.read_text())
        else:
            t0 = time.perf_counter()
            r = her2fast.score(path, progress=False)
            cells = r.cells
            info = {
                "mpp": float(r.resolution["mpp"]),
                "size": [r.provenance["slide"]["width"], r.provenance["slide"]["height"]],
            }
            cells.save_npz(cached)
            meta.write_text(json.dumps(info))
            print(f"  (scored {path.name} in {time.perf_counter() - t0:.0f} s)", flush=True)
        read = score_cells(cells).category
        keep = cells.away_from_edge(info["size"][0], info["size"][1], margin_um / info["mpp"])
        inner = score_cells(cells.select(keep)).category
        truth = four.get(gt.category, gt.category)
        ok += four.get(read, read) == truth
        ok_inner += four.get(inner, inner) == truth
        t = cells.is_tumour
        od, memb = cells.membrane_dab_od[t], cells.completeness[t] > 0
        faint = DEFAULT_RULES.faint_od
        print(
            f"{path.name:40s} {gt.category:>5s} {read:>5s} {inner:>16s} {int(t.sum()):6d} {int((t & keep).sum()):6d} "
            f"{100 * (memb & (od >= faint)).mean():9.1f} {100 * (memb & (od >= 1.5 * faint)).mean():16.1f}"
        )
    n = len(paths)
    print(f"accuracy (0/1+/2+/3+): read {ok}/{n}, without the edge cells {ok_inner}/{n}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slides", default=None, help="folder of evaluate_phantoms.py slides (edge-cell check)")
    ap.add_argument("--edge-margin", type=float, default=12.0, help="micrometres from the edge (with --slides)")
    ap.add_argument("--seeds", default="5000,5001")
    ap.add_argument("--categories", default="1+,2+,3+,2+/unusual")
    ap.add_argument("--size", type=int, default=800)
    ap.add_argument("--cache", default="/tmp/h2f_diag")
    ap.add_argument("--confusion", action="store_true", help="print intensity confusion matrices")
    args = ap.parse_args()
    if args.slides:
        return edge_slides(Path(args.slides), args.edge_margin)

    pairs: dict[str, list] = {"a": [], "b": [], "c": []}
    for seed in (int(s) for s in args.seeds.split(",")):
        for spec in args.categories.split(","):
            cat, _, variant = spec.partition("/")
            gt, dab, nuc, prob = tile_inputs(cat, variant or "typical", seed, args.size, Path(args.cache))
            true = true_core_cells(gt)
            for key, meas in measure_inputs(gt, dab, nuc, prob).items():
                meas = meas.select(meas.is_tumour)
                i, j = match(meas, true, 3.0 / gt.mpp)
                pairs[key].append((meas.select(i), true.select(j)))
    names = {
        "a": "(a) GT membrane + true OD + true nuclei",
        "b": "(b) GT membrane + deconv DAB + seg nuclei",
        "c": "(c) U-Net + deconv DAB + seg nuclei",
    }
    print(
        f"{'input':44s} {'cells':>5s} {'bias':>6s} {'MAE':>5s} {'cmpl rec':>8s} {'false cmpl':>10s} "
        f"{'int agr':>7s} {'int agr st':>10s} {'class agr':>9s} {'%cmpl t/m':>11s}"
    )
    for key, p in pairs.items():
        s = summarise(p)
        print(
            f"{names[key]:44s} {s['n']:5d} {s['bias']:+6.3f} {s['mae']:5.3f} {s['complete_recall']:8.3f} "
            f"{s['false_complete']:10.3f} {s['int_agree']:7.3f} {s['int_agree_stained']:10.3f} "
            f"{s['class_agree']:9.3f} {s['pct_true']:5.1f}/{s['pct_meas']:5.1f}"
        )
        if args.confusion:
            from her2fast.scoring import CellTable

            m = CellTable.concatenate([q[0] for q in p])
            t = CellTable.concatenate([q[1] for q in p])
            print(
                np.array([[int(((t.intensity == a) & (m.intensity == b)).sum()) for b in range(4)] for a in range(4)])
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
