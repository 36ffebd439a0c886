"""The stain gate (her2fast.qc) on real slides and images, and on phantoms of every family.

    python benchmarks/qc_gate.py [--size 1024] [--seeds 20] [--tuning-seeds] [--json FILE]
    python benchmarks/qc_gate.py --training-range [--n 48]
    python benchmarks/qc_gate.py --speed [--slide-size 8192]

Every input goes the way :func:`her2fast.pipeline.run_slide` takes a slide: ``open_slide`` (plain images
with an explicit um/px), ``detect_tissue``, ``tile_grid`` and ``slide_stain_vectors`` with the default
:class:`her2fast.ScoreSettings`, then :func:`her2fast.qc.check_slide_stain`. Printed: one row per input
(expected outcome, decision, key figures, seconds) and the totals the gate is held to:

- real H&E (``../shared/data/wsi``: CMU-1 small region, TCGA frozen section at an assumed 0.5 um/px) and
  phantom H&E renders: refused as H&E;
- scikit-image's IHC sample (FHL2, colon; tiled 3 x 3, read at 0.5 um/px), phantom nuclear-DAB and
  cytoplasmic-DAB renders: refused (the renders with their own reason);
- real HER2 IHC: ``her2-ihc-40x`` (0.6 um/px), ``real-fields/tune`` and ``real-fields/evaluate``
  (measured only: the thresholds were chosen without them): passed;
- phantom HER2 tiles of all 12 presets: passed.

The ``tune`` photos carry no resolution; they are read at ``420 / width`` um/px (the 701-px photos at
0.6 um/px, the smaller renders of the same fields proportionally coarser). ``evaluate`` images are read
at the approximate um/px of ``labels.csv`` (an effective magnification M there is read as 10 / M
um/px; 1.0 where it gives neither).

Phantom seeds: by default held-out seeds (1000 + i for the wrong-stain renders, 5000 + i for the HER2
presets); ``--tuning-seeds`` runs the seeds the thresholds were chosen on (0-5 and 100-101).

``--training-range`` measures the models' training range (phantom tiles under the membrane U-Net's
stain augmentation, ``training/data.py``) of the figures behind
:attr:`her2fast.qc.StainGateDecision.training_distance`. ``--speed`` times the gate against a full
``her2fast.score`` of a phantom slide.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
IHC = SHARED / "ihc"


def gate_file(path: Path, mpp: float | None):
    """The stain gate on a file, with the inputs run_slide has after its stain step."""
    from her2fast.io.slide import open_slide
    from her2fast.pipeline import ScoreSettings
    from her2fast.qc import check_slide_stain
    from her2fast.stages.stain import slide_stain_vectors
    from her2fast.stages.tissue import detect_tissue, tile_grid

    s = ScoreSettings()
    with open_slide(path, mpp=mpp) as slide:
        tissue = detect_tissue(slide)
        grid = tile_grid(slide, tissue, tile_size=s.tile_size, overlap=s.overlap, mpp=s.mpp, min_tissue=s.min_tissue)
        stains = slide_stain_vectors(slide, grid, background=tissue.background)
        t0 = time.perf_counter()
        decision = check_slide_stain(slide, tissue, grid, stains)
        return decision, time.perf_counter() - t0


def _save_png(rgb: np.ndarray, path: Path) -> Path:
    from PIL import Image

    Image.fromarray(rgb).save(path)
    return path


def _approx_mpp(text: str) -> float:
    """um/px from labels.csv's approx_mpp: "~0.9 ..." is um/px, "~10-20x effective" a magnification (10 / x)."""
    m = re.search(r"~\s*([0-9.]+)(?:-[0-9.]+)?\s*(x?)", text or "")
    if not m:
        return 1.0
    value = float(m.group(1))
    return 10.0 / value if m.group(2) == "x" else value


