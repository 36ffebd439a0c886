"""The ``her2fast`` command. Each subcommand imports what it needs when it runs, so ``--help`` is instant.

Subcommands register themselves in :data:`COMMANDS` as ``name -> (help, add_arguments, run)``, one module
per command: :mod:`.score`, :mod:`.evaluate`, :mod:`.calibrate`, :mod:`.batch` (``batch`` and ``watch``),
:mod:`.view` (``view``) and :mod:`.tools` (``demo``, ``bench``, ``synth``, ``train-epithelium``); :mod:`._options`
holds the options the scoring commands share.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from .. import __version__

__all__ = ["COMMANDS", "Command", "build_parser", "command", "main"]

Command = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
COMMANDS: dict[str, Command] = {}


def command(name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None]):
    """Register ``run(args) -> exit code`` as subcommand ``name``."""

    def register(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = (help, add_arguments, run)
        return run

    return register


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="her2fast", description="Fast, reproducible HER2 IHC scoring.")
    parser.add_argument("--version", action="version", version=f"her2fast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, add_arguments, _run) in COMMANDS.items():
        add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``her2fast`` command; returns the process exit code."""
    for stream in (sys.stdout, sys.stderr):
        # a file name that is not UTF-8 is printed with \xNN escapes instead of stopping the command
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
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


# the command modules register themselves with ``command`` (defined above); their order is the order of
# ``her2fast --help``
from . import tools, score, evaluate, calibrate, batch, view  # noqa: E402,F401,I001

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
