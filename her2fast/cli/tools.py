"""``her2fast demo``, ``bench``, ``synth`` and ``train-epithelium``: the commands that start the tools.

The tools (:mod:`her2fast.demo`, :mod:`her2fast.bench`, :mod:`her2fast.synth`) are imported only when
their command runs, so ``her2fast --help`` stays instant and the other commands never load them.
"""

from __future__ import annotations

import argparse
import sys

from . import command


# --------------------------------------------------------------------------------------- demo
def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="her2fast_demo", help="output folder (default: %(default)s)")
    p.add_argument(
        "--category",
        default="3+",
        choices=["0", "0+", "1+", "2+", "3+"],
        help="category of the phantom slide (default: %(default)s)",
    )
    p.add_argument("--size", type=int, default=2048, help="phantom side in pixels at 0.5 um/px (default: %(default)s)")
    p.add_argument("--method", choices=["unet", "classical"], default="unet", help="membrane segmentation")
    p.add_argument(
        "--kernels",
        action="store_true",
        help="instead: run the native kernels (SLIC, uniform LBP, superpixel features) on a real IHC image",
    )
    p.add_argument("--image", default=None, help="--kernels: RGB image to use (default: scikit-image's IHC sample)")
    p.add_argument("--n-segments", type=int, default=400, help="--kernels: SLIC superpixels (default: %(default)s)")


@command(
    "demo",
    "make a phantom slide, score it and write the report (--kernels: the native kernels on a real image)",
    _demo_args,
)
def _demo(args: argparse.Namespace) -> int:
    if args.kernels:
        from ..demo import run_demo

        return run_demo(out_dir=args.out, image_path=args.image, n_segments=args.n_segments)
    from ..demo import run_score_demo

    return run_score_demo(out_dir=args.out, category=args.category, size=args.size, method=args.method)


# --------------------------------------------------------------------------------------- bench
def _bench_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "what",
        choices=["kernels", "pipeline", "network"],
        help="kernels: SLIC/LBP/features vs scikit-image; pipeline: whole-slide throughput vs a reference pipeline; "
        "network: the membrane network alone under each runtime (tiles/s, CPU s per tile)",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed runs of each side, alternated with the reference; the median and min-max are printed "
        "(default: kernels 5, pipeline 3, network 5; pipeline and network need >= 3)",
    )
    p.add_argument("--json", default=None, help="also write the results as JSON to this file")
    p.add_argument("--quick", action="store_true", help="kernels: 512x512 only, fewer repeats (smoke run)")
    p.add_argument("--slide", default=None, help="pipeline: slide to score (default: make a phantom)")
    p.add_argument(
        "--size",
        type=int,
        default=None,
        help="pipeline: phantom side in px at 0.5 um/px (default: 4096); network: tile side (default: 512)",
    )
    p.add_argument("--category", default="2+", help="pipeline: phantom category (default: %(default)s)")
    p.add_argument("--mpp", type=float, default=None, help="pipeline: um/px for a slide without resolution metadata")
    p.add_argument(
        "--providers",
        default=None,
        help="pipeline, network: ONNX Runtime providers, 'auto' or comma-separated; or OpenVINO / OpenVINO:f32; "
        "or 'all': every runtime available here in turn (ONNX Runtime CPU fp32, OpenVINO fp32 and, on bf16 CPUs, "
        "bf16) (default: pipeline auto, network all)",
    )
    p.add_argument(
        "--threads", type=int, default=None, help="pipeline, network: cores to plan threads for (default: all)"
    )
    p.add_argument(
        "--tiles", type=int, default=4, help="network: phantom tiles per alternated round (default: %(default)s)"
    )
    p.add_argument(
        "--int8-model-dir",
        default=None,
        help="network: also time this int8 model directory (python -m training.quantize_membrane writes one) in "
        "ONNX Runtime and OpenVINO",
    )
    p.add_argument(
        "--batch", type=int, default=None, help="pipeline: network tiles per inference call (default: ScoreSettings')"
    )
    p.add_argument("--no-reference", action="store_true", help="pipeline: skip the reference pipeline")
    p.add_argument(
        "--no-crop",
        action="store_true",
        help="pipeline: segment whole tiles, not the windows around their epithelium "
        "(ScoreSettings.crop_to_epithelium)",
    )
    p.add_argument(
        "--windows-per-tile",
        type=int,
        default=None,
        help="pipeline: windows a tile's epithelium may be cut into (default: ScoreSettings'; 1: one)",
    )
    p.add_argument(
        "--reference-tiles",
        type=int,
        default=12,
        help="pipeline: tiles the reference pipeline runs (default: %(default)s)",
    )
    p.add_argument(
        "--work-dir", default="her2fast_bench", help="pipeline: where the phantom is made (default: %(default)s)"
    )


