"""Compare phantoms with the real HER2 IHC patches: stain vectors and H / DAB OD percentiles.

For each real patch in ../shared/data/ihc/her2-ihc-40x (classes 0, 1+, 2+, 3+; ~0.6 um/px as stored)
and a phantom tile of the same class rendered at 0.6 um/px, print the Macenko stain vectors estimated
from the optical density, and percentiles of the hematoxylin and DAB concentrations obtained by
deconvolving *both* images with the same (real image's) vectors; write a side-by-side PNG.

    python scripts/synth_realism.py [--out docs/synth_realism.png] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from her2fast.synth import make_tile

ROOT = Path(__file__).resolve().parents[1]
PATCHES = ROOT.parent / "shared" / "data" / "ihc" / "her2-ihc-40x"
CLASSES = ["0", "1+", "2+", "3+"]
PCTS = (50, 90, 99)


def optical_density(rgb: np.ndarray, white: float = 245.0) -> np.ndarray:
    return np.clip(-np.log(np.clip(rgb.reshape(-1, 3).astype(np.float64), 1.0, None) / white), 0.0, None)


def macenko(od: np.ndarray, beta: float = 0.15, alpha: float = 1.0) -> np.ndarray:
    """Macenko et al. 2009: two stain vectors (rows; H first = the bluer one) from OD pixels."""
    od = od[np.linalg.norm(od, axis=1) > beta]
    _, vecs = np.linalg.eigh(np.cov(od.T))
    plane = vecs[:, [1, 2]]
    proj = od @ plane
    phi = np.arctan2(proj[:, 1], proj[:, 0])
    lo, hi = np.percentile(phi, [alpha, 100 - alpha])
    v1 = plane @ np.array([np.cos(lo), np.sin(lo)])
    v2 = plane @ np.array([np.cos(hi), np.sin(hi)])
    v1 *= np.sign(v1.sum())
    v2 *= np.sign(v2.sum())
    # hematoxylin absorbs relatively more red than DAB does
    h, d = (v1, v2) if v1[0] / v1[2] > v2[0] / v2[2] else (v2, v1)
    return np.stack([h / np.linalg.norm(h), d / np.linalg.norm(d)])


def concentrations(od: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    return np.linalg.lstsq(vectors.T, od.T, rcond=None)[0].T  # (n, 2): H, DAB


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "synth_realism.png"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rows = []
    panels = []
    header = (
        f"{'class':5} {'image':7} {'H vector (RGB)':22} {'DAB vector (RGB)':22} "
        + " ".join(f"H p{p:<3}" for p in PCTS)
        + " "
        + " ".join(f"DAB p{p:<3}" for p in PCTS)
    )
    print(header)
    print("-" * len(header))
    for cls in CLASSES:
        path = PATCHES / f"her2ihc40x_score{cls}.png"
        if not path.exists():
            raise SystemExit(f"missing {path} (see ../shared/data/MANIFEST.md)")
        with Image.open(path) as im:
            real = np.asarray(im.convert("RGB"))[:428, :428]
        phantom = make_tile(428, category=cls, mpp=0.6, seed=args.seed, jpeg_quality=85).rgb
        od_real = optical_density(real)
        ref = macenko(od_real)
        for name, img in (("real", real), ("phantom", phantom)):
            od = optical_density(img)
            vec = macenko(od)
            conc = concentrations(od, ref)
            hp = np.percentile(conc[:, 0], PCTS)
            dp = np.percentile(conc[:, 1], PCTS)
            fmt = lambda v: "(" + ", ".join(f"{x:.2f}" for x in v) + ")"  # noqa: E731
            line = (
                f"{cls:5} {name:7} {fmt(vec[0]):22} {fmt(vec[1]):22} "
                + " ".join(f"{x:6.3f}" for x in hp)
                + " "
                + " ".join(f"{x:8.3f}" for x in dp)
            )
            print(line)
            rows.append(line)
        panels.append(np.concatenate([real, np.full((428, 8, 3), 255, np.uint8), phantom], axis=1))
    grid = np.concatenate([np.concatenate([p, np.full((8, p.shape[1], 3), 255, np.uint8)]) for p in panels])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).resize((grid.shape[1] // 2, grid.shape[0] // 2), Image.LANCZOS).save(out)
    print(f"\nleft: real patch, right: phantom (same class, 0.6 um/px); rows 0, 1+, 2+, 3+ -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
