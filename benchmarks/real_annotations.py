"""her2fast against the hand annotations of real HER2 IHC images: drawn membranes, cell centres, a nuclei mask.

Reads from ``../shared/data/ihc/real-fields/evaluate`` (measured only: nothing in her2fast is fitted or chosen
on these images) and prints, each at the resolution her2fast estimates from the image and at the approximate
one of ``labels.csv``:

- the three Pezoa fields with partial hand-drawn membrane masks (image resized to the mask, as the source
  aligns them): the share of drawn membrane pixels within 2 px of a pixel the membrane network marks (p >= 0.5
  on the field after the field-mode white balance, :func:`her2fast.stages.resolution.white_balance`), and the
  ratio of marked to drawn pixels (the masks draw only the clearest segments, so a ratio above 1 is expected
  where membranes are many; on a 1+ field it shows over-marking);
- the 3+ patch with 49 pathologist-reviewed cell centres: the share of centres with a her2fast cell (nucleus
  centre of :func:`her2fast.score`'s cell table, field mode) within 4 um, and the share with a nucleus of
  :func:`her2fast.stages.nuclei.segment_nuclei` within 4 um (the same nuclei, whether or not the field is
  scored);
- the Warwick 40x patch with a nuclei mask: nucleus detection precision, recall and F1 of
  :func:`~her2fast.stages.nuclei.segment_nuclei` (a true nucleus is found when the centroid of a detected
  nucleus lies inside it; each detection counts for at most one nucleus; detections outside every true
  nucleus are false).

``python benchmarks/real_annotations.py [--data ../shared/data/ihc] [--json out.json]``
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

import her2fast
from her2fast.errors import Her2FastError
from her2fast.stages.membrane import predict, white_balance_to_training
from her2fast.stages.nuclei import NucleiSettings, drop_nuclei_on_membrane, segment_nuclei
from her2fast.stages.resolution import estimate_resolution, white_balance, white_point
from her2fast.stages.stain import deconvolve

ROOT = Path(__file__).resolve().parents[1]
PEZOA = ("1+_25", "2+_9", "3+_15")
PEZOA_MPP = 0.9  # labels.csv: ~0.9 um/px after resizing the image to its mask
PATCH_MPP = 0.5  # labels.csv: ~0.5 um/px native (the figure is re-rendered ~1.5x: uncertain)
WARWICK_MPP = 0.23  # labels.csv: 40x level 0
CENTRE_UM = 4.0
WORKING_MPP = 0.5  # the pipeline's working resolution
MEMBRANE_TOL_PX = 2


def _rgb(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    im = Image.open(path).convert("RGB")
    if size is not None and im.size != size:
        im = im.resize(size, Image.Resampling.BILINEAR)
    return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))


def _estimate(rgb: np.ndarray, name: str) -> float | None:
    try:
        return float(estimate_resolution(rgb, path=name).mpp)
    except Her2FastError:
        return None


def _membrane_figures(rgb: np.ndarray, drawn: np.ndarray, mpp: float) -> dict[str, float]:
    balanced, _ = white_balance(rgb)
    bg, _ = white_point(balanced)
    p = predict(white_balance_to_training(balanced, bg), mpp, threads=2)
    marked = p >= 0.5
    near = ndi.binary_dilation(marked, structure=np.ones((3, 3), bool), iterations=MEMBRANE_TOL_PX)
    return {
        "recall_2px": float(near[drawn].mean()) if drawn.any() else float("nan"),
        "marked_over_drawn": float(marked.sum() / max(int(drawn.sum()), 1)),
        "marked_share": float(marked.mean()),
        "drawn_share": float(drawn.mean()),
    }


def pezoa(data: Path) -> list[dict]:
    rows = []
    for stem in PEZOA:
        folder = data / "real-fields/evaluate/pezoa"
        mask_rgb = _rgb(folder / f"{stem}_gtmask.png")
        drawn = mask_rgb.max(axis=2) >= 128
        rgb = _rgb(folder / f"{stem}_image.png", (drawn.shape[1], drawn.shape[0]))
        est = _estimate(rgb, f"pezoa/{stem}_image.png")
        row: dict = {"image": f"pezoa/{stem}_image.png", "label": stem.split("_")[0], "estimated_mpp": est}
        for key, mpp in (("given", PEZOA_MPP), ("estimated", est)):
            row[key] = None if mpp is None else {"mpp": mpp, **_membrane_figures(rgb, drawn, mpp)}
        rows.append(row)
    return rows


def _nucleus_centres(rgb: np.ndarray, mpp: float) -> np.ndarray:
    """(n, 2) x, y centroids (image pixels) of the nuclei the pipeline's nucleus stage finds, run as in the
    pipeline: field white balance, the image resampled to the working 0.5 um/px, default stain vectors, the
    nuclei on the membrane map dropped."""
    balanced, _ = white_balance(rgb)
    scale = mpp / WORKING_MPP
    h, w = balanced.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    work = np.asarray(Image.fromarray(balanced).resize(size, Image.Resampling.BILINEAR))
    labels = segment_nuclei(deconvolve(work).hematoxylin, WORKING_MPP)
    bg, _ = white_point(work)
    membrane = predict(white_balance_to_training(work, bg), WORKING_MPP, threads=2) >= 0.5
    labels = drop_nuclei_on_membrane(labels, membrane, NucleiSettings().max_membrane_share)
    n = int(labels.max())
    if n == 0:
        return np.zeros((0, 2))
    cy, cx = np.asarray(ndi.center_of_mass(np.ones_like(labels), labels, np.arange(1, n + 1))).T
    return np.stack([(cx + 0.5) * w / size[0] - 0.5, (cy + 0.5) * h / size[1] - 0.5], axis=1)


def _recall_within(truth: np.ndarray, found: np.ndarray, radius_px: float) -> float:
    if not len(truth):
        return float("nan")
    if not len(found):
        return 0.0
    d = np.sqrt(((truth[:, None, :] - found[None, :, :]) ** 2).sum(axis=2))
    return float((d.min(axis=1) <= radius_px).mean())


def cell_patch(data: Path) -> dict:
    folder = data / "real-fields/evaluate/cell-her2"
    path = folder / "image_gt-panel.png"
    with (folder / "image_gt-panel_points.csv").open(newline="") as fh:
        truth = np.array([[float(r["x"]), float(r["y"])] for r in csv.DictReader(fh)])
    rgb = _rgb(path)
    est = _estimate(rgb, path.name)
    out: dict = {"image": "cell-her2/image_gt-panel.png", "label": "3+", "centres": len(truth), "estimated_mpp": est}
    for key, mpp in (("given", PATCH_MPP), ("estimated", est)):
        if mpp is None:
            out[key] = None
            continue
        res = her2fast.score(rgb, mpp=mpp, progress=False)
        cells = res.cells
        xy = np.zeros((0, 2)) if cells is None or not len(cells) else np.stack([cells.x, cells.y], axis=1)
        radius = CENTRE_UM / mpp
        out[key] = {
            "mpp": mpp,
            "score": res.score,
            "not_scorable": res.not_scorable,
            "cells": int(len(xy)),
            "recall_cells_4um": _recall_within(truth, xy, radius),
            "recall_nuclei_4um": _recall_within(truth, _nucleus_centres(rgb, mpp), radius),
        }
    return out


def warwick_nuclei(data: Path) -> dict:
    folder = data / "real-fields/evaluate/warwick-nuclei"
    rgb = _rgb(folder / "visualize_slides_ipynb_c031_o0_Warwick-test_37-roi_0.png")
    truth, n_true = ndi.label(np.asarray(Image.open(folder / "37-roi_0_nuclei_mask.png").convert("L")) >= 128)
    est = _estimate(rgb, "warwick-nuclei patch")
    out: dict = {"image": "warwick-nuclei/37-roi_0", "true_nuclei": int(n_true), "estimated_mpp": est}
    for key, mpp in (("given", WARWICK_MPP), ("estimated", est)):
        if mpp is None:
            out[key] = None
            continue
        centres = _nucleus_centres(rgb, mpp)
        ix = np.clip(np.rint(centres[:, 0]).astype(int), 0, truth.shape[1] - 1)
        iy = np.clip(np.rint(centres[:, 1]).astype(int), 0, truth.shape[0] - 1)
        hit = truth[iy, ix]
        tp = len(np.unique(hit[hit > 0]))
        fp = len(centres) - tp
        precision = tp / len(centres) if len(centres) else 0.0
        recall = tp / n_true if n_true else float("nan")
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[key] = {
            "mpp": mpp,
            "detected": int(len(centres)),
            "tp": tp,
            "fp": fp,
            "precision": precision,
            "recall": recall,
            "f1": f1,
        }
    return out


def _fmt(v: float | None, spec: str = ".3f") -> str:
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, spec)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/ihc"), help="the ihc data folder")
    ap.add_argument("--json", default=None, help="also write the figures here")
    a = ap.parse_args(argv)
    data = Path(a.data)
    if not (data / "real-fields/evaluate/pezoa").is_dir():
        print(f"no annotated images under {data}/real-fields/evaluate: pass --data", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    res = {
        "her2fast": her2fast.__version__,
        "pezoa": pezoa(data),
        "cell_patch": cell_patch(data),
        "warwick_nuclei": warwick_nuclei(data),
    }
    res["seconds"] = round(time.perf_counter() - t0, 1)

    print(f"her2fast {her2fast.__version__}: real images with hand annotations (evaluate/, measured only)")
    print("\nMembranes drawn by hand (Pezoa fields, image resized to the mask):")
    print(f"{'image':<22} {'label':>5} {'resolution':>16} {'drawn within 2 px':>18} {'marked/drawn':>13}")
    for r in res["pezoa"]:
        for key in ("estimated", "given"):
            f = r[key]
            if f is None:
                print(f"{r['image']:<22} {r['label']:>5} {'not estimated':>16}")
                continue
            res_txt = f"{key} {f['mpp']:.2f}"
            print(
                f"{r['image']:<22} {r['label']:>5} {res_txt:>16} {_fmt(f['recall_2px']):>18} "
                f"{_fmt(f['marked_over_drawn'], '.1f'):>13}"
            )
    c = res["cell_patch"]
    print(f"\n3+ patch with {c['centres']} reviewed cell centres (share with a her2fast cell / nucleus within 4 um):")
    for key in ("estimated", "given"):
        f = c[key]
        if f is None:
            print(f"  {key}: resolution not estimated")
            continue
        reading = f["score"] if f["score"] else f"not scored ({f['not_scorable']})"
        print(
            f"  {key} {f['mpp']:.2f} um/px: read {reading}; {f['cells']} cells; recall cells "
            f"{_fmt(f['recall_cells_4um'])}, nuclei {_fmt(f['recall_nuclei_4um'])}"
        )
    w = res["warwick_nuclei"]
    print(f"\nWarwick 40x patch, {w['true_nuclei']} nuclei in the mask (nucleus stage):")
    for key in ("estimated", "given"):
        f = w[key]
        if f is None:
            print(f"  {key}: resolution not estimated")
            continue
        print(
            f"  {key} {f['mpp']:.2f} um/px: {f['detected']} detected, precision {f['precision']:.3f}, "
            f"recall {f['recall']:.3f}, F1 {f['f1']:.3f}"
        )
    print(f"\n{res['seconds']} s")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
