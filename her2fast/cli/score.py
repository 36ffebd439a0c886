"""``her2fast score``: score whole slides and write a report per slide."""

from __future__ import annotations

import argparse
import sys

from ..stages.membrane import parse_providers
from . import command
from ._options import score_profile, score_settings, scoring_options


# --------------------------------------------------------------------------------------- score
def _score_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "slides", nargs="+", metavar="SLIDE", help="slide files (SVS, NDPI, MRXS, tiled TIFF, DICOM, PNG, ...)"
    )
    p.add_argument("--out", default="her2fast_out", help="output folder (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print each result as one JSON line on stdout (no cell table)")
    scoring_options(p)
    p.add_argument(
        "--include",
        metavar="GEOJSON",
        default=None,
        help="score only the tissue inside these polygons (level-0 pixels; QuPath: File > Export objects as "
        "GeoJSON); one SLIDE only",
    )
    p.add_argument(
        "--exclude",
        metavar="GEOJSON",
        default=None,
        help="leave out the tissue inside these polygons, e.g. an on-slide control; one SLIDE only",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line on stderr")


@command(
    "score",
    "score whole slides (ASCO/CAP HER2 0/1+/2+/3+); exit 1 if a slide failed, 3 if one was not scorable",
    _score_args,
)
def _score(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from .._files import file_kind, input_keys
    from ..api import apply_profile, score
    from ..errors import Her2FastError, InvalidInputError, SlideNotFoundError, SlideReadError
    from ..io.regions import as_selection
    from ..service.slide_jobs import describe_output_error, identify, publish_report

    if (args.include or args.exclude) and len(args.slides) != 1:
        raise InvalidInputError(
            f"--include/--exclude regions belong to one slide; got {len(args.slides)} slides: score them one by one"
        )
    regions = as_selection(args.include, args.exclude)  # read once, before any slide
    providers = parse_providers(args.providers)
    settings = score_settings(args)
    profile = score_profile(args)
    if profile is not None:  # checked once, before any slide
        settings, profile = apply_profile(profile, settings)
    out = Path(args.out)
    failed = not_scorable = 0
    inputs = input_keys(args.slides)  # no report replaces any of them
    for slide_path in args.slides:
        try:
            identity, error = identify(slide_path)
            if error is not None:
                try:
                    missing = file_kind(slide_path) == "missing"
                except OSError:  # a name too long, no permission: the error says which
                    missing = False
                raise (SlideNotFoundError if missing else SlideReadError)(error)
            result = score(
                slide_path,
                mpp=args.mpp,
                providers=providers,
                settings=settings,
                progress=not args.quiet,
                profile=profile,
                include=regions.include,
                exclude=regions.exclude,
            )
            files, _ = publish_report(
                result,
                identity,
                out,
                Path(slide_path).stem,
                pictures=not args.no_pictures,
                geojson=not args.no_geojson,
                protect=inputs,
            )
        except Her2FastError as exc:
            failed += 1
            print(f"her2fast score: {slide_path}: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        except OSError as exc:  # e.g. the output folder is not writable
            failed += 1
            print(f"her2fast score: {slide_path}: {describe_output_error(out, exc)}", file=sys.stderr)
            continue
        if result.score is None:
            not_scorable += 1
        if args.json:
            print(json.dumps(result.to_dict(include_cells=False)), flush=True)
        else:
            if result.score is None:
                what = f"not scorable: {result.not_scorable}"
            else:
                what = (
                    f"HER2 {result.score} ({result.stratum}), {result.percent_complete:.1f} % complete membranes, "
                    f"confidence {result.confidence:.2f}, {result.counts['tumour_cells']} tumour cells"
                )
            flags = f" [{', '.join(result.flags)}]" if result.flags else ""
            print(f"{slide_path}: {what}{flags}; {result.timings['total']:.1f} s -> {files['json']}", flush=True)
    if failed:
        print(f"her2fast score: {failed} of {len(args.slides)} slides failed", file=sys.stderr)
        return 1
    return 3 if not_scorable else 0
