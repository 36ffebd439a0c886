"""Phantom HER2 IHC tiles and whole slides with exact ground truth.

- :func:`make_tile` -- one RGB tile with membrane / edge / nuclei / epithelium masks, a cell label map and
  a per-cell table;
- :func:`make_slide` -- a pyramidal, JPEG-tiled BigTIFF that OpenSlide opens (with MPP), rendered tile
  by tile in bounded memory, plus a sidecar (true category, per-class percentages, cell table,
  low-resolution epithelium mask).

The ground-truth category always comes from :func:`her2fast.scoring.score_cells` on the generated cells.
See ``docs/synth.md`` for what is modelled and its limits.
"""

from __future__ import annotations

from .presets import PRESETS, Preset, RegionMix, get_preset, preset_names
from .scene import GENERATOR_VERSION, StainVariation
from .slide import SlideGroundTruth, is_current_phantom, load_ground_truth, make_slide, phantom_cells
from .tile import TileGroundTruth, make_tile

__all__ = [
    "GENERATOR_VERSION",
    "PRESETS",
    "Preset",
    "RegionMix",
    "SlideGroundTruth",
    "StainVariation",
    "TileGroundTruth",
    "get_preset",
    "is_current_phantom",
    "load_ground_truth",
    "make_slide",
    "make_tile",
    "phantom_cells",
    "preset_names",
]