def real_items(
    tmp: Path, tune_scale: float = 1.0, evaluate: bool = True
) -> list[tuple[str, str, Path, float | None, str]]:
    """(group, name, path, mpp, expected) for the real inputs; expected is 'pass', 'refuse' or a reason."""
    from PIL import Image
    from skimage import data

    from her2fast.qc import REASON_HE

    items: list[tuple[str, str, Path, float | None, str]] = [
        ("H&E real", "cmu-1-small-region.svs", SHARED / "wsi" / "cmu-1-small-region.svs", None, REASON_HE),
        ("H&E real", "tcga-cr-7395-01a-01-ts1.svs", SHARED / "wsi" / "tcga-cr-7395-01a-01-ts1.svs", 0.5, REASON_HE),
        (
            "skimage IHC",
            "immunohistochemistry x3x3",
            _save_png(np.tile(data.immunohistochemistry(), (3, 3, 1)), tmp / "skimage_ihc.png"),
            0.5,
            "refuse",
        ),
    ]
    for p in sorted((IHC / "her2-ihc-40x").glob("*.png")):
        items.append(("HER2 40x", p.name, p, 0.6, "pass"))
    with open(IHC / "real-fields" / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        p = IHC / "real-fields" / r["path"]
        if r["split"] == "tune":
            with Image.open(p) as im:
                w = im.size[0]
            items.append(("HER2 tune", p.name, p, tune_scale * 420.0 / w, "pass"))
    for r in rows:
        if evaluate and r["split"] == "evaluate":
            p = IHC / "real-fields" / r["path"]
            items.append(("HER2 evaluate", f"{p.parent.name}/{p.name}", p, _approx_mpp(r["approx_mpp"]), "pass"))
    return items


def phantom_items(tmp: Path, size: int, n_seeds: int, tuning: bool):
    """(group, name, path, mpp, expected), rendered lazily (a generator)."""
    from her2fast.synth import make_tile, preset_names
    from her2fast.synth.wrong_stains import WRONG_STAIN_KINDS, WRONG_STAIN_REASONS, render_wrong_stain

    seeds = range(6) if tuning else range(1000, 1000 + n_seeds)
    for kind in WRONG_STAIN_KINDS:
        for s in seeds:
            p = _save_png(render_wrong_stain(kind, size, seed=s).rgb, tmp / f"{kind}_{s}.png")
            yield (f"phantom {kind}", f"{kind} seed {s}", p, 0.5, WRONG_STAIN_REASONS[kind])
    her2_seeds = range(100, 102) if tuning else range(5000, 5002)
    for name in preset_names():
        cat, var = name.split("/")
        for s in her2_seeds:
            p = _save_png(make_tile(size, category=cat, variant=var, seed=s).rgb, tmp / f"her2_{cat}_{var}_{s}.png")
            yield ("phantom HER2", f"{name} seed {s}", p, 0.5, "pass")


def _ok(expected: str, decision) -> bool:
    if expected == "pass":
        return decision.scorable
    if expected == "refuse":
        return not decision.scorable
    return decision.reason == expected


def run_table(args) -> int:
    from her2fast.errors import Her2FastError

    cols = (
        "eosin_fraction",
        "off_axis_hue_deg",
        "two_stain_residual",
        "stained_fraction",
        "nuclear_blob_share",
        "nuclear_blobs",
        "cell_dab_q25_od",
        "cell_pale_ratio",
    )
    short = ("eosin", "hue", "resid", "stained", "nucshare", "nblobs", "q25", "pale")
    print(
        f"{'group':15s} {'input':44s} {'expect':9s} {'decision':38s} "
        + " ".join(f"{c:>8s}" for c in short)
        + f" {'train_d':>7s} {'s':>5s}"
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="h2f_qc_") as td:
        tmp = Path(td)
        items = list(real_items(tmp, args.tune_mpp_scale, not args.skip_evaluate)) if not args.phantoms_only else []
        sources = [iter(items)]
        if not args.real_only:
            sources.append(phantom_items(tmp, args.size, args.seeds, args.tuning_seeds))
        for src in sources:
            for group, name, path, mpp, expected in src:
                if not Path(path).exists():
                    print(f"{group:15s} {name:44s} missing: {path}")
                    continue
                try:
                    d, secs = gate_file(Path(path), mpp)
                except Her2FastError as exc:
                    print(f"{group:15s} {name[:44]:44s} error: {exc}")
                    rows.append({"group": group, "input": name, "expected": expected, "error": str(exc)})
                    continue
                ok = _ok(expected, d)
                exp = expected if expected in ("pass", "refuse") else expected.split(":")[0][:9]
                dec = "PASS" if d.scorable else d.reason
                flag = "" if ok else "  <-- WRONG"
                vals = " ".join(f"{d.figures.get(c, float('nan')):8.3f}" for c in cols)
                print(
                    f"{group:15s} {name[:44]:44s} {exp:9s} {dec[:38]:38s} {vals} {d.training_distance:7.2f} "
                    f"{secs:5.2f}{flag}",
                    flush=True,
                )
                rows.append(
                    {"group": group, "input": name, "expected": expected, "ok": ok, "seconds": secs, **d.to_dict()}
                )
    # totals
    print()
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["group"], []).append(r)
    print(
        f"{'group':15s} {'n':>3s} {'scored':>7s} {'refused':>8s} {'as expected':>12s} {'outside training':>17s}"
        f" {'gate s (mean)':>14s}"
    )
    for g, rs in groups.items():
        good = [r for r in rs if "error" not in r]
        scored = sum(1 for r in good if r["scorable"])
        outside = sum(1 for r in good if r["outside_training_range"])
        mean_s = np.mean([r["seconds"] for r in good]) if good else float("nan")
        print(
            f"{g:15s} {len(rs):3d} {scored:7d} {len(good) - scored:8d} {sum(1 for r in good if r['ok']):12d}"
            f" {outside:17d} {mean_s:14.2f}"
        )
    reasons: dict[str, int] = {}
    for r in rows:
        if "error" not in r and not r["scorable"]:
            reasons[f"{r['group']} -> {r['reason']}"] = reasons.get(f"{r['group']} -> {r['reason']}", 0) + 1
    print()
    for k, v in sorted(reasons.items()):
        print(f"  {v:3d}  {k}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    wrong = [r for r in rows if "error" not in r and not r["ok"]]
    print(f"\n{len(wrong)} of {len(rows)} inputs not as expected")
    return 0


def training_range(args) -> int:
    """Figures of phantom tiles under the training's stain augmentation: centre and half-width."""
    sys.path.insert(0, str(ROOT))
    from her2fast.synth import make_tile, preset_names
    from training.data import AugmentConfig, augment_rgb

    names = preset_names()
    figs: dict[str, list[float]] = {}
    hs, ds = [], []
    cfg = AugmentConfig()
    with tempfile.TemporaryDirectory(prefix="h2f_qc_") as td:
        for i in range(args.n):
            name = names[i % len(names)]
            cat, var = name.split("/")
            rng = np.random.default_rng([i, 0xA06])
            t = make_tile(args.size, category=cat, variant=var, seed=i, mpp=float(rng.uniform(0.45, 0.56)))
            rgb = augment_rgb(t.rgb, rng, cfg)
            d, _ = gate_file(_save_png(rgb, Path(td) / f"t{i}.png"), t.mpp)
            for k in ("tissue_od_median", "background_cast"):
                figs.setdefault(k, []).append(d.figures[k])
            from her2fast.io.slide import open_slide
            from her2fast.stages.stain import slide_stain_vectors
            from her2fast.stages.tissue import detect_tissue, tile_grid

            with open_slide(Path(td) / f"t{i}.png", mpp=t.mpp) as slide:
                tissue = detect_tissue(slide)
                grid = tile_grid(slide, tissue, tile_size=704, overlap=48)
                st = slide_stain_vectors(slide, grid, background=tissue.background)
            hs.append(st.hematoxylin)
            if st.dab_estimated:
                ds.append(st.dab)
            print(
                f"{i:3d} {name:20s} H {np.round(st.hematoxylin, 3)} DAB {np.round(st.dab, 3)} est {st.dab_estimated} "
                f"od {d.figures['tissue_od_median']:.3f} cast {d.figures['background_cast']:.3f}",
                flush=True,
            )

    def centre(vs: list[np.ndarray]) -> tuple[np.ndarray, float, float]:
        c = np.mean(vs, axis=0)
        c /= np.linalg.norm(c)
        a = [math.degrees(math.acos(min(1.0, float(v @ c / np.linalg.norm(v))))) for v in vs]
        return c, float(np.percentile(a, 99)), float(np.max(a))

    for label, vs in (("hematoxylin", hs), ("dab", ds)):
        c, p99, mx = centre(vs)
        print(
            f"{label:12s} centre {np.round(c, 4).tolist()}  angle to centre: 99th pct {p99:.2f} deg, max {mx:.2f} deg"
            f" (n={len(vs)})"
        )
    for k, v in figs.items():
        v = np.asarray(v)
        print(
            f"{k:20s} min {v.min():.4f} max {v.max():.4f} -> centre {(v.min() + v.max()) / 2:.4f} "
            f"half-width {(v.max() - v.min()) / 2:.4f}"
        )
    return 0


def speed(args) -> int:
    """Gate seconds against a full her2fast.score of a phantom slide."""
    import her2fast
    from her2fast.synth import make_slide

    with tempfile.TemporaryDirectory(prefix="h2f_qc_") as td:
        path = Path(td) / "phantom.tiff"
        make_slide(path, category="2+", width=args.slide_size, height=args.slide_size, seed=4242)
        d, gate_s = gate_file(path, None)
        t0 = time.perf_counter()
        result = her2fast.score(path, settings=her2fast.ScoreSettings(), progress=False)
        total = time.perf_counter() - t0
    print(
        f"phantom slide {args.slide_size}^2 px: score {total:.1f} s ({result.category}), gate {gate_s:.2f} s "
        f"({d.reason or 'PASS'}) -> gate / score = {100 * gate_s / total:.1f} %"
    )
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024, help="phantom tile size in pixels (0.5 um/px)")
    ap.add_argument("--seeds", type=int, default=20, help="held-out seeds per wrong-stain family")
    ap.add_argument("--tuning-seeds", action="store_true", help="the phantom seeds the thresholds were chosen on")
    ap.add_argument("--phantoms-only", action="store_true")
    ap.add_argument("--real-only", action="store_true")
    ap.add_argument("--skip-evaluate", action="store_true", help="leave out real-fields/evaluate")
    ap.add_argument(
        "--tune-mpp-scale",
        type=float,
        default=1.0,
        help="read the tune photos at this multiple of their assumed um/px (a sensitivity check)",
    )
    ap.add_argument("--json", default=None)
    ap.add_argument("--training-range", action="store_true")
    ap.add_argument("--n", type=int, default=48, help="phantom tiles for --training-range")
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--slide-size", type=int, default=8192)
    args = ap.parse_args()
    if args.training_range:
        return training_range(args)
    if args.speed:
        return speed(args)
    return run_table(args)


if __name__ == "__main__":
    raise SystemExit(main())
