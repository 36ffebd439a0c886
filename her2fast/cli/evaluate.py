"""``her2fast evaluate``: agreement with reference scores and the validation report."""

from __future__ import annotations

import argparse

from ..stages.membrane import parse_providers
from . import command
from ._options import score_profile, score_settings, scoring_options


# ------------------------------------------------------------------------------------ evaluate
def _evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "reference",
        metavar="REFERENCE.csv",
        help="CSV with slide,score[,percent_complete][,ish]; slide paths relative to the CSV's folder; "
        "score 0, 0+, 1+, 2+, 3+ or negative/equivocal/positive; ish amplified / not amplified",
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="output folder: per-slide reports, results.db, evaluation.json, confusion.csv, slides.csv, "
        "discordant.csv, contest.csv, report.html and report.md (the printed figures as a page and in Markdown)",
    )
    scoring_options(p, pictures_help="skip overlays (the report then has no thumbnails)")
    p.add_argument("--workers", type=int, default=None, help="slides scored in parallel (default: the batch default)")
    p.add_argument(
        "--n-boot", type=int, default=2000, help="bootstrap resamples of the kappa intervals (default: %(default)s)"
    )
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: %(default)s)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")


@command(
    "evaluate",
    "agreement with reference scores (confusion matrix, kappa, cut-offs) and a validation report; "
    "exit 0 when it ran, 1 on input errors",
    _evaluate_args,
)
def _evaluate(args: argparse.Namespace) -> int:
    from ..validation.evaluate import format_summary, run_evaluation

    providers = parse_providers(args.providers)
    report, files = run_evaluation(
        args.reference,
        args.out,
        mpp=args.mpp,
        settings=score_settings(args),
        providers=providers,
        workers=args.workers,
        progress=not args.quiet,
        pictures=not args.no_pictures,
        geojson=not args.no_geojson,
        n_boot=args.n_boot,
        seed=args.seed,
        profile=score_profile(args),
    )
    print(format_summary(report))
    print(f"wrote {', '.join(str(p) for p in files.values())}", flush=True)
    return 0
