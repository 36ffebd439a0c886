"""How far a slide's stains lie from what the shipped models were trained on, and whether red and blue look swapped.

The training range is each figure's centre and half-width over phantoms of :mod:`her2fast.synth` under the
stain augmentation of ``training/data.py`` (``python benchmarks/qc_gate.py --training-range`` measures it).

Examples
--------
>>> from her2fast.qc.stain_gate.training_range import _training_distance
>>> _training_distance({"dab_to_training_deg": 30.0, "tissue_od_median": float("nan")})
1.5
"""

from __future__ import annotations

import math

import numpy as np

from ...stages.stain import StainVectors
from .colour import _angle_deg

# The training range of the shipped models (phantoms of her2fast.synth under the stain augmentation
# of training/data.py): centre and half-width of each figure. Reproduce with
# `python benchmarks/qc_gate.py --training-range`.
_TRAINING_HEMATOXYLIN = np.array([0.6460, 0.7038, 0.2954])
_TRAINING_DAB = np.array([0.2071, 0.4991, 0.8414])
_TRAINING_RANGES: dict[str, tuple[float, float]] = {
    # figure: (centre, half-width); angles to the training vectors above, 0 at the centre
    "hematoxylin_to_training_deg": (0.0, 16.2),
    "dab_to_training_deg": (0.0, 20.0),
    "tissue_od_median": (0.560, 0.388),
    "background_cast": (0.0, 0.053),
}


def _training_figures(od: np.ndarray, stains: StainVectors) -> dict[str, float]:
    bg = stains.background
    return {
        "hematoxylin_to_training_deg": _angle_deg(stains.hematoxylin, _TRAINING_HEMATOXYLIN),
        "dab_to_training_deg": _angle_deg(stains.dab, _TRAINING_DAB) if stains.dab_estimated else float("nan"),
        "tissue_od_median": float(np.median(np.linalg.norm(od, axis=1))) if od.shape[0] else float("nan"),
        "background_cast": float((bg.max() - bg.min()) / bg.max()),
    }


def _channel_order_margin(stains: StainVectors) -> float:
    """Mean over the estimated stain vectors of (angle to its training vector) - (angle to the channel-reversed
    training vector a red/blue swap would give it); positive leans to swapped, NaN without an estimate."""
    margins = []
    if stains.hematoxylin_estimated:  # swapped, the stain absorbing most red is DAB read backwards
        margins.append(
            _angle_deg(stains.hematoxylin, _TRAINING_HEMATOXYLIN) - _angle_deg(stains.hematoxylin, _TRAINING_DAB[::-1])
        )
    if stains.dab_estimated:
        margins.append(_angle_deg(stains.dab, _TRAINING_DAB) - _angle_deg(stains.dab, _TRAINING_HEMATOXYLIN[::-1]))
    return float(np.mean(margins)) if margins else float("nan")


def _training_distance(figures: dict[str, float]) -> float:
    worst = 0.0
    for key, (centre, half) in _TRAINING_RANGES.items():
        v = figures.get(key, float("nan"))
        if math.isfinite(v):
            worst = max(worst, abs(v - centre) / half)
    return worst
