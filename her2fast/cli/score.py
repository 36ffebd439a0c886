"""``her2fast score``: score whole slides (or fields of view: camera photos, viewer snapshots) and write a report
per image."""

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
    p.add_argument(
        "--field",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="score each image as one field of view (a camera photo, a viewer snapshot: white-balanced on "
        "itself, resolution estimated from its nuclei unless --mpp is given, read with the cells it has); "
        "--no-field scores it as a slide. Default: plain images without a resolution are fields",
    )
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
    "score whole slides or fields of view (ASCO/CAP HER2 0/1+/2+/3+); exit 1 if one failed, 3 if one was not scorable",
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
                field=args.field,
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
            print(
                f"{slide_path}: {_kind(result)}{what}{flags}; {result.timings['total']:.1f} s -> {files['json']}",
                flush=True,
            )
    if failed:
        print(f"her2fast score: {failed} of {len(args.slides)} slides failed", file=sys.stderr)
        return 1
    return 3 if not_scorable else 0


def _kind(result) -> str:
    """``"field at 0.52 um/px (estimated +-24 %): "`` for a field; nothing for a slide."""
    if result.kind != "field":
        return ""
    res = result.resolution
    how = res.get("source", "")
    if how == "estimated":
        how = f"estimated +-{100 * res.get('relative_uncertainty', 0):.0f} %"
    return f"field at {res.get('mpp', 0):.3g} um/px ({how}): "
