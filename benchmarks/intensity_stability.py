"""How far does each per-cell membrane-intensity measure move when the same cells are re-scanned?

    taskset -c 1 python benchmarks/intensity_stability.py [--presets 3+/near-threshold,2+/near-threshold,...]
                                                         [--seeds 100] [--size 800] [--cache /tmp/h2f_stab]
                                                         [--measures cur,med,...]

Each phantom tile (:func:`her2fast.synth.make_tile`, training seeds of the intensity bands by default) is
measured as the pipeline measures it (input (c) of ``benchmarks/diagnose_cells.py``: U-Net membrane
probability, deconvolved DAB with the tile's own stain vectors, ``segment_nuclei``), then again after
each change a second scanner or lab brings:

- ``blur_1.2px``: Gaussian defocus, sigma 1.2 px (0.6 um); ``jpeg_q60``: JPEG quality 60;
- ``tone_0.8``: tone curve (gamma 0.8 on transmittance); ``scanner``: cooler white balance + gamma 0.85;
- ``scan_40x``: the same cells rendered at 0.25 um/px and resampled to 0.5 um/px with Lanczos, as the
  slide reader does; ``dab_x0.7``: the same cells rendered with 30 % less DAB (a real change of stain).

Cells are matched to the phantom's true cells (nearest centre < 3 um, one to one) in both renders, so a
cell is compared with itself. Printed per candidate measure (those of ``benchmarks/intensity_measures.py``)
and change: the median over stained true cells of measure(changed) / measure(unchanged), and the share
of stained cells whose intensity class changes, with bands fitted per measure on the unchanged cells
(fewest misclassified cells per boundary). A re-scan should leave a measure at 1.00; the stain change
should move it (ASCO/CAP intensity is a judgement of the absolute staining level). Per-cell class
changes include the measurement's own cell-to-cell noise (a cell seen again through a re-scan), so
compare them between measures, not with zero. Also printed per measure: the share of the unchanged
cells (all matched, and the stained ones) in their true class under those bands (class separation).

Blends of the shipped peak measure ``cur`` with the inner mean (``--measures`` names; ``inner`` is
``inner 0.5-1.0`` or ``inner 0.5-1.5`` of ``intensity_measures.py``, ``bg`` the cell's cytoplasm DAB,
``gate`` the gated peak ``gate 0.5-1.5 k0.9 q75`` without the cytoplasm subtraction):

- ``cur*(inner/med)``: per cell, ``cur`` times the cell's inner / median-peak ratio;
- ``cur^0.5*(inner-bg)^0.5``: per cell, the geometric mean of ``cur`` and the inner mean above cytoplasm;
- ``0.7cur+0.6(inner-bg)``: per cell, a weighted sum;
- ``cur x tile(inner 0.5-1.0)`` / ``cur x tile(inner 0.5-1.5)``: ``cur`` times one factor per tile, the
  median over its cells with ``cur`` >= ``weak_od`` of (inner - bg) / (gate - bg): a defocus or JPEG
  widens the ridge and raises this ratio on every cell of the slide while the stain level leaves it be,
  so it stands for a per-slide correction estimated from the slide's own cells (the ratio's clean-tissue
  value only rescales the bands, which are fitted per measure here).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

#: name -> image perturbation chain, or "scan_40x" / "dab_x0.7" (render changes)
CHANGES: dict[str, tuple[tuple[str, float], ...] | str] = {
    "blur_1.2px": (("blur", 1.2),),
    "jpeg_q60": (("jpeg", 60),),
    "tone_0.8": (("tone_curve", 0.8),),
    "scanner": (("white_balance", 0.06), ("tone_curve", 0.85)),
    "scan_40x": "scan_40x",
    "dab_x0.7": "dab_x0.7",
}
PRESETS = "3+/near-threshold,2+/near-threshold,2+/typical,1+/typical,3+/typical"
MEASURES = "cur,med,cur-bg,memmean-bg,int_full 1.5,inner 0.5-1.5,inner 0.5-1.5 -bg,gate 0.5-1.5 k0.9 q75"
FEATURE_VERSION = 1
BLENDS = (
    "cur*(inner/med),cur^0.5*(inner-bg)^0.5,0.7cur+0.6(inner-bg),cur x tile(inner 0.5-1.0),cur x tile(inner 0.5-1.5)"
)


def _tile_ratio(f: dict, inner: str) -> float:
    """The tile's median (inner - bg) / (gate - bg) over its cells measured weak or stronger (1 if < 10)."""
    from her2fast.scoring import DEFAULT_RULES

    sel = f["cur"] >= DEFAULT_RULES.weak_od
    if sel.sum() < 10:
        return 1.0
    bg = f["bg"][sel]
    return float(np.median((f[inner][sel] - bg) / np.maximum(f["gate 0.5-1.5 k0.9 q75"][sel] - bg, 1e-3)))


