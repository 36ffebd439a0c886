"""Candidate per-cell membrane-intensity measures vs the current one, bands refitted on training seeds.

    taskset -c 1 python benchmarks/intensity_measures.py [--train-seeds 100,101,102] [--test-seeds 5000,5001]
                                                       [--size 800] [--cache /tmp/h2f_diag] [--inputs c]

Per phantom tile (the presets of ``benchmarks/calibrate_intensity.py``) the cells are measured exactly as
:func:`her2fast.stages.cells.measure_tile` does (input (c): U-Net membrane probability, deconvolved DAB,
``segment_nuclei``; (a): true membrane, true DAB, true nuclei), and for every covered ray the DAB OD
profile along the ray is sampled (bilinear, 0.25 px steps). Candidates (per cell, over its covered rays):

- ``cur``          the shipped ``membrane_dab_od`` of :func:`her2fast.stages.cells.measure_tile` (own-side gate,
                   ``intensity_quantile``, cytoplasm subtraction);
- ``med``          median of the run peak OD over all covered rays (the measure ``cur`` started from);
- ``q75``          75th percentile of the run peaks;
- ``cur-bg``       ``med`` minus the cell's cytoplasm DAB (median over territory pixels >= 1.5 um
                   from membrane and off nuclei);
- ``memmean``      mean OD over the membrane-mask pixels of the territory; ``memmean-bg`` minus bg;
- ``peak*thick``   ``med`` x median run length (um);
- ``int_in W``     integral of (OD - bg) over the inner half of the profile (peak - W .. peak), um*OD;
- ``int_full W``   integral of (OD - bg) over peak - W .. peak + W;
- ``int_in-raybg`` inner integral with the ray's own baseline (min of the profile 1.5-3 um inside);
- ``int_run``      integral of (OD - bg) along the membrane run (the run's pixels only).

Each is classified by bands fitted on the training seeds (fewest misclassified cells per boundary, as
``calibrate_intensity.best_cut``); printed: intensity-class agreement and per-cell class agreement
(intensity + measured completeness, :func:`her2fast.scoring.classify_cells`) on held-out seeds, and the
separation of neighbouring classes (training-fitted cut, held-out misclassified cells per boundary).
Per-tile features are cached (``--cache``/``feat_*.npz``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

STEP = 0.25  # px along the ray
FEATURE_VERSION = 7


def _ray_profiles(od, lab, mem, base, frac, n_rays, length):
    """OD (bilinear), label and membrane (nearest pixel) sampled along every ray: (n, R, T) each."""
    from scipy.ndimage import map_coordinates

    t = np.arange(0, length, STEP)
    ang = 2 * np.pi * (np.arange(n_rays) + 0.5) / n_rays
    cx = base[:, 0] + frac[:, 0]
    cy = base[:, 1] + frac[:, 1]
    xs = cx[:, None, None] + np.cos(ang)[None, :, None] * t[None, None, :]
    ys = cy[:, None, None] + np.sin(ang)[None, :, None] * t[None, None, :]
    h, w = od.shape
    xi = np.clip(np.rint(xs).astype(np.int64), 0, w - 1)
    yi = np.clip(np.rint(ys).astype(np.int64), 0, h - 1)
    prof = map_coordinates(od, [ys.ravel(), xs.ravel()], order=1, mode="nearest").reshape(xs.shape)
    return prof.astype(np.float32), lab[yi, xi], mem[yi, xi], t


def territories(membrane, dab_od, nuclei, *, mpp, settings):
    """The steps of :func:`her2fast.stages.cells.measure_tile` up to the cells' territories, as it runs them.

    Returns (dab OD, membrane mask, nucleus markers, n, pixel count, x sum, y sum, centre base, centre
    fraction, territories, territory radius in px): what the studies measure the cells' rays on.
    """
    from her2fast import _native
    from her2fast.stages.cells import _as_float_map, _exact_centres, _nucleus_labels

    s = settings
    prob = _as_float_map(membrane, "membrane")
    od = _as_float_map(dab_od, "dab_od")
    radius = s.max_radius_um / mpp
    markers, n, count, sx, sy = _nucleus_labels(np.asarray(nuclei), int(np.ceil(s.min_nucleus_um2 / mpp**2)))
    base, frac = _exact_centres(count, sx, sy)
    thr = np.float32(s.membrane_threshold)
    land, mem_mask = _native.cell_landscape(
        prob,
        od,
        float(thr),
        float(thr * np.float32(0.5)),
        float(np.float32(s.membrane_od_weight)),
        float(np.float32(1 - 1e-6)),
    )
    bases = np.ascontiguousarray(np.vstack([np.zeros((1, 2), np.int32), base]))
    fracs = np.ascontiguousarray(np.vstack([np.zeros((1, 2)), frac]))
    terr = _native.seeded_watershed(land, markers, n, None, float(thr), float(radius), bases, fracs, True)
    return od, mem_mask, markers, n, count, sx, sy, base, frac, terr, radius


def cell_features(membrane, dab_od, nuclei, *, mpp, core, epithelium, settings=None):
    """measure_tile's owned cells plus candidate intensity measures (dict of (n_owned,) arrays)."""
    from scipy import ndimage as ndi

    from her2fast.stages.cells import (
        DEFAULT_CELL_SETTINGS,
        _rays,
        measure_tile,
    )

    s = settings or DEFAULT_CELL_SETTINGS
    tc = measure_tile(membrane, dab_od, nuclei, mpp=mpp, core=core, epithelium=epithelium, settings=s)
    cells = tc.cells
    od, mem_mask, markers, n, count, sx, sy, base, frac, terr, radius = territories(
        membrane, dab_od, nuclei, mpp=mpp, settings=s
    )
    h, w = od.shape
    mem_u8 = mem_mask.view(np.uint8)
    run, peak = _rays(terr, mem_u8, od, base, frac, int(s.n_rays), radius + 2.0, 0.0, s.max_run_um / mpp)
    # ownership, as measure_tile
    cx0, cy0, cx1, cy1 = core
    owned = (sx >= count * cx0) & (sx < count * cx1) & (sy >= count * cy0) & (sy < count * cy1)
    idx = np.flatnonzero(owned)
    assert idx.size == len(cells), (idx.size, len(cells))
    run, peak, base, frac = run[idx], peak[idx], base[idx], frac[idx]
    covered = run > 0
    ncov = covered.sum(1)

    def cmed(v, q=50):
        x = np.where(covered, v, np.nan)
        with np.errstate(all="ignore"), __import__("warnings").catch_warnings():
            __import__("warnings").simplefilter("ignore")
            out = np.nanpercentile(x, q, axis=1, method="lower")
        return np.where(ncov > 0, np.nan_to_num(out), 0.0)

    f: dict[str, np.ndarray] = {}
    # the shipped measure (measure_tile's own-side gate, quantile and cytoplasm subtraction), and the median
    # of the run peaks that it started from (the earlier measure, which the candidates build on)
    f["cur"] = np.asarray(cells.membrane_dab_od, dtype=np.float64)
    f["med"] = cmed(peak)
    f["q75"] = cmed(peak, 75)
    f["thick"] = cmed(run) * mpp

    # cytoplasm background: territory pixels >= 1.5 um from membrane, off nuclei
    dist = ndi.distance_transform_edt(~mem_mask) * mpp
    nuc_any = markers > 0
    lab_own = np.zeros(n + 1, np.int64)
    lab_own[idx + 1] = np.arange(1, idx.size + 1)
    tl = lab_own[terr]
    m_cyto = (tl > 0) & (dist >= 1.5) & ~nuc_any
    bg = np.zeros(idx.size + 1)
    if m_cyto.any():
        order = np.argsort(tl[m_cyto], kind="stable")
        vals = od[m_cyto][order]
        labs = tl[m_cyto][order]
        starts = np.searchsorted(labs, np.arange(idx.size + 1))
        ends = np.searchsorted(labs, np.arange(idx.size + 1), side="right")
        for k in range(1, idx.size + 1):
            if ends[k] > starts[k]:
                bg[k] = np.median(vals[starts[k] : ends[k]])
    bg = bg[1:]
    f["bg"] = bg
    f["cur-bg"] = np.where(ncov > 0, f["med"] - bg, 0.0)
    f["q75-bg"] = np.where(ncov > 0, f["q75"] - bg, 0.0)
    mm = (tl > 0) & mem_mask
    cnt = np.bincount(tl[mm], minlength=idx.size + 1)[1:]
    sm = np.bincount(tl[mm], weights=od[mm], minlength=idx.size + 1)[1:]
    f["memmean"] = np.where((ncov > 0) & (cnt > 0), sm / np.maximum(cnt, 1), 0.0)
    f["memmean-bg"] = np.where((ncov > 0) & (cnt > 0), f["memmean"] - bg, 0.0)
    f["peak*thick"] = f["med"] * f["thick"]
    f["(peak-bg)*thick"] = f["cur-bg"] * f["thick"]
    f["peak*sqrt(thick)"] = f["med"] * np.sqrt(f["thick"])

    # ray profiles
    prof, plab, pmem, t = _ray_profiles(od, terr, mem_mask, base, frac, int(s.n_rays), radius + 2.0 + 4.0 / mpp)
    own = (idx + 1)[:, None, None]
    hit = pmem & (plab == own)
    first = np.where(hit.any(2), hit.argmax(2), 0)
    runs = np.rint(run / STEP).astype(np.int64)
    T = t.size
    ti = np.arange(T)[None, None, :]
    in_run = (ti >= first[..., None]) & (ti <= (first + runs)[..., None] + int(1 / STEP)) & covered[..., None]
    pk = np.where(in_run, prof, -np.inf).argmax(2)  # peak position along the ray
    dt = STEP * mpp  # um per sample
    rel = (ti - pk[..., None]) * dt
    bgc = bg[:, None, None]
    for W in (0.75, 1.0, 1.5):
        inner = (rel <= 0) & (rel >= -W)
        v = np.where(inner, prof - bgc, 0).sum(2) * dt
        f[f"int_in {W}"] = cmed(v)
        full = (rel >= -W) & (rel <= W)
        v = np.where(full, prof - bgc, 0).sum(2) * dt
        f[f"int_full {W}"] = cmed(v)
    # ray's own baseline: the minimum of the profile 1.5..3 um inside the peak
    win = (rel <= -1.5) & (rel >= -3.0)
    rb = np.where(win, prof, np.inf).min(2)
    rb = np.where(np.isfinite(rb), rb, bg[:, None])
    inner = (rel <= 0) & (rel >= -1.0)
    v = np.where(inner, prof - rb[..., None], 0).sum(2) * dt
    f["int_in-raybg 1.0"] = cmed(v)
    pv = np.take_along_axis(prof, pk[..., None], 2)[..., 0]
    f["peak-raybg"] = cmed(pv - rb)
    v = np.where(in_run, prof - bgc, 0).sum(2) * dt
    f["int_run"] = cmed(v)
    # the cell's own side of its membrane: mean OD a..b um inside the peak (a neighbour's membrane, on
    # the far side of the shared boundary, reaches in only through the blur)
    for a, b in ((0.25, 0.75), (0.5, 1.0), (0.5, 1.5), (1.0, 2.0)):
        win = (rel <= -a) & (rel >= -b)
        v = np.where(win, prof, 0).sum(2) / np.maximum(win.sum(2), 1)
        f[f"inner {a}-{b}"] = cmed(v)
        f[f"inner {a}-{b} -bg"] = np.where(ncov > 0, cmed(v) - bg, 0.0)
        f[f"inner {a}-{b} q75"] = cmed(v, 75)
    # the ridge searched beyond the own territory (a neighbour's membrane peaks on the far side of the
    # boundary); own side vs far side of it, and a linear unmixing of the two
    lo = first - int(0.5 / dt)
    hi = first + runs + int(1.5 / dt)
    srch = (ti >= lo[..., None]) & (ti <= hi[..., None]) & covered[..., None]
    pk2 = np.where(srch, prof, -np.inf).argmax(2)
    rel2 = (ti - pk2[..., None]) * dt
    ridge = np.take_along_axis(prof, pk2[..., None], 2)[..., 0]
    ridge_own = np.take_along_axis(plab, pk2[..., None], 2)[..., 0] == (idx + 1)[:, None]
    for a, b in ((0.25, 0.75), (0.5, 1.0)):
        wi = (rel2 <= -a) & (rel2 >= -b)
        wo = (rel2 >= a) & (rel2 <= b)
        vin = np.where(wi, prof, 0).sum(2) / np.maximum(wi.sum(2), 1)
        vout = np.where(wo, prof, 0).sum(2) / np.maximum(wo.sum(2), 1)
        f[f"r-inner {a}-{b}"] = cmed(vin)
        for k in (0.25, 0.5, 0.75, 1.0):
            f[f"unmix {a}-{b} k{k}"] = cmed(vin - k * vout)
        f[f"ridge*asym {a}-{b}"] = cmed(ridge * vin / np.maximum(vin + vout, 1e-3) * 2)
    for a, b in ((0.25, 0.75), (0.5, 1.0), (0.75, 1.25), (0.5, 1.5)):
        wi = (rel2 <= -a) & (rel2 >= -b)
        wo = (rel2 >= a) & (rel2 <= b)
        vin = np.where(wi, prof, 0).sum(2) / np.maximum(wi.sum(2), 1)
        vout = np.where(wo, prof, 0).sum(2) / np.maximum(wo.sum(2), 1)
        for k in (0.6, 0.7, 0.8, 0.85, 0.9):
            u = vin - k * vout
            f[f"um {a}-{b} k{k}"] = cmed(u)
            f[f"um {a}-{b} k{k} q75"] = cmed(u, 75)
            f[f"um {a}-{b} k{k} q60"] = cmed(u, 60)
        if (a, b) in ((0.5, 1.5), (0.75, 1.25)):
            # the own-run peak, gated by the own side's share: 1 for an isolated membrane or two equally
            # stained neighbours, 0 when the far side dominates (a neighbour's membrane)
            for k in (0.7, 0.8, 0.85, 0.9):
                g = np.clip((vin - k * vout) / np.maximum((1 - k) * vin, 1e-6), 0, 1)
                f[f"gate {a}-{b} k{k}"] = cmed(pv * g)
                f[f"gate {a}-{b} k{k} q75"] = cmed(pv * g, 75)
    f["ridge"] = cmed(ridge)
    f["ridge if own else 0"] = cmed(np.where(ridge_own, ridge, 0))
    f["peak if ridge own else inner"] = cmed(np.where(ridge_own, pv, vin))
    f["frac ridge own"] = np.where(ncov > 0, (ridge_own & covered).sum(1) / np.maximum(ncov, 1), 0)
    # the outer side, for comparison
    win = (rel >= 0.5) & (rel <= 1.0)
    f["outer 0.5-1.0"] = cmed(np.where(win, prof, 0).sum(2) / np.maximum(win.sum(2), 1))
    return cells, f


