"""Phantom tiles: a region of a phantom rendered to brightfield RGB, with its exact ground truth.

Modules
-------
- :mod:`~her2fast.synth.tile.render`: :func:`render_region`, :class:`RenderedRegion` (the physics: stain
  concentrations, Beer-Lambert, optics, sensor).
- :mod:`~her2fast.synth.tile.truth`: :func:`cell_table_of` (the ground-truth cell table of a region).
- :mod:`~her2fast.synth.tile.make`: :func:`make_tile`, :class:`TileGroundTruth` (one tile and its truth).

Every public name of these modules is importable from ``her2fast.synth.tile``.
"""

from __future__ import annotations

from .make import TileGroundTruth, make_tile
from .render import RenderedRegion, render_region
from .truth import cell_table_of

__all__ = ["RenderedRegion", "TileGroundTruth", "render_region", "make_tile", "cell_table_of"]
