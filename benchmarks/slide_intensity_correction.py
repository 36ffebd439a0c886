"""Does a per-slide defocus / JPEG correction of the membrane OD, read from the slide's own cells, help the score?

    python benchmarks/slide_intensity_correction.py fit [--presets ...] [--seeds 100]
    python benchmarks/slide_intensity_correction.py robustness --r0 0.66 [--a 1] [--min-cells 0] -- --quick
    python benchmarks/slide_intensity_correction.py phantoms --r0 0.66 [--a 1] [--min-cells 0] -- \\
        --seeds 904,905,911,912,913,914 --categories 0,0+,...

A study, not shipped. Defocus and JPEG lower the peak of a thin membrane (the shipped ``membrane_dab_od``)
but not the stain just inside it, so they raise, on every stained cell of a slide, the ratio

    r = (mean DAB OD 0.5-1.0 um inside the membrane peak - cytoplasm DAB) / membrane_dab_od

(per cell: the lower median over its covered rays of the inner mean, the rays and cytoplasm as
:func:`her2fast.stages.cells.measure_tile` measures them; per slide: the median over its tumour cells
measured weak or stronger, ``--min-cells`` of them at least, else no correction). The candidate scales
every cell's ``membrane_dab_od`` of the slide by ``(r / r0) ** a`` and re-scores the cell table
(:func:`her2fast.scoring.profile.rescore_cells`; % complete does not change).

- ``fit``: ``r0`` = the median of the per-tile ratios on training-seed phantom tiles (seed < 1000; the
  tiles of ``benchmarks/intensity_stability.py``), measured as the pipeline measures them.
- ``robustness``: runs ``benchmarks/robustness.py`` (its options after ``--``) with the ratio collected
  while each slide is scored; prints per scored slide ``r``, the factor and both categories, then the
  pairs whose category changed, shipped and corrected, from the same run (the tables that
  robustness.py prints are those of the corrected results, except % complete, which is the same);
  ``corrected (>= 100 cells)``: corrected only where at least 100 cells gave the ratio.
- ``phantoms``: runs ``benchmarks/evaluate_phantoms.py`` (its options after ``--``) the same way;
  prints the accuracy (0/1+/2+/3+) of the shipped and the corrected categories against the truth.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

STEP = 0.25  # px along a ray
INNER_UM = (0.5, 1.0)  # the inner window, um before the membrane peak


def cell_ratios(tc, membrane, dab_od, nuclei, *, mpp=0.5, origin=(0, 0), core=None, epithelium=None, settings=None):
    """``r`` of each owned tumour cell of ``tc`` (a :func:`measure_tile` result) measured weak or stronger."""
    from intensity_measures import territories
    from scipy.ndimage import map_coordinates

    from her2fast.stages.cells import DEFAULT_CELL_SETTINGS, _rays
    from her2fast.stages.cells.intensity import _cytoplasm_od

    s = settings or DEFAULT_CELL_SETTINGS
    cur_all = np.asarray(tc.cells.membrane_dab_od, np.float64)
    sel = (cur_all >= s.rules.weak_od) & np.asarray(tc.cells.is_tumour, bool)
    if not sel.any():
        return np.zeros(0)
    od, mem, markers, n, count, sx, sy, base, frac, terr, radius = territories(
        membrane, dab_od, nuclei, mpp=mpp, settings=s
    )
    h, w = od.shape
    ox, oy = origin
    cx0, cy0, cx1, cy1 = core if core is not None else (ox, oy, ox + w, oy + h)
    gsx, gsy = sx + count * ox, sy + count * oy
    owned = (gsx >= count * cx0) & (gsx < count * cx1) & (gsy >= count * cy0) & (gsy < count * cy1)
    idx = np.flatnonzero(owned)
    if idx.size != cur_all.size:
        raise SystemExit("the cells differ from measure_tile's: the study is out of date")
    idx, cur = idx[sel], cur_all[sel]
    b, fr = base[idx], frac[idx]
    run, _ = _rays(
        terr, mem.view(np.uint8), od, b, fr, int(s.n_rays), radius + 2.0, 0.0, s.max_run_um / mpp,
        cell_labels=(idx + 1).astype(np.int32),
    )  # fmt: skip
    cyto = _cytoplasm_od(od, terr, markers, mem, n, s.cytoplasm_gap_um / mpp)[idx]
    covered = run > 0
    t = np.arange(0, radius + 2.0 + 4.0 / mpp, STEP)
    ang = 2 * np.pi * (np.arange(s.n_rays) + 0.5) / s.n_rays
    xs = (b[:, 0] + fr[:, 0])[:, None, None] + np.cos(ang)[None, :, None] * t
    ys = (b[:, 1] + fr[:, 1])[:, None, None] + np.sin(ang)[None, :, None] * t
    xi = np.clip(np.rint(xs).astype(np.int64), 0, w - 1)
    yi = np.clip(np.rint(ys).astype(np.int64), 0, h - 1)
    prof = map_coordinates(od, [ys.ravel(), xs.ravel()], order=1, mode="nearest").reshape(xs.shape)
    hit = mem[yi, xi] & (terr[yi, xi] == (idx + 1)[:, None, None])
    first = np.where(hit.any(2), hit.argmax(2), 0)
    runs = np.rint(run / STEP).astype(np.int64)
    ti = np.arange(t.size)[None, None, :]
    in_run = (ti >= first[..., None]) & (ti <= (first + runs)[..., None] + int(1 / STEP)) & covered[..., None]
    pk = np.where(in_run, prof, -np.inf).argmax(2)  # the peak of the own run
    rel = (ti - pk[..., None]) * STEP * mpp
    win = (rel <= -INNER_UM[0]) & (rel >= -INNER_UM[1])
    v = np.where(covered, np.where(win, prof, 0).sum(2) / np.maximum(win.sum(2), 1), np.nan)
    ok = covered.any(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inner = np.nanpercentile(v, 50, axis=1, method="lower")
    return ((inner - np.maximum(cyto, 0.0)) / cur)[ok]


def install(r0: float, a: float, min_cells: int, log: list) -> None:
    """Collect the ratios while the pipeline measures, and correct what ``her2fast.score`` returns."""
    from dataclasses import replace

    import her2fast
    import her2fast.pipeline.stream as stream
    from her2fast.scoring import DEFAULT_RULES
    from her2fast.scoring.profile import rescore_cells

    collected: list = []
    lock = threading.Lock()
    measure = stream.measure_tile

    def measure_tile(membrane, dab_od, nuclei, **kw):
        tc = measure(membrane, dab_od, nuclei, **kw)
        r = cell_ratios(tc, membrane, dab_od, nuclei, **kw)
        with lock:
            collected.append(r)
        return tc

    score = her2fast.score

    def corrected_score(path, **kw):
        collected.clear()
        res = score(path, **kw)
        rr = np.concatenate(collected) if collected else np.zeros(0)
        r = float(np.median(rr)) if rr.size else float("nan")
        e = {"slide": Path(str(path)).name, "cells": int(rr.size), "r": r, "category": res.category, "f": 1.0}
        e["corrected"] = res.category
        if res.category is not None and rr.size >= max(min_cells, 1):
            e["f"] = (r / r0) ** a
            od = (res.cells.membrane_dab_od * e["f"]).astype(np.float32)
            settings = kw.get("settings")
            sc = rescore_cells(replace(res.cells, membrane_dab_od=od), settings.rules if settings else DEFAULT_RULES)
            e["corrected"] = sc.category
            res.category, res.stratum = sc.category, sc.stratum
            res.score = "0" if sc.category == "0+" else sc.category
        e["corrected_100"] = e["corrected"] if rr.size >= 100 else e["category"]
        log.append(e)
        print(
            f"  {e['slide'][:44]:44s} cells {e['cells']:5d}  r {r:6.3f}  factor {e['f']:5.3f}  "
            f"{e['category']} -> {e['corrected']}",
            flush=True,
        )
        return res

    stream.measure_tile = measure_tile
    her2fast.score = corrected_score


#: (log key, label) of what is compared: the shipped category, the corrected one, and the corrected one
#: where at least 100 cells gave the ratio (the shipped one elsewhere)
VARIANTS = (("category", "shipped"), ("corrected", "corrected"), ("corrected_100", "corrected (>= 100 cells)"))


def four(c):
    return None if c is None else ("0" if c == "0+" else c)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("fit", "robustness", "phantoms"))
    ap.add_argument("--r0", type=float, default=0.66, help="the ratio's clean-tissue value (from `fit`)")
    ap.add_argument("--a", type=float, default=1.0, help="the exponent of (r / r0)")
    ap.add_argument("--min-cells", type=int, default=0, help="fewer weak-or-stronger cells: no correction")
    ap.add_argument("--presets", default="3+/near-threshold,2+/near-threshold,2+/typical,1+/typical,3+/typical")
    ap.add_argument("--seeds", default="100", help="fit: training tile seeds (< 1000)")
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args = ap.parse_args(argv[:cut])  # after "--": the options of the script that is run
    rest = argv[cut + 1 :]
    log: list = []
    if args.mode == "fit":
        from diagnose_cells import MARGIN, tile_inputs

        from her2fast.stages.cells import measure_tile

        seeds = [int(s) for s in args.seeds.split(",")]
        if max(seeds) >= 1000:
            raise SystemExit("fit on training seeds (< 1000) only")
        meds = []
        for p in args.presets.split(","):
            cat, _, var = p.partition("/")
            for seed in seeds:
                gt, dab, nuc, prob = tile_inputs(cat, var or "typical", seed, 800, None)
                h, w = dab.shape
                kw = {"mpp": gt.mpp, "core": (MARGIN, MARGIN, w - MARGIN, h - MARGIN), "epithelium": gt.epithelium_mask}
                r = cell_ratios(measure_tile(prob, dab, nuc, **kw), prob, dab, nuc, **kw)
                meds.append(float(np.median(r)))
                print(f"{p:20s} seed {seed}: {r.size} cells, median r {meds[-1]:.3f}", flush=True)
        print(f"r0 = median of the tiles' medians = {np.median(meds):.3f}")
        return 0
    install(args.r0, args.a, args.min_cells, log)
    print(f"correction (r / {args.r0}) ** {args.a}, at least {args.min_cells} cells", flush=True)
    if args.mode == "robustness":
        import robustness

        sys.argv = ["robustness.py", *rest]
        rc = robustness.main()
        sub = argparse.ArgumentParser()
        sub.add_argument("--quick", action="store_true")
        sub.add_argument("--perturbations", default=None)
        known, _ = sub.parse_known_args(rest)
        default = robustness.QUICK if known.quick else robustness.FULL
        names = known.perturbations.split(",") if known.perturbations else list(default)
        k = len(names) + 1
        for key, label in VARIANTS:
            flips = []
            for s in range(len(log) // k):
                grp = log[k * s : k * s + k]
                flips += [(grp[0]["slide"], n, grp[0][key], e[key]) for n, e in zip(names, grp[1:])
                          if four(e[key]) != four(grp[0][key])]  # fmt: skip
            tot = len(log) // k * len(names)
            print(f"{label:26s}: category unchanged {tot - len(flips)}/{tot} = {100 * (tot - len(flips)) / tot:.1f} %")
            for f in flips:
                print(f"    {f[0]:44s} {f[1]:18s} {f[2]} -> {f[3]}")
        return rc
    import evaluate_phantoms

    if "--json" not in rest:
        rest += ["--json", "/tmp/h2f_slide_correction_phantoms.json"]
    out = Path(rest[rest.index("--json") + 1])
    sys.argv = ["evaluate_phantoms.py", *rest]
    rc = evaluate_phantoms.main()
    truth = {r["slide"]: r["truth"] for r in json.loads(out.read_text())["rows"]}
    for key, label in VARIANTS:
        right = [four(e[key]) == four(truth.get(e["slide"])) for e in log]
        wrong = [f"{e['slide']} {truth.get(e['slide'])} -> {e[key]}" for e, ok in zip(log, right) if not ok]
        print(
            f"{label:26s}: accuracy {sum(right)}/{len(right)} = {np.mean(right):.3f}; misses: {', '.join(wrong) or '-'}"
        )
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
