"""Generate docs/validation.md and docs/validation/*.png: her2fast evaluated as a lab would evaluate it.

    python scripts/make_validation.py [--folder /tmp/h2f_validation] [--size 2048] [--seeds 901,902]
                                      [--variant-seed 903] [--no-variants] [--docs docs] [--n-boot 2000]
                                      [--real-fields real.json real_given.json]

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

3. the labelled real fields of ../shared/data/ihc, from the JSON files that
   ``python benchmarks/real_fields.py --out real.json`` and ``python benchmarks/real_fields.py --given-mpp
   --out real_given.json`` write (``--real-fields real.json real_given.json``; a few minutes each, so they
   are not run here). Without them the section says how to make them.

Slides, per-slide reports and results stores stay under ``--folder`` (re-running reuses them); the
document, thumbnails (palette PNG, <= 300 px) and the calibration plot go to ``--docs``. Confusion
matrices, agreement figures and tables are laid out by :func:`her2fast.validation.markdown.render_markdown`
from the presentation model (:mod:`her2fast.validation.presentation`, the sections of
:func:`her2fast.validation.document.evaluation_document`), as in ``her2fast evaluate``'s ``report.md``.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # real_fields.summarise
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


def md_blocks(*parts, level: int = 3) -> list[str]:
    """Sections and blocks of the presentation model as Markdown lines (``render_markdown``), section titles
    as headings of ``level``; bare blocks go into an untitled section."""
    from her2fast.validation.markdown import render_markdown
    from her2fast.validation.presentation import Document, Section

    sections = tuple(p if isinstance(p, Section) else Section("", (p,)) for p in parts)
    lines = render_markdown(Document("-", (), sections)).splitlines()[2:]  # without the document's title
    return ["#" * level + line[2:] if line.startswith("## ") else line for line in lines]


def md_agreement(report, level: int = 3) -> list[str]:
    """Counts, then the confusion matrix, agreement, cut-offs, null vs ultralow and % complete sections of the
    evaluation's document."""
    from her2fast.validation.document import evaluation_document

    c = report.counts()
    out = [
        f"{c['total']} slides: {c['scored']} scored, {c['not_scorable']} not scorable, {c['failed']} failed "
        "(slides without a score are left out of every figure and listed below)."
    ]
    if report.summary is None:
        return out + ["", "No slide was scored: no agreement figures."]
    wanted = ("Confusion matrix", "Agreement", "Clinical cut-offs", "HER2-0", "% cells with complete")
    sections = [s for s in evaluation_document(report).sections if s.title.startswith(wanted)]
    return out + [""] + md_blocks(*sections, level=level)


def calibration_section(report, level: int = 3) -> list[str]:
    """The calibration section of the evaluation's document (its plot is the PNG beside the document)."""
    from her2fast.validation.document import evaluation_document

    (section,) = [s for s in evaluation_document(report).sections if s.title.startswith("Calibration")]
    return md_blocks(section, level=level)


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


REAL_SPLITS = {"40x": "her2-ihc-40x", "tune": "real-fields/tune", "evaluate": "real-fields/evaluate"}
REAL_COMMANDS = {
    "estimated": "python benchmarks/real_fields.py --out real.json",
    "given": "python benchmarks/real_fields.py --given-mpp --out real_given.json",
}


def load_real_fields(paths: list[str]) -> dict[str, dict]:
    """The runs of ``benchmarks/real_fields.py --out`` by mode (``"estimated"``, ``"given"``)."""
    runs = {}
    for path in paths:
        run = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(run, dict) or run.get("mode") not in REAL_COMMANDS or "rows" not in run:
            raise SystemExit(f"{path} is not a run of benchmarks/real_fields.py --out (rerun it to write one)")
        if run["mode"] in runs:
            raise SystemExit(f"{path}: two runs with mode {run['mode']!r}; pass one estimating and one --given-mpp")
        runs[run["mode"]] = run
    return runs


def source(row: dict) -> str:
    """The image's collection: the folder under real-fields/ (bci, warwick, ...) or her2-ihc-40x."""
    return row["image"].split("/")[0] if "/" in row["image"] else "her2-ihc-40x"


