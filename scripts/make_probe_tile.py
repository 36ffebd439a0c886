"""Write the membrane model's probe tile: ``her2fast/models/membrane_unet/probe_tile.png``.

With ``providers="auto"`` on a CPU with bf16 units, :class:`her2fast.stages.membrane.MembraneSession` runs
this tile through ONNX Runtime and OpenVINO and takes OpenVINO only if it agrees and is faster. The tile
is a 512 x 512 phantom (category 2+, seed 20261129, no JPEG round trip) shipped with the model as a
lossless PNG, so that the runtime never imports the phantom generator. ``tests/test_membrane.py`` checks
that the shipped file equals what this script makes.

    python scripts/make_probe_tile.py [--out her2fast/models/membrane_unet/probe_tile.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "her2fast" / "models" / "membrane_unet" / "probe_tile.png"
SIZE = 512
CATEGORY = "2+"
SEED = 20261129


def probe_tile() -> np.ndarray:
    """The probe tile as the phantom generator renders it today: (512, 512, 3) uint8 RGB."""
    from her2fast.synth import make_tile

    return make_tile(SIZE, category=CATEGORY, seed=SEED, jpeg_quality=None).rgb


def write_probe_tile(path: str | Path = DEFAULT_OUT) -> Path:
    """Write :func:`probe_tile` to ``path`` as a lossless PNG; returns the path."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(probe_tile()).save(path, format="PNG", optimize=True)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="PNG to write (default: the shipped model's probe tile)")
    args = ap.parse_args(argv)
    path = write_probe_tile(args.out)
    print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
