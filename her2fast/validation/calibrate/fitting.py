"""Fitting :class:`~her2fast.scoring.ScoringRules` fields to reference scores (:func:`fit_rules`): how each field
is searched (:class:`ParameterSearch`, :data:`SEARCH`), the windowed, regularised objective and the sweeps
(see :mod:`her2fast.validation.calibrate`).

Examples
--------
>>> grid = SEARCH["complete_fraction"].grid(0.9)
>>> round(float(grid.min()), 2), round(float(grid.max()), 2), SEARCH["weak_od"].scale
(0.5, 1.0, 'log')
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ...errors import InvalidInputError
from ...scoring import (
    DEFAULT_FITTED_FIELDS,
    DEFAULT_RULES,
    FITTABLE_FIELDS,
    CellTable,
    ScoringRules,
)
from ..summary import GROUPS, SCORES
from .agreement import _kappa_q, _labels, _level
from .cells import CellSet

__all__ = ["ParameterSearch", "SEARCH", "FitResult", "fit_rules"]


@dataclass(frozen=True)
class ParameterSearch:
    """How one :class:`~her2fast.scoring.ScoringRules` field is searched.

    Parameters
    ----------
    scale : {"log", "linear"}
        ``"log"``: the grid is ``default * exp(k * step)`` between ``default / span`` and ``default * span``;
        ``"linear"``: ``default + k * step`` between ``low`` and ``high``.
    step : float
        Grid step (in log units for ``"log"``).
    unit : float
        A move of one ``unit`` (log units for ``"log"``) costs ``strength / n`` of agreement, squared.
    span : float
        ``"log"`` only: the factor range.
    low, high : float
        ``"linear"`` only: the range.
    window : int
        Grid points on each side averaged into each point's agreement.
    """

    scale: str = "log"
    step: float = math.log(1.06)
    unit: float = math.log(2.0)
    span: float = 3.0
    low: float = 0.0
    high: float = 1.0
    window: int = 2

    def __post_init__(self) -> None:
        if self.scale not in ("log", "linear"):
            raise InvalidInputError(f"ParameterSearch.scale must be 'log' or 'linear', got {self.scale!r}")
        if not (self.step > 0 and self.unit > 0 and self.span > 1 and self.low < self.high and self.window >= 0):
            raise InvalidInputError(f"invalid ParameterSearch {self}")

    def grid(self, default: float) -> np.ndarray:
        """Candidate values, the default among them."""
        if self.scale == "log":
            k = int(math.floor(math.log(self.span) / self.step + 1e-9))
            return default * np.exp(np.arange(-k, k + 1) * self.step)
        lo = int(math.ceil((self.low - default) / self.step - 1e-9))
        hi = int(math.floor((self.high - default) / self.step + 1e-9))
        return np.clip(default + np.arange(lo, hi + 1) * self.step, self.low, self.high)

    def distance(self, value: float, default: float) -> float:
        """The move from ``default`` to ``value`` in units."""
        if self.scale == "log":
            return math.log(value / default) / self.unit
        return (value - default) / self.unit


#: how each fittable field is searched
SEARCH: dict[str, ParameterSearch] = {
    "faint_od": ParameterSearch(),
    "weak_od": ParameterSearch(),
    "strong_od": ParameterSearch(),
    "complete_fraction": ParameterSearch(scale="linear", step=0.02, unit=0.1, low=0.5, high=1.0, window=1),
    "ultralow_fraction": ParameterSearch(scale="linear", step=0.0025, unit=0.01, low=0.0, high=0.09),
}


@dataclass(frozen=True)
class FitResult:
    """The fitted rules and how the fit went.

    Attributes
    ----------
    rules : ScoringRules
    parameters : dict of str to float
        The fitted fields' values.
    defaults : dict of str to float
        Their values in the base rules (where the fit started, and what it is regularised toward).
    agreement, agreement_defaults : float
        :func:`agreement` on the fitted slides with the fitted rules and with the base rules.
    objective : float
        The regularised, windowed objective at the fit.
    evaluations : int
        Rule sets scored.
    seconds : float
    """

    rules: ScoringRules
    parameters: dict[str, float]
    defaults: dict[str, float]
    agreement: float
    agreement_defaults: float
    objective: float
    evaluations: int
    seconds: float


def _searches(fields: Sequence[str]) -> dict[str, ParameterSearch]:
    out = {}
    for f in fields:
        if f not in FITTABLE_FIELDS:
            raise InvalidInputError(f"cannot calibrate {f!r}; choose from {', '.join(FITTABLE_FIELDS)}")
        out[f] = SEARCH.get(f, ParameterSearch())
    if not out:
        raise InvalidInputError("fields must name at least one ScoringRules field to calibrate")
    return out


def fit_rules(
    cells: CellSet | Sequence[CellTable],
    reference: Sequence[str],
    *,
    fields: Sequence[str] = DEFAULT_FITTED_FIELDS,
    base: ScoringRules = DEFAULT_RULES,
    strength: float = 1.0,
    max_sweeps: int = 4,
) -> FitResult:
    """Fit ScoringRules fields to reference scores by re-scoring cell tables (see :mod:`her2fast.validation.calibrate`).

    Parameters
    ----------
    cells : CellSet or sequence of CellTable
        One measured table per slide (tumour cells are used).
    reference : sequence of str
        The reference score of each slide (0, 0+, 1+, 2+, 3+, or negative / equivocal / positive).
    fields : sequence of str
        The fields to fit (:data:`~her2fast.scoring.FITTABLE_FIELDS`).
    base : ScoringRules
        Where the fit starts and what it is regularised toward; its other fields are kept.
    strength : float
        Weight of the regularisation (0: none).
    max_sweeps : int
        Coordinate sweeps at most.

    Returns
    -------
    FitResult

    Raises
    ------
    InvalidInputError
        Tables and references differ in number, an unknown field or score.
    """
    t0 = time.perf_counter()
    cs = cells if isinstance(cells, CellSet) else CellSet.from_tables(list(cells))
    reference = list(reference)
    if len(reference) != len(cs):
        raise InvalidInputError(f"{len(cs)} cell tables but {len(reference)} reference scores")
    if not (math.isfinite(strength) and strength >= 0):
        raise InvalidInputError(f"strength must be finite and >= 0, got {strength}")
    searches = _searches(fields)
    level = _level(reference)
    labels = GROUPS if level == "group" else SCORES
    index = {lab: i for i, lab in enumerate(labels)}
    ref_idx = np.array([index[s] for s in _labels(reference, level)], np.int64)
    n = len(cs)
    defaults = {f: float(getattr(base, f)) for f in searches}
    evaluations = 0
    cache: dict[tuple, float] = {}

    def score(params: Mapping[str, float]) -> float:
        """:func:`agreement` of the rules with these values; nan for values that make no valid rules."""
        nonlocal evaluations
        key = tuple(round(params[f], 12) for f in searches)
        if key in cache:
            return cache[key]
        try:
            rules = replace(base, **params)  # type: ignore[arg-type]  # FITTABLE_FIELDS are all float thresholds
        except InvalidInputError:
            cache[key] = math.nan
            return math.nan
        evaluations += 1
        pred = cs.categories(rules)
        p = np.array([index[s] for s in _labels(pred, level)], np.int64)
        value = _kappa_q(p, ref_idx, len(labels)) + 0.1 * float((p == ref_idx).mean())
        cache[key] = value
        return value

    def penalty(params: Mapping[str, float]) -> float:
        return strength / n * sum(searches[f].distance(params[f], defaults[f]) ** 2 for f in searches)

    def windowed(values: np.ndarray, w: int) -> np.ndarray:
        if w == 0:
            return values
        padded = np.pad(values, w, mode="edge")
        valid = np.isfinite(padded)
        sums = np.convolve(np.where(valid, padded, 0.0), np.ones(2 * w + 1), "valid")
        counts = np.convolve(valid.astype(np.float64), np.ones(2 * w + 1), "valid")
        with np.errstate(invalid="ignore", divide="ignore"):
            out = sums / counts
        return np.where(np.isfinite(values), out, np.nan)

    def best_of(candidates: list[dict[str, float]], w: int) -> tuple[dict[str, float], float]:
        raw = np.array([score(c) for c in candidates])
        obj = windowed(raw, w) - np.array([penalty(c) for c in candidates])
        obj = np.where(np.isfinite(obj), obj, -np.inf)
        i = int(np.argmax(obj))
        return candidates[i], float(obj[i])

    current = dict(defaults)
    # 1. a common factor on every log-scaled field (a weaker or stronger chromogen moves all bands)
    logs = [f for f, s in searches.items() if s.scale == "log"]
    objective = -math.inf
    if logs:
        ref_search = searches[logs[0]]
        factors = ref_search.grid(1.0)
        candidates = [{**current, **{f: defaults[f] * k for f in logs}} for k in factors]
        current, objective = best_of(candidates, ref_search.window)
    # 2. coordinate sweeps
    for _ in range(max(1, int(max_sweeps))):
        before = dict(current)
        for f, s in searches.items():
            grid = s.grid(defaults[f])
            candidates = [{**current, f: float(v)} for v in grid]
            current, objective = best_of(candidates, s.window)
        if current == before:
            break
    # 3. keep the defaults unless the fit agrees better on these slides by more than its move costs: the
    #    window alone (leaving an edge the defaults sit on) is no reason to move them
    if score(current) - penalty(current) <= score(defaults) + 1e-12:
        current = dict(defaults)
    rules = replace(base, **current)  # type: ignore[arg-type]  # FITTABLE_FIELDS are all float thresholds
    return FitResult(
        rules=rules,
        parameters={f: float(current[f]) for f in searches},
        defaults=defaults,
        agreement=score(current),
        agreement_defaults=score(defaults),
        objective=objective,
        evaluations=evaluations,
        seconds=time.perf_counter() - t0,
    )
