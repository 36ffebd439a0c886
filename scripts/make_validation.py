"""Generate docs/validation.md and docs/validation/*.png: her2fast evaluated as a lab would evaluate it.

    python scripts/make_validation.py [--folder /tmp/h2f_validation] [--size 2048] [--seeds 901,902]
                                      [--variant-seed 903] [--no-variants] [--docs docs] [--n-boot 2000]

Two sets, each run through :func:`her2fast.validation.evaluate.run_evaluation` (the code behind
``her2fast evaluate REFERENCE.csv --out DIR``):

1. held-out phantom slides (:func:`her2fast.synth.make_slide`, seeds the models never saw: the U-Net
   trained on ``make_tile`` seeds, the epithelium SVM on slide seeds 101-104): every category
   (0, 0+, 1+, 2+, 3+) of the typical preset for each of ``--seeds``, plus one slide of every
   near-threshold / unusual / heterogeneous preset (``--variant-seed``). Reference = the generator's
   true category and true % complete membranes;
2. the four real HER2 IHC patches of ../shared/data/ihc/her2-ihc-40x at 0.6 um/px (MANIFEST.md),
   reference = their dataset class. They are scored with the default rules, and again with
   ``min_tumour_cells=50`` so that their per-image figures can be read (a patch holds fewer than the 200
   tumour cells a slide score needs).

Slides, per-slide reports and results stores stay under ``--folder`` (re-running reuses them); the
document, thumbnails (palette PNG, <= 300 px) and the calibration plot go to ``--docs``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATCHES = ROOT.parent / "shared" / "data" / "ihc" / "her2-ihc-40x"
PATCH_MPP = 0.6
CATEGORIES = ("0", "0+", "1+", "2+", "3+")
VARIANTS = (
    "0+/near-threshold",
    "1+/near-threshold",
    "2+/near-threshold",
    "2+/unusual",
    "2+/heterogeneous",
    "3+/near-threshold",
    "3+/heterogeneous",
)


def make_phantoms(folder: Path, size: int, seeds: list[int], variant_seed: int | None) -> Path:
    """Make (or reuse) the phantom slides and write their reference CSV; returns the CSV path."""
    from her2fast.scoring import slide_summary
    from her2fast.synth import is_current_phantom, load_ground_truth, make_slide

    folder.mkdir(parents=True, exist_ok=True)
    plan = [(cat, "typical", seed) for seed in seeds for cat in CATEGORIES]
    if variant_seed is not None:
        plan += [(*name.split("/"), variant_seed) for name in VARIANTS]
    lines = ["slide,score,percent_complete,preset,true_tumour_cells"]
    for cat, variant, seed in plan:
        name = f"phantom_{cat.replace('+', 'p')}_{variant}_{seed}_{size}.tiff"
        path = folder / name
        if is_current_phantom(path):
            gt = load_ground_truth(path)
        else:
            t0 = time.perf_counter()
            gt = make_slide(path, category=cat, width=size, height=size, seed=seed, variant=variant)
            print(f"made {name} ({gt.category}) in {time.perf_counter() - t0:.1f} s", flush=True)
        lines.append(
            f"{name},{gt.category},{slide_summary(gt.cells).percent_complete:.2f},{cat}/{variant},"
            f"{int(gt.cells.is_tumour.sum())}"
        )
    csv_path = folder / "reference.csv"
    csv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return csv_path


def patch_reference(folder: Path) -> Path:
    """Reference CSV of the real patches (absolute paths; score = the dataset class)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["slide,score"]
    for cls in ("0", "1+", "2+", "3+"):
        p = PATCHES / f"her2ihc40x_score{cls}.png"
        if not p.exists():
            raise SystemExit(f"missing real patch {p} (see ../shared/data/MANIFEST.md)")
        lines.append(f"{p},{cls}")
    csv_path = folder / "reference.csv"
    csv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return csv_path