#: Flags that qualify a reading rather than say why there is none.
QUALIFIERS = {
    "quality_excluded",
    "near_cutoff",
    "intensity_uncertain",
    "few_cells",
    "stain_vectors_fallback",
    "outside_training_range",
    "unusual_pattern",
    "channel_order_suspect",
}


def reason(row: dict) -> str:
    """Why an image got no score, without its path: the error's type, the not-scorable code the message opens
    with, or else the flag that is not a qualifier."""
    why = row.get("not_scorable") or ""
    error = re.match(r"([A-Za-z]+Error)\b", why)
    if error:
        return {"MissingResolutionError": "resolution not estimated"}.get(error.group(1), error.group(1))
    code = re.match(r"([a-z_]+):", why)
    if code:
        return code.group(1)
    return next((fl for fl in row.get("flags", []) if fl not in QUALIFIERS), "no score")


def unread(rows: list[dict]) -> str:
    """``reason n (collection k, ...)`` for the images without a score, most frequent reason first."""
    by_reason: dict[str, Counter] = {}
    for r in rows:
        if not r["score"]:
            by_reason.setdefault(reason(r), Counter())[source(r)] += 1
    parts = sorted(by_reason.items(), key=lambda kv: -sum(kv[1].values()))
    return "; ".join(
        f"`{why}` {sum(c.values())} ({', '.join(f'{src} {n}' for src, n in c.most_common())})" for why, c in parts
    )


