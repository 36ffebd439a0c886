"""``her2fast calibrate``: fit the intensity and completeness thresholds to a lab's reference slides."""

from __future__ import annotations

import argparse

from ..stages.membrane import parse_providers
from . import command
from ._options import score_settings, scoring_options


def _calibrate_args(p: argparse.ArgumentParser) -> None:
    p.epilog = (
        "Scores each slide once (through the results store: a rerun, or a --scores folder of an earlier "
        "evaluate or batch, scores nothing again), then fits faint_od, weak_od, strong_od and complete_fraction "
        "to the reference by re-scoring the stored cell tables, regularised toward the defaults. The figures are "
        "cross-validated: every slide is scored by a fit that never saw it. Use the profile with "
        "her2fast score/batch/watch/evaluate --profile PROFILE_DIR. See docs/calibration.md."
    )
    p.add_argument(
        "reference",
        metavar="REFERENCE.csv",
        help="CSV with slide,score[,percent_complete][,ish], as her2fast evaluate reads it",
    )
    p.add_argument(
        "--out", required=True, metavar="PROFILE_DIR", help="profile folder: profile.json, calibration.json, .html, .md"
    )
    p.add_argument("--name", default=None, help="the profile's name (default: the CSV's name and today's date)")
    p.add_argument(
        "--scores",
        default=None,
        metavar="DIR",
        help="folder of the slides' results and results.db (default: PROFILE_DIR/slides); the --out of an "
        "earlier evaluate or batch of the same slides is reused",
    )
    scoring_options(p, profile=False, outputs=False)
    p.add_argument("--workers", type=int, default=None, help="slides scored in parallel (default: the batch default)")
    p.add_argument(
        "--fields",
        default=None,
        help="comma-separated ScoringRules fields to fit (default: faint_od,weak_od,strong_od,complete_fraction)",
    )
    p.add_argument(
        "--strength", type=float, default=1.0, help="regularisation toward the defaults (default: %(default)s)"
    )
    p.add_argument("--folds", type=int, default=10, help="cross-validation folds (default: %(default)s)")
    p.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the folds and the bootstrap (default: %(default)s)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")


@command(
    "calibrate",
    "fit the intensity and completeness thresholds to a lab's reference scores (cross-validated figures); "
    "exit 0 when it ran, 1 on input errors",
    _calibrate_args,
)
def _calibrate(args: argparse.Namespace) -> int:
    from ..scoring import DEFAULT_FITTED_FIELDS
    from ..validation.calibrate import calibrate, format_calibration

    fields = DEFAULT_FITTED_FIELDS if not args.fields else tuple(f.strip() for f in args.fields.split(",") if f.strip())
    report = calibrate(
        args.reference,
        args.out,
        name=args.name,
        scores_dir=args.scores,
        mpp=args.mpp,
        settings=score_settings(args),
        providers=parse_providers(args.providers),
        workers=args.workers,
        progress=not args.quiet,
        fields=fields,
        strength=args.strength,
        folds=args.folds,
        n_boot=args.n_boot,
        seed=args.seed,
    )
    print(format_calibration(report))
    print(f"wrote {', '.join(str(p) for p in report.files.values())}", flush=True)
    return 0
