"""Fit the scoring thresholds to a lab: ``her2fast calibrate REFERENCE.csv --out PROFILE_DIR``.

A lab's pathologists call a membrane "weak" or "intense" on their own stain; the membrane DAB optical
density her2fast measures on that stain is the same for the same stain, but its bands (``faint_od``,
``weak_od``, ``strong_od``) and the completeness threshold (``complete_fraction``) were set on her2fast's
reference stain. :func:`calibrate` reads the same reference CSV as ``her2fast evaluate``, scores each slide
once through the results store (a rerun scores nothing again), keeps every tumour cell's measurements (the
``.cells.npz`` of each result), and fits those thresholds so that the slide scores agree best with the
reference, re-scoring only the cell tables.

The fit (:func:`fit_rules`)
---------------------------
- **What it maximises**: quadratic weighted kappa of the four ASCO/CAP classes (0, 1+, 2+, 3+; the three
  clinical groups when the reference is in those words) plus a tenth of the accuracy, *averaged over a
  window* of each parameter's neighbours (:attr:`ParameterSearch.window`: +-12 % of an OD band, +-0.02 of
  the completeness threshold), so that the fit lands inside a range of values that all agree, not on the
  edge where one slide of the next batch flips.
- **Regularised toward the defaults**: minus ``strength / n * sum(d_i ** 2)``, ``d_i`` the parameter's
  move in units of :attr:`ParameterSearch.unit` (a factor 2 for an OD band, 0.1 for the completeness
  threshold) and ``n`` the number of slides: with 20 slides, halving every OD band costs as much agreement
  as a few slides, so a handful of slides cannot drag the thresholds far, and many slides can.
  The defaults are kept unless the fit agrees better (without the window) by more than its move costs.
- **Search**: a common factor on every log-scaled parameter (a weaker or stronger chromogen moves every
  band together), then coordinate sweeps over each parameter's grid until nothing changes. Generic over the
  :class:`~her2fast.scoring.ScoringRules` fields (:data:`SEARCH` says how each is searched); every
  candidate is scored by the rules themselves (:func:`~her2fast.scoring.intensity_class_from_od`,
  :func:`~her2fast.scoring.classify_cells`, :func:`~her2fast.scoring.slide_category`), so the fit
  follows the rules and the cell read-out, whatever they are.

Honest figures (:func:`cross_validate`)
---------------------------------------
Stratified k-fold cross-validation (leave-one-slide-out when ``folds >= n``): each fold is fitted on
the other slides and scored with its own fit, so every slide's calibrated score comes from a profile that
never saw it. The held-out scores of the calibrated fits and the defaults' scores are compared with the
reference: accuracy, quadratic kappa, the 0 / HER2-low / 3+ agreement, each with a percentile bootstrap
interval over slides, and the paired difference. Written to ``calibration.json`` and ``calibration.html``;
warnings when the set is small or one-sided (CAP asks for at least 20 positive and 20 negative cases).
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError
from ..scoring import (
    DEFAULT_FITTED_FIELDS,
    DEFAULT_RULES,
    FITTABLE_FIELDS,
    CalibrationProfile,
    CellTable,
    ClassFractions,
    ScoringRules,
    classify_cells,
    intensity_class_from_od,
    measurement_settings,
    slide_category,
)
from .reference_csv import ReferenceRow, read_reference_csv
from .statistics import confusion_matrix
from .summary import GROUPS, SCORES, four_class, to_group

__all__ = [
    "ParameterSearch",
    "SEARCH",
    "CellSet",
    "FitResult",
    "CrossValidation",
    "CalibrationReport",
    "agreement",
    "fit_rules",
    "cross_validate",
    "agreement_figures",
    "reference_warnings",
    "calibrate",
    "write_calibration",
    "format_calibration",
    "write_html",
]

#: labels of the HER2-0 / HER2-low / 3+ agreement
LOW_LABELS: tuple[str, ...] = ("0", "low", "3+")
_N_CLASSES = 5  # CellClass values


# ------------------------------------------------------------------------------------ search spaces
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


# ------------------------------------------------------------------------------------ cell tables
@dataclass
class CellSet:
    """The tumour cells of many slides, concatenated, for re-scoring them all at once under other rules.

    Attributes
    ----------
    od, completeness : (m,) arrays
        ``membrane_dab_od`` and ``completeness`` of every tumour cell.
    slide : (m,) int64
        The slide (0..n-1) each cell belongs to.
    n_cells : (n,) int64
        Tumour cells per slide (each > 0).
    """

    od: np.ndarray
    completeness: np.ndarray
    slide: np.ndarray
    n_cells: np.ndarray

    @classmethod
    def from_tables(cls, tables: Sequence[CellTable]) -> CellSet:
        """From measured cell tables (one per slide; only tumour cells are kept).

        Raises
        ------
        InvalidInputError
            A table without tumour cells (it has no score to calibrate).
        """
        ods, comps, idx, counts = [], [], [], []
        for i, t in enumerate(tables):
            if not isinstance(t, CellTable):
                raise InvalidInputError(f"tables[{i}] must be a CellTable, got {type(t).__name__}")
            tum = np.asarray(t.is_tumour, bool)
            k = int(tum.sum())
            if k == 0:
                raise InvalidInputError(f"tables[{i}] has no tumour cells: leave that slide out")
            ods.append(t.membrane_dab_od[tum])
            comps.append(t.completeness[tum])
            idx.append(np.full(k, i, np.int64))
            counts.append(k)
        if not counts:
            raise InvalidInputError("no cell tables to calibrate on")
        return cls(
            od=np.concatenate(ods).astype(np.float64),
            completeness=np.concatenate(comps).astype(np.float64),
            slide=np.concatenate(idx),
            n_cells=np.asarray(counts, np.int64),
        )

    def __len__(self) -> int:
        return int(self.n_cells.shape[0])

    def subset(self, slides: Sequence[int] | np.ndarray) -> CellSet:
        """The cells of these slides, renumbered 0..len(slides)-1 in the given order."""
        slides = np.asarray(slides, np.int64)
        remap = np.full(len(self), -1, np.int64)
        remap[slides] = np.arange(len(slides))
        keep = remap[self.slide] >= 0
        order = np.argsort(remap[self.slide[keep]], kind="stable")
        return CellSet(
            od=self.od[keep][order],
            completeness=self.completeness[keep][order],
            slide=remap[self.slide[keep]][order],
            n_cells=self.n_cells[slides],
        )

    def categories(self, rules: ScoringRules) -> list[str]:
        """The slide category ("0", "0+", "1+", "2+", "3+") of every slide under ``rules``.

        The same as :func:`her2fast.scoring.rescore_cells` of each slide's table (tested).
        """
        cls = classify_cells(intensity_class_from_od(self.od, rules), self.completeness, rules)
        n = len(self)
        counts = np.bincount(self.slide * _N_CLASSES + cls, minlength=n * _N_CLASSES).reshape(n, _N_CLASSES)
        out = []
        for k, c in zip(self.n_cells.tolist(), counts):
            out.append(slide_category(ClassFractions(n_tumour_cells=k, per_class=c / k, counts=c), rules))
        return out


# ------------------------------------------------------------------------------------ agreement
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


# ------------------------------------------------------------------------------------ fitting
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
    """Fit ScoringRules fields to reference scores by re-scoring cell tables (see the module docstring).

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


