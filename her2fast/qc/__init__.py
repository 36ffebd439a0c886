"""Quality control before scoring: is this slide something the scorer may put a number on?

- :mod:`her2fast.qc.stain_gate` -- the stain gate: a colour image in RGB order (not greyscale, not red and
  blue swapped), brightfield DAB + hematoxylin (not H&E, not another
  chromogen), a membrane pattern (not nuclear, not diffuse cytoplasmic DAB), and how far the slide's
  stains lie from what the models were trained on.
- :mod:`her2fast.qc.quality` -- the quality map: where the tissue cannot be read (out of focus, pen ink),
  at 4 um per map pixel.
"""

from __future__ import annotations

from .quality import QUALITY_REASONS, REASON_UNUSABLE, QualityMap, QualityRules, QualityTally, quality_map
from .stain_gate import (
    FLAG_CHANNEL_ORDER,
    REASON_CHANNELS_SWAPPED,
    REASON_CYTOPLASMIC,
    REASON_GREYSCALE,
    REASON_HE,
    REASON_NO_PAIR,
    REASON_NUCLEAR,
    REASONS,
    StainGateDecision,
    StainGateRules,
    check_colour,
    check_slide_stain,
    check_stain,
    sample_tiles,
)

__all__ = [
    "QUALITY_REASONS",
    "QualityMap",
    "QualityRules",
    "QualityTally",
    "REASON_UNUSABLE",
    "quality_map",
    "FLAG_CHANNEL_ORDER",
    "REASONS",
    "REASON_CHANNELS_SWAPPED",
    "REASON_CYTOPLASMIC",
    "REASON_GREYSCALE",
    "REASON_HE",
    "REASON_NO_PAIR",
    "REASON_NUCLEAR",
    "StainGateDecision",
    "StainGateRules",
    "check_colour",
    "check_slide_stain",
    "check_stain",
    "sample_tiles",
]
