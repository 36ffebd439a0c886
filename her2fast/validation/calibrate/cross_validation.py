"""Stratified k-fold cross-validation of :func:`~her2fast.validation.calibrate.fitting.fit_rules`: every slide's
calibrated score comes from a fit that never saw it.

Examples
--------
>>> _folds(["0", "0", "3+", "3+"], 2, 0).tolist().count(0)
2
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ...errors import InvalidInputError
from ...scoring import (
    DEFAULT_FITTED_FIELDS,
    DEFAULT_RULES,
    CellTable,
    ScoringRules,
)
from .agreement import _labels, _level
from .cells import CellSet
from .fitting import fit_rules

__all__ = ["CrossValidation", "cross_validate"]


@dataclass(frozen=True)
class CrossValidation:
    """Held-out scores of every slide under the defaults and under a fit that never saw it.

    Attributes
    ----------
    default, calibrated : list of str
        Slide categories (five-way) with the base rules and with the fold's fitted rules.
    fold : list of int
        The fold of each slide.
    fold_parameters : list of dict
        Each fold's fitted parameters (their spread says how stable the fit is).
    seconds : float
    """

    default: list[str]
    calibrated: list[str]
    fold: list[int]
    fold_parameters: list[dict[str, float]]
    seconds: float


def _folds(reference_labels: Sequence[str], k: int, seed: int) -> np.ndarray:
    """Stratified fold of each slide: within each reference class, shuffled, dealt round the folds."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(reference_labels), np.int64)
    start = 0
    for lab in sorted(set(reference_labels)):
        idx = np.flatnonzero(np.array(reference_labels) == lab)
        rng.shuffle(idx)
        fold[idx] = (start + np.arange(len(idx))) % k
        start += len(idx)
    return fold


def cross_validate(
    cells: CellSet | Sequence[CellTable],
    reference: Sequence[str],
    *,
    folds: int = 10,
    seed: int = 0,
    fields: Sequence[str] = DEFAULT_FITTED_FIELDS,
    base: ScoringRules = DEFAULT_RULES,
    strength: float = 1.0,
) -> CrossValidation:
    """Stratified k-fold cross-validation of :func:`fit_rules` (leave-one-slide-out when ``folds >= n``).

    Parameters
    ----------
    cells, reference, fields, base, strength
        As :func:`fit_rules`.
    folds : int
        Number of folds (at least 2; more than the slides means one slide per fold).
    seed : int
        Seed of the fold assignment.

    Returns
    -------
    CrossValidation
    """
    t0 = time.perf_counter()
    cs = cells if isinstance(cells, CellSet) else CellSet.from_tables(list(cells))
    reference = list(reference)
    n = len(cs)
    if len(reference) != n:
        raise InvalidInputError(f"{n} cell tables but {len(reference)} reference scores")
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or folds < 2:
        raise InvalidInputError(f"folds must be an integer >= 2, got {folds!r}")
    if n < 3:
        raise InvalidInputError(f"cross-validation needs at least 3 slides, got {n}")
    k = min(int(folds), n)
    level = _level(reference)
    fold = np.arange(n) if k == n else _folds(_labels(reference, level), k, seed)
    default = cs.categories(base)
    calibrated: list[str] = [""] * n
    params: list[dict[str, float]] = []
    for f in range(k):
        test = np.flatnonzero(fold == f)
        train = np.flatnonzero(fold != f)
        if not test.size:
            continue
        fit = fit_rules(cs.subset(train), [reference[i] for i in train], fields=fields, base=base, strength=strength)
        params.append(fit.parameters)
        for i, c in zip(test, cs.subset(test).categories(fit.rules)):
            calibrated[int(i)] = c
    return CrossValidation(
        default=default,
        calibrated=calibrated,
        fold=[int(f) for f in fold],
        fold_parameters=params,
        seconds=time.perf_counter() - t0,
    )