def measure(f: dict, name: str) -> np.ndarray:
    """A candidate of ``intensity_measures.py`` by name, or one of the blends (:data:`BLENDS`)."""
    if name in f:
        return f[name]
    cur, bg = f["cur"], f["bg"]
    if name == "cur*(inner/med)":
        return cur * np.maximum(f["inner 0.5-1.5"], 0.0) / np.maximum(f["med"], 1e-3)
    if name == "cur^0.5*(inner-bg)^0.5":
        return np.sqrt(np.maximum(cur, 0.0) * np.maximum(f["inner 0.5-1.5"] - bg, 0.0))
    if name == "0.7cur+0.6(inner-bg)":
        return 0.7 * cur + 0.6 * np.maximum(f["inner 0.5-1.5"] - bg, 0.0)
    if name.startswith("cur x tile(") and name.endswith(")"):
        return cur * _tile_ratio(f, name[len("cur x tile(") : -1])
    raise SystemExit(f"unknown measure {name!r}")


def _render(cat: str, variant: str, seed: int, size: int, change: str):
    """(ground truth, RGB at 0.5 um/px) of the tile, unchanged (``change=""``) or changed."""
    from her2fast.synth import StainVariation, make_tile
    from her2fast.synth.perturb import Perturbation, perturb_image, resample

    gt = make_tile(size, category=cat, variant=variant, seed=seed)
    spec = CHANGES.get(change, ())
    if spec == "scan_40x":
        fine = make_tile(2 * size, category=cat, variant=variant, seed=seed, mpp=0.25)
        return gt, resample(fine.rgb, 0.25, 0.5)[:size, :size]
    if spec == "dab_x0.7":
        return gt, make_tile(size, category=cat, variant=variant, seed=seed, variation=StainVariation(dab=0.7)).rgb
    rgb, _ = perturb_image(gt.rgb, [Perturbation(k, v) for k, v in spec], mpp=gt.mpp, seed=seed)
    return gt, rgb


def features(cat: str, variant: str, seed: int, size: int, change: str, cache: Path):
    """Candidate measures of the matched stained-or-not tumour cells: (features, true cell ids, true classes)."""
    from diagnose_cells import MARGIN, match, true_core_cells
    from intensity_measures import cell_features

    from her2fast.stages.membrane import predict
    from her2fast.stages.nuclei import segment_nuclei
    from her2fast.stages.stain import deconvolve, estimate_stain_vectors

    fc = cache / f"stab{FEATURE_VERSION}_{cat.replace('+', 'p')}_{variant}_{seed}_{size}_{change or 'base'}.npz"
    if fc.exists():
        z = np.load(fc)
        return {k[2:]: z[k] for k in z.files if k.startswith("f:")}, z["tid"], z["cls"]
    gt, rgb = _render(cat, variant, seed, size, change)
    prob = predict(rgb, gt.mpp, threads=1)
    conc = deconvolve(rgb, estimate_stain_vectors(rgb))
    nuc = segment_nuclei(conc.hematoxylin, gt.mpp)
    true = true_core_cells(gt)
    h, w = gt.membrane_mask.shape
    core = (MARGIN, MARGIN, w - MARGIN, h - MARGIN)
    cells, f = cell_features(prob, conc.dab, nuc, mpp=gt.mpp, core=core, epithelium=gt.epithelium_mask)
    tum = np.flatnonzero(cells.is_tumour)
    i, j = match(cells.select(tum), true, 3.0 / gt.mpp)
    f = {k: v[tum][i] for k, v in f.items()}
    cls = true.intensity[j].astype(np.int64)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(fc, tid=j, cls=cls, **{f"f:{k}": v for k, v in f.items()})
    return f, j, cls


