"""The ``her2fast`` command. Each subcommand imports what it needs when it runs, so ``--help`` is instant.

Subcommands register themselves in :data:`COMMANDS` as ``name -> (help, add_arguments, run)``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from .. import __version__
from ..stages.membrane import parse_providers

Command = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
COMMANDS: dict[str, Command] = {}


def command(name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None]):
    """Register ``run(args) -> exit code`` as subcommand ``name``."""

    def register(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = (help, add_arguments, run)
        return run

    return register


def _scoring_options(p: argparse.ArgumentParser, *, pictures_help: str = "skip the overlay, zoom and heat-map PNGs") -> None:
    """Options of every command that scores slides (score, evaluate, batch, watch)."""
    p.add_argument("--mpp", type=float, default=None, help="um/px of level 0 for slides without resolution metadata")
    p.add_argument("--providers", default="auto",
                   help="ONNX Runtime providers, 'auto' or comma-separated, e.g. CUDAExecutionProvider; or OpenVINO "
                        "(her2fast[openvino]) (default: %(default)s)")
    p.add_argument("--method", choices=["unet", "classical"], default="unet",
                   help="membrane segmentation (default: %(default)s)")
    p.add_argument("--whole-tiles", action="store_true",
                   help="segment whole tiles, not only the windows around their epithelium: the cell table then also "
                        "holds the stroma away from the tumour (slower; same tumour cells)")
    p.add_argument("--no-pictures", action="store_true", help=pictures_help)
    p.add_argument("--no-geojson", action="store_true", help="skip the QuPath GeoJSON")


def _settings(args: argparse.Namespace):
    """The ScoreSettings of a scoring command's options."""
    from ..pipeline import ScoreSettings

    return ScoreSettings(membrane_method=args.method, crop_to_epithelium=not args.whole_tiles)


# --------------------------------------------------------------------------------------- demo
def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="her2fast_demo", help="output folder (default: %(default)s)")
    p.add_argument("--category", default="3+", choices=["0", "0+", "1+", "2+", "3+"],
                   help="category of the phantom slide (default: %(default)s)")
    p.add_argument("--size", type=int, default=2048, help="phantom side in pixels at 0.5 um/px (default: %(default)s)")
    p.add_argument("--method", choices=["unet", "classical"], default="unet", help="membrane segmentation")
    p.add_argument("--kernels", action="store_true",
                   help="instead: run the native kernels (SLIC, uniform LBP, superpixel features) on a real IHC image")
    p.add_argument("--image", default=None, help="--kernels: RGB image to use (default: scikit-image's IHC sample)")
    p.add_argument("--n-segments", type=int, default=400, help="--kernels: SLIC superpixels (default: %(default)s)")


@command("demo", "make a phantom slide, score it and write the report (--kernels: the native kernels on a real image)",
         _demo_args)
def _demo(args: argparse.Namespace) -> int:
    if args.kernels:
        from ..demo import run_demo

        return run_demo(out_dir=args.out, image_path=args.image, n_segments=args.n_segments)
    from ..demo import run_score_demo

    return run_score_demo(out_dir=args.out, category=args.category, size=args.size, method=args.method)


