"""What the fit maximises: :func:`agreement` (quadratic weighted kappa plus a tenth of the accuracy) of slide
scores with a reference, on the four ASCO/CAP classes or the clinical groups the reference is written in.

Examples
--------
>>> _level(["negative", "positive"]), _labels(["2+", "0+"], "score")
('group', ['2+', '0'])
>>> round(agreement(["0", "1+"], ["0", "1+"]), 3)
1.1
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...errors import InvalidInputError
from ..summary import GROUPS, SCORES, four_class, to_group

__all__ = ["agreement"]


def _level(reference: Sequence[str]) -> str:
    return "group" if any(str(r).strip().lower() in GROUPS for r in reference) else "score"


def _labels(values: Sequence[str], level: str) -> list[str]:
    return [to_group(v) for v in values] if level == "group" else [four_class(v) for v in values]


def _kappa_q(p: np.ndarray, r: np.ndarray, k: int) -> float:
    cm = np.bincount(p * k + r, minlength=k * k).reshape(k, k).astype(np.float64)
    n = cm.sum()
    i, j = np.indices((k, k))
    w = ((i - j) ** 2).astype(np.float64)
    expected = np.outer(cm.sum(1), cm.sum(0)) / n
    denom = (w * expected).sum()
    return 1.0 if denom == 0 else float(1.0 - (w * cm).sum() / denom)


def agreement(predicted: Sequence[str], reference: Sequence[str]) -> float:
    """What the fit maximises: quadratic weighted kappa + 0.1 x accuracy (four ASCO/CAP classes, or the
    clinical groups when the reference is in those words).

    Examples
    --------
    >>> round(agreement(["0", "1+", "3+", "3+"], ["0", "1+", "2+", "3+"]), 3)  # kappa 0.917 + 0.1 x 0.75
    0.992
    """
    level = _level(reference)
    labels = GROUPS if level == "group" else SCORES
    index = {lab: i for i, lab in enumerate(labels)}
    p = np.array([index[s] for s in _labels(predicted, level)], np.int64)
    r = np.array([index[s] for s in _labels(reference, level)], np.int64)
    if not len(r):
        raise InvalidInputError("no slides to compare")
    return _kappa_q(p, r, len(labels)) + 0.1 * float((p == r).mean())
