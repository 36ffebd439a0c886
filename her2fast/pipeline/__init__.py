"""The per-slide pipeline: slide -> tissue -> tiles -> stain -> epithelium -> membrane -> nuclei -> cells.

:func:`run_slide` finds the tissue, the tile grid, the stain vectors and the epithelium, then runs the
tiles through a bounded stream (:mod:`.stream`); :mod:`.settings` holds what decides the result and the
thread plan, :mod:`.windows` the geometry of the part of each tile that is segmented.
"""

from __future__ import annotations

from .progress import Progress
from .run import PipelineOutput, SlideMaps, run_slide
from .settings import ScoreSettings, ThreadPlan
from .windows import tile_window, tile_windows

__all__ = [
    "ScoreSettings",
    "SlideMaps",
    "PipelineOutput",
    "Progress",
    "ThreadPlan",
    "run_slide",
    "tile_window",
    "tile_windows",
]
