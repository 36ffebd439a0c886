"""``her2fast view``: review a results store in the browser (the optional extra ``her2fast[view]``)."""

from __future__ import annotations

import argparse

from . import command


def _view_args(p: argparse.ArgumentParser) -> None:
    p.epilog = (
        "Serves the worklist at / and a page per slide with deep zoom, overlays and the sign-off form. "
        "Listens on 127.0.0.1 unless --host says otherwise; there is no login, so open it to the network only "
        "on a trusted one. Needs pip install 'her2fast[view]'. See docs/view.md."
    )
    p.add_argument(
        "out", metavar="OUT_DIR", help="output folder of her2fast batch/watch (holds results.db), or the database"
    )
    p.add_argument("--port", type=int, default=8000, help="TCP port (0: any free port) (default: %(default)s)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s, this machine only)")
    p.add_argument("--threads", type=int, default=8, help="requests served at once (default: %(default)s)")


@command("view", "review a results store in the browser: worklist, deep zoom with overlays, sign-off", _view_args)
def _view(args: argparse.Namespace) -> int:
    from ..errors import InvalidInputError
    from ..service.view import serve

    if not 0 <= args.port <= 65535:
        raise InvalidInputError(f"--port must be 0 to 65535, got {args.port}")
    if args.threads < 1:
        raise InvalidInputError(f"--threads must be at least 1, got {args.threads}")
    try:
        serve(args.out, host=args.host, port=args.port, threads=args.threads)
    except OSError as exc:  # the port is taken, or the address is not this machine's
        raise InvalidInputError(
            f"cannot listen on {args.host}:{args.port}: {exc}; choose another --port or --host"
        ) from None
    return 0