# ------------------------------------------------------------------------------------ cross-validation
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


# ------------------------------------------------------------------------------------ figures
def _low3(label: str) -> str:
    return {"0": "0", "1+": "low", "2+": "low", "3+": "3+"}[label]


def _interval(values: np.ndarray, level: float = 0.95) -> list[float]:
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(values, [a, 1.0 - a])
    return [round(float(lo), 4), round(float(hi), 4)]


def agreement_figures(
    default: Sequence[str], calibrated: Sequence[str], reference: Sequence[str], *, n_boot: int = 2000, seed: int = 0
) -> dict:
    """Agreement of two sets of scores with the reference, with percentile bootstrap intervals over slides.

    Parameters
    ----------
    default, calibrated : sequence of str
        Slide scores (five-way categories are folded to the four ASCO/CAP classes).
    reference : sequence of str
    n_boot, seed : int
        Bootstrap resamples (the same resamples for both, so the difference is paired).

    Returns
    -------
    dict
        ``n``, ``level`` (``"score"`` or ``"group"``), ``labels``; per ``default`` / ``calibrated``:
        ``accuracy``, ``kappa_quadratic``, ``kappa_unweighted`` (and ``low_agreement``: HER2-0 vs
        HER2-low (1+, 2+) vs 3+, for scores), ``confusion`` (rows predicted, columns reference), each
        figure with ``*_ci`` (95 %); ``difference``: calibrated - default of accuracy and quadratic
        kappa with their paired intervals.
    """
    from .statistics import cohen_kappa

    level = _level(reference)
    labels = GROUPS if level == "group" else SCORES
    ref = _labels(reference, level)
    sets = {"default": _labels(default, level), "calibrated": _labels(calibrated, level)}
    n = len(ref)
    if not n or any(len(v) != n for v in sets.values()):
        raise InvalidInputError("default, calibrated and reference must hold one score per slide, and some")
    index = {lab: i for i, lab in enumerate(labels)}
    r = np.array([index[s] for s in ref])
    rng = np.random.default_rng(seed)
    boot = rng.integers(0, n, size=(max(1, int(n_boot)), n))
    out: dict = {"n": n, "level": level, "labels": list(labels)}
    per: dict[str, dict[str, np.ndarray]] = {}
    for name, pred in sets.items():
        p = np.array([index[s] for s in pred])
        figs: dict = {
            "accuracy": float((p == r).mean()),
            "kappa_quadratic": cohen_kappa(pred, ref, labels, "quadratic"),
            "kappa_unweighted": cohen_kappa(pred, ref, labels),
            "confusion": confusion_matrix(pred, ref, labels).tolist(),
        }
        samples = {
            "accuracy": (p[boot] == r[boot]).mean(axis=1),
            "kappa_quadratic": np.array([_kappa_q(p[b], r[b], len(labels)) for b in boot]),
        }
        if level == "score":
            pl = np.array([_low3(s) for s in pred])
            rl = np.array([_low3(s) for s in ref])
            figs["low_agreement"] = float((pl == rl).mean())
            samples["low_agreement"] = (pl[boot] == rl[boot]).mean(axis=1)
        for key, vals in samples.items():
            figs[f"{key}_ci"] = _interval(vals)
        figs = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in figs.items()}
        out[name] = figs
        per[name] = samples
    out["difference"] = {
        key: {
            "value": round(out["calibrated"][key] - out["default"][key], 4),
            "ci": _interval(per["calibrated"][key] - per["default"][key]),
        }
        for key in per["default"]
    }
    return out


