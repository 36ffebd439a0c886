"""Evaluate tissue detection, stain estimation and the epithelium classifier on held-out phantoms.

Prints, per held-out phantom slide (seeds never used for training the shipped model) and overall:

- tissue mask IoU of :func:`her2fast.stages.tissue.detect_tissue` against the phantom's true tissue (target >= 0.95);
- stain vector errors (degrees) against the phantom's true vectors, and whether a fallback was used;
- superpixel accuracy of the epithelium classifier (target >= 0.95), all superpixels, majority truth;
- epithelium pixel IoU (target >= 0.85) at the ground truth's 8 um/px grid (predicted fraction >= 0.5 vs
  true fraction >= 0.5);
- throughput: tissue detection + stain vectors + :func:`her2fast.stages.epithelium.classify_slide` on a large
  phantom at 0.25 um/px, extrapolated to 40,000 x 40,000 px by the tissue area at the classification
  resolution (the work is per tissue pixel there);
- tissue overlays of the real files (cmu-1-small-region.svs, the her2-ihc-40x patches) written to docs/.

Usage::

    python benchmarks/epithelium.py --data /tmp/ep                      # makes missing slides (~10 s each)
    python benchmarks/epithelium.py --data /tmp/ep --throughput-size 16384 --workers 2
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
CATEGORIES = ("0", "0+", "1+", "2+", "3+")


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def angle(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return math.degrees(math.acos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1)))


def true_tissue(gt, shape: tuple[int, int], mask_mpp: float, *, stained_only: bool = False) -> np.ndarray:
    """The phantom's tissue at the centres of a mask grid (from the generator's layout).

    The envelope (``tissue_field > 0``) includes fat (6 % of the tissue: adipocyte outlines on white) and
    holes in the stroma (tears, lumina: glass). ``stained_only`` removes both: the tissue a stain shows.
    """
    from her2fast.synth.presets import get_preset
    from her2fast.synth.scene import Scene

    category, variant = gt.preset.split("/")
    scene = Scene(get_preset(category, variant), gt.seed, gt.width * gt.mpp, gt.height * gt.mpp, with_glass=True)
    h, w = shape
    x, y = np.meshgrid((np.arange(w) + 0.5) * mask_mpp, (np.arange(h) + 0.5) * mask_mpp)
    tissue = scene.tissue_field(x, y) > 0
    if stained_only:
        fat = scene.fat_field(x, y) > scene.fat_threshold
        stroma = scene.tumour_field(x, y) <= scene.tumour_threshold
        hole = stroma & (scene.hole_field(x, y) > scene.hole_threshold)
        tissue &= ~fat & ~hole
    return tissue


def ensure_slide(path: Path, category: str, size: int, mpp: float, seed: int) -> None:
    from her2fast.synth import is_current_phantom, make_slide

    if not is_current_phantom(path):
        t = time.perf_counter()
        make_slide(path, category=category, width=size, height=size, mpp=mpp, seed=seed)
        print(f"  made {path.name} in {time.perf_counter() - t:.1f} s", flush=True)


def epithelium_iou(ep_map, gt) -> float:
    """Pixel IoU at the truth's grid: predicted epithelium fraction per truth pixel >= 0.5 vs truth >= 0.5."""
    f = int(round(gt.epithelium_mask_mpp / ep_map.mpp))
    pred = ep_map.epithelium_mask
    th, tw = gt.epithelium_mask.shape
    pad = np.zeros((th * f, tw * f), np.float32)
    h, w = min(pred.shape[0], th * f), min(pred.shape[1], tw * f)
    pad[:h, :w] = pred[:h, :w]
    frac = pad.reshape(th, f, tw, f).mean(axis=(1, 3))
    return iou(frac >= 0.5, gt.epithelium_mask >= 128)


