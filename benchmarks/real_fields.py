"""How her2fast reads real HER2 IHC fields: score, confidence and flags against the image's label.

    python benchmarks/real_fields.py [--min-cells 30] [--split tune,evaluate,40x] [--given-mpp] [--out /tmp/h2f_real.json]

Reads every labelled real image under ``../shared/data/ihc/`` (see its MANIFEST.md): ``her2-ihc-40x/`` (four
patches, ~0.6 um/px), ``real-fields/tune/`` (microscope photos without a resolution; ``420 / width`` um/px
is the rough guess ``benchmarks/qc_gate.py`` uses) and ``real-fields/evaluate/`` (``labels.csv`` gives an
approximate resolution). ``evaluate`` images are for measuring only: nothing in her2fast is fitted or chosen
on them. Labels are mostly case- or slide-level scores of the source, not per-field scores (``labels.csv``
says which), so a field can honestly read otherwise.

Every image is a field of view (a plain PNG without a resolution): by default her2fast estimates its
resolution from its nuclei (``her2fast.score(path)``, no ``mpp=``), and the estimate (``est``, with its 1-sigma
relative uncertainty) is printed next to the approximate one (``mpp``); an image whose resolution cannot be
estimated reads ``-`` with the error. ``--given-mpp`` scores at the approximate resolution instead.

Each image is scored with the default settings except ``ScoringRules.min_tumour_cells`` (``--min-cells``;
a field holds tens to hundreds of cells, not a slide's thousands). Printed per image: label, reading,
confidence (and its sampling and measurement parts), flags; per split: readings given, right (0/1+/2+/3+),
wrong at confidence >= 0.95, wrong but flagged ``intensity_uncertain`` or at confidence <= 0.8, how many
HER2-0 images read 1+ or higher, and (estimating) how many resolutions were estimated and the median ratio of
the estimate to the approximate resolution.

``--out`` writes the run as JSON: ``her2fast`` (version), ``models``, ``mode`` (``"estimated"`` or ``"given"``),
``min_cells``, ``seconds`` and ``rows`` (one per image); ``scripts/make_validation.py --real-fields`` lays it
out in docs/validation.md with :func:`summarise`.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

IHC = Path(__file__).resolve().parents[2] / "shared" / "data" / "ihc"
WARN = {"intensity_uncertain", "outside_training_range", "near_cutoff"}


def items(splits: set[str]) -> list[tuple[str, str, Path, float, str, str]]:
    """(split, name, path, mpp, label, label level) of every labelled real image in the chosen splits."""
    from PIL import Image
    from qc_gate import _approx_mpp

    out = []
    if "40x" in splits:
        for p in sorted((IHC / "her2-ihc-40x").glob("*.png")):
            out.append(("40x", p.name, p, 0.6, p.stem.split("score")[-1], "patch"))
    with open(IHC / "real-fields" / "labels.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["her2_label"]]
    for r in rows:
        if r["split"] not in splits:
            continue
        p = IHC / "real-fields" / r["path"]
        if r["split"] == "tune":
            with Image.open(p) as im:
                mpp = 420.0 / im.size[0]
        else:
            mpp = _approx_mpp(r["approx_mpp"])
        level = r["label_level"].split(" (")[0]  # case, slide, image or patch (and why, in brackets)
        out.append((r["split"], f"{p.parent.name}/{p.name}", p, mpp, r["her2_label"], level))
    return out


def summarise(rows: list[dict]) -> dict[str, dict]:
    """Per split (in the rows' order): images, read, right, wrong, wrong at confidence >= 0.95, wrong but warned
    (confidence <= 0.8 or a flag of ``WARN``), HER2-0 images read / read 1+ or higher, resolutions estimated and
    the median ratio of the estimate to the approximate resolution (None without one)."""
    out = {}
    for split in dict.fromkeys(r["split"] for r in rows):
        rs = [r for r in rows if r["split"] == split]
        read = [r for r in rs if r["score"]]
        wrong = [r for r in read if r["score"] != r["label"]]
        zeros = [r for r in read if r["label"] == "0"]
        ratios = [r["estimated_mpp"] / r["mpp"] for r in rs if r["estimated_mpp"] is not None]
        out[split] = {
            "images": len(rs),
            "read": len(read),
            "right": len(read) - len(wrong),
            "wrong": len(wrong),
            "wrong_confident": sum(r["confidence"] >= 0.95 for r in wrong),
            "wrong_warned": sum(r["confidence"] <= 0.8 or bool(WARN & set(r["flags"])) for r in wrong),
            "zeros": len(zeros),
            "zeros_over": sum(r["score"] != "0" for r in zeros),
            "estimated": len(ratios),
            "est_ratio": statistics.median(ratios) if ratios else None,
        }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--min-cells", type=int, default=30, help="ScoringRules.min_tumour_cells for a field")
    ap.add_argument("--split", default="40x,tune,evaluate", help="comma-separated: 40x, tune, evaluate")
    ap.add_argument("--out", default=None, help="JSON of the per-image rows")
    ap.add_argument(
        "--given-mpp",
        action="store_true",
        help="score at the approximate resolution (labels.csv / 420 / width) instead of estimating it",
    )
    args = ap.parse_args()
    if not IHC.is_dir():
        ap.error(f"{IHC} not found: the real images live in ../shared/data/ihc beside the repository")

    import her2fast
    from her2fast.scoring import ScoringRules
    from her2fast.stages.cells import CellSettings

    rules = ScoringRules(min_tumour_cells=args.min_cells)
    settings = her2fast.ScoreSettings(rules=rules, cells=CellSettings(rules=rules))
    rows = []
    t0 = time.perf_counter()
    mode = "scored at the approximate resolution" if args.given_mpp else "resolution estimated from the nuclei"
    print(f"her2fast {her2fast.__version__}; min_tumour_cells {args.min_cells}; {mode}")
    print(
        f"{'split':8s} {'image':52s} {'mpp':>5s} {'est':>11s} {'label':>5s} {'read':>5s} {'conf':>5s} {'samp':>5s} "
        f"{'meas':>5s}  flags"
    )
    for split, name, path, mpp, label, level in items(set(args.split.split(","))):
        est = unc = None
        try:
            r = her2fast.score(path, mpp=mpp if args.given_mpp else None, settings=settings, progress=False)
            score, conf, flags = r.score, r.confidence, list(r.flags)
            parts = r.provenance.get("confidence", {})
            why = r.not_scorable or ""
            if r.resolution.get("source") == "estimated":
                est, unc = r.resolution["mpp"], r.resolution["relative_uncertainty"]
        except her2fast.Her2FastError as exc:
            score, conf, flags, parts, why = None, None, [], {}, f"{type(exc).__name__}: {exc}"
        rows.append(
            {
                "split": split,
                "image": name,
                "mpp": mpp,
                "estimated_mpp": est,
                "relative_uncertainty": unc,
                "label": label,
                "label_level": level,
                "score": score,
                "confidence": conf,
                "parts": parts,
                "flags": flags,
                "not_scorable": why,
            }
        )
        c = "-" if conf is None else f"{conf:.2f}"
        s = parts.get("sampling")
        m = parts.get("measurement")
        e = "-" if est is None else f"{est:.2f}+-{100 * unc:.0f}%"
        print(
            f"{split:8s} {name[:52]:52s} {mpp:5.2f} {e:>11s} {label:>5s} {score or '-':>5s} {c:>5s} "
            f"{'-' if s is None else f'{s:.2f}':>5s} {'-' if m is None else f'{m:.2f}':>5s}  "
            f"{','.join(flags) or '-'}{'  (' + why[:60] + ')' if score is None else ''}",
            flush=True,
        )
    seconds = time.perf_counter() - t0
    print(f"\n{seconds:.0f} s")
    print(
        f"{'split':8s} {'images':>6s} {'read':>5s} {'right':>5s} {'wrong':>5s} {'wrong@>=.95':>11s} {'wrong warned':>12s} "
        f"{'0 read >=1+':>11s} {'estimated':>9s} {'est/mpp':>7s}"
    )
    for split, f in summarise(rows).items():
        ratio = "-" if f["est_ratio"] is None else f"{f['est_ratio']:.2f}"
        print(
            f"{split:8s} {f['images']:6d} {f['read']:5d} {f['right']:5d} {f['wrong']:5d} {f['wrong_confident']:11d} "
            f"{f['wrong_warned']:12d} {f['zeros_over']:>5d} of {f['zeros']:<3d} {f['estimated']:9d} {ratio:>7s}"
        )
    if args.out:
        from her2fast.service.batch import model_versions

        run = {
            "her2fast": her2fast.__version__,
            "models": model_versions(settings),
            "mode": "given" if args.given_mpp else "estimated",
            "min_cells": args.min_cells,
            "seconds": round(seconds, 1),
            "rows": rows,
        }
        Path(args.out).write_text(json.dumps(run, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