def reference_warnings(reference: Sequence[str], ish: Sequence[bool | None] | None = None) -> list[str]:
    """Why a reference set is too small or too one-sided to calibrate on (empty when it is fine).

    CAP's validation of an IHC assay asks for at least 20 positive and 20 negative cases; a class with few
    slides leaves the threshold next to it resting on those few (it stays near its default).

    Parameters
    ----------
    reference : sequence of str
        Reference scores of the slides the fit uses.
    ish : sequence of bool or None, optional
        ISH amplified per slide, where known: a 2+ with ISH counts as positive (amplified) or negative.
    """
    warnings = []
    level = _level(reference)
    labels = _labels(reference, level)
    ish = list(ish) if ish is not None else [None] * len(labels)
    if level == "group":
        pos = sum(lab == "positive" for lab in labels)
        neg = sum(lab == "negative" for lab in labels)
        classes = GROUPS
    else:
        pos = sum(lab == "3+" or (lab == "2+" and a is True) for lab, a in zip(labels, ish))
        neg = sum(lab in ("0", "1+") or (lab == "2+" and a is False) for lab, a in zip(labels, ish))
        classes = SCORES
    if pos < 20 or neg < 20:
        warnings.append(
            f"small reference set: {pos} positive and {neg} negative slides; CAP asks for at least 20 positive and "
            "20 negative cases to validate an assay, and a calibration fitted on fewer is uncertain (see the "
            "cross-validated intervals)"
        )
    for c in classes:
        k = labels.count(c)
        if k == 0:
            warnings.append(
                f"one-sided reference set: no slide is {c}; the threshold between {c} and its neighbours cannot be "
                "fitted from it and stays near its default"
            )
        elif k < 3:
            warnings.append(
                f"only {k} reference slide(s) {c}: the threshold next to {c} rests on them; add more {c} slides"
            )
    return warnings


