"""``her2fast batch`` and ``her2fast watch``: many slides into a results store (they share their options)."""

from __future__ import annotations

import argparse
import sys

from ..stages.membrane import parse_providers
from . import command
from ._options import score_profile, score_settings, scoring_options


# --------------------------------------------------------------------------------- batch, watch
def _many_slides_args(p: argparse.ArgumentParser) -> None:
    """Options shared by ``batch`` and ``watch``."""
    p.add_argument("--out", required=True, help="output folder: per-slide reports and results.db")
    p.add_argument(
        "--store", default=None, help="results database: a file path or sqlite:///path (default: OUT/results.db)"
    )
    scoring_options(p)


def _batch_args(p: argparse.ArgumentParser) -> None:
    p.epilog = (
        "Resumable: a slide already scored (same content sha256, package and model versions) is skipped, so "
        "rerunning after an interruption scores only the rest. Exit status: the number of slides that "
        "failed, at most 100 (0: all good); 1 also for an error that stops the batch (e.g. the results "
        "store cannot be written), 130 when interrupted. See docs/batch.md."
    )
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="DIR|GLOB|LIST|SLIDE",
        help="folder (searched recursively), glob (quote it), text file with one path per line, or slides",
    )
    _many_slides_args(p)
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="local worker processes, each scoring one slide (default: one per two CPU cores)",
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--scheduler",
        default=None,
        metavar="tcp://HOST:8786",
        help="score on a Dask distributed cluster (OUT and the slides must be shared paths)",
    )
    group.add_argument(
        "--dask", action="store_true", help="score on a Dask LocalCluster of --workers processes on this machine"
    )
    p.add_argument(
        "--csv", default=None, help="export the whole store to this CSV afterwards (default: OUT/results.csv)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line on stderr, no per-slide lines")


@command(
    "batch",
    "score many slides into a results store (resumable; local processes or a Dask cluster); "
    "exit status = number of failed slides (max 100)",
    _batch_args,
)
def _batch(args: argparse.Namespace) -> int:
    import os
    import signal
    from pathlib import Path

    from ..errors import Her2FastError
    from ..service.batch import run_batch

    providers = parse_providers(args.providers)
    scheduler = args.scheduler or ("local" if args.dask else None)

    def show(row: dict) -> None:
        name = Path(row["slide_path"]).name
        if row["status"] == "failed":
            print(f"{name}: FAILED {row['error']}", flush=True)
        elif row["score"] is None:
            print(
                f"{name}: not scorable: {row['not_scorable']}{' (already done)' if row['skipped'] else ''}", flush=True
            )
        else:
            pc = row.get("percent_complete")
            print(
                f"{name}: HER2 {row['score']} ({row['stratum']}), "
                f"{'?' if pc is None else f'{pc:.1f}'} % complete membranes"
                f"{' (already done)' if row['skipped'] else ''} -> {row['outputs'].get('json')}",
                flush=True,
            )

    def stop(signum, frame):  # SIGTERM ends the batch like Ctrl-C: stored rows stay, workers are stopped
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        summary = run_batch(
            args.inputs,
            args.out,
            store=args.store,
            workers=args.workers,
            mpp=args.mpp,
            settings=score_settings(args),
            providers=providers,
            progress=not args.quiet,
            scheduler=scheduler,
            pictures=not args.no_pictures,
            geojson=not args.no_geojson,
            on_row=None if args.quiet else show,
            profile=score_profile(args),
        )
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
    print(
        f"her2fast batch: {len(summary.rows)} slides: {summary.n_scored} scored, {summary.n_skipped} already done, "
        f"{summary.n_failed} failed in {summary.seconds:.1f} s -> {csv_path}",
        file=sys.stderr,
    )
    return summary.exit_code


def _watch_args(p: argparse.ArgumentParser) -> None:
    p.epilog = (
        "Runs until SIGTERM or Ctrl-C (the slide being scored is finished first; a second signal aborts "
        "it without a row), then exits 0. Slides that fail go to OUT/quarantine.csv and are not retried "
        "until their content changes. See docs/batch.md for a systemd unit."
    )
    p.add_argument("folder", metavar="DIR", help="the folder the scanner writes into (searched recursively)")
    _many_slides_args(p)
    p.add_argument(
        "--settle",
        type=float,
        default=10.0,
        help="seconds a slide's size and mtime must stay unchanged before it is read (default: %(default)s)",
    )
    p.add_argument("--poll", type=float, default=2.0, help="seconds between looks at the folder (default: %(default)s)")
    p.add_argument("--log", default=None, help="log file (default: OUT/her2fast-watch.log)")
    p.add_argument("--once", action="store_true", help="score what is there (once it has settled), then exit")


@command(
    "watch",
    "scanner watch-folder service: score each slide once it has stopped growing; exit 0 on SIGTERM",
    _watch_args,
)
def _watch(args: argparse.Namespace) -> int:
    from ..service.watch import watch

    providers = parse_providers(args.providers)
    watch(
        args.folder,
        args.out,
        store=args.store,
        settle=args.settle,
        poll=args.poll,
        once=args.once,
        log_file=args.log,
        mpp=args.mpp,
        settings=score_settings(args),
        providers=providers,
        pictures=not args.no_pictures,
        geojson=not args.no_geojson,
        profile=score_profile(args),
    )
    return 0
