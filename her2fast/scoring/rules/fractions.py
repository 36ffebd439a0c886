"""The per-slide step: the class mix of the tumour cells (:class:`ClassFractions`, :func:`class_fractions`)
and the ASCO/CAP 2018 category and 2023 stratum it gives (:func:`slide_category`, :func:`slide_stratum`).

Examples
--------
>>> import numpy as np
>>> fr = class_fractions(np.array([4] * 20 + [0] * 80))
>>> fr.n_tumour_cells, slide_category(fr), slide_stratum(fr)
(100, '3+', '3+')
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import InvalidInputError
from .classes import CATEGORIES, DEFAULT_RULES, STRATA, CellClass, ScoringRules

__all__ = ["ClassFractions", "class_fractions", "slide_category", "slide_stratum"]


@dataclass(frozen=True)
class ClassFractions:
    """Fractions of tumour cells per :class:`CellClass` and the cumulative fractions the rules test.

    Attributes
    ----------
    n_tumour_cells : int
    per_class : (5,) float64
        Fraction of tumour cells in each :class:`CellClass`, indexed by the class value.
    at_least_faint : float
        Any membrane staining (classes 1-4): the 1+ / ultralow criterion.
    at_least_weak_complete : float
        Weak-to-moderate or intense complete, or intense incomplete (classes 2-4): the 2+ criterion.
    intense_complete : float
        Class 4: the 3+ criterion.
    """

    n_tumour_cells: int
    per_class: np.ndarray
    counts: np.ndarray | None = None  #: (5,) int64 tumour cells per class, when known

    def _cumulative(self, first: int, last: int = len(CellClass)) -> float:
        # From the counts when known: k / n is correctly rounded, so exactly 10 % is never > 0.10,
        # whereas a sum of rounded per-class fractions may be.
        if self.counts is not None and self.n_tumour_cells:
            return int(np.asarray(self.counts)[first:last].sum()) / self.n_tumour_cells
        return float(self.per_class[first:last].sum())

    @property
    def at_least_faint(self) -> float:
        return self._cumulative(1)

    @property
    def at_least_weak_complete(self) -> float:
        return self._cumulative(2)

    @property
    def intense_complete(self) -> float:
        return self._cumulative(CellClass.INTENSE_COMPLETE)

    @property
    def intense_incomplete(self) -> float:
        """Class 3: the unusual pattern."""
        return self._cumulative(CellClass.INTENSE_INCOMPLETE, CellClass.INTENSE_INCOMPLETE + 1)

    def as_percentages(self) -> dict[str, float]:
        """``{class name (lower case): percentage of tumour cells}`` for reports."""
        return {c.name.lower(): round(100.0 * float(self.per_class[c]), 4) for c in CellClass}


def class_fractions(cell_class: np.ndarray, is_tumour: np.ndarray | None = None) -> ClassFractions:
    """Fractions of tumour cells in each :class:`CellClass`.

    Parameters
    ----------
    cell_class : array_like of int
        Output of :func:`classify_cells`.
    is_tumour : array_like of bool, optional
        Which cells are tumour cells (default: all).
    """
    cls = np.asarray(cell_class)
    if is_tumour is not None:
        tum = np.asarray(is_tumour, dtype=bool)
        if tum.shape != cls.shape:
            raise InvalidInputError(f"is_tumour must have the shape of cell_class {cls.shape}, got {tum.shape}")
        cls = cls[tum]
    n = int(cls.size)
    counts = np.bincount(cls.astype(np.int64).ravel(), minlength=len(CellClass))[: len(CellClass)].astype(np.float64)
    per_class = counts / n if n else counts
    return ClassFractions(n_tumour_cells=n, per_class=per_class, counts=counts.astype(np.int64))


def slide_category(fractions: ClassFractions, rules: ScoringRules = DEFAULT_RULES) -> str:
    """ASCO/CAP category ("0", "0+", "1+", "2+", "3+") from tumour cell class fractions.

    Raises
    ------
    InvalidInputError
        When there are no tumour cells (no category can be given; score more tissue).

    Examples
    --------
    >>> import numpy as np
    >>> slide_category(class_fractions(np.array([4] * 11 + [0] * 89)))
    '3+'
    >>> slide_category(class_fractions(np.array([4] * 10 + [2] + [0] * 89)))  # 10 % is not > 10 %
    '2+'
    """
    if fractions.n_tumour_cells == 0:
        raise InvalidInputError("no tumour cells to score: a category needs at least one tumour cell")
    p = rules.positive_fraction
    if fractions.intense_complete > p:
        return "3+"
    if fractions.at_least_weak_complete > p:
        return "2+"
    if fractions.at_least_faint > p:
        return "1+"
    if fractions.at_least_faint > rules.ultralow_fraction:
        return "0+"
    return "0"


def slide_stratum(fractions: ClassFractions, rules: ScoringRules = DEFAULT_RULES) -> str:
    """The category under the 2023 strata names: "null", "ultralow", "1+", "2+", "3+".

    Examples
    --------
    >>> import numpy as np
    >>> slide_stratum(class_fractions(np.array([1] * 5 + [0] * 95)))
    'ultralow'
    """
    return STRATA[CATEGORIES.index(slide_category(fractions, rules))]
