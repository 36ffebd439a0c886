"""``her2fast synth tiles|slide``: write phantom tiles (PNG + ground truth .npz) or a phantom slide.

The arguments are declared in :mod:`her2fast.cli` (so ``--help`` imports nothing heavy).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError
from ..scoring import CATEGORIES


def run(args: argparse.Namespace) -> int:
    if args.synth_what == "slide":
        from .slide import make_slide

        gt = make_slide(
            args.path,
            category=args.category,
            variant=args.variant,
            width=args.width,
            height=args.height,
            mpp=args.mpp,
            seed=args.seed,
            jpeg_quality=args.jpeg_quality,
        )
        pct = gt.fractions
        print(f"wrote {gt.path} ({gt.width}x{gt.height} px, {len(gt.level_dimensions)} levels, {gt.mpp} um/px)")
        print(
            f"true category {gt.category} ({gt.preset}); {pct.n_tumour_cells} tumour cells: "
            f"{100 * pct.intense_complete:.1f}% intense complete, "
            f"{100 * pct.at_least_weak_complete:.1f}% >= weak complete, {100 * pct.at_least_faint:.1f}% stained"
        )
        print(f"sidecar: {', '.join(str(p) for p in gt.sidecar.values())}")
        return 0

    from PIL import Image

    from .tile import make_tile

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cats = [c.strip() for c in args.categories.split(",") if c.strip()]
    bad = [c for c in cats if c not in CATEGORIES]
    if bad:
        raise InvalidInputError(f"--categories: unknown {bad}; choose from {', '.join(CATEGORIES)}")
    n = 0
    for cat in cats:
        for i in range(args.count):
            seed = args.seed + i
            t = make_tile(args.size, category=cat, variant=args.variant, mpp=args.mpp, seed=seed)
            name = f"synth_{cat.replace('+', 'p')}_{args.variant}_s{seed}"
            Image.fromarray(t.rgb).save(out / f"{name}.png")
            c = t.cells
            np.savez_compressed(
                out / f"{name}.npz",
                membrane_mask=t.membrane_mask,
                membrane_edge=t.membrane_edge,
                nuclei_mask=t.nuclei_mask,
                epithelium_mask=t.epithelium_mask,
                cell_labels=t.cell_labels,
                cell_id=c.cell_id,
                x=c.x,
                y=c.y,
                is_tumour=c.is_tumour,
                intensity=c.intensity,
                completeness=c.completeness,
                membrane_dab_od=c.membrane_dab_od,
                mpp=np.float64(t.mpp),
            )
            n += 1
    print(f"wrote {n} tiles (PNG + .npz ground truth) to {out}")
    return 0
