"""Calibration and error of the resolution estimate of fields of view (her2fast.stages.resolution).

    python benchmarks/field_resolution.py [--seeds 1,2,3] [--field-um 200]

1. Calibration: on images of known resolution -- phantom fields (``make_tile``, categories 0/1+/2+/3+ at 0.25,
   0.5 and 1.0 um/px, seed 7, 250 um) and the four real patches of ``../shared/data/ihc/her2-ihc-40x`` (about
   0.6 um/px, MANIFEST.md) -- the ``NUCLEUS_QUANTILE`` quantile of the whole nuclei's equivalent diameters in
   micrometres, segmented at the known resolution. Printed: each image's value, their median (what
   ``NUCLEUS_DIAMETER_UM`` is set to) and the root-mean-square of their log ratios to it (``CALIBRATION_SPREAD``).
2. Error on phantoms: phantom fields of ``--field-um`` micrometres at 0.25, 0.35, 0.5, 0.75 and 1.0 um/px, each
   category and seed, saved and re-read as PNG without a resolution: estimate / truth - 1, and the largest
   error per category.
3. For information, the tune photos (``real-fields/tune``, no known resolution): the estimate next to the
   ``420 / width`` guess of ``benchmarks/qc_gate.py``. ``real-fields/evaluate`` is not read here.
"""

from __future__ import annotations

import argparse
import io
import math
import statistics
from pathlib import Path

import numpy as np

IHC = Path(__file__).resolve().parents[2] / "shared" / "data" / "ihc"
MPPS = (0.25, 0.35, 0.5, 0.75, 1.0)
CATEGORIES = ("0", "1+", "2+", "3+")


def load(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def png_round_trip(rgb: np.ndarray) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return load(buf)  # type: ignore[arg-type]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="1,2,3", help="phantom seeds of the error table")
    ap.add_argument("--field-um", type=float, default=200.0, help="side of the phantom fields (um)")
    args = ap.parse_args()

    from her2fast.stages import resolution as R
    from her2fast.synth import make_tile

    q = R.NUCLEUS_QUANTILE
    print(f"calibration: q{100 * q:.0f} of the whole nuclei's equivalent diameters (um) at the known resolution")
    values = []
    for cat in CATEGORIES:
        for mpp in (0.25, 0.5, 1.0):
            rgb = make_tile(int(round(250 / mpp)), category=cat, mpp=mpp, seed=7).rgb
            d = R.nucleus_diameters(rgb, mpp) * mpp
            values.append(float(np.quantile(d, q)))
            print(f"  phantom {cat:>2s} at {mpp:.2f} um/px: {values[-1]:5.2f} um ({d.size} nuclei)")
    for path in sorted((IHC / "her2-ihc-40x").glob("*.png")):
        d = R.nucleus_diameters(load(path), 0.597) * 0.597
        values.append(float(np.quantile(d, q)))
        print(f"  {path.name:28s} at 0.60 um/px: {values[-1]:5.2f} um ({d.size} nuclei)")
    median = statistics.median(values)
    spread = math.sqrt(statistics.fmean(math.log(v / median) ** 2 for v in values))
    print(
        f"median {median:.2f} um (NUCLEUS_DIAMETER_UM = {R.NUCLEUS_DIAMETER_UM}); rms log spread {spread:.3f} "
        f"(CALIBRATION_SPREAD = {R.CALIBRATION_SPREAD})"
    )

    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"\nerror on phantom PNG fields of {args.field_um:g} um (estimate / truth - 1), seeds {seeds}")
    print(f"{'category':8s} {'seed':>4s} " + " ".join(f"{m:>7.2f}" for m in MPPS))
    worst: dict[str, float] = {}
    errors = []
    for cat in CATEGORIES:
        for seed in seeds:
            row = []
            for mpp in MPPS:
                rgb = png_round_trip(make_tile(int(round(args.field_um / mpp)), category=cat, mpp=mpp, seed=seed).rgb)
                err = R.estimate_resolution(rgb).mpp / mpp - 1
                row.append(err)
                errors.append(abs(err))
                worst[cat] = max(worst.get(cat, 0.0), abs(err))
            print(f"{cat:8s} {seed:4d} " + " ".join(f"{e:+7.3f}" for e in row), flush=True)
    print("largest |error| per category: " + ", ".join(f"{c} {100 * w:.1f} %" for c, w in worst.items()))
    print(
        f"median |error| {100 * statistics.median(errors):.1f} %, {sum(e <= 0.15 for e in errors)} of {len(errors)} within 15 %"
    )

    print("\ntune photos (no known resolution): estimate vs the 420 / width guess")
    for path in sorted((IHC / "real-fields" / "tune").glob("*/*.png")):
        rgb = load(path)
        guess = 420.0 / rgb.shape[1]
        try:
            est = R.estimate_resolution(rgb)
            text = f"{est.mpp:.3f} um/px +-{100 * est.relative_uncertainty:.0f} % ({est.n_nuclei} nuclei)"
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            text = f"{type(exc).__name__}: {str(exc)[:70]}"
        print(f"  {path.name[:44]:44s} guess {guess:.3f}: {text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