def evaluate_heldout(data: Path, seeds: list[int], size: int, model, workers: int) -> dict:
    from her2fast.io.slide import open_slide
    from her2fast.stages.epithelium import classify_slide, superpixel_accuracy
    from her2fast.stages.stain import slide_stain_vectors
    from her2fast.stages.tissue import detect_tissue, tile_grid
    from her2fast.synth import load_ground_truth
    from her2fast.synth.epithelium_truth import phantom_training_set

    rows = []
    print(f"\nHeld-out phantom slides ({size} x {size} px at 0.5 um/px)")
    print(
        f"{'slide':24} {'tissue IoU':>10} {'(stained)':>9} {'H err':>6} {'DAB err':>7} {'fallback':>8} {'sp acc':>7} {'epi IoU':>7} "
        f"{'n sp':>6} {'classify s':>10}"
    )
    for seed in seeds:
        for cat in CATEGORIES:
            path = data / f"test_{cat}_{seed}.tiff"
            ensure_slide(path, cat, size, 0.5, seed)
            gt = load_ground_truth(path)
            truth_json = json.loads(gt.sidecar["json"].read_text())
            with open_slide(path) as slide:
                tissue = detect_tissue(slide)
                t_iou = iou(tissue.mask, true_tissue(gt, tissue.mask.shape, tissue.mpp))
                t_iou_stained = iou(tissue.mask, true_tissue(gt, tissue.mask.shape, tissue.mpp, stained_only=True))
                grid = tile_grid(slide, tissue)
                stains = slide_stain_vectors(slide, grid, background=tissue.background)
                ep = classify_slide(slide, tissue, model, stains=stains, workers=workers)
            sv = truth_json["stain_vectors_rgb"]
            h_err, d_err = angle(stains.hematoxylin, sv["hematoxylin"]), angle(stains.dab, sv["dab"])
            test = phantom_training_set(path, model.settings)
            acc = superpixel_accuracy(model, test)
            e_iou = epithelium_iou(ep, gt)
            rows.append(
                dict(
                    slide=path.name,
                    tissue_iou=t_iou,
                    tissue_iou_stained=t_iou_stained,
                    h_err=h_err,
                    dab_err=d_err,
                    fallback=stains.fallback,
                    superpixel_accuracy=acc,
                    epithelium_iou=e_iou,
                    n_superpixels=len(test),
                    seconds=ep.seconds,
                )
            )
            print(
                f"{path.name:24} {t_iou:10.3f} {t_iou_stained:9.3f} {h_err:6.1f} {d_err:7.1f} {str(stains.fallback):>8} {acc:7.3f} "
                f"{e_iou:7.3f} {len(test):6d} {ep.seconds:10.2f}",
                flush=True,
            )
    n = np.array([r["n_superpixels"] for r in rows], float)
    summary = dict(
        tissue_iou_mean=float(np.mean([r["tissue_iou"] for r in rows])),
        tissue_iou_min=float(np.min([r["tissue_iou"] for r in rows])),
        tissue_iou_stained_mean=float(np.mean([r["tissue_iou_stained"] for r in rows])),
        superpixel_accuracy=float(np.sum([r["superpixel_accuracy"] * k for r, k in zip(rows, n)]) / n.sum()),
        superpixel_accuracy_min=float(np.min([r["superpixel_accuracy"] for r in rows])),
        epithelium_iou_mean=float(np.mean([r["epithelium_iou"] for r in rows])),
        epithelium_iou_min=float(np.min([r["epithelium_iou"] for r in rows])),
    )
    print(
        f"\n  tissue IoU        mean {summary['tissue_iou_mean']:.3f} (min {summary['tissue_iou_min']:.3f})   target >= 0.95: "
        f"{'MET' if summary['tissue_iou_mean'] >= 0.95 else 'NOT MET'} (truth = tissue envelope incl. fat and stromal holes)"
    )
    print(
        f"  tissue IoU        mean {summary['tissue_iou_stained_mean']:.3f} against stained tissue only (fat and holes as glass)"
    )
    print(
        f"  superpixel acc.   all  {summary['superpixel_accuracy']:.3f} (min {summary['superpixel_accuracy_min']:.3f})   "
        f"target >= 0.95: {'MET' if summary['superpixel_accuracy'] >= 0.95 else 'NOT MET'}"
    )
    print(
        f"  epithelium IoU    mean {summary['epithelium_iou_mean']:.3f} (min {summary['epithelium_iou_min']:.3f})   "
        f"target >= 0.85: {'MET' if summary['epithelium_iou_mean'] >= 0.85 else 'NOT MET'}"
    )
    return dict(rows=rows, summary=summary)


