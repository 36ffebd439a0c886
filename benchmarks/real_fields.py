"""How her2fast reads real HER2 IHC fields: score, confidence and flags against the image's label.

    python benchmarks/real_fields.py [--min-cells 30] [--split tune,evaluate,40x] [--given-mpp] [--out /tmp/h2f_real.json]
                                     [--cells] [--edge-margin 12]

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

``--cells`` prints, under each image, where its 0 / 1+ line comes from (:func:`cell_diagnosis`): tumour and
non-tumour cells, the share of tumour cells with membrane found in their own territory (``memb``), the share
read stained (membrane OD >= ``faint_od``: the 1+ criterion), the stained cells' median membrane OD in units of
``faint_od``, median completeness and median cytoplasmic DAB subtracted (the same image scored again with
``CellSettings(cytoplasm_weight=0)``), the share stained at ``1.5 * faint_od``, and the share stained among cells
within ``CellSettings.max_radius_um`` of the image edge against the cells inside. ``--edge-margin UM`` re-scores
each image's cell table without the cells whose centre lies within ``UM`` micrometres of the image edge
(:meth:`her2fast.scoring.CellTable.away_from_edge`, at the resolution the image was read at) and prints that
reading (``inner``) beside the default one, with its own summary.

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


def summarise(rows: list[dict], key: str = "score") -> dict[str, dict]:
    """Per split (in the rows' order): images, read, right, wrong, wrong at confidence >= 0.95, wrong but warned
    (confidence <= 0.8 or a flag of ``WARN``), HER2-0 images read / read 1+ or higher, resolutions estimated and
    the median ratio of the estimate to the approximate resolution (None without one). ``key`` is the row's
    reading (``"score"``, or ``"inner_score"`` of ``--edge-margin``)."""
    conf, flags = key.replace("score", "confidence"), key.replace("score", "flags")
    out = {}
    for split in dict.fromkeys(r["split"] for r in rows):
        rs = [r for r in rows if r["split"] == split]
        read = [r for r in rs if r.get(key)]
        wrong = [r for r in read if r[key] != r["label"]]
        zeros = [r for r in read if r["label"] == "0"]
        ratios = [r["estimated_mpp"] / r["mpp"] for r in rs if r["estimated_mpp"] is not None]
        out[split] = {
            "images": len(rs),
            "read": len(read),
            "right": len(read) - len(wrong),
            "wrong": len(wrong),
            "wrong_confident": sum(r[conf] >= 0.95 for r in wrong),
            "wrong_warned": sum(r[conf] <= 0.8 or bool(WARN & set(r[flags])) for r in wrong),
            "zeros": len(zeros),
            "zeros_over": sum(r[key] != "0" for r in zeros),
            "estimated": len(ratios),
            "est_ratio": statistics.median(ratios) if ratios else None,
        }
    return out


def reading(cells, rules, image_flags: list[str]) -> tuple[str | None, float | None, list[str], float | None]:
    """(score, confidence, flags, % stained) of a cell table as :func:`her2fast.score` reads a field: "0+" reads
    "0"; the confidence is the lower of the sampling and measurement confidences, at most
    ``flagged_confidence`` when the measurement is flagged, and capped as ``her2fast.score`` caps it for the
    image's own flags (``image_flags``: stain outside the training range, channel order, tissue pieces); None
    without tumour cells."""
    from her2fast.api.run import OUTSIDE_TRAINING_CONFIDENCE
    from her2fast.scoring import DEFAULT_UNCERTAINTY, measurement_confidence, score_cells

    if not cells.is_tumour.any():
        return None, None, [], None
    res = score_cells(cells, rules)
    m = measurement_confidence(cells, rules)
    conf = min(res.confidence.confidence, m.confidence)
    if m.flags:
        conf = min(conf, DEFAULT_UNCERTAINTY.flagged_confidence)
    kept = [
        f for f in image_flags if f in ("outside_training_range", "channel_order_suspect", "tissue_pieces_disagree")
    ]
    if {"outside_training_range", "channel_order_suspect"} & set(kept):
        conf = min(conf, OUTSIDE_TRAINING_CONFIDENCE)
    if "tissue_pieces_disagree" in kept:
        conf = min(conf, DEFAULT_UNCERTAINTY.flagged_confidence)
    flags = kept + list(res.confidence.flags) + list(m.flags)
    score = "0" if res.category == "0+" else res.category
    return score, conf, flags, 100.0 * res.fractions.at_least_faint


def cell_diagnosis(cells, gross_od, size: tuple[int, int], mpp: float, rules, reach_um: float) -> dict:
    """Where a field's 0 / 1+ line comes from, from its cell table (see the module docstring, ``--cells``).

    ``gross_od``: each cell's membrane OD without the cytoplasm subtraction (same cells, same order) or None.
    """
    import numpy as np

    t = cells.select(cells.is_tumour)
    n = len(t)
    out: dict = {"tumour": n, "non_tumour": int((~cells.is_tumour).sum())}
    if not n:
        return out
    od = t.membrane_dab_od.astype(np.float64)
    memb = t.completeness > 0
    stained = memb & (od >= rules.faint_od)
    edge = ~t.away_from_edge(size[0], size[1], reach_um / mpp)
    out.update(
        membrane=100.0 * memb.mean(),
        stained=100.0 * stained.mean(),
        stained_at_1_5x=100.0 * (memb & (od >= 1.5 * rules.faint_od)).mean(),
        od_over_faint=float(np.median(od[stained]) / rules.faint_od) if stained.any() else None,
        completeness=float(np.median(t.completeness[stained])) if stained.any() else None,
        edge_cells=100.0 * edge.mean(),
        stained_edge=100.0 * stained[edge].mean() if edge.any() else None,
        stained_inner=100.0 * stained[~edge].mean() if (~edge).any() else None,
    )
    if gross_od is not None:
        g = np.asarray(gross_od, np.float64)[cells.is_tumour]
        out["cytoplasm_subtracted"] = float(np.median((g - od)[stained])) if stained.any() else None
    return out


def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


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
    ap.add_argument("--cells", action="store_true", help="print where each image's 0 / 1+ line comes from")
    ap.add_argument(
        "--edge-margin",
        type=float,
        default=None,
        metavar="UM",
        help="also read each image without the cells within UM micrometres of its edge",
    )
    args = ap.parse_args()
    if not IHC.is_dir():
        ap.error(f"{IHC} not found: the real images live in ../shared/data/ihc beside the repository")

    from dataclasses import replace

    from PIL import Image

    import her2fast
    from her2fast.scoring import ScoringRules
    from her2fast.stages.cells import CellSettings

    rules = ScoringRules(min_tumour_cells=args.min_cells)
    settings = her2fast.ScoreSettings(rules=rules, cells=CellSettings(rules=rules))
    gross_settings = replace(settings, cells=replace(settings.cells, cytoplasm_weight=0.0))
    rows = []
    t0 = time.perf_counter()
    mode = "scored at the approximate resolution" if args.given_mpp else "resolution estimated from the nuclei"
    print(f"her2fast {her2fast.__version__}; min_tumour_cells {args.min_cells}; {mode}")
    print(
        f"{'split':8s} {'image':52s} {'mpp':>5s} {'est':>11s} {'label':>5s} {'read':>5s} {'conf':>5s} {'samp':>5s} "
        f"{'meas':>5s}  flags"
        + ("" if args.edge_margin is None else f"  | inner ({args.edge_margin:g} um from the edge): read, conf, flags")
    )
    for split, name, path, mpp, label, level in items(set(args.split.split(","))):
        est = unc = None
        extra: dict = {}
        try:
            r = her2fast.score(path, mpp=mpp if args.given_mpp else None, settings=settings, progress=False)
            score, conf, flags = r.score, r.confidence, list(r.flags)
            with Image.open(path) as im:
                size = im.size
            used_mpp = float(r.resolution["mpp"])
            if args.edge_margin is not None:
                keep = r.cells.away_from_edge(size[0], size[1], args.edge_margin / used_mpp)
                inner = reading(r.cells.select(keep), rules, flags) if score else (None, None, [], None)
                extra.update(
                    inner_score=inner[0],
                    inner_confidence=inner[1],
                    inner_flags=inner[2],
                    inner_stained=inner[3],
                    inner_tumour=int((r.cells.is_tumour & keep).sum()),
                )
            if args.cells:
                gross = None
                if len(r.cells):
                    g = her2fast.score(
                        path, mpp=mpp if args.given_mpp else None, settings=gross_settings, progress=False
                    ).cells
                    if len(g) == len(r.cells) and (g.x == r.cells.x).all() and (g.y == r.cells.y).all():
                        gross = g.membrane_dab_od
                reach = settings.cells.max_radius_um
                extra["cells"] = cell_diagnosis(r.cells, gross, size, used_mpp, rules, reach)
            parts = r.provenance.get("confidence", {})
            why = r.not_scorable or ""
            if r.resolution.get("source") == "estimated":
                est, unc = r.resolution["mpp"], r.resolution["relative_uncertainty"]
        except her2fast.Her2FastError as exc:
            score, conf, flags, parts, why = None, None, [], {}, f"{type(exc).__name__}: {exc}"
            if args.edge_margin is not None:
                extra.update(inner_score=None, inner_confidence=None, inner_flags=[], inner_stained=None)
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
                **extra,
            }
        )
        c = "-" if conf is None else f"{conf:.2f}"
        s = parts.get("sampling")
        m = parts.get("measurement")
        e = "-" if est is None else f"{est:.2f}+-{100 * unc:.0f}%"
        print(
            f"{split:8s} {name[:52]:52s} {mpp:5.2f} {e:>11s} {label:>5s} {score or '-':>5s} {c:>5s} "
            f"{'-' if s is None else f'{s:.2f}':>5s} {'-' if m is None else f'{m:.2f}':>5s}  "
            f"{','.join(flags) or '-'}{'  (' + why[:60] + ')' if score is None else ''}"
            + (
                ""
                if args.edge_margin is None
                else f"  | inner {extra['inner_score'] or '-'} {_fmt(extra['inner_confidence'], '.2f')} "
                f"{','.join(extra['inner_flags']) or '-'}"
            ),
            flush=True,
        )
        d = extra.get("cells")
        if d and d["tumour"]:
            print(
                f"{'':8s}   cells: tumour {d['tumour']} (non-tumour {d['non_tumour']}); memb {d['membrane']:.0f} %; "
                f"stained {d['stained']:.1f} % (at 1.5x faint_od {d['stained_at_1_5x']:.1f} %): OD "
                f"{_fmt(d['od_over_faint'], '.2f')} x faint_od, completeness {_fmt(d['completeness'], '.2f')}, "
                f"cytoplasm subtracted {_fmt(d.get('cytoplasm_subtracted'), '.3f')}; edge cells {d['edge_cells']:.0f} %: "
                f"stained {_fmt(d['stained_edge'], '.1f')} % vs inner {_fmt(d['stained_inner'], '.1f')} %",
                flush=True,
            )
    seconds = time.perf_counter() - t0
    print(f"\n{seconds:.0f} s")
    print(
        f"{'split':8s} {'images':>6s} {'read':>5s} {'right':>5s} {'wrong':>5s} {'wrong@>=.95':>11s} {'wrong warned':>12s} "
        f"{'0 read >=1+':>11s} {'estimated':>9s} {'est/mpp':>7s}"
    )
    for key in ("score",) if args.edge_margin is None else ("score", "inner_score"):
        if key != "score":
            print(f"without the cells within {args.edge_margin:g} um of the image edge:")
        for split, f in summarise(rows, key).items():
            ratio = "-" if f["est_ratio"] is None else f"{f['est_ratio']:.2f}"
            print(
                f"{split:8s} {f['images']:6d} {f['read']:5d} {f['right']:5d} {f['wrong']:5d} "
                f"{f['wrong_confident']:11d} {f['wrong_warned']:12d} {f['zeros_over']:>5d} of {f['zeros']:<3d} "
                f"{f['estimated']:9d} {ratio:>7s}"
            )
    if args.out:
        from her2fast.service.batch import model_versions

        run = {
            "her2fast": her2fast.__version__,
            "models": model_versions(settings),
            "mode": "given" if args.given_mpp else "estimated",
            "min_cells": args.min_cells,
            "edge_margin_um": args.edge_margin,
            "seconds": round(seconds, 1),
            "rows": rows,
        }
        Path(args.out).write_text(json.dumps(run, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