def collect(seeds, categories, size, cache, inp):
    from diagnose_cells import MARGIN, match, tile_inputs, true_core_cells

    feats, cls, comp_m, tcls = [], [], [], []
    for seed in seeds:
        for spec in categories:
            cat, _, variant = spec.partition("/")
            variant = variant or "typical"
            fc = cache / f"feat{FEATURE_VERSION}_{inp}_{cat.replace('+', 'p')}_{variant}_{seed}_{size}.npz"
            if fc.exists():
                z = np.load(fc)
                feats.append({k[2:]: z[k] for k in z.files if k.startswith("f:")})
                cls.append(z["cls"]), comp_m.append(z["comp"]), tcls.append(z["tcls"])
                continue
            gt, dab, nuc, prob = tile_inputs(cat, variant, seed, size, cache)
            true = true_core_cells(gt)
            h, w = gt.membrane_mask.shape
            core = (MARGIN, MARGIN, w - MARGIN, h - MARGIN)
            if inp == "a":
                args = (gt.membrane_mask, gt.dab_od, np.where(gt.nuclei_mask, gt.cell_labels, 0))
            else:
                args = (prob, dab, nuc)
            cells, f = cell_features(*args, mpp=gt.mpp, core=core, epithelium=gt.epithelium_mask)
            tum = np.flatnonzero(cells.is_tumour)
            meas = cells.select(tum)
            i, j = match(meas, true, 3.0 / gt.mpp)
            f = {k: v[tum][i] for k, v in f.items()}
            c = true.intensity[j].astype(np.int64)
            cm = meas.completeness[i]
            tc = true.select(j).cell_class()
            np.savez(fc, cls=c, comp=cm, tcls=tc, **{f"f:{k}": v for k, v in f.items()})
            feats.append(f), cls.append(c), comp_m.append(cm), tcls.append(tc)
    keys = feats[0].keys()
    return (
        {k: np.concatenate([d[k] for d in feats]).astype(np.float64) for k in keys},
        np.concatenate(cls),
        np.concatenate(comp_m),
        np.concatenate(tcls),
    )