@command("bench", "benchmark against reference implementations measured in the same run", _bench_args)
def _bench(args: argparse.Namespace) -> int:
    if args.what == "network":
        from ..bench.pipeline.network import network_main

        return network_main(
            providers="all" if args.providers is None else args.providers,
            int8_model_dir=args.int8_model_dir,
            threads=args.threads,
            repeats=5 if args.repeats is None else args.repeats,
            tiles=args.tiles,
            size=512 if args.size is None else args.size,
            json_path=args.json,
        )
    if args.what == "pipeline":
        from ..bench.pipeline import main as pipeline_main

        return pipeline_main(
            slide=args.slide,
            size=4096 if args.size is None else args.size,
            category=args.category,
            mpp=args.mpp,
            providers="auto" if args.providers is None else args.providers,
            threads=args.threads,
            batch=args.batch,
            reference=not args.no_reference,
            reference_tiles=args.reference_tiles,
            json_path=args.json,
            work_dir=args.work_dir,
            crop=not args.no_crop,
            windows_per_tile=args.windows_per_tile,
            repeats=3 if args.repeats is None else args.repeats,
        )
    from ..bench.kernels import main as kernels_main

    return kernels_main(repeats=5 if args.repeats is None else args.repeats, json_path=args.json, quick=args.quick)


# --------------------------------------------------------------------------------------- synth
def _synth_args(p: argparse.ArgumentParser) -> None:
    categories = ("0", "0+", "1+", "2+", "3+")
    sub = p.add_subparsers(dest="synth_what", metavar="WHAT", required=True)
    t = sub.add_parser("tiles", help="phantom tiles: <out>/<name>.png + <name>.npz (masks, labels, cell table)")
    t.add_argument("--out", default="synth_tiles", help="output folder (default: %(default)s)")
    t.add_argument("-n", "--count", type=int, default=8, help="tiles per category (default: %(default)s)")
    t.add_argument("--size", type=int, default=512, help="tile size in pixels (default: %(default)s)")
    t.add_argument("--categories", default=",".join(categories), help="comma-separated (default: %(default)s)")
    t.add_argument("--variant", default="typical", help="preset variant (default: %(default)s)")
    t.add_argument("--mpp", type=float, default=0.5, help="micrometres per pixel (default: %(default)s)")
    t.add_argument("--seed", type=int, default=0, help="first seed (default: %(default)s)")
    s = sub.add_parser("slide", help="a pyramidal BigTIFF phantom slide + ground-truth sidecar")
    s.add_argument("path", help="output .tiff path")
    s.add_argument("--category", default="2+", choices=categories, help="(default: %(default)s)")
    s.add_argument("--variant", default="typical", help="typical, near-threshold, unusual, heterogeneous")
    s.add_argument("--width", type=int, default=4096, help="level-0 width in pixels (default: %(default)s)")
    s.add_argument("--height", type=int, default=4096, help="level-0 height in pixels (default: %(default)s)")
    s.add_argument("--mpp", type=float, default=0.5, help="micrometres per pixel (default: %(default)s)")
    s.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    s.add_argument("--jpeg-quality", type=int, default=85, help="(default: %(default)s)")