# --------------------------------------------------------------------------------------- bench
def _bench_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", choices=["kernels", "pipeline"],
                   help="kernels: SLIC/LBP/features vs scikit-image; pipeline: whole-slide throughput vs a reference pipeline")
    p.add_argument("--repeats", type=int, default=7, help="kernels: timed repeats per measurement (the best is printed)")
    p.add_argument("--json", default=None, help="also write the results as JSON to this file")
    p.add_argument("--quick", action="store_true", help="kernels: 512x512 only, fewer repeats (smoke run)")
    p.add_argument("--slide", default=None, help="pipeline: slide to score (default: make a phantom)")
    p.add_argument("--size", type=int, default=4096, help="pipeline: phantom side in px at 0.5 um/px (default: %(default)s)")
    p.add_argument("--category", default="2+", help="pipeline: phantom category (default: %(default)s)")
    p.add_argument("--mpp", type=float, default=None, help="pipeline: um/px for a slide without resolution metadata")
    p.add_argument("--providers", default="auto", help="pipeline: ONNX Runtime providers, 'auto' or comma-separated; or OpenVINO")
    p.add_argument("--threads", type=int, default=None, help="pipeline: cores to plan threads for (default: all)")
    p.add_argument("--batch", type=int, default=None, help="pipeline: network tiles per inference call (default: ScoreSettings')")
    p.add_argument("--no-reference", action="store_true", help="pipeline: skip the reference pipeline")
    p.add_argument("--no-crop", action="store_true",
                   help="pipeline: segment whole tiles, not the windows around their epithelium "
                        "(ScoreSettings.crop_to_epithelium)")
    p.add_argument("--windows-per-tile", type=int, default=None,
                   help="pipeline: windows a tile's epithelium may be cut into (default: ScoreSettings'; 1: one)")
    p.add_argument("--reference-tiles", type=int, default=12,
                   help="pipeline: tiles the reference pipeline runs (default: %(default)s)")
    p.add_argument("--work-dir", default="her2fast_bench", help="pipeline: where the phantom is made (default: %(default)s)")


