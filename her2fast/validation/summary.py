"""The figures of an evaluation: score vocabulary, per-slide outcomes and the agreement summary.

The data model that :mod:`her2fast.validation.evaluate` computes and :mod:`her2fast.validation.report`
draws: :class:`EvaluationReport` holds one :class:`SlideOutcome` per reference slide and an
:class:`AgreementSummary` (with its :class:`CutoffAgreement` rows). The score vocabulary they compare in
(:data:`SCORES`, :data:`GROUPS`, :func:`normalise_score`, :func:`to_group`, :func:`four_class`) lives
here too. Pure data and pure functions: nothing here scores a slide or reads a file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ..errors import InvalidInputError

__all__ = [
    "SCORES",
    "GROUPS",
    "STATUSES",
    "normalise_score",
    "to_group",
    "four_class",
    "CutoffAgreement",
    "AgreementSummary",
    "SlideOutcome",
    "EvaluationReport",
]

#: The four ASCO/CAP 2018 classes of the agreement tables, in order.
SCORES: tuple[str, ...] = ("0", "1+", "2+", "3+")
#: The clinical groups.
GROUPS: tuple[str, ...] = ("negative", "equivocal", "positive")

_SCORE_WORDS = {
    "0": "0",
    "0+": "0+",
    "1+": "1+",
    "2+": "2+",
    "3+": "3+",
    "1": "1+",
    "2": "2+",
    "3": "3+",
    "null": "0",
    "ultralow": "0+",
}
_GROUP_WORDS = {
    "negative": "negative",
    "neg": "negative",
    "equivocal": "equivocal",
    "positive": "positive",
    "pos": "positive",
}

#: Outcome of one slide: scored, not scorable (a result without a score) or failed (no result).
STATUSES: tuple[str, ...] = ("scored", "not_scorable", "failed")


# ------------------------------------------------------------------------------ score vocabulary
def normalise_score(text: str) -> str:
    """Return the canonical spelling of a score ("0", "0+", "1+", "2+", "3+") or group word.

    Raises
    ------
    InvalidInputError
        For text that is neither; the message lists the accepted spellings.
    """
    key = str(text).strip().lower()
    if key in _SCORE_WORDS:
        return _SCORE_WORDS[key]
    if key in _GROUP_WORDS:
        return _GROUP_WORDS[key]
    raise InvalidInputError(
        f"unknown score {text!r}: use 0, 0+, 1+, 2+, 3+ (or null/ultralow) or negative/equivocal/positive"
    )


def to_group(score: str) -> str:
    """Clinical group of a score: 0, 0+, 1+ -> negative; 2+ -> equivocal; 3+ -> positive."""
    s = normalise_score(score)
    if s in GROUPS:
        return s
    return {"0": "negative", "0+": "negative", "1+": "negative", "2+": "equivocal", "3+": "positive"}[s]


def four_class(score: str) -> str:
    """The ASCO/CAP 2018 class of a score: ``"0+"`` (ultralow) counts as ``"0"``.

    Raises
    ------
    InvalidInputError
        For a clinical group word or an unknown score.
    """
    s = normalise_score(score)
    if s in GROUPS:
        raise InvalidInputError(f"score {score!r} is a clinical group, not an ASCO/CAP class")
    return "0" if s == "0+" else s


# ------------------------------------------------------------------------------------- figures
@dataclass(frozen=True)
class CutoffAgreement:
    """Agreement on one clinically important yes/no question."""

    question: str
    n: int
    agree: int
    sensitivity: float  #: among reference "yes"
    specificity: float  #: among reference "no"

    @property
    def accuracy(self) -> float:
        return self.agree / self.n if self.n else float("nan")


@dataclass(frozen=True)
class AgreementSummary:
    """Everything the validation report prints about a set of slides."""

    labels: tuple[str, ...]
    confusion: np.ndarray  #: rows predicted, columns reference
    accuracy: float
    kappa: dict[str, float]  #: "unweighted", "linear", "quadratic"
    kappa_interval: dict[str, tuple[float, float]]  #: bootstrap 95 % intervals
    precision_recall: dict[str, tuple[float, float]]
    cutoffs: list[CutoffAgreement] = field(default_factory=list)


def _label(score: str, level: str) -> str:
    return to_group(score) if level == "group" else four_class(score)


@dataclass(frozen=True)
class SlideOutcome:
    """One reference row joined with her2fast's result for that slide.

    Attributes
    ----------
    line : int
        Line of the reference CSV.
    slide : str
        The slide as written in the CSV.
    path : str
        The slide file that was scored.
    reference : str
        Canonical reference score or group word.
    status : {"scored", "not_scorable", "failed"}
    score : str or None
        her2fast's ASCO/CAP class ("0", "1+", "2+", "3+"); None unless scored.
    category : str or None
        Five-way category ("0+" = ultralow).
    stratum : str or None
        2023 stratum ("null", "ultralow", "1+", "2+", "3+").
    percent_complete : float or None
        Measured % of tumour cells with complete membrane staining.
    confidence : float or None
    reference_percent_complete : float or None
    ish_amplified : bool or None
    flags : tuple of str
    reason : str or None
        Why there is no score (not scorable or failed), in words.
    outputs : dict of str to str
        Files of the slide's report (``json``, ``overlay``, ``geojson``, ...).
    skipped : bool
        The result was taken from the results store (same content and versions), not computed again.
    tumour_cells : int or None
    reviewed_score : str or None
        The score after a pathologist's sign-off in force (``her2fast view``; the results store's table
        ``reviews``): the algorithm's score when accepted, the new one when overridden; None when nobody
        signed off. The agreement figures are the algorithm's own.
    reviewer : str or None
        Who signed off.
    """

    line: int
    slide: str
    path: str
    reference: str
    status: str
    score: str | None = None
    category: str | None = None
    stratum: str | None = None
    percent_complete: float | None = None
    confidence: float | None = None
    reference_percent_complete: float | None = None
    ish_amplified: bool | None = None
    flags: tuple[str, ...] = ()
    reason: str | None = None
    outputs: Mapping[str, str] = field(default_factory=dict)
    skipped: bool = False
    tumour_cells: int | None = None
    reviewed_score: str | None = None
    reviewer: str | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise InvalidInputError(f"status must be one of {STATUSES}, got {self.status!r}")
        if self.status == "scored" and self.score is None:
            raise InvalidInputError(f"{self.slide}: a scored slide needs a score")

    @property
    def scored(self) -> bool:
        """Whether her2fast gave a score."""
        return self.status == "scored"

    def reference_label(self, level: str) -> str:
        """The reference at the comparison level (``"score"``: four classes, ``"group"``: groups)."""
        return _label(self.reference, level)

    def predicted_label(self, level: str) -> str | None:
        """her2fast's score at the comparison level (None unless scored)."""
        return _label(self.score, level) if self.score is not None else None

    def agrees(self, level: str) -> bool | None:
        """Whether prediction and reference agree at ``level`` (None unless scored)."""
        p = self.predicted_label(level)
        return None if p is None else p == self.reference_label(level)


