"""The ``her2fast`` command. Each subcommand imports what it needs when it runs, so ``--help`` is instant.

Subcommands register themselves in :data:`COMMANDS` as ``name -> (help, add_arguments, run)``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from . import __version__

Command = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
COMMANDS: dict[str, Command] = {}


def command(name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None]):
    """Register ``run(args) -> exit code`` as subcommand ``name``."""

    def register(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = (help, add_arguments, run)
        return run

    return register


# ---------------------------------------------------------------------------------------- demo
def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="her2fast_demo", help="output folder (default: %(default)s)")
    p.add_argument("--image", default=None, help="RGB image to use (default: scikit-image's IHC sample)")
    p.add_argument("--n-segments", type=int, default=400, help="SLIC superpixels (default: %(default)s)")


@command("demo", "run the native kernels (SLIC, uniform LBP, superpixel features) on a real IHC image", _demo_args)
def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(out_dir=args.out, image_path=args.image, n_segments=args.n_segments)


# --------------------------------------------------------------------------------------- bench
def _bench_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", choices=["kernels"], help="what to benchmark")
    p.add_argument("--repeats", type=int, default=7, help="timed repeats per measurement (median is printed)")
    p.add_argument("--json", default=None, help="also write the results as JSON to this file")
    p.add_argument("--quick", action="store_true", help="512x512 only, fewer repeats (smoke run)")


@command("bench", "benchmark against reference implementations measured in the same run", _bench_args)
def _bench(args: argparse.Namespace) -> int:
    from .bench.kernels import main as kernels_main

    return kernels_main(repeats=args.repeats, json_path=args.json, quick=args.quick)


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
    from .errors import Her2FastError

    try:
        return COMMANDS[args.command][2](args)
    except Her2FastError as exc:
        print(f"her2fast {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
