"""``python -m her2fast.bench.pipeline network ...``: the network alone under each runtime
(:func:`~her2fast.bench.pipeline.network.network_main`); ``--worker CONFIG``: the sides' processes of
:func:`her2fast.bench.pipeline.main`."""

from __future__ import annotations

import argparse
import sys

from .processes import _worker


def _network(argv: list[str]) -> int:
    from .network import network_main

    ap = argparse.ArgumentParser(
        prog="python -m her2fast.bench.pipeline network",
        description="the membrane network alone under each runtime: tiles/s on phantom tiles, alternated",
    )
    ap.add_argument("--providers", default="all", help="'all' (default), 'auto' or one runtime's --providers text")
    ap.add_argument(
        "--int8-model-dir",
        default=None,
        help="also time this int8 model directory (python -m training.quantize_membrane writes one) in "
        "ONNX Runtime and OpenVINO",
    )
    ap.add_argument("--threads", type=int, default=None, help="intra-op threads (default: all cores)")
    ap.add_argument("--repeats", type=int, default=5, help="alternated rounds (default: %(default)s, >= 3)")
    ap.add_argument("--tiles", type=int, default=4, help="phantom tiles per round (default: %(default)s)")
    ap.add_argument("--size", type=int, default=512, help="tile side in px (default: %(default)s)")
    ap.add_argument("--json", default=None, help="also write the figures as JSON here")
    a = ap.parse_args(argv)
    return network_main(
        providers=a.providers,
        int8_model_dir=a.int8_model_dir,
        threads=a.threads,
        repeats=a.repeats,
        tiles=a.tiles,
        size=a.size,
        json_path=a.json,
    )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":  # the side processes of main()
        raise SystemExit(_worker(sys.argv[1:]))
    if len(sys.argv) >= 2 and sys.argv[1] == "network":
        raise SystemExit(_network(sys.argv[2:]))
    raise SystemExit(
        "usage: python -m her2fast.bench.pipeline network [--providers all] [--int8-model-dir DIR] "
        "(or --worker CONFIG, started by her2fast bench pipeline)"
    )