def throughput(data: Path, size: int, model, workers: int, category: str = "2+", seed: int = 777) -> dict:
    from her2fast.io.slide import open_slide
    from her2fast.stages.epithelium import classify_slide, select_tiles
    from her2fast.stages.stain import slide_stain_vectors
    from her2fast.stages.tissue import detect_tissue, tile_grid

    path = data / f"big_{category}_{seed}.tiff" if size == 16384 else data / f"big_{category}_{seed}_{size}.tiff"
    ensure_slide(path, category, size, 0.25, seed)
    with open_slide(path) as slide:
        t0 = time.perf_counter()
        tissue = detect_tissue(slide)
        t1 = time.perf_counter()
        grid = tile_grid(slide, tissue)
        stains = slide_stain_vectors(slide, grid, background=tissue.background)
        t2 = time.perf_counter()
        ep = classify_slide(slide, tissue, model, stains=stains, workers=workers)
        t3 = time.perf_counter()
        tiles = select_tiles(grid, ep)
        t4 = time.perf_counter()
    tissue_px = int(ep.tissue_mask.sum())
    target_px = (40000 * 0.25 / model.settings.mpp) ** 2
    frac = tissue_px / ep.tissue_mask.size
    per_px = (t3 - t2) / max(tissue_px, 1)
    extrap = per_px * target_px * frac
    out = dict(
        size=size,
        mpp=0.25,
        workers=workers,
        tissue_fraction=frac,
        tissue_px=tissue_px,
        n_superpixels=ep.n_superpixels,
        detect_tissue_s=t1 - t0,
        stain_vectors_s=t2 - t1,
        classify_s=t3 - t2,
        select_tiles_s=t4 - t3,
        tiles_total=len(grid),
        tiles_kept=len(tiles),
        classify_ns_per_tissue_px=per_px * 1e9,
        extrapolated_40k_classify_s=extrap,
    )
    print(f"\nThroughput: {size} x {size} px phantom at 0.25 um/px ({size * 0.25 / 1000:.1f} mm), {workers} worker(s)")
    print(
        f"  tissue detection {t1 - t0:.2f} s, stain vectors {t2 - t1:.2f} s, epithelium classification {t3 - t2:.2f} s "
        f"({ep.n_superpixels} superpixels, {tissue_px / 1e6:.2f} Mpx of tissue at {model.settings.mpp} um/px = "
        f"{100 * frac:.0f} % of the slide), tile selection {t4 - t3:.3f} s: {len(tiles)} of {len(grid)} tissue tiles go on"
    )
    print(f"  classification cost {per_px * 1e9:.0f} ns per tissue pixel at {model.settings.mpp} um/px")
    print(
        f"  40,000 x 40,000 at 0.25 um/px = {target_px / 1e6:.0f} Mpx at {model.settings.mpp} um/px; with the same tissue "
        f"fraction ({100 * frac:.0f} %): classification ~{extrap:.1f} s (target <= 10 s: {'MET' if extrap <= 10 else 'NOT MET'}); "
        f"with 100 % tissue: {per_px * target_px:.1f} s"
    )
    return out


def overlays(out_dir: Path) -> list[str]:
    """Tissue mask overlays of the real files (green outline + tint on tissue, red on pen)."""
    from PIL import Image
    from scipy import ndimage as ndi

    from her2fast.io.slide import open_slide
    from her2fast.stages.tissue import detect_tissue, segment_tissue

    def draw(rgb: np.ndarray, mask: np.ndarray, pen: np.ndarray) -> np.ndarray:
        img = rgb.astype(np.float32).copy()
        img[mask] = 0.75 * img[mask] + 0.25 * np.array([0, 200, 0])
        edge = mask & ~ndi.binary_erosion(mask, iterations=1)
        img[edge] = (0, 160, 0)
        img[pen] = 0.5 * img[pen] + 0.5 * np.array([220, 0, 0])
        return img.astype(np.uint8)

    written = []
    panels = []
    svs = SHARED / "wsi" / "cmu-1-small-region.svs"
    if svs.exists():
        with open_slide(svs) as slide:
            mpp = 4.0
            tissue = detect_tissue(slide, mpp=mpp)
            thumb = slide.thumbnail(mpp)
            panels.append(("cmu-1-small-region.svs", draw(thumb, tissue.mask, tissue.pen), tissue.fraction))
    for name in ("her2ihc40x_score0.png", "her2ihc40x_score1+.png", "her2ihc40x_score2+.png", "her2ihc40x_score3+.png"):
        p = SHARED / "ihc" / "her2-ihc-40x" / name
        if not p.exists():
            continue
        with open_slide(p, mpp=0.6) as slide:
            mpp = 1.0  # the patches are ~0.25 mm: a finer mask than 8 um/px shows more
            thumb = slide.thumbnail(mpp)
            tissue = segment_tissue(thumb, mpp)
            panels.append((name, draw(thumb, tissue.mask, tissue.pen), tissue.fraction))
    if not panels:
        print("  no real files found under", SHARED)
        return written
    height = 320
    tiles = []
    for name, img, frac in panels:
        scale = height / img.shape[0]
        im = Image.fromarray(img).resize((max(1, int(round(img.shape[1] * scale))), height), Image.LANCZOS)
        tiles.append(np.asarray(im))
        print(f"  {name}: tissue {100 * frac:.0f} % of the image")
    gap = np.full((height, 8, 3), 255, np.uint8)
    row = np.concatenate(sum([[t, gap] for t in tiles], [])[:-1], axis=1)
    out = out_dir / "epithelium_tissue_overlays.png"
    Image.fromarray(row).save(out, optimize=True)
    written.append(str(out))
    print(f"  wrote {out} (left to right: {', '.join(n for n, _, _ in panels)})")
    return written