def thumbnail(src: str | None, dst: Path, max_size: int = 300) -> str | None:
    """Downscaled palette PNG of ``src`` at ``dst``; returns the file name (None without a picture)."""
    if not src or not Path(src).exists():
        return None
    from PIL import Image

    with Image.open(src) as im:
        im = im.convert("RGB")
        im.thumbnail((max_size, max_size), Image.Resampling.LANCZOS)
        im.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(dst, optimize=True)
    return dst.name


def result_json(outcome) -> dict:
    p = outcome.outputs.get("json")
    try:
        return json.loads(Path(p).read_text(encoding="utf-8")) if p else {}
    except OSError:
        return {}


def f(v, nd: int = 1) -> str:
    import math

    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:.{nd}f}"


def md_confusion(summary) -> list[str]:
    labels = summary.labels
    cm = summary.confusion
    out = ["| predicted \\ reference | " + " | ".join(labels) + " | total |", "|---|" + "---:|" * (len(labels) + 1)]
    for lab, row in zip(labels, cm):
        out.append(f"| **{lab}** | " + " | ".join(str(int(v)) for v in row) + f" | {int(row.sum())} |")
    out.append("| total | " + " | ".join(str(int(v)) for v in cm.sum(axis=0)) + f" | {int(cm.sum())} |")
    return out


def md_agreement(report) -> list[str]:
    s = report.summary
    c = report.counts()
    out = [
        f"{c['total']} slides: {c['scored']} scored, {c['not_scorable']} not scorable, {c['failed']} failed "
        "(slides without a score are left out of every figure and listed below)."
    ]
    if s is None:
        return out + ["", "No slide was scored: no agreement figures."]
    n, agree = int(s.confusion.sum()), int(s.confusion.trace())
    out += ["", "Confusion matrix (rows her2fast, columns reference; ASCO/CAP classes, 0+ counts as 0):", ""]
    out += md_confusion(s)
    out += ["", f"- accuracy **{s.accuracy:.3f}** ({agree}/{n} slides)"]
    out.append(
        f"- Cohen's κ (95 % bootstrap interval, {report.n_boot} resamples): "
        + "; ".join(
            f"{k} {f(s.kappa[k], 3)} ({f(s.kappa_interval[k][0], 2)}–{f(s.kappa_interval[k][1], 2)})"
            for k in ("unweighted", "linear", "quadratic")
        )
    )
    out.append(
        "- precision / recall: "
        + "; ".join(f"{lab} {f(p, 2)} / {f(r, 2)}" for lab, (p, r) in s.precision_recall.items())
    )
    for cut in s.cutoffs:
        out.append(
            f"- cut-off {cut.question}: {cut.agree}/{cut.n} agree (sensitivity {f(cut.sensitivity, 2)}, "
            f"specificity {f(cut.specificity, 2)})"
        )
    if report.ultralow:
        u = report.ultralow
        out.append(
            f"- null vs ultralow, among the {u['n']} slides both call HER2-0: {u['agree']}/{u['n']} agree "
            f"(rows predicted null/ultralow, columns reference: {u['confusion']})"
        )
    if report.percent_complete:
        p = report.percent_complete
        out.append(
            f"- % cells with complete membrane staining ({p['n']} slides): mean absolute error "
            f"{p['mean_abs_error']:.1f} points, bias {p['bias']:+.1f} (her2fast minus truth), RMSE {p['rmse']:.1f}, "
            f"largest {p['max_abs_error']:.1f}, Pearson r {f(p['pearson_r'], 3)}"
        )
    return out


