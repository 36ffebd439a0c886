"""Does the score stay put when the scanner or the lab changes? Phantom slides re-saved through perturbations.

    python benchmarks/robustness.py [--quick] [--size 1536] [--seeds 941,942,943,944,945]
                                    [--presets all] [--perturbations all] [--folder /tmp/h2f_robust]
                                    [--out /tmp/h2f_robust/robustness.json]

Held-out phantoms of every preset (:data:`her2fast.synth.PRESETS`, seeds the models never saw: the
membrane U-Net trained on tile seeds, the epithelium SVM on slide seeds 101-104, the bands on 801-810;
the scoring validation used 901-914) are scored as written by :func:`her2fast.synth.make_slide`
(the *baseline*), then again after each perturbation (:mod:`her2fast.synth.perturb`):

- image perturbations: level 0 is read, perturbed and re-saved losslessly (:func:`write_slide`);
  ``resave`` (no perturbation; not in the default list) is the control for the re-save itself;
- render perturbations (DAB / hematoxylin strength, chromogen hue, section thickness, 40x scan): the
  same phantom (same cells, same truth) rendered again with the change.

Per perturbation it prints the pairs whose category (0 / 1+ / 2+ / 3+) or stratum (null / ultralow /
1+ / 2+ / 3+) changed, the mean change of % complete membranes and of each class %, confidence before
and after, and for each flip whether the perturbed result carried a warning flag (any flag but
``stain_vectors_fallback``, which every unstained slide carries) or a confidence <= 0.8, and whether
the baseline's confidence was <= 0.8. Then the totals against the targets: category unchanged on
>= 98 % of pairs, stratum unchanged on >= 95 %, % complete within +-5 points on >= 95 %, every flip
warned (the perturbed result flagged or at confidence <= 0.8, or the baseline at confidence <= 0.8),
and among results (baselines and perturbed) with confidence >= 0.95, >= 95 % right (category against
the phantom's truth). ``--report FILE`` prints the tables again from a JSON this script wrote.

``--quick`` (about 2 minutes on 2 cores): one seed, six perturbations. The full run (5 seeds x 12
presets = 60 slides x 14 perturbations) takes about 25 minutes on 2 cores. ``--settings`` overrides
:class:`her2fast.ScoreSettings` fields (e.g. ``stain_gate=0``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

#: name -> chain of (perturbation, strength); the order is the print order
SCENARIOS: dict[str, tuple[tuple[str, float], ...]] = {
    "resave": (),
    "white_balance_cool": (("white_balance", 0.06),),
    "tone_curve_light": (("tone_curve", 0.8),),
    "scanner_profile": (("white_balance", 0.06), ("tone_curve", 0.85)),
    "jpeg_q60": (("jpeg", 60),),
    "jpeg2000": (("jpeg2000", 34),),
    "blur_1.2px": (("blur", 1.2),),
    "noise_4": (("noise", 4),),
    "resample_0.44": (("resample", 0.44),),
    "scan_40x": (("scan_mpp", 0.25),),
    "dab_x0.7": (("dab", 0.7),),
    "dab_x1.3": (("dab", 1.3),),
    "hematoxylin_x1.4": (("hematoxylin", 1.4),),
    "dab_hue_+8deg": (("dab_hue", 8.0),),
    "thickness_x1.25": (("thickness", 1.25),),
    "exposure_+4%": (("exposure", 1.04),),
    "white_balance_clipped": (("exposure", 1.04), ("white_balance", 0.08)),
}
#: the full run's perturbations; the others are run with ``--perturbations``: ``resave`` (the control of the
#: re-save itself), ``exposure_+4%`` (glass saturated to pure white), ``white_balance_clipped`` (gains
#: 0.957, 0.998, 1.04: a cool cast whose blue channel clips on the glass)
FULL = tuple(n for n in SCENARIOS if n not in ("resave", "exposure_+4%", "white_balance_clipped"))
QUICK = ("scanner_profile", "jpeg_q60", "blur_1.2px", "scan_40x", "dab_x0.7", "tone_curve_light")
#: flags that do not warn about the result (every unstained slide has the first)
SILENT_FLAGS = {"stain_vectors_fallback"}
CLASSES = ("negative", "faint_incomplete", "weak_moderate_complete", "intense_incomplete", "intense_complete")


def summarise(r) -> dict:
    """The fields of a SlideResult this benchmark compares."""
    st = r.provenance.get("stains", {})
    return {
        "confidence_parts": r.provenance.get("confidence", {}),
        "score": r.score,
        "stratum": r.stratum,
        "category": r.category,
        "confidence": None if r.confidence is None else round(float(r.confidence), 4),
        "flags": list(r.flags),
        "percent_complete": None if r.percent_complete is None else round(r.percent_complete, 2),
        "percentages": {k: round(v, 2) for k, v in r.percentages.items()},
        "mean_membrane_od": None if r.mean_membrane_od is None else round(float(r.mean_membrane_od), 4),
        "tumour_cells": int(r.counts.get("tumour_cells", 0)),
        "stains": {
            k: st.get(k) for k in ("background", "hematoxylin", "dab", "hematoxylin_estimated", "dab_estimated")
        },
    }


def four(category: str | None) -> str | None:
    return None if category is None else ("0" if category == "0+" else category)


def warned(s: dict) -> bool:
    return bool(set(s["flags"]) - SILENT_FLAGS) or (s["confidence"] is not None and s["confidence"] <= 0.8)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one seed, six perturbations (~2 min)")
    ap.add_argument("--size", type=int, default=1536, help="slide side in pixels at 0.5 um/px")
    ap.add_argument("--seeds", default=None, help="default 941-945 (--quick: 941)")
    ap.add_argument("--presets", default="all", help="comma-separated preset names (e.g. 1+/near-threshold) or all")
    ap.add_argument(
        "--perturbations", default=None, help=f"comma-separated names from: {', '.join(SCENARIOS)}".replace("%", "%%")
    )
    ap.add_argument("--folder", default="/tmp/h2f_robust", help="phantoms and re-saved slides (outside the repository)")
    ap.add_argument("--out", default=None, help="JSON of per-pair rows (default FOLDER/robustness.json)")
    ap.add_argument("--settings", default="", help="ScoreSettings overrides, e.g. stain_gate=0")
    ap.add_argument("--report", default=None, help="only print the tables of a JSON this script wrote")
    args = ap.parse_args()
    if args.report:
        data = json.loads(Path(args.report).read_text())
        names = list(dict.fromkeys(r["perturbation"] for r in data["rows"]))
        report(data["rows"], data["baselines"], names)
        return 0

    import her2fast
    from her2fast.synth import PRESETS, is_current_phantom, load_ground_truth, make_slide
    from her2fast.synth.perturb import Perturbation, perturb_image, read_level0, render_options, write_slide

    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    out_json = Path(args.out) if args.out else folder / "robustness.json"
    seeds = [int(s) for s in (args.seeds or ("941" if args.quick else "941,942,943,944,945")).split(",") if s]
    presets = list(PRESETS) if args.presets == "all" else [p for p in args.presets.split(",") if p]
    names = args.perturbations.split(",") if args.perturbations else list(QUICK if args.quick else FULL)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        ap.error(f"unknown perturbations {unknown}; choose from {', '.join(SCENARIOS)}")
    chains = {n: [Perturbation(k, v) for k, v in SCENARIOS[n]] for n in names}
    base_mpp = 0.5

    overrides = {
        k: (v.lower() in ("1", "true", "yes")) if v.lower() in ("0", "1", "true", "false", "yes", "no") else v
        for k, v in (kv.split("=", 1) for kv in args.settings.split(",") if kv)
    }
    settings = her2fast.ScoreSettings(**overrides)

    def score(path: Path) -> dict:
        return summarise(her2fast.score(path, progress=False, settings=settings))

    def phantom(path: Path, preset: str, seed: int, mpp: float, variation) -> object:
        width = int(round(args.size * base_mpp / mpp))
        if is_current_phantom(path):
            gt = load_ground_truth(path)
            if gt.width == width:
                return gt
        cat, var = preset.split("/")
        return make_slide(
            path, category=cat, variant=var, width=width, height=width, seed=seed, mpp=mpp, variation=variation
        )

    print(
        f"her2fast {her2fast.__version__}; {len(presets)} presets x {len(seeds)} seeds = {len(presets) * len(seeds)} "
        f"slides of {args.size}^2 px at {base_mpp} um/px; {len(names)} perturbations; folder {folder}; "
        f"settings {overrides or 'default'}",
        flush=True,
    )
    rows: list[dict] = []
    baselines: list[dict] = []
    t_start = time.perf_counter()
    for seed in seeds:
        for preset in presets:
            tag = f"{preset.replace('/', '_').replace('+', 'p')}_{seed}_{args.size}"
            base_path = folder / f"base_{tag}.tiff"
            gt = phantom(base_path, preset, seed, base_mpp, None)
            base = score(base_path)
            baselines.append({"slide": base_path.name, "preset": preset, "seed": seed, "truth": gt.category, **base})
            rgb = mpp = None
            line = []
            for name, chain in chains.items():
                kinds = {p.kind for p in chain}
                if "render" in kinds:
                    opts = render_options(chain, base_mpp)
                    path = folder / f"render_{tag}_{name}.tiff"
                    pgt = phantom(path, preset, seed, opts["mpp"], opts["variation"])
                    if pgt.category != gt.category:
                        print(f"  note: {name} phantom's truth {pgt.category} != {gt.category}", file=sys.stderr)
                    if "image" in kinds:  # a render change then an image change: re-save the rendered slide
                        img, m = read_level0(path)
                        img, m = perturb_image(img, chain, mpp=m, seed=seed)
                        path = write_slide(folder / "perturbed.tiff", img, m)
                else:
                    if rgb is None:
                        rgb, mpp = read_level0(base_path)
                    img, m = perturb_image(rgb, chain, mpp=mpp, seed=seed)
                    path = write_slide(folder / "perturbed.tiff", img, m)
                after = score(path)
                row = {
                    "slide": base_path.name,
                    "preset": preset,
                    "seed": seed,
                    "truth": gt.category,
                    "perturbation": name,
                    "chain": [p.label for p in chain],
                    "before": base,
                    "after": after,
                }
                row["category_flip"] = four(base["category"]) != four(after["category"])
                row["stratum_flip"] = base["category"] != after["category"]
                rows.append(row)
                line.append(f"{name}:{after['category'] or '-'}{'*' if row['category_flip'] else ''}")
            el = time.perf_counter() - t_start
            print(
                f"{base_path.name:42s} truth {gt.category:>3s} base {base['category'] or '-':>3s} "
                f"conf {base['confidence'] if base['confidence'] is not None else float('nan'):.2f}  "
                + " ".join(line)
                + f"  [{el:.0f} s]",
                flush=True,
            )
            out_json.write_text(json.dumps({"baselines": baselines, "rows": rows}, indent=1))

    report(rows, baselines, names)
    print(f"\nper-pair rows: {out_json}; {time.perf_counter() - t_start:.0f} s in all")
    return 0


def _fmt_conf(v: float | None) -> str:
    return "  -  " if v is None else f"{v:.2f}"


def report(rows: list[dict], baselines: list[dict], names: list[str]) -> None:
    """Print the per-perturbation table, the flips and the totals against the targets."""
    print(
        "\nper perturbation (pairs; flips of category 0/1+/2+/3+ and of stratum; mean |change| of % complete "
        "and how many moved > 5 points; mean change of each class % and of the mean membrane OD; "
        "mean confidence before -> after):"
    )
    print(
        f"{'perturbation':20s} {'pairs':>5s} {'cat':>4s} {'strat':>5s} {'|d%c|':>6s} {'>5pt':>4s} "
        + " ".join(f"{c[:9]:>9s}" for c in CLASSES)
        + f" {'dOD':>7s} {'conf b->a':>11s}"
    )
    for name in names:
        rs = [r for r in rows if r["perturbation"] == name and r["before"]["category"] and r["after"]["category"]]
        if not rs:
            continue
        dpc = np.array([r["after"]["percent_complete"] - r["before"]["percent_complete"] for r in rs])
        dcls = [np.mean([r["after"]["percentages"][c] - r["before"]["percentages"][c] for r in rs]) for c in CLASSES]
        dod = np.mean([r["after"]["mean_membrane_od"] - r["before"]["mean_membrane_od"] for r in rs])
        cb = np.mean([r["before"]["confidence"] for r in rs])
        ca = np.mean([r["after"]["confidence"] for r in rs])
        print(
            f"{name:20s} {len(rs):5d} {sum(r['category_flip'] for r in rs):4d} {sum(r['stratum_flip'] for r in rs):5d} "
            f"{np.mean(np.abs(dpc)):6.2f} {int((np.abs(dpc) > 5).sum()):4d} "
            + " ".join(f"{d:+9.2f}" for d in dcls)
            + f" {dod:+7.3f} {cb:5.2f}->{ca:4.2f}"
        )

    flips = [r for r in rows if r["stratum_flip"]]
    print(
        f"\nflips ({len(flips)}; 'cat' = category changed, else stratum only; warned after = a flag other than "
        f"{sorted(SILENT_FLAGS)} or confidence <= 0.8 on the perturbed result):"
    )
    print(
        f"{'slide':42s} {'perturbation':18s} {'truth':>5s} {'before':>6s} {'after':>6s} {'cat':>3s} "
        f"{'conf b':>6s} {'conf a':>6s} {'OD b':>6s} {'OD a':>6s} {'%c b':>5s} {'%c a':>5s}  flags after"
    )
    for r in flips:
        b, a = r["before"], r["after"]
        print(
            f"{r['slide']:42s} {r['perturbation']:18s} {r['truth']:>5s} {b['category'] or '-':>6s} "
            f"{a['category'] or '-':>6s} {'yes' if r['category_flip'] else '':>3s} {_fmt_conf(b['confidence']):>6s} "
            f"{_fmt_conf(a['confidence']):>6s} {b['mean_membrane_od'] or 0:6.3f} {a['mean_membrane_od'] or 0:6.3f} "
            f"{b['percent_complete'] or 0:5.1f} {a['percent_complete'] or 0:5.1f}  {','.join(a['flags']) or '-'}"
        )

    n = len(rows)
    if not n:
        return
    scored = [r for r in rows if r["before"]["category"] and r["after"]["category"]]
    cat_same = sum(not r["category_flip"] for r in rows)
    str_same = sum(not r["stratum_flip"] for r in rows)
    pc_ok = sum(abs(r["after"]["percent_complete"] - r["before"]["percent_complete"]) <= 5 for r in scored)
    warned_after = sum(warned(r["after"]) for r in flips)
    low_before = sum(r["before"]["confidence"] is not None and r["before"]["confidence"] <= 0.8 for r in flips)
    caught = sum(
        warned(r["after"]) or (r["before"]["confidence"] is not None and r["before"]["confidence"] <= 0.8)
        for r in flips
    )
    results = [dict(b, truth=b["truth"]) for b in baselines] + [dict(r["after"], truth=r["truth"]) for r in rows]
    sure = [s for s in results if s["confidence"] is not None and s["confidence"] >= 0.95]
    sure_right = sum(four(s["category"]) == four(s["truth"]) for s in sure)
    sure_right5 = sum(s["category"] == s["truth"] for s in sure)
    base_right = sum(four(b["category"]) == four(b["truth"]) for b in baselines)
    after_right = sum(four(r["after"]["category"]) == four(r["truth"]) for r in rows)

    def pct(k: int, m: int) -> str:
        return f"{k}/{m} = {100.0 * k / m:.1f} %" if m else "-"

    def verdict(ok: bool) -> str:
        return "MET" if ok else "NOT MET"

    print(f"\ntotals over {n} pairs ({len(baselines)} slides x {len(names)} perturbations):")
    print(f"  category unchanged      {pct(cat_same, n):>22s}   target >= 98 %  {verdict(cat_same >= 0.98 * n)}")
    print(f"  stratum unchanged       {pct(str_same, n):>22s}   target >= 95 %  {verdict(str_same >= 0.95 * n)}")
    print(
        f"  % complete within +-5   {pct(pc_ok, len(scored)):>22s}   target >= 95 %  "
        f"{verdict(pc_ok >= 0.95 * max(len(scored), 1))}"
    )
    print(
        f"  flips warned            {pct(caught, len(flips)):>22s}   target 100 %    {verdict(caught == len(flips))}"
        f"  (after: {warned_after}; confidence <= 0.8 before: {low_before})"
    )
    print(
        f"  right when conf >= 0.95 {pct(sure_right, len(sure)):>22s}   target >= 95 %  "
        f"{verdict(sure_right >= 0.95 * max(len(sure), 1))}  (5-way: {pct(sure_right5, len(sure))})"
    )
    print(f"  accuracy (0/1+/2+/3+): baseline {pct(base_right, len(baselines))}, perturbed {pct(after_right, n)}")

    uncertain = [s for s in results if "intensity_uncertain" in s["flags"]]
    print(
        f"  flagged intensity_uncertain: {pct(len(uncertain), len(results))} of results; flips flagged so "
        f"(after): {sum('intensity_uncertain' in r['after']['flags'] for r in flips)}/{len(flips)}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
