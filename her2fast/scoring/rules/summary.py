"""A slide scored from its cell table (:func:`score_cells`): category, stratum, confidence and the summary
figures (:func:`slide_summary`: % complete membranes, closed membranes, mean membrane OD).

Examples
--------
>>> import numpy as np
>>> n = 200
>>> cells = CellTable(cell_id=np.arange(n), x=np.zeros(n), y=np.zeros(n), is_tumour=np.ones(n, bool),
...                   intensity=np.full(n, 3, np.int8), completeness=np.ones(n), membrane_dab_od=np.full(n, 1.0),
...                   closed=np.ones(n, bool))
>>> r = score_cells(cells)
>>> r.category, r.stratum, r.summary.percent_complete
('3+', '3+', 100.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .classes import CATEGORIES, DEFAULT_RULES, STRATA, ScoringRules
from .confidence import SlideConfidence, slide_confidence
from .fractions import ClassFractions, class_fractions, slide_category
from .table import CellTable

__all__ = ["SlideSummary", "ScoringResult", "slide_summary", "score_cells"]


@dataclass(frozen=True)
class SlideSummary:
    """Slide-level membrane statistics of the tumour cells (reports).

    Attributes
    ----------
    n_tumour_cells : int
    percent_complete : float
        % of tumour cells with a stained, complete membrane (completeness >= ``complete_fraction``).
    n_closed : int
        Tumour cells inside a closed membrane loop.
    closed_ratio : float
        ``n_closed / n_tumour_cells`` (0 without tumour cells).
    mean_membrane_od : float
        Mean membrane DAB OD of the stained tumour cells (0 when none is stained).
    """

    n_tumour_cells: int
    percent_complete: float
    n_closed: int
    closed_ratio: float
    mean_membrane_od: float


@dataclass(frozen=True)
class ScoringResult:
    """The slide category and the fractions it was decided from.

    ``stratum`` is the category under the 2023 strata names (:data:`STRATA`), ``confidence`` and
    ``summary`` come from :func:`slide_confidence` and :func:`slide_summary`.
    """

    category: str
    fractions: ClassFractions
    rules: ScoringRules
    stratum: str = ""
    confidence: SlideConfidence | None = None
    summary: SlideSummary | None = None


def slide_summary(cells: CellTable, rules: ScoringRules = DEFAULT_RULES) -> SlideSummary:
    """% complete membranes, closed-membrane count and ratio, mean membrane OD of the tumour cells."""
    t = cells.select(cells.is_tumour)
    n = len(t)
    stained = (t.intensity > 0) & (t.completeness > 0)
    complete = stained & (t.completeness.astype(np.float64) >= rules.complete_fraction)
    n_closed = int(t.closed.sum())
    return SlideSummary(
        n_tumour_cells=n,
        percent_complete=100.0 * int(complete.sum()) / n if n else 0.0,
        n_closed=n_closed,
        closed_ratio=n_closed / n if n else 0.0,
        mean_membrane_od=float(t.membrane_dab_od[stained].astype(np.float64).mean()) if stained.any() else 0.0,
    )


def score_cells(cells: CellTable, rules: ScoringRules = DEFAULT_RULES) -> ScoringResult:
    """Classify the cells of a table and give the slide category, stratum, confidence and summary.

    Pure (no I/O). Raises :class:`~her2fast.errors.InvalidInputError` without tumour cells.
    """
    fr = class_fractions(cells.cell_class(rules), cells.is_tumour)
    category = slide_category(fr, rules)
    return ScoringResult(
        category=category,
        fractions=fr,
        rules=rules,
        stratum=STRATA[CATEGORIES.index(category)],
        confidence=slide_confidence(fr, rules),
        summary=slide_summary(cells, rules),
    )