@command("bench", "benchmark against reference implementations measured in the same run", _bench_args)
def _bench(args: argparse.Namespace) -> int:
    if args.what == "pipeline":
        from ..bench.pipeline import main as pipeline_main

        return pipeline_main(slide=args.slide, size=args.size, category=args.category, mpp=args.mpp,
                             providers=args.providers, threads=args.threads, batch=args.batch,
                             reference=not args.no_reference, reference_tiles=args.reference_tiles,
                             json_path=args.json, work_dir=args.work_dir, crop=not args.no_crop,
                             windows_per_tile=args.windows_per_tile)
    from ..bench.kernels import main as kernels_main

    return kernels_main(repeats=args.repeats, json_path=args.json, quick=args.quick)


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
    p.add_argument("--phantom", action="append", default=[], metavar="SLIDE",
                   help="phantom slide written by `her2fast synth slide` (its sidecar is the truth); repeatable")
    p.add_argument("--annotated", action="append", nargs=2, default=[], metavar=("SLIDE", "GEOJSON"),
                   help="real slide + QuPath GeoJSON export (polygons classified Tumor/Epithelium vs Stroma); repeatable")
    p.add_argument("--slide-mpp", type=float, default=None, help="um/px for annotated slides without resolution metadata")
    p.add_argument("--synth", default=None, metavar="FOLDER",
                   help="also make phantom slides here (all --categories x --seeds; existing files are reused)")
    p.add_argument("--categories", default="0,0+,1+,2+,3+", help="phantom categories for --synth (default: %(default)s)")
    p.add_argument("--seeds", default="101,102,103,104", help="phantom seeds for --synth (default: %(default)s)")
    p.add_argument("--size", type=int, default=4096, help="phantom side in px at 0.5 um/px for --synth (default: %(default)s)")
    p.add_argument("--gamma", type=float, default=None,
                   help="RBF gamma on standardised features (paper: 1/72; default: 0.02 for the stain histograms, 0.001 for RGB)")
    p.add_argument("--C", type=float, default=10.0, help="SVM C (default: %(default)s)")
    p.add_argument("--max-samples", type=int, default=6000, help="superpixels to train on (default: %(default)s)")
    p.add_argument("--mpp", type=float, default=2.0, help="classification resolution um/px (default: %(default)s)")
    p.add_argument("--superpixel-um", type=float, default=20.0, help="superpixel side in um (default: %(default)s)")
    p.add_argument("--colour-histograms", choices=("stain", "rgb"), default="stain",
                   help="stain: H and DAB optical-density histograms from the slide's stain vectors; rgb: the paper's "
                        "R, G, B, H, S, V, grey histograms (default: %(default)s)")
    p.add_argument("--background-jitter", type=float, default=0.02,
                   help="also train on each slide with its glass level x(1 - J) and x(1 + J): a model that does not "
                        "depend on the glass being estimated to the percent; 0 for none (default: %(default)s)")
    p.add_argument("--workers", type=int, default=1, help="threads (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="subsampling seed (default: %(default)s)")


@command("train-epithelium", "train the epithelium/stroma superpixel SVM from phantom and/or QuPath-annotated slides",
         _train_epithelium_args)
def _train_epithelium(args: argparse.Namespace) -> int:
    import json
    import shlex
    import time
    from pathlib import Path

    from ..stages.epithelium import (EpitheliumSettings, TrainingSet, annotated_training_set, fit_epithelium_model,
                             phantom_training_set, superpixel_accuracy)
    from ..errors import InvalidInputError

    t0 = time.perf_counter()
    settings = EpitheliumSettings(mpp=args.mpp, superpixel_um=args.superpixel_um, colour_histograms=args.colour_histograms)
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
        raise InvalidInputError("nothing to train on: give --phantom SLIDE, --annotated SLIDE GEOJSON or --synth FOLDER")
    j = float(args.background_jitter)
    scales = (1.0 - j, 1.0, 1.0 + j) if j > 0 else (1.0,)
    sets, seeds = [], []
    for path in phantoms:
        ts = phantom_training_set(path, settings, workers=args.workers, background_scales=scales)
        truth = json.loads(path.with_suffix("").with_name(path.with_suffix("").name + ".truth.json").read_text())
        seeds.append(int(truth["seed"]))
        print(f"{path}: {len(ts) // len(scales)} superpixels x {len(scales)} glass levels, "
              f"{100 * ts.labels.mean():.0f} % epithelium", flush=True)
        sets.append(ts)
    for slide_path, geojson in args.annotated:
        ts = annotated_training_set(slide_path, geojson, settings, mpp=args.slide_mpp, workers=args.workers,
                                    background_scales=scales)
        print(f"{slide_path} + {geojson}: {len(ts)} labelled superpixels, {100 * ts.labels.mean():.0f} % epithelium", flush=True)
        sets.append(ts)
    training = TrainingSet.concatenate(sets)
    model = fit_epithelium_model(training, gamma=args.gamma, C=args.C, max_samples=args.max_samples, seed=args.seed)
    acc = superpixel_accuracy(model, training)
    model = model.save(args.out, extra_metadata={
        "training_command": "her2fast " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else "",
        "training_seeds": sorted(set(seeds)),
        "training_accuracy_all_superpixels": round(acc, 4),
        "background_scales": list(scales),
        "n_superpixels_available": len(training),
        "training_seconds": round(time.perf_counter() - t0, 1),
    })
    print(f"wrote {args.out}: {model.support_vectors.shape[0]} support vectors, training accuracy {acc:.3f} "
          f"(all {len(training)} superpixels), sha256 {model.sha256[:16]}")
    return 0


# --------------------------------------------------------------------------------------- score
def _score_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("slides", nargs="+", metavar="SLIDE", help="slide files (SVS, NDPI, MRXS, tiled TIFF, DICOM, PNG, ...)")
    p.add_argument("--out", default="her2fast_out", help="output folder (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print each result as one JSON line on stdout (no cell table)")
    _scoring_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line on stderr")


@command("score", "score whole slides (ASCO/CAP HER2 0/1+/2+/3+); exit 1 if a slide failed, 3 if one was not scorable",
         _score_args)
def _score(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from ..api import score
    from ..errors import Her2FastError
    from ..service.report import write_report

    providers = parse_providers(args.providers)
    settings = _settings(args)
    out = Path(args.out)
    failed = not_scorable = 0
    stems: dict[str, int] = {}
    for slide_path in args.slides:
        stem = Path(slide_path).stem
        stems[stem] = stems.get(stem, 0) + 1
        name = stem if stems[stem] == 1 else f"{stem}-{stems[stem]}"
        try:
            result = score(slide_path, mpp=args.mpp, providers=providers, settings=settings, progress=not args.quiet)
            files = write_report(result, out, name=name, pictures=not args.no_pictures, geojson=not args.no_geojson)
        except Her2FastError as exc:
            failed += 1
            print(f"her2fast score: {slide_path}: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        except OSError as exc:  # e.g. the output folder is not writable
            failed += 1
            print(f"her2fast score: {slide_path}: {exc}", file=sys.stderr)
            continue
        if result.score is None:
            not_scorable += 1
        if args.json:
            print(json.dumps(result.to_dict(include_cells=False)), flush=True)
        else:
            if result.score is None:
                what = f"not scorable: {result.not_scorable}"
            else:
                what = (f"HER2 {result.score} ({result.stratum}), {result.percent_complete:.1f} % complete membranes, "
                        f"confidence {result.confidence:.2f}, {result.counts['tumour_cells']} tumour cells")
            flags = f" [{', '.join(result.flags)}]" if result.flags else ""
            print(f"{slide_path}: {what}{flags}; {result.timings['total']:.1f} s -> {files['json']}", flush=True)
    if failed:
        print(f"her2fast score: {failed} of {len(args.slides)} slides failed", file=sys.stderr)
        return 1
    return 3 if not_scorable else 0


# ------------------------------------------------------------------------------------ evaluate
def _evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("reference", metavar="REFERENCE.csv",
                   help="CSV with slide,score[,percent_complete][,ish]; slide paths relative to the CSV's folder; "
                        "score 0, 0+, 1+, 2+, 3+ or negative/equivocal/positive; ish amplified / not amplified")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder: per-slide reports, results.db, evaluation.json, confusion.csv, slides.csv, "
                        "discordant.csv, contest.csv, report.html")
    _scoring_options(p, pictures_help="skip overlays (the report then has no thumbnails)")
    p.add_argument("--workers", type=int, default=None, help="slides scored in parallel (default: the batch default)")
    p.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples of the kappa intervals (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: %(default)s)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")


@command("evaluate", "agreement with reference scores (confusion matrix, kappa, cut-offs) and a validation report; "
         "exit 0 when it ran, 1 on input errors", _evaluate_args)
def _evaluate(args: argparse.Namespace) -> int:
    from ..validation.evaluate import format_summary, run_evaluation

    providers = parse_providers(args.providers)
    report, files = run_evaluation(
        args.reference, args.out, mpp=args.mpp, settings=_settings(args),
        providers=providers, workers=args.workers, progress=not args.quiet, pictures=not args.no_pictures,
        geojson=not args.no_geojson, n_boot=args.n_boot, seed=args.seed,
    )
    print(format_summary(report))
    print(f"wrote {', '.join(str(p) for p in files.values())}", flush=True)
    return 0


# --------------------------------------------------------------------------------- batch, watch
def _many_slides_args(p: argparse.ArgumentParser) -> None:
    """Options shared by ``batch`` and ``watch``."""
    p.add_argument("--out", required=True, help="output folder: per-slide reports and results.db")
    p.add_argument("--store", default=None,
                   help="results database: a file path or sqlite:///path (default: OUT/results.db)")
    _scoring_options(p)


def _batch_args(p: argparse.ArgumentParser) -> None:
    p.epilog = ("Resumable: a slide already scored (same content sha256, package and model versions) is skipped, so "
                "rerunning after an interruption scores only the rest. Exit status: the number of slides that "
                "failed, at most 100 (0: all good); 1 also for an error that stops the batch (e.g. the results "
                "store cannot be written), 130 when interrupted. See docs/batch.md.")
    p.add_argument("inputs", nargs="+", metavar="DIR|GLOB|LIST|SLIDE",
                   help="folder (searched recursively), glob (quote it), text file with one path per line, or slides")
    _many_slides_args(p)
    p.add_argument("--workers", type=int, default=None,
                   help="local worker processes, each scoring one slide (default: one per two CPU cores)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--scheduler", default=None, metavar="tcp://HOST:8786",
                       help="score on a Dask distributed cluster (OUT and the slides must be shared paths)")
    group.add_argument("--dask", action="store_true",
                       help="score on a Dask LocalCluster of --workers processes on this machine")
    p.add_argument("--csv", default=None, help="export the whole store to this CSV afterwards (default: OUT/results.csv)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line on stderr, no per-slide lines")


@command("batch", "score many slides into a results store (resumable; local processes or a Dask cluster); "
         "exit status = number of failed slides (max 100)", _batch_args)
def _batch(args: argparse.Namespace) -> int:
    import os
    import signal
    from pathlib import Path

    from ..service.batch import run_batch
    from ..errors import Her2FastError

    providers = parse_providers(args.providers)
    scheduler = args.scheduler or ("local" if args.dask else None)

    def show(row: dict) -> None:
        name = Path(row["slide_path"]).name
        if row["status"] == "failed":
            print(f"{name}: FAILED {row['error']}", flush=True)
        elif row["score"] is None:
            print(f"{name}: not scorable: {row['not_scorable']}{' (already done)' if row['skipped'] else ''}", flush=True)
        else:
            pc = row.get("percent_complete")
            print(f"{name}: HER2 {row['score']} ({row['stratum']}), "
                  f"{'?' if pc is None else f'{pc:.1f}'} % complete membranes"
                  f"{' (already done)' if row['skipped'] else ''} -> {row['outputs'].get('json')}", flush=True)

    def stop(signum, frame):  # SIGTERM ends the batch like Ctrl-C: stored rows stay, workers are stopped
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        summary = run_batch(args.inputs, args.out, store=args.store, workers=args.workers, mpp=args.mpp,
                            settings=_settings(args), providers=providers,
                            progress=not args.quiet, scheduler=scheduler, pictures=not args.no_pictures,
                            geojson=not args.no_geojson, on_row=None if args.quiet else show)
    except KeyboardInterrupt:
        print("her2fast batch: interrupted; rerun the same command to finish the rest", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    csv_path = Path(args.csv) if args.csv else Path(args.out) / "results.csv"
    try:
        from ..io.store import ResultsStore

        with ResultsStore(args.store or args.out) as store:
            tmp = csv_path.with_name(f".{csv_path.name}.tmp-{os.getpid()}")
            store.export_csv(tmp)
            os.replace(tmp, csv_path)
    except (OSError, Her2FastError) as exc:
        print(f"her2fast batch: warning: cannot write {csv_path}: {exc}", file=sys.stderr)
    print(f"her2fast batch: {len(summary.rows)} slides: {summary.n_scored} scored, {summary.n_skipped} already done, "
          f"{summary.n_failed} failed in {summary.seconds:.1f} s -> {csv_path}", file=sys.stderr)
    return summary.exit_code


def _watch_args(p: argparse.ArgumentParser) -> None:
    p.epilog = ("Runs until SIGTERM or Ctrl-C (the slide being scored is finished first; a second signal aborts "
                "it without a row), then exits 0. Slides that fail go to OUT/quarantine.csv and are not retried "
                "until their content changes. See docs/batch.md for a systemd unit.")
    p.add_argument("folder", metavar="DIR", help="the folder the scanner writes into (searched recursively)")
    _many_slides_args(p)
    p.add_argument("--settle", type=float, default=10.0,
                   help="seconds a slide's size and mtime must stay unchanged before it is read (default: %(default)s)")
    p.add_argument("--poll", type=float, default=2.0, help="seconds between looks at the folder (default: %(default)s)")
    p.add_argument("--log", default=None, help="log file (default: OUT/her2fast-watch.log)")
    p.add_argument("--once", action="store_true", help="score what is there (once it has settled), then exit")


@command("watch", "scanner watch-folder service: score each slide once it has stopped growing; exit 0 on SIGTERM",
         _watch_args)
def _watch(args: argparse.Namespace) -> int:
    from ..service.watch import watch

    providers = parse_providers(args.providers)
    watch(args.folder, args.out, store=args.store, settle=args.settle, poll=args.poll, once=args.once,
          log_file=args.log, mpp=args.mpp, settings=_settings(args), providers=providers,
          pictures=not args.no_pictures, geojson=not args.no_geojson)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="her2fast", description="Fast, reproducible HER2 IHC scoring.")
    parser.add_argument("--version", action="version", version=f"her2fast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, add_arguments, _run) in COMMANDS.items():
        add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``her2fast`` command; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    from ..errors import Her2FastError

    try:
        return COMMANDS[args.command][2](args)
    except Her2FastError as exc:
        print(f"her2fast {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