@command("synth", "write phantom HER2 IHC tiles or a pyramidal phantom slide with exact ground truth", _synth_args)
def _synth(args: argparse.Namespace) -> int:
    from ..synth.cli import run

    return run(args)


# ------------------------------------------------------------------------------ train-epithelium
def _train_epithelium_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="model folder to write (model.npz, config.json)")
    p.add_argument(
        "--phantom",
        action="append",
        default=[],
        metavar="SLIDE",
        help="phantom slide written by `her2fast synth slide` (its sidecar is the truth); repeatable",
    )
    p.add_argument(
        "--annotated",
        action="append",
        nargs=2,
        default=[],
        metavar=("SLIDE", "GEOJSON"),
        help="real slide + QuPath GeoJSON export (polygons classified Tumor/Epithelium vs Stroma); repeatable",
    )
    p.add_argument(
        "--slide-mpp", type=float, default=None, help="um/px for annotated slides without resolution metadata"
    )
    p.add_argument(
        "--synth",
        default=None,
        metavar="FOLDER",
        help="also make phantom slides here (all --categories x --seeds; existing files are reused)",
    )
    p.add_argument(
        "--categories", default="0,0+,1+,2+,3+", help="phantom categories for --synth (default: %(default)s)"
    )
    p.add_argument("--seeds", default="101,102,103,104", help="phantom seeds for --synth (default: %(default)s)")
    p.add_argument(
        "--size", type=int, default=4096, help="phantom side in px at 0.5 um/px for --synth (default: %(default)s)"
    )
    p.add_argument(
        "--gamma",
        type=float,
        default=None,
        help="RBF gamma on standardised features (paper: 1/72; default: 0.02 for the stain histograms, 0.001 for RGB)",
    )
    p.add_argument("--C", type=float, default=10.0, help="SVM C (default: %(default)s)")
    p.add_argument("--max-samples", type=int, default=6000, help="superpixels to train on (default: %(default)s)")
    p.add_argument("--mpp", type=float, default=2.0, help="classification resolution um/px (default: %(default)s)")
    p.add_argument("--superpixel-um", type=float, default=20.0, help="superpixel side in um (default: %(default)s)")
    p.add_argument(
        "--colour-histograms",
        choices=("stain", "rgb"),
        default="stain",
        help="stain: H and DAB optical-density histograms from the slide's stain vectors; rgb: the paper's "
        "R, G, B, H, S, V, grey histograms (default: %(default)s)",
    )
    p.add_argument(
        "--background-jitter",
        type=float,
        default=0.02,
        help="also train on each slide with its glass level x(1 - J) and x(1 + J): a model that does not "
        "depend on the glass being estimated to the percent; 0 for none (default: %(default)s)",
    )
    p.add_argument(
        "--tone-gammas",
        default="1",
        help="also train on each slide through the tone curve 255 (I/255)^g for each g (every optical density "
        "times g, as a scanner's gamma changes it), comma-separated, e.g. 0.8,1,1.25 (default: %(default)s)",
    )
    p.add_argument(
        "--scanner-copies",
        action="store_true",
        help="also train on five re-scans of every phantom (white balance and tone curve, blur, JPEG; "
        "her2fast.synth.epithelium_truth.SCANNER_COPIES), written next to it as <stem>.scan-<name>.tiff",
    )
    p.add_argument(
        "--decision-smoothing-um",
        type=float,
        default=8.0,
        help="Gaussian (um) the SVM decisions are averaged over before the sign makes the mask; 0 for each "
        "superpixel's own decision (default: %(default)s)",
    )
    p.add_argument("--workers", type=int, default=1, help="threads (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="subsampling seed (default: %(default)s)")


@command(
    "train-epithelium",
    "train the epithelium/stroma superpixel SVM from phantom and/or QuPath-annotated slides",
    _train_epithelium_args,
)
def _train_epithelium(args: argparse.Namespace) -> int:
    import json
    import shlex
    import time
    from pathlib import Path

    from ..errors import InvalidInputError
    from ..stages.epithelium import (
        EpitheliumSettings,
        TrainingSet,
        annotated_training_set,
        fit_epithelium_model,
        superpixel_accuracy,
    )
    from ..synth.epithelium_truth import SCANNER_COPIES, phantom_training_set, scanner_copies

    t0 = time.perf_counter()
    settings = EpitheliumSettings(
        mpp=args.mpp,
        superpixel_um=args.superpixel_um,
        colour_histograms=args.colour_histograms,
        decision_smoothing_um=args.decision_smoothing_um,
    )
    phantoms = [Path(p) for p in args.phantom]
    if args.synth:
        from ..synth import is_current_phantom, make_slide

        folder = Path(args.synth)
        folder.mkdir(parents=True, exist_ok=True)
        for seed in (int(s) for s in args.seeds.split(",") if s):
            for cat in (c for c in args.categories.split(",") if c):
                path = folder / f"phantom_{cat}_{seed}.tiff"
                if not is_current_phantom(path):  # missing, or made by another generator version
                    print(f"making {path} ...", flush=True)
                    make_slide(path, category=cat, width=args.size, height=args.size, mpp=0.5, seed=seed)
                phantoms.append(path)
    if not phantoms and not args.annotated:
        raise InvalidInputError(
            "nothing to train on: give --phantom SLIDE, --annotated SLIDE GEOJSON or --synth FOLDER"
        )
    j = float(args.background_jitter)
    scales = (1.0 - j, 1.0, 1.0 + j) if j > 0 else (1.0,)
    try:
        gammas = tuple(float(g) for g in args.tone_gammas.split(",") if g.strip())
    except ValueError:
        raise InvalidInputError(
            f"--tone-gammas must be comma-separated numbers such as 0.8,1,1.25, got {args.tone_gammas!r}"
        ) from None
    if args.scanner_copies:
        rescans = []
        for path in phantoms:
            print(f"re-scanning {path} ({', '.join(SCANNER_COPIES)}) ...", flush=True)
            rescans.extend(scanner_copies(path))
        phantoms += rescans
    copies = len(scales) * max(len(gammas), 1)
    sets, seeds = [], []
    for path in phantoms:
        ts = phantom_training_set(path, settings, workers=args.workers, background_scales=scales, tone_gammas=gammas)
        truth = json.loads(path.with_suffix("").with_name(path.with_suffix("").name + ".truth.json").read_text())
        seeds.append(int(truth["seed"]))
        print(
            f"{path}: {len(ts) // copies} superpixels x {len(scales)} glass levels x {len(gammas)} tone curves, "
            f"{100 * ts.labels.mean():.0f} % epithelium",
            flush=True,
        )
        sets.append(ts)
    for slide_path, geojson in args.annotated:
        ts = annotated_training_set(
            slide_path,
            geojson,
            settings,
            mpp=args.slide_mpp,
            workers=args.workers,
            background_scales=scales,
            tone_gammas=gammas,
        )
        print(
            f"{slide_path} + {geojson}: {len(ts)} labelled superpixels, {100 * ts.labels.mean():.0f} % epithelium",
            flush=True,
        )
        sets.append(ts)
    training = TrainingSet.concatenate(sets)
    model = fit_epithelium_model(training, gamma=args.gamma, C=args.C, max_samples=args.max_samples, seed=args.seed)
    acc = superpixel_accuracy(model, training)
    model = model.save(
        args.out,
        extra_metadata={
            "training_command": "her2fast " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else "",
            "training_seeds": sorted(set(seeds)),
            "training_accuracy_all_superpixels": round(acc, 4),
            "background_scales": list(scales),
            "tone_gammas": list(gammas),
            "scanner_copies": {k: [list(p) for p in v] for k, v in SCANNER_COPIES.items()}
            if args.scanner_copies
            else {},
            "n_superpixels_available": len(training),
            "training_seconds": round(time.perf_counter() - t0, 1),
        },
    )
    print(
        f"wrote {args.out}: {model.support_vectors.shape[0]} support vectors, training accuracy {acc:.3f} "
        f"(all {len(training)} superpixels), sha256 {model.sha256[:16]}"
    )
    return 0