def epithelium_figure(data: Path, model, out_dir: Path, seed: int) -> str:
    """Held-out phantom: RGB | truth | prediction (one 2+ slide), for the docs."""
    from PIL import Image

    from her2fast.io.slide import open_slide
    from her2fast.stages.epithelium import classify_slide
    from her2fast.stages.stain import slide_stain_vectors
    from her2fast.stages.tissue import detect_tissue, tile_grid
    from her2fast.synth import load_ground_truth

    path = data / f"test_2+_{seed}.tiff"
    gt = load_ground_truth(path)
    with open_slide(path) as slide:
        tissue = detect_tissue(slide)
        stains = slide_stain_vectors(slide, tile_grid(slide, tissue), background=tissue.background)
        ep = classify_slide(slide, tissue, model, stains=stains, workers=1)
        rgb = slide.thumbnail(model.settings.mpp)
    f = int(round(gt.epithelium_mask_mpp / model.settings.mpp))
    truth = np.kron(gt.epithelium_mask >= 128, np.ones((f, f), bool))[: rgb.shape[0], : rgb.shape[1]]

    def tint(mask: np.ndarray, colour) -> np.ndarray:
        img = rgb.astype(np.float32).copy()
        img[mask] = 0.55 * img[mask] + 0.45 * np.array(colour)
        return img.astype(np.uint8)

    gap = np.full((rgb.shape[0], 8, 3), 255, np.uint8)
    fig = np.concatenate([rgb, gap, tint(truth, (0, 160, 0)), gap, tint(ep.epithelium_mask, (200, 0, 160))], axis=1)
    out = out_dir / "epithelium_phantom.png"
    im = Image.fromarray(fig)
    im = im.resize((im.width // 2, im.height // 2), Image.LANCZOS)
    im.save(out, optimize=True)
    print(f"  wrote {out} (held-out {path.name}: RGB | true epithelium | predicted)")
    return str(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", default="/tmp/her2fast_epithelium_bench", help="folder for phantom slides (made if missing)"
    )
    ap.add_argument("--seeds", default="901", help="held-out seeds, comma-separated (default: %(default)s)")
    ap.add_argument(
        "--size", type=int, default=4096, help="held-out slide side in px at 0.5 um/px (default: %(default)s)"
    )
    ap.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    ap.add_argument("--workers", type=int, default=2, help="threads for classification (default: %(default)s)")
    ap.add_argument("--throughput-size", type=int, default=16384, help="0.25 um/px phantom side; 0 to skip")
    ap.add_argument("--docs", default=str(ROOT / "docs"), help="where overlays go; '' to skip")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)

    from her2fast.stages.epithelium import EpitheliumModel, default_model

    model = EpitheliumModel.load(args.model) if args.model else default_model()
    seeds = [int(s) for s in args.seeds.split(",") if s]
    used = set(model.metadata.get("training_seeds", []))
    clash = sorted(used & set(seeds))
    if clash:
        print(f"error: seeds {clash} were used to train the model; choose held-out seeds", file=sys.stderr)
        return 2
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    print(
        f"model {model.sha256[:12]}: {model.support_vectors.shape[0]} support vectors, gamma {model.gamma:.5g}, "
        f"settings {model.settings}"
    )
    results = {"model_sha256": model.sha256}
    results["heldout"] = evaluate_heldout(data, seeds, args.size, model, args.workers)
    if args.throughput_size:
        results["throughput"] = throughput(data, args.throughput_size, model, args.workers)
    if args.docs:
        docs = Path(args.docs)
        print("\nFigures")
        results["overlays"] = overlays(docs)
        results["figure"] = epithelium_figure(data, model, docs, seeds[0])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