def real_fields_section(runs: dict[str, dict]) -> list[str]:
    """Section 3 from the JSON runs of benchmarks/real_fields.py: per-split tables, computed findings and one
    row per image."""
    from real_fields import summarise

    from her2fast.validation.presentation import Table

    title = "## 3. Real HER2 IHC fields (../shared/data/ihc)"
    if not runs:
        return [
            title,
            "",
            f"Not in this run: make the two JSON files with `{REAL_COMMANDS['estimated']}` and "
            f"`{REAL_COMMANDS['given']}` (a few minutes each), then pass "
            "`--real-fields real.json real_given.json`.",
        ]
    any_run = next(iter(runs.values()))
    rows0 = any_run["rows"]
    n_split = Counter(r["split"] for r in rows0)
    levels = Counter(r.get("label_level", "?") for r in rows0)
    splits = [s for s in REAL_SPLITS if s in n_split]
    md = [
        f"## 3. Real HER2 IHC fields (../shared/data/ihc: {len(rows0)} labelled images)",
        "",
        f"`{REAL_COMMANDS['estimated']}` reads every labelled real image ("
        + ", ".join(f"{n_split[s]} `{REAL_SPLITS[s]}`" for s in splits)
        + ") as fields of view without a resolution ([fields.md](fields.md)): her2fast estimates each image's "
        "resolution from its nuclei and prints it next to the approximate one (`420 / width` µm/px for the tune "
        "photos, `labels.csv`'s estimate for `evaluate`, ~0.6 for the patches); `--given-mpp` scores at the "
        f"approximate resolution instead. A {any_run['min_cells']}-cell minimum (`--min-cells`) replaces the "
        "200 tumour cells a slide score needs (a field holds tens to hundreds of cells).",
        "",
        "Labels are scores of the source, mostly of the case or slide and not of the field ("
        + ", ".join(f"{n} {lev}" for lev, n in levels.most_common())
        + " labels): a field can honestly read otherwise. `evaluate` images are measured only: nothing in "
        "her2fast was fitted or chosen on them. Both models were trained on phantoms only; quality-control rules "
        "were set on `tune` and `her2-ihc-40x` images, so those two are not held out. Run time "
        + ", ".join(
            f"{runs[m]['seconds']:.0f} s {'estimating' if m == 'estimated' else 'at the given resolution'}"
            for m in REAL_COMMANDS
            if m in runs
        )
        + f" (her2fast {any_run['her2fast']}; models "
        + ", ".join(f"{k} `{str(v)[:12]}`" for k, v in any_run["models"].items() if k != "settings")
        + "; two CPU cores shared with other work).",
    ]
    head = (
        "images",
        "read",
        "right (0/1+/2+/3+)",
        "wrong",
        "wrong at confidence ≥ 0.95",
        "wrong but flagged or ≤ 0.8",
        "HER2-0 read ≥ 1+",
    )
    for mode in REAL_COMMANDS:
        if mode not in runs:
            continue
        summary = summarise(runs[mode]["rows"])
        estimating = mode == "estimated"
        rows = []
        for s in splits:
            x = summary[s]
            row = [
                f"{REAL_SPLITS[s]} ({x['images']})",
                x["read"],
                x["right"],
                x["wrong"],
                x["wrong_confident"],
                x["wrong_warned"],
                f"{x['zeros_over']} of {x['zeros']}",
            ]
            if estimating:
                row += [x["estimated"], f(x["est_ratio"], 2)]
            rows.append(row)
        intro = (
            f"Resolution estimated (`{REAL_COMMANDS[mode]}`; `est/mpp` is the median ratio of the estimate to "
            "the approximate resolution):"
            if estimating
            else f"At the approximate resolution (`{REAL_COMMANDS[mode]}`):"
        )
        header = (*head, "resolution estimated", "est/mpp") if estimating else head
        md += ["", intro, ""] + md_blocks(Table(header, rows))

    # findings, computed from the rows
    md += [""]
    findings = []
    est = runs.get("estimated")
    if est:
        rs = est["rows"]
        missing = [r for r in rs if r["estimated_mpp"] is None and reason(r) == "resolution not estimated"]
        ratios = [(r["estimated_mpp"] / r["mpp"], r) for r in rs if r["estimated_mpp"] is not None]
        if missing:
            by_src = Counter(source(r) for r in missing)
            findings.append(
                f"The resolution cannot be estimated on {len(missing)} images ("
                + ", ".join(f"{src} {n}" for src, n in by_src.most_common())
                + ")."
            )
        if ratios:
            far = [r["image"] for q, r in ratios if not 0.5 <= q <= 2.0]
            findings.append(
                f"Where it is estimated it lands within a factor {min(q for q, _ in ratios):.2f}–"
                f"{max(q for q, _ in ratios):.2f} of the approximate value, itself a rough figure"
                + (f" (outside 0.5–2: {', '.join(f'`{n}`' for n in far)})" if far else "")
                + "."
            )
    for mode, words in (("estimated", "Estimating"), ("given", "At the given resolution")):
        if mode in runs and any(not r["score"] for r in runs[mode]["rows"]):
            findings.append(f"{words}, images without a score: {unread(runs[mode]['rows'])}.")
    for mode, words in (("estimated", "estimating"), ("given", "at the given resolution")):
        if mode not in runs:
            continue
        zeros = [r for r in runs[mode]["rows"] if r["score"] and r["label"] == "0"]
        over = [r for r in zeros if r["score"] != "0"]
        if zeros:
            sure = sum(r["confidence"] >= 0.95 and not (set(r["flags"]) & {"intensity_uncertain"}) for r in over)
            findings.append(
                f"HER2-0 images read 1+ or higher, {words}: {len(over)} of {len(zeros)}"
                + (f", {sure} of them at confidence ≥ 0.95 without `intensity_uncertain`" if over else "")
                + "."
            )
    md.append(" ".join(findings))

    # one row per image
    by_mode = {m: {r["image"]: r for r in runs[m]["rows"]} for m in runs}

    def reading(r: dict | None) -> tuple[str, str]:
        if r is None:
            return "", ""
        if not r["score"]:
            return f"– ({reason(r)})", "–"
        mark = "" if r["score"] == r["label"] else " ✗"
        return r["score"] + mark, f(r["confidence"], 2)

    rows = []
    for r in rows0:
        e, g = by_mode.get("estimated", {}).get(r["image"]), by_mode.get("given", {}).get(r["image"])
        est_mpp = (
            "–"
            if e is None or e["estimated_mpp"] is None
            else f"{e['estimated_mpp']:.2f} ± {100 * e['relative_uncertainty']:.0f} %"
        )
        flags = sorted(set((e or {}).get("flags", [])) | set((g or {}).get("flags", [])))
        rows.append(
            (r["image"], r["split"], f"{r['label']} ({r.get('label_level', '?')})", f(r["mpp"], 2), est_mpp)
            + reading(e)
            + reading(g)
            + (", ".join(flags),)
        )
    header = (
        "image",
        "split",
        "label (level)",
        "approx. µm/px",
        "estimated µm/px",
        "read, estimating",
        "confidence",
        "read at approx. µm/px",
        "confidence",
        "flags (either run)",
    )
    md += [
        "",
        "Per image (✗ = differs from the label; a dash with the reason where there is no score):",
        "",
    ] + md_blocks(Table(header, rows))
    return md


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
    ap.add_argument(
        "--real-fields",
        nargs="+",
        default=[],
        metavar="JSON",
        help="the JSON files of benchmarks/real_fields.py --out (estimating) and --given-mpp --out: section 3",
    )
    args = ap.parse_args()
    real_runs = load_real_fields(args.real_fields)  # before the slides: a wrong file stops the run at once

    import her2fast
    from her2fast.pipeline import ScoreSettings
    from her2fast.scoring import ScoringRules
    from her2fast.stages.cells import CellSettings
    from her2fast.validation.evaluate import run_evaluation
    from her2fast.validation.presentation import Cell, Section, Table, link
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
    n_not_scorable = pa.counts()["not_scorable"]
    n_small = {0: "none", 1: "one", 2: "two", 3: "three", 4: "all four"}[n_not_scorable]
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
        f"are far smaller than a slide; {n_small} of them {'holds' if n_not_scorable == 1 else 'hold'} fewer tumour cells "
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
        "- **The real fields (section 3) are a measurement, not a validation**: their labels are mostly scores of "
        "the case or slide, not of the field, and only the `evaluate` images are held out. They show what to "
        "expect on real images before a calibration on a lab's own slides.",
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
    md += [""] + calibration_section(ph) + ["", "![calibration](validation/phantom_calibration.png)", ""]
    rows, scoring_secs = [], []
    for o in ph.outcomes:
        d = result_json(o)
        thumb = thumbnail(o.outputs.get("zoom"), img_dir / f"{Path(o.slide).stem}.png", 300)
        pred = f"{o.category} ({o.stratum})" if o.scored else f"{o.status.replace('_', ' ')}"
        mark = "" if o.agrees(ph.level) in (True, None) else " ✗"
        secs = d.get("timings", {}).get("total")
        if secs is not None:
            scoring_secs.append(secs)
        rows.append(
            (
                o.slide,
                presets.get(o.slide, ""),
                o.reference,
                pred + mark,
                f"{f(o.reference_percent_complete)} / {f(o.percent_complete)}",
                f"{true_cells.get(o.slide, '–')} / {o.tumour_cells or '–'}",
                f(o.confidence, 3),
                ", ".join(o.flags),
                f(secs),
                Cell("zoom", href=link(img_dir / thumb, docs)) if thumb else "–",
            )
        )
    header = (
        "slide",
        "preset",
        "truth",
        "her2fast (stratum)",
        "% complete truth / measured",
        "tumour cells truth / found",
        "confidence",
        "flags",
        "s",
        "picture",
    )
    md += md_blocks(Section("Per slide", (Table(header, rows),)))
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
    ]
    order = ("negative", "faint_incomplete", "weak_moderate_complete", "intense_incomplete", "intense_complete")
    rows, pictures = [], []
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
        rows.append(
            (
                Path(o.slide).name,
                o.reference,
                default,
                relaxed_s,
                o50.tumour_cells or "–",
                f(o50.percent_complete),
                " / ".join(f(pct.get(k)) for k in order),
                f(d.get("mean_membrane_od"), 3),
                Cell("overlay", href=link(img_dir / thumb, docs)) if thumb else "–",
            )
        )
        if thumb:
            pictures.append(f"![patch {o.reference}](validation/{thumb})")
    header = (
        "patch",
        "class",
        "default rules",
        "≥ 50 cells",
        "tumour cells",
        "% complete",
        "% per class",
        "mean membrane OD",
        "overlay",
    )
    md += md_blocks(Table(header, rows))
    if pictures:
        md += ["", "The patches as her2fast saw them (≥ 50 cells; colours as above):", "", " ".join(pictures)]
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
    md += [""] + real_fields_section(real_runs)
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