def main() -> int:
    from calibrate_intensity import tile_arguments

    ap = tile_arguments(__doc__.splitlines()[0])
    ap.add_argument("--inputs", default="c")
    ap.add_argument("--only", default="", help="comma-separated candidate names")
    args = ap.parse_args()

    from calibrate_intensity import best_cut

    from her2fast.scoring import DEFAULT_RULES, classify_cells, intensity_class_from_od

    cats = args.categories.split(",")
    train = [int(x) for x in args.train_seeds.split(",")]
    test = [int(x) for x in args.test_seeds.split(",")]
    assert max(train) < 1000
    for inp in args.inputs.split(","):
        ftr, ctr, _, _ = collect(train, cats, args.size, Path(args.cache), inp)
        fte, cte, comp_te, tcls_te = collect(test, cats, args.size, Path(args.cache), inp)
        names = [k for k in ftr if k not in ("bg", "thick")]
        if args.only:
            names = args.only.split(",")
        print(f"input ({inp}); training {ctr.size} cells (seeds {train}), held-out {cte.size} cells (seeds {test})")
        print(
            f"{'measure':20s} {'bands (fitted on train)':>26s} {'int agr tr':>10s} {'int agr':>7s} "
            f"{'stained':>7s} {'class agr':>9s} {'err 0|1':>7s} {'err 1|2':>7s} {'err 2|3':>7s} "
            f"{'med faint/weak/strong':>22s}"
        )
        for name in ["cur (default bands)"] + names:
            key = name.split(" (")[0] if name.startswith("cur (") else name
            if name.startswith("cur ("):
                edges = [DEFAULT_RULES.faint_od, DEFAULT_RULES.weak_od, DEFAULT_RULES.strong_od]
            else:
                edges = [best_cut(ftr[key], ctr, k) for k in range(3)]
            e = np.array(edges)
            if not np.all(np.diff(e) > 0):
                e = np.maximum.accumulate(e + np.arange(3) * 1e-9)
            itr = np.searchsorted(e, ftr[key], side="right")
            ite = np.searchsorted(e, fte[key], side="right")
            errs = []
            for k in range(3):
                sel = (cte == k) | (cte == k + 1)
                errs.append(int(((fte[key][sel] >= e[k]) != (cte[sel] == k + 1)).sum()))
            st = cte > 0
            cc = classify_cells(ite.astype(np.int8), comp_te, DEFAULT_RULES)
            meds = [np.median(fte[key][cte == k]) for k in (1, 2, 3)]
            print(
                f"{name:20s} {' / '.join(f'{x:.3f}' for x in e):>26s} {np.mean(itr == ctr):10.3f} "
                f"{np.mean(ite == cte):7.3f} {np.mean((ite == cte)[st]):7.3f} {np.mean(cc == tcls_te):9.3f} "
                f"{errs[0]:7d} {errs[1]:7d} {errs[2]:7d} {' / '.join(f'{m:.3f}' for m in meds):>22s}"
            )
        _ = intensity_class_from_od
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