def main() -> int:
    from calibrate_intensity import best_cut

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default=PRESETS)
    ap.add_argument("--seeds", default="100")
    ap.add_argument("--size", type=int, default=800)
    ap.add_argument("--cache", default="/tmp/h2f_stab")
    ap.add_argument(
        "--measures", default=MEASURES, help="comma-separated names (intensity_measures.py, or the blends above)"
    )
    ap.add_argument("--blends", action="store_true", help="also the blends of cur with the inner mean (BLENDS)")
    args = ap.parse_args()
    cache = Path(args.cache)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    if min(seeds) >= 1000:
        raise SystemExit("use training seeds (< 1000): the held-out seeds stay for the scoring benchmarks")
    measures = [m for m in args.measures.split(",") if m]
    if args.blends:
        measures += [m for m in BLENDS.split(",") if m not in measures]
    pairs: dict[str, list] = {c: [] for c in CHANGES}
    base_all: list = []
    for preset in args.presets.split(","):
        cat, _, variant = preset.partition("/")
        for seed in seeds:
            base = features(cat, variant or "typical", seed, args.size, "", cache)
            base_all.append(base)
            for change in CHANGES:
                pairs[change].append((base, features(cat, variant or "typical", seed, args.size, change, cache)))
            print(f"measured {preset} seed {seed}", file=sys.stderr, flush=True)
    cls_all = np.concatenate([b[2] for b in base_all])
    print(
        f"{len(base_all)} tiles of {args.size}^2 px at 0.5 um/px ({args.presets}; seeds {args.seeds}); "
        f"{cls_all.size} matched tumour cells, {(cls_all > 0).sum()} stained"
    )
    print("median ratio changed / unchanged over stained cells | % of stained cells whose class changes")
    print("in class: % of the unchanged cells in their true class (all / stained), bands fitted per measure")
    print(f"{'measure':26s} {'in class':>11s} " + " ".join(f"{c:>15s}" for c in CHANGES))
    for name in measures:
        vals = np.concatenate([measure(b[0], name) for b in base_all])
        edges = np.array([best_cut(vals, cls_all, k) for k in range(3)])
        edges = np.maximum.accumulate(edges + np.arange(3) * 1e-9)
        right = np.searchsorted(edges, vals, side="right") == cls_all
        sep = f"{100 * right.mean():4.1f} / {100 * right[cls_all > 0].mean():4.1f}"
        cells = []
        for change in CHANGES:
            ratios, moved = [], []
            for (fb, jb, cb), (fp, jp, _) in pairs[change]:
                _, ib, ip = np.intersect1d(jb, jp, return_indices=True)
                stained = cb[ib] > 0
                vb, vp = measure(fb, name)[ib][stained], measure(fp, name)[ip][stained]
                ok = vb > 1e-3
                ratios.append(vp[ok] / vb[ok])
                moved.append(np.searchsorted(edges, vb, side="right") != np.searchsorted(edges, vp, side="right"))
            r, m = np.concatenate(ratios), np.concatenate(moved)
            cells.append(f"{np.median(r):6.3f} | {100 * m.mean():5.1f}")
        print(f"{name:26s} {sep:>11s} " + " ".join(f"{c:>15s}" for c in cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
