"""Does the epithelium map stay put when the scanner changes? The shipped model against a candidate.

    python benchmarks/epithelium_invariance.py --candidate MODEL_DIR [--presets 3+/near-threshold,...]
                                               [--seed 941] [--size 1536] [--folder /tmp/h2f_epi_inv]

Held-out phantoms (:func:`her2fast.synth.make_slide`, default seed 941, never used in training) are
classified (:func:`her2fast.stages.epithelium.classify_slide`, the slide's own tissue mask and stain vectors)
as written and after each image perturbation of :mod:`her2fast.synth.perturb` (tone curves 0.8 and 1.25,
the scanner profile of ``benchmarks/robustness.py``, a 1.2-px blur, JPEG quality 60). Printed per slide and
perturbation and model: the IoU of the perturbed map with the unperturbed one, and the ratio of their
epithelium areas (the share of tumour cells a perturbation adds or loses); then per model and perturbation
the mean and lowest IoU and the range of the area ratio. Train a candidate with e.g.
``her2fast train-epithelium --out MODEL_DIR --synth FOLDER --tone-gammas 0.8,1,1.25 --workers 2``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

SCENARIOS = {
    "tone_0.8": [("tone_curve", 0.8)],
    "tone_1.25": [("tone_curve", 1.25)],
    "scanner": [("white_balance", 0.06), ("tone_curve", 0.85)],
    "blur_1.2": [("blur", 1.2)],
    "jpeg60": [("jpeg", 60)],
}


def epithelium_map(path: Path, model) -> np.ndarray:
    from her2fast.io.slide import open_slide
    from her2fast.stages.epithelium import classify_slide
    from her2fast.stages.stain import slide_stain_vectors
    from her2fast.stages.tissue import detect_tissue, tile_grid

    with open_slide(path) as slide:
        tissue = detect_tissue(slide)
        stains = slide_stain_vectors(slide, tile_grid(slide, tissue), background=tissue.background)
        return classify_slide(slide, tissue, model, stains=stains, workers=2).epithelium_mask


def main() -> int:
    from her2fast.stages.epithelium import EpitheliumModel, default_model
    from her2fast.synth import PRESETS, is_current_phantom, make_slide
    from her2fast.synth.perturb import Perturbation, perturb_image, read_level0, write_slide

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidate", required=True, help="model folder to compare with the shipped model")
    ap.add_argument("--presets", default="all", help="comma-separated preset names or all")
    ap.add_argument("--seed", type=int, default=941)
    ap.add_argument("--size", type=int, default=1536)
    ap.add_argument("--folder", default="/tmp/h2f_epi_inv", help="phantoms and perturbed copies")
    args = ap.parse_args()
    models = {"shipped": default_model(), "candidate": EpitheliumModel.load(args.candidate)}
    presets = list(PRESETS) if args.presets == "all" else args.presets.split(",")
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for preset in presets:
        cat, var = preset.split("/")
        base = folder / f"base_{cat.replace('+', 'p')}_{var}_{args.seed}_{args.size}.tiff"
        if not is_current_phantom(base):
            make_slide(base, category=cat, variant=var, width=args.size, height=args.size, mpp=0.5, seed=args.seed)
        image, mpp = read_level0(base)
        before = {m: epithelium_map(base, model) for m, model in models.items()}
        line = f"{preset:22s}"
        for name, chain in SCENARIOS.items():
            out, mpp2 = perturb_image(image, [Perturbation(n, s) for n, s in chain], mpp=mpp)
            path = folder / "perturbed.tiff"
            write_slide(path, out, mpp2)
            for m, model in models.items():
                after, ref = epithelium_map(path, model), before[m]
                h, w = min(after.shape[0], ref.shape[0]), min(after.shape[1], ref.shape[1])
                after, ref = after[:h, :w], ref[:h, :w]
                iou = float((after & ref).sum() / max((after | ref).sum(), 1))
                ratio = float(after.sum() / max(ref.sum(), 1))
                rows.setdefault((m, name), []).append((iou, ratio))
                line += f"  {name}:{m[0]} {iou:.2f}/{ratio:.2f}"
        print(line, flush=True)
    print("\nmodel     perturbation  IoU with the unperturbed map: mean  min   epithelium area ratio: min  max")
    for (m, name), v in sorted(rows.items()):
        a = np.array(v)
        print(
            f"{m:9s} {name:12s} {a[:, 0].mean():40.3f} {a[:, 0].min():5.3f} {a[:, 1].min():27.2f} {a[:, 1].max():4.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