# ------------------------------------------------------------------------------------ the command
@dataclass
class CalibrationReport:
    """What :func:`calibrate` found and wrote.

    Attributes
    ----------
    profile : CalibrationProfile
    fit : FitResult
        The fit on every usable slide (the profile's parameters).
    cross_validation : CrossValidation
    figures : dict
        :func:`agreement_figures` of the held-out scores.
    slides : list of dict
        Per reference slide: ``line``, ``slide``, ``reference``, ``status`` (``used`` / ``excluded``), the
        scores ``default``, ``calibrated`` (the full fit), ``held_out`` (its fold's fit), ``fold``,
        ``tumour_cells``, ``reason``.
    warnings : list of str
    timings : dict of str to float
        ``scoring`` (slides, from the store when already done), ``fit``, ``cross_validation``.
    files : dict of str to Path
    """

    profile: CalibrationProfile
    fit: FitResult
    cross_validation: CrossValidation
    figures: dict
    slides: list[dict]
    warnings: list[str]
    timings: dict[str, float]
    files: dict[str, Path] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready dict (``calibration.json``)."""
        params = {
            f: {
                "default": self.fit.defaults[f],
                "calibrated": round(self.fit.parameters[f], 6),
                "folds_min": round(min(p[f] for p in self.cross_validation.fold_parameters), 6),
                "folds_max": round(max(p[f] for p in self.cross_validation.fold_parameters), 6),
            }
            for f in self.fit.parameters
        }
        return {
            "profile": {"name": self.profile.name, "sha256": self.profile.sha256},
            "her2fast_version": self.profile.her2fast_version,
            "models": dict(self.profile.models),
            "reference": dict(self.profile.reference),
            "parameters": params,
            "fit": {
                "agreement_calibrated": round(self.fit.agreement, 4),
                "agreement_defaults": round(self.fit.agreement_defaults, 4),
                "evaluations": self.fit.evaluations,
                "seconds": round(self.fit.seconds, 3),
            },
            "cross_validation": {
                "folds": len(self.cross_validation.fold_parameters),
                "figures": self.figures,
            },
            "warnings": list(self.warnings),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "slides": self.slides,
        }


def _fmt(v, nd: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _ci(figs: Mapping, key: str) -> str:
    lo, hi = figs[f"{key}_ci"]
    return f"{figs[key]:.3f} [{lo:.3f}, {hi:.3f}]"


def format_calibration(report: CalibrationReport) -> str:
    """The text ``her2fast calibrate`` prints."""
    f = report.figures
    lines = [f"calibration profile {report.profile.name!r} (sha256 {report.profile.sha256[:12]})"]
    lines.append(
        f"  reference: {report.profile.reference.get('scored')} slides used of {report.profile.reference.get('slides')}"
    )
    for name, p in report.to_dict()["parameters"].items():
        lines.append(
            f"  {name:18s} default {p['default']:.4g} -> {p['calibrated']:.4g}  (folds {p['folds_min']:.4g}-{p['folds_max']:.4g})"
        )
    lines.append(
        f"  held-out agreement ({len(report.cross_validation.fold_parameters)}-fold cross-validation, 95 % bootstrap intervals):"
    )
    keys = ["accuracy", "kappa_quadratic"] + (["low_agreement"] if "low_agreement" in f["default"] else [])
    names = {"accuracy": "accuracy", "kappa_quadratic": "quadratic kappa", "low_agreement": "0 / low / 3+"}
    for key in keys:
        d = f["difference"][key]
        lines.append(
            f"    {names[key]:16s} defaults {_ci(f['default'], key)}   calibrated {_ci(f['calibrated'], key)}   "
            f"difference {d['value']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]"
        )
    for w in report.warnings:
        lines.append(f"  warning: {w}")
    return "\n".join(lines)


def _html_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    e = html.escape
    head = "".join(f"<th>{e(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{e(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_html(report: CalibrationReport, path: str | Path) -> Path:
    """``calibration.html``: one self-contained page (every string HTML-escaped)."""
    e = html.escape
    d = report.to_dict()
    f = report.figures
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{e('her2fast calibration: ' + report.profile.name)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #bbb;padding:3px 8px;text-align:left}.warn{background:#fff3cd;padding:.5em}</style>",
        "</head><body>",
        f"<h1>Calibration profile {e(report.profile.name)}</h1>",
        f"<p>sha256 {e(report.profile.sha256)}; her2fast {e(report.profile.her2fast_version)}; created "
        f"{e(report.profile.created)}; reference {e(str(report.profile.reference.get('file', '')))} (sha256 "
        f"{e(str(report.profile.reference.get('sha256', ''))[:16])}, {e(str(report.profile.reference.get('scored')))}"
        f" of {e(str(report.profile.reference.get('slides')))} slides used).</p>",
    ]
    for w in report.warnings:
        parts.append(f"<p class='warn'>Warning: {e(w)}</p>")
    parts.append("<h2>Parameters</h2>")
    parts.append(
        _html_table(
            ["parameter", "default", "calibrated", "range over folds"],
            [
                [k, p["default"], p["calibrated"], f"{p['folds_min']:.4g} - {p['folds_max']:.4g}"]
                for k, p in d["parameters"].items()
            ],
        )
    )
    parts.append(
        f"<h2>Held-out agreement</h2><p>{len(report.cross_validation.fold_parameters)}-fold cross-validation: "
        "every slide scored by a fit that never saw it; 95 % percentile bootstrap intervals over slides; the "
        "difference is paired.</p>"
    )
    keys = ["accuracy", "kappa_quadratic"] + (["low_agreement"] if "low_agreement" in f["default"] else [])
    parts.append(
        _html_table(
            ["figure", "defaults", "calibrated", "difference"],
            [
                [
                    k,
                    _ci(f["default"], k),
                    _ci(f["calibrated"], k),
                    f"{f['difference'][k]['value']:+.3f} [{f['difference'][k]['ci'][0]:+.3f}, "
                    f"{f['difference'][k]['ci'][1]:+.3f}]",
                ]
                for k in keys
            ],
        )
    )
    for name in ("default", "calibrated"):
        parts.append(f"<h3>Confusion, {e(name)} (rows predicted, columns reference)</h3>")
        parts.append(
            _html_table(["", *f["labels"]], [[lab, *row] for lab, row in zip(f["labels"], f[name]["confusion"])])
        )
    parts.append("<h2>Slides</h2>")
    parts.append(
        _html_table(
            ["line", "slide", "reference", "status", "defaults", "calibrated (held out)", "calibrated (all)", "reason"],
            [
                [
                    s["line"],
                    s["slide"],
                    s["reference"],
                    s["status"],
                    s.get("default"),
                    s.get("held_out"),
                    s.get("calibrated"),
                    s.get("reason"),
                ]
                for s in report.slides
            ],
        )
    )
    parts.append("</body></html>")
    out = Path(path)
    out.write_text("\n".join(parts), encoding="utf-8")
    return out


def write_calibration(report: CalibrationReport, out_dir: str | Path) -> dict[str, Path]:
    """Write ``profile.json``, ``calibration.json`` and ``calibration.html`` into ``out_dir``."""
    from ..io.profile import save_profile

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"profile": save_profile(report.profile, out)}
    files["json"] = out / "calibration.json"
    files["json"].write_text(json.dumps(report.to_dict(), indent=1, allow_nan=False), encoding="utf-8")
    files["html"] = write_html(report, out / "calibration.html")
    report.files = files
    return files


def _file_sha256(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    data = path.read_bytes()
    h.update(data)
    return h.hexdigest(), len(data)


def calibrate(
    reference_csv: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    name: str | None = None,
    scores_dir: str | os.PathLike | None = None,
    store=None,
    mpp: float | None = None,
    settings=None,
    providers="auto",
    workers: int | None = None,
    progress: bool = True,
    scheduler=None,
    fields: Sequence[str] = DEFAULT_FITTED_FIELDS,
    strength: float = 1.0,
    folds: int = 10,
    n_boot: int = 2000,
    seed: int = 0,
) -> CalibrationReport:
    """Fit the scoring thresholds to a lab's reference slides and write the profile with honest figures.

    Parameters
    ----------
    reference_csv : str or PathLike
        ``slide,score[,percent_complete][,ish]`` as ``her2fast evaluate`` reads it
        (:func:`~her2fast.validation.reference_csv.read_reference_csv`).
    out_dir : str or PathLike
        The profile folder: ``profile.json`` (what ``--profile`` takes), ``calibration.json``,
        ``calibration.html``.
    name : str, optional
        The profile's name (default: the CSV's name and today's date).
    scores_dir : str or PathLike, optional
        Where the slides' results go (default ``out_dir/slides``); give the ``--out`` folder of an earlier
        ``her2fast evaluate`` or ``batch`` of these slides and nothing is scored again.
    store : ResultsStore, str or PathLike, optional
        The results store (default ``scores_dir/results.db``).
    mpp, settings, providers, workers, progress, scheduler
        As :func:`her2fast.service.batch.run_batch`. ``settings.rules`` are the defaults the fit starts
        from; the profile records the measurement settings and refuses runs with others.
    fields : sequence of str
        The ScoringRules fields to fit.
    strength : float
        Regularisation toward the defaults (:func:`fit_rules`).
    folds : int
        Cross-validation folds (leave-one-slide-out when at least the number of slides).
    n_boot, seed : int
        Bootstrap resamples and seed (folds and intervals).

    Returns
    -------
    CalibrationReport
        With ``files``: ``profile``, ``json``, ``html``.

    Raises
    ------
    InvalidInputError
        A problem in the CSV, fewer than 4 usable slides, or a reference of one class only.
    """
    from .. import __version__
    from ..pipeline import ScoreSettings
    from ..service.batch import model_versions, run_batch

    settings = ScoreSettings() if settings is None else settings
    if not isinstance(settings, ScoreSettings):
        raise InvalidInputError(f"settings must be a her2fast.ScoreSettings, got {type(settings).__name__}")
    _searches(fields)
    csv_path = Path(reference_csv)
    refs: list[ReferenceRow] = read_reference_csv(csv_path, check_files=True)
    out = Path(out_dir)
    work = Path(scores_dir) if scores_dir is not None else out / "slides"
    paths = [Path(r.slide) if Path(r.slide).is_absolute() else csv_path.parent / r.slide for r in refs]
    t0 = time.perf_counter()
    batch = run_batch(
        [str(p) for p in paths],
        work,
        store=store,
        workers=workers,
        mpp=mpp,
        settings=settings,
        providers=providers,
        progress=progress,
        scheduler=scheduler,
        pictures=False,
        geojson=False,
    )
    t_scoring = time.perf_counter() - t0
    from .evaluate import _align_rows

    rows = _align_rows(paths, list(batch.rows))
    tables: list[CellTable] = []
    used_refs: list[ReferenceRow] = []
    slides: list[dict] = []
    slide_hashes = []
    for ref, row in zip(refs, rows):
        entry = {"line": ref.line, "slide": ref.slide, "reference": ref.score, "status": "excluded"}
        slides.append(entry)
        if row is None or row.get("status") != "ok":
            entry["reason"] = str((row or {}).get("error") or "no result")
            continue
        if row.get("score") is None:
            entry["reason"] = f"not scorable: {row.get('not_scorable')}"
            continue
        cells_file = (row.get("outputs") or {}).get("cells")
        try:
            table = CellTable.load_npz(cells_file) if cells_file else None
        except (OSError, ValueError) as exc:
            entry["reason"] = (
                f"cannot read the cell table {cells_file}: {exc}; score the slide again (new scores folder)"
            )
            continue
        if table is None:
            entry["reason"] = "the result has no cell table; score the slide again (new scores folder)"
            continue
        if not table.is_tumour.any():
            entry["reason"] = "no tumour cells"
            continue
        entry.update(status="used", tumour_cells=int(table.is_tumour.sum()), index=len(tables))
        tables.append(table)
        used_refs.append(ref)
        slide_hashes.append(f"{row.get('slide_sha256')},{ref.score}")
    reference = [r.score for r in used_refs]
    if len(tables) < 4:
        raise InvalidInputError(
            f"only {len(tables)} of the {len(refs)} reference slides were scored; at least 4 are needed to "
            f"calibrate (CAP asks for 20 positive and 20 negative); see {work} for why the others failed"
        )
    level = _level(reference)
    if len(set(_labels(reference, level))) < 2:
        raise InvalidInputError(
            f"every usable reference slide is {_labels(reference, level)[0]}: a calibration needs slides of at "
            "least two classes (CAP asks for 20 positive and 20 negative)"
        )
    cs = CellSet.from_tables(tables)
    base = settings.rules
    fit = fit_rules(cs, reference, fields=fields, base=base, strength=strength)
    cv = cross_validate(cs, reference, folds=folds, seed=seed, fields=fields, base=base, strength=strength)
    figures = agreement_figures(cv.default, cv.calibrated, reference, n_boot=n_boot, seed=seed)
    warnings = reference_warnings(reference, [r.ish_amplified for r in used_refs])
    excluded = [s for s in slides if s["status"] == "excluded"]
    if excluded:
        warnings.append(
            f"{len(excluded)} reference slide(s) left out (failed or not scorable): "
            + ", ".join(f"{s['slide']} ({s['reason']})" for s in excluded[:5])
            + (" ..." if len(excluded) > 5 else "")
        )
    d = figures["difference"]
    if d["accuracy"]["value"] < 0 or d["kappa_quadratic"]["value"] < 0:
        warnings.append(
            "on held-out slides the calibrated thresholds agree less with the reference than the defaults: keep "
            "the defaults (score without --profile)"
        )
    elif d["accuracy"]["ci"][0] <= 0:
        warnings.append(
            "the held-out gain over the defaults is within the bootstrap interval of no gain: the reference set "
            "cannot show that the calibration helps"
        )
    full = cs.categories(fit.rules)
    for s in slides:
        if s["status"] == "used":
            i = s.pop("index")
            s.update(default=cv.default[i], calibrated=full[i], held_out=cv.calibrated[i], fold=cv.fold[i])
    versions = model_versions(settings)
    sha, size = _file_sha256(csv_path)
    now = datetime.now(timezone.utc)
    summary = {
        "cross_validation_folds": len(cv.fold_parameters),
        "held_out": {
            k: {
                kk: figures[k][kk]
                for kk in (
                    "accuracy",
                    "accuracy_ci",
                    "kappa_quadratic",
                    "kappa_quadratic_ci",
                    "low_agreement",
                    "low_agreement_ci",
                )
                if kk in figures[k]
            }
            for k in ("default", "calibrated")
        },
    }
    by_score: dict[str, int] = {}
    for lab in _labels(reference, level):
        by_score[lab] = by_score.get(lab, 0) + 1
    profile = CalibrationProfile(
        name=name or f"{csv_path.stem} {now.date().isoformat()}",
        parameters=fit.parameters,
        models={k: v for k, v in versions.items() if k not in ("settings", "profile")},
        her2fast_version=__version__,
        measurement=measurement_settings(settings.to_dict()),
        created=now.isoformat(timespec="seconds"),
        reference={
            "file": csv_path.name,
            "sha256": sha,
            "bytes": size,
            "slides": len(refs),
            "scored": len(tables),
            "by_score": by_score,
            "slides_sha256": hashlib.sha256("\n".join(sorted(slide_hashes)).encode()).hexdigest(),
        },
        figures=summary,
        defaults=fit.defaults,
        warnings=warnings,
    )
    report = CalibrationReport(
        profile=profile,
        fit=fit,
        cross_validation=cv,
        figures=figures,
        slides=slides,
        warnings=warnings,
        timings={"scoring": t_scoring, "fit": fit.seconds, "cross_validation": cv.seconds},
    )
    write_calibration(report, out)
    # the profile as written (its sha256 is that of the file, what results record)
    from ..io.profile import load_profile

    report.profile = load_profile(report.files["profile"])
    report.files["json"].write_text(json.dumps(report.to_dict(), indent=1, allow_nan=False), encoding="utf-8")
    write_html(report, report.files["html"])
    return report