def findings(report, presets: dict[str, str]) -> list[str]:
    """Plain sentences on where the phantom errors are (computed, so they stay true when the numbers change)."""
    lv = report.level
    scored = report.scored
    typical = [o for o in scored if presets.get(o.slide, "").endswith("/typical")]
    harder = [o for o in scored if o not in typical]
    out = [
        f"**Where the errors are.** Typical presets: {sum(bool(o.agrees(lv)) for o in typical)}/{len(typical)} "
        f"agree; near-threshold, unusual and heterogeneous presets: {sum(bool(o.agrees(lv)) for o in harder)}/"
        f"{len(harder)}."
    ]
    disc = report.discordant
    if disc:
        order = {lab: i for i, lab in enumerate(report.labels)}
        lower = sum(order[o.predicted_label(lv)] < order[o.reference_label(lv)] for o in disc)
        out[-1] += (
            f" Of the {len(disc)} discordant slides, {lower} are scored below the truth and {len(disc) - lower} above."
        )
        confident = [o for o in disc if o.confidence is not None and o.confidence >= 0.95]
        if confident:
            out[-1] += (
                f" {len(confident)} of them carry a confidence of 0.95 or more: the confidence measures only "
                "how far the measured cell fractions sit from a cut-off, so it cannot warn about cells "
                "measured wrongly."
            )
    pairs = [
        (o.percent_complete, o.reference_percent_complete)
        for o in scored
        if o.percent_complete is not None
        and o.reference_percent_complete is not None
        and o.reference_percent_complete >= 5.0
    ]
    if pairs:
        under = sum(p < r for p, r in pairs)
        ratio = sum(p for p, _ in pairs) / sum(r for _, r in pairs)
        out[-1] += (
            f" On the {len(pairs)} slides with at least 5 % truly complete membranes, the measured % is lower "
            f"on {under} (overall {100 * ratio:.0f} % of the true value): membranes are found incomplete, "
            "which moves slides whose category hangs on complete membranes (2+, 3+) down a class."
        )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", default="/tmp/h2f_validation", help="slides, per-slide reports, results stores")
    ap.add_argument("--size", type=int, default=2048, help="phantom side in pixels at 0.5 um/px")
    ap.add_argument("--seeds", default="901,902", help="seeds of the typical phantoms (one slide per category each)")
    ap.add_argument(
        "--variant-seed", type=int, default=903, help="seed of the near-threshold/unusual/heterogeneous slides"
    )
    ap.add_argument("--no-variants", action="store_true", help="typical phantoms only")
    ap.add_argument("--docs", default=str(ROOT / "docs"), help="where validation.md and validation/ go")
    ap.add_argument("--n-boot", type=int, default=2000)
    args = ap.parse_args()

    import her2fast
    from her2fast.pipeline import ScoreSettings
    from her2fast.scoring import ScoringRules
    from her2fast.stages.cells import CellSettings
    from her2fast.validation.evaluate import run_evaluation
    from her2fast.validation.report import calibration_image

    t_start = time.perf_counter()
    folder = Path(args.folder)
    docs = Path(args.docs)
    img_dir = docs / "validation"
    if img_dir.exists():
        shutil.rmtree(img_dir)
    img_dir.mkdir(parents=True)
    seeds = [int(s) for s in args.seeds.split(",") if s]

    # ---------------------------------------------------------------- phantoms
    ref_csv = make_phantoms(folder / "phantoms", args.size, seeds, None if args.no_variants else args.variant_seed)
    presets, true_cells = {}, {}
    for line in ref_csv.read_text().splitlines()[1:]:
        name, _, _, preset, n_true = line.split(",")
        presets[name], true_cells[name] = preset, int(n_true)
    t0 = time.perf_counter()
    ph, _ = run_evaluation(ref_csv, folder / "phantoms_eval", progress=False, n_boot=args.n_boot)
    ph_secs = time.perf_counter() - t0
    print(f"phantoms: evaluated in {ph_secs:.0f} s", flush=True)
    calibration_image(ph.calibration).save(img_dir / "phantom_calibration.png", optimize=True)

    # ---------------------------------------------------------------- real patches
    pref = patch_reference(folder / "patches")
    pa, _ = run_evaluation(pref, folder / "patches_eval", mpp=PATCH_MPP, progress=False, n_boot=args.n_boot)
    rules50 = ScoringRules(min_tumour_cells=50)
    relaxed = ScoreSettings(rules=rules50, cells=CellSettings(rules=rules50))
    pa50, _ = run_evaluation(
        pref, folder / "patches_eval_min50", mpp=PATCH_MPP, settings=relaxed, progress=False, n_boot=args.n_boot
    )

    # ---------------------------------------------------------------- the document
    n_small = {0: "none", 1: "one", 2: "two", 3: "three", 4: "all four"}[pa.counts()["not_scorable"]]
    versions = ph.versions[0] if ph.versions else {"her2fast": her2fast.__version__, "models": {}}
    cmd = "python scripts/make_validation.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    md = [
        "# Validation: agreement of her2fast with known HER2 scores",
        "",
        f"Generated by `{cmd.strip()}` on {time.strftime('%Y-%m-%d')} (her2fast {versions['her2fast']}; models "
        + ", ".join(f"{k} `{str(v)[:12]}`" for k, v in versions["models"].items())
        + "). Every figure comes from `her2fast.validation.evaluate.run_evaluation`, the code behind "
        "`her2fast evaluate REFERENCE.csv --out DIR`; do not edit this file by hand.",
        "",
        "## What these numbers show, and what they do not",
        "",
        "- **Phantoms are not patients.** The phantom slides are drawn by her2fast's own generator "
        "(`her2fast.synth`); the epithelium classifier and the membrane network were trained on phantoms of the "
        "same generator (other seeds). Agreement on them shows that the pipeline — tissue, tiles, stain, "
        "epithelium, membranes, cells, ASCO/CAP rules — runs end to end and turns measured cells into the right "
        "category when the staining looks like the generator's. It does not show accuracy on real tissue, "
        "real stains, real scanners or real pathologists' calls.",
        "- **The real patches are a smoke test, not a validation.** Four 429 × 429 px patches (one per class) "
        f"are far smaller than a slide; {n_small} of them {'holds' if n_small == 1 else 'hold'} fewer tumour cells "
        "than the 200 a score needs, so "
        "with the default rules they are reported as not scorable — the intended behaviour. Their "
        "per-image figures (read with the minimum lowered to 50 cells) show whether the measurements order "
        "0 < 1+ < 2+ < 3+, nothing more.",
        "- **Intervals are wide** with this few slides; κ of 1.0 on 10–20 phantoms is not evidence of "
        "clinical agreement. A lab adopting her2fast must run `her2fast evaluate` on its own slides scored "
        "by its own pathologists (CAP recommends at least 20 positive and 20 negative cases for a "
        "laboratory-developed assay's validation) before trusting it.",
        "- The % complete-membrane error is measured against the generator's exact cells; on real slides no "
        "such truth exists, and pathologists' own estimates vary by tens of points.",
        "",
    ]

    n_typ = len(seeds) * len(CATEGORIES)
    md += [
        "## 1. Held-out phantom slides",
        "",
        f"{n_typ} typical phantoms ({', '.join(CATEGORIES)} × seeds {', '.join(map(str, seeds))})"
        + (
            ""
            if args.no_variants
            else f" and {len(VARIANTS)} harder ones (seed {args.variant_seed}: near-threshold, unusual and heterogeneous "
            "presets)"
        )
        + f", {args.size} × {args.size} px at 0.5 µm/px, scored with the default settings (shipped U-Net, CPU). "
        "Reference: the generator's true category (computed from its true cells by the same ASCO/CAP rules) "
        "and true % complete membranes.",
        "",
    ]
    md += md_agreement(ph)
    md += [""] + findings(ph, presets)
    md += [
        "",
        "### Calibration: confidence vs correctness",
        "",
        "![calibration](validation/phantom_calibration.png)",
        "",
        "| confidence | slides | mean confidence | correct |",
        "|---|---:|---:|---:|",
    ]
    md += [
        f"| {b['lo']:.1f}–{b['hi']:.1f} | {b['n']} | {f(b['mean_confidence'], 3)} | {b['correct']}/{b['n']} |"
        for b in ph.calibration
    ]
    md += [
        "",
        "Confidence is Φ(margin): how many binomial standard errors the deciding cell fraction sits from its "
        "cut-off. It counts sampling noise only, so slides near a cut-off are expected to miss more often; "
        "segmentation errors are not in it.",
        "",
    ]
    md += [
        "### Per slide",
        "",
        "| slide | preset | truth | her2fast (stratum) | % complete truth / measured | tumour cells truth / found | confidence | flags | s | picture |",
        "|---|---|---|---|---:|---:|---:|---|---:|---|",
    ]
    scoring_secs = []
    for o in ph.outcomes:
        d = result_json(o)
        thumb = thumbnail(o.outputs.get("zoom"), img_dir / f"{Path(o.slide).stem}.png", 300)
        pred = f"{o.category} ({o.stratum})" if o.scored else f"{o.status.replace('_', ' ')}"
        mark = "" if o.agrees(ph.level) in (True, None) else " ✗"
        secs = d.get("timings", {}).get("total")
        if secs is not None:
            scoring_secs.append(secs)
        md.append(
            f"| {o.slide} | {presets.get(o.slide, '')} | {o.reference} | {pred}{mark} | "
            f"{f(o.reference_percent_complete)} / {f(o.percent_complete)} | {true_cells.get(o.slide, '–')} / {o.tumour_cells or '–'} | "
            f"{f(o.confidence, 3)} | {', '.join(o.flags)} | {f(secs)} | "
            + (f"[zoom](validation/{thumb})" if thumb else "–")
            + " |"
        )
    md += ["", "✗ = differs from the truth in the four ASCO/CAP classes.", ""]
    disc = ph.discordant
    md += [
        f"Discordant slides: {len(disc)}."
        + (
            ""
            if not disc
            else " "
            + "; ".join(
                f"{o.slide}: truth {o.reference}, her2fast {o.category} (confidence {f(o.confidence, 3)}, "
                f"% complete {f(o.reference_percent_complete)} → {f(o.percent_complete)})"
                for o in disc
            )
        )
    ]
    if ph.excluded:
        md += ["", "Not scored: " + "; ".join(f"{o.slide} ({o.reason})" for o in ph.excluded)]
    shown = [o for o in ph.outcomes if o.outputs.get("zoom")][: len(CATEGORIES)]
    shown += [o for o in disc if o not in shown and o.outputs.get("zoom")]
    if shown:
        md += [
            "",
            "One tile (512 px at 0.5 µm/px, the one with most tumour cells) of each first-seed slide"
            + (" and of every discordant slide" if disc else "")
            + ", as her2fast saw it: epithelium outline "
            "green; tumour cells ringed blue negative, yellow faint incomplete, orange weak–moderate complete, "
            "magenta intense incomplete, red intense complete; grey non-tumour.",
            "",
            " ".join(f"![{o.slide}](validation/{Path(o.slide).stem}.png)" for o in shown),
        ]

    md += [
        "",
        "## 2. Real HER2 IHC patches (../shared/data/ihc/her2-ihc-40x)",
        "",
        f"Four real patches, one per dataset class, read as one-level slides at {PATCH_MPP} µm/px "
        "(the MANIFEST's estimate). Reference: the dataset class.",
        "",
        "With the default rules (a score needs ≥ 200 tumour cells):",
        "",
    ]
    md += md_agreement(pa)
    md += [
        "",
        "Per-image figures (minimum lowered to 50 tumour cells so that each patch gets a reading; "
        "classes: % of tumour cells negative / faint incomplete / weak–moderate complete / intense incomplete / "
        "intense complete):",
        "",
        "| patch | class | default rules | ≥ 50 cells | tumour cells | % complete | % per class | mean membrane OD | overlay |",
        "|---|---|---|---|---:|---:|---|---:|---|",
    ]
    order = ("negative", "faint_incomplete", "weak_moderate_complete", "intense_incomplete", "intense_complete")
    for o, o50 in zip(pa.outcomes, pa50.outcomes):
        d = result_json(o50)
        pct = d.get("percentages") or {}
        thumb = thumbnail(o50.outputs.get("zoom"), img_dir / f"patch_{o.reference.replace('+', 'p')}.png", 360)
        default = (
            o.score
            if o.scored
            else f"not scorable ({o.tumour_cells} cells)"
            if o.status == "not_scorable"
            else o.status
        )
        relaxed_s = f"{o50.category} ({o50.stratum})" if o50.scored else o50.status.replace("_", " ")
        md.append(
            f"| {Path(o.slide).name} | {o.reference} | {default} | {relaxed_s} | {o50.tumour_cells or '–'} | "
            f"{f(o50.percent_complete)} | {' / '.join(f(pct.get(k)) for k in order)} | "
            f"{f(d.get('mean_membrane_od'), 3)} | "
            + (f"![patch {o.reference}](validation/{thumb})" if thumb else "–")
            + " |"
        )
    ods = [result_json(o).get("mean_membrane_od") for o in pa50.outcomes]
    pcs = [o.percent_complete for o in pa50.outcomes]
    if all(v is not None for v in ods):
        ordered = all(a < b for a, b in zip(ods, ods[1:]))
        md += [
            "",
            f"Mean membrane DAB OD {'orders' if ordered else 'does not order'} the patches 0 < 1+ < 2+ < 3+ "
            f"({' < '.join(f(v, 3) for v in ods) if ordered else ', '.join(f(v, 3) for v in ods)}); % complete "
            f"membranes: {', '.join(f(v) for v in pcs)}.",
        ]
    if pa50.summary is not None:
        s = pa50.summary
        md += [
            "",
            f"With the 50-cell minimum: {int(s.confusion.trace())}/{int(s.confusion.sum())} patches match their "
            f"class (unweighted κ {f(s.kappa['unweighted'], 2)}); with four images this is an anecdote, not a statistic.",
        ]
    total = sum(p.stat().st_size for p in img_dir.iterdir())
    md += [
        "",
        "## Running the same evaluation on your own slides",
        "",
        "```",
        "her2fast evaluate reference.csv --out evaluation/",
        "```",
        "",
        "`reference.csv` has a header and one line per slide: `slide,score[,percent_complete][,ish]` — slide paths "
        "relative to the CSV's folder; score `0`, `0+` (ultralow), `1+`, `2+`, `3+` (or `null` / `ultralow`), or "
        "the groups `negative` / `equivocal` / `positive` (then everything is compared in groups); "
        "`percent_complete` the % of tumour cells with complete membrane staining; `ish` `amplified` / "
        "`not amplified`. A mistake in the file stops the run with its line number (exit 1); a slide that "
        "fails or cannot be scored does not: it is listed, counted and left out of the figures. Slides already in "
        "`evaluation/results.db` with the same content and versions are not scored again.",
        "",
        "It prints the confusion matrix, accuracy, κ's and cut-offs, and writes `evaluation.json` (every figure), "
        "`confusion.csv`, `slides.csv`, `discordant.csv` (with links to the overlays), `contest.csv` (slide, "
        "score, % cells with complete membrane staining, confidence — the Warwick HER2 contest's fields) and "
        "`report.html` (one self-contained page: confusion matrix, calibration plot, discordant slides' "
        "thumbnails).",
        "",
    ]
    md += [
        "## Reproduce",
        "",
        "```",
        cmd.strip(),
        "```",
        "",
        f"The slides and full reports (`report.html`, `evaluation.json`, `contest.csv`, per-slide overlays and "
        f"QuPath GeoJSON) are written under `{args.folder}`; this run took {time.perf_counter() - t_start:.0f} s "
        f"(slides already in its results stores are not scored again); scoring took {f(sum(scoring_secs), 0)} s for the {len(scoring_secs)} phantoms "
        f"({f(sum(scoring_secs) / max(len(scoring_secs), 1))} s per slide as timed inside the run; two CPU cores "
        f"shared with other work, no GPU). Images here: {total / 1e6:.2f} MB.",
        "",
    ]
    (docs / "validation.md").write_text("\n".join(md), encoding="utf-8")
    print("\n".join(md_agreement(ph)))
    print(f"wrote {docs / 'validation.md'} and {len(list(img_dir.iterdir()))} images ({total / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