@dataclass
class EvaluationReport:
    """Everything ``her2fast evaluate`` reports: per-slide outcomes and the agreement figures.

    Attributes
    ----------
    outcomes : list of SlideOutcome
        One per reference row, in the CSV's order.
    level : {"score", "group"}
        Four ASCO/CAP classes, or the clinical groups when the reference is given in group words.
    summary : AgreementSummary or None
        Over the scored slides only (None when no slide was scored).
    ultralow : dict or None
        Null / ultralow split among slides both call HER2-0, when the reference uses ``0+``.
    ish : dict or None
        Predicted (and reference) IHC against ISH, when the reference has ISH results.
    percent_complete : dict or None
        Error of the measured % complete membranes where the reference gives it.
    calibration : list of dict
        Per confidence bin: ``lo``, ``hi``, ``n``, ``mean_confidence``, ``fraction_correct``.
    versions : list of dict
        Distinct ``{"her2fast", "models"}`` that produced the results.
    source : str or None
        The reference CSV.
    n_boot, seed : int
        Bootstrap resamples and seed of the kappa intervals.
    """

    outcomes: list[SlideOutcome]
    level: str
    summary: AgreementSummary | None
    ultralow: dict | None = None
    ish: dict | None = None
    percent_complete: dict | None = None
    calibration: list[dict] = field(default_factory=list)
    versions: list[dict] = field(default_factory=list)
    source: str | None = None
    n_boot: int = 2000
    seed: int = 0

    @property
    def labels(self) -> tuple[str, ...]:
        """Classes of the agreement tables."""
        return GROUPS if self.level == "group" else SCORES

    @property
    def scored(self) -> list[SlideOutcome]:
        """Slides with a score (the figures are over these)."""
        return [o for o in self.outcomes if o.scored]

    @property
    def excluded(self) -> list[SlideOutcome]:
        """Slides not scorable or failed: listed, counted, left out of every agreement figure."""
        return [o for o in self.outcomes if not o.scored]

    @property
    def discordant(self) -> list[SlideOutcome]:
        """Scored slides whose score differs from the reference at the comparison level."""
        return [o for o in self.outcomes if o.agrees(self.level) is False]

    def counts(self) -> dict[str, int]:
        """Slides per status, and in total."""
        out = {s: sum(o.status == s for o in self.outcomes) for s in STATUSES}
        out["total"] = len(self.outcomes)
        out["discordant"] = len(self.discordant)
        out["from_store"] = sum(o.skipped for o in self.outcomes)
        return out

    def to_dict(self) -> dict:
        """JSON-ready dict of every figure (NaN written as null)."""
        s = self.summary
        summary = None
        if s is not None:
            summary = {
                "labels": list(s.labels),
                "confusion": {"rows": "predicted", "columns": "reference", "matrix": s.confusion.tolist()},
                "n": int(s.confusion.sum()),
                "agree": int(np.trace(s.confusion)),
                "accuracy": s.accuracy,
                "kappa": dict(s.kappa),
                "kappa_interval_95": {k: list(v) for k, v in s.kappa_interval.items()},
                "precision_recall": {k: {"precision": p, "recall": r} for k, (p, r) in s.precision_recall.items()},
                "cutoffs": [
                    {
                        "question": c.question,
                        "n": c.n,
                        "agree": c.agree,
                        "accuracy": c.accuracy,
                        "sensitivity": c.sensitivity,
                        "specificity": c.specificity,
                    }
                    for c in s.cutoffs
                ],
            }
        return _json_safe(
            {
                "source": self.source,
                "level": self.level,
                "counts": self.counts(),
                "excluded_from_figures": [
                    {"slide": o.slide, "line": o.line, "status": o.status, "reason": o.reason} for o in self.excluded
                ],
                "agreement": summary,
                "bootstrap": {"n_boot": self.n_boot, "seed": self.seed, "level": 0.95},
                "ultralow": self.ultralow,
                "ish": self.ish,
                "percent_complete": self.percent_complete,
                "calibration": self.calibration,
                "versions": self.versions,
                "slides": [_outcome_dict(o, self.level) for o in self.outcomes],
            }
        )


def _json_safe(v):
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, (np.floating, np.integer)):
        return _json_safe(v.item())
    if isinstance(v, Mapping):
        return {str(k): _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    return v


def _outcome_dict(o: SlideOutcome, level: str) -> dict:
    return {
        "line": o.line,
        "slide": o.slide,
        "path": o.path,
        "status": o.status,
        "reference": o.reference,
        "reference_label": o.reference_label(level),
        "predicted_label": o.predicted_label(level),
        "agrees": o.agrees(level),
        "score": o.score,
        "category": o.category,
        "stratum": o.stratum,
        "percent_complete": o.percent_complete,
        "reference_percent_complete": o.reference_percent_complete,
        "confidence": o.confidence,
        "ish_amplified": o.ish_amplified,
        "tumour_cells": o.tumour_cells,
        "flags": list(o.flags),
        "reason": o.reason,
        "outputs": dict(o.outputs),
        "from_store": o.skipped,
    }
