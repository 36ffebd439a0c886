"""How far a slide's category is from changing under a measurement error, not only under cell sampling.

:func:`~her2fast.scoring.rules.slide_confidence` counts the sampling error of the class fractions: how
likely the same fractions are, had other cells of the same tumour been counted. It does not count the
error of each cell's *measurement*. The membrane DAB optical density that decides a cell's intensity
class moves with the scanner and the lab: a different tone curve, defocus, JPEG compression or a DAB
batch scales every cell's OD together (``benchmarks/robustness.py`` measures it on phantoms, see
docs/scoring.md), and blur moves every cell's completeness together. Such an
error is shared by all cells of a slide, so it does not average out however many cells are counted.

:func:`measurement_confidence` re-scores the cell table under such shared errors: every tumour cell's
membrane OD multiplied by ``k`` (``ln k`` normal, sd ``od_scale_sigma``) and every completeness shifted
by ``d`` (normal, sd ``completeness_sigma``). The probability that the category stays what it is, over
that distribution, is the *measurement confidence*; the smallest ``|ln k|`` and ``|d|`` that change
the category are its margins. A category that changes within the plausible range
(``|ln k| <= flag_od_scale`` or ``|d| <= flag_completeness``) is flagged ``intensity_uncertain``.

Pure: no I/O, no state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidInputError
from .rules import (
    DEFAULT_RULES,
    CellTable,
    ClassFractions,
    ScoringRules,
    slide_category,
)

__all__ = [
    "MeasurementUncertainty",
    "DEFAULT_UNCERTAINTY",
    "MeasurementConfidence",
    "measurement_confidence",
]


@dataclass(frozen=True)
class MeasurementUncertainty:
    """The measurement errors a slide's read-out is expected to carry between scanners and labs.

    Attributes
    ----------
    od_scale_sigma : float
        Standard deviation of ``ln k``, where ``k`` multiplies every cell's membrane DAB OD of a slide
        (scanner tone curve, focus, compression, DAB strength). 0 turns the OD error off.
    completeness_sigma : float
        Standard deviation of a shift added to every cell's completeness (blur merges or breaks
        membrane runs). 0 turns it off.
    flag_od_scale : float
        A category that changes for some ``|ln k| <= flag_od_scale`` is flagged ``intensity_uncertain``.
    flag_completeness : float
        A category that changes for some ``|d| <= flag_completeness`` is flagged ``intensity_uncertain``.
    flagged_confidence : float
        The highest confidence a slide flagged ``intensity_uncertain`` is given.
    quadrature_points : int
        Gauss-Hermite points per error (odd, 3-41): the accuracy of the probability.
    """

    od_scale_sigma: float = 0.15
    completeness_sigma: float = 0.03
    flag_od_scale: float = 0.30
    flag_completeness: float = 0.05
    flagged_confidence: float = 0.8
    quadrature_points: int = 9

    def __post_init__(self) -> None:
        for name in ("od_scale_sigma", "completeness_sigma", "flag_od_scale", "flag_completeness"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or not 0 <= v <= 2:
                raise InvalidInputError(f"MeasurementUncertainty.{name} must be a number in [0, 2], got {v!r}")
        v = self.flagged_confidence
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0.5 <= v <= 1:
            raise InvalidInputError(f"MeasurementUncertainty.flagged_confidence must be in [0.5, 1], got {v!r}")
        q = self.quadrature_points
        if not isinstance(q, int) or isinstance(q, bool) or not 3 <= q <= 41 or q % 2 == 0:
            raise InvalidInputError(f"MeasurementUncertainty.quadrature_points must be an odd int in 3..41, got {q!r}")


#: the errors :func:`her2fast.score` assumes (see docs/scoring.md for where they come from)
DEFAULT_UNCERTAINTY = MeasurementUncertainty()


@dataclass(frozen=True)
class MeasurementConfidence:
    """The category's stability under shared measurement errors (see :func:`measurement_confidence`).

    Attributes
    ----------
    confidence : float
        Probability that the category is unchanged, over the error distribution (0-1).
    od_scale_margin : float
        Smallest ``|ln k|`` (up to ln 2, to 0.001) that changes the category; ``inf`` when none does.
    completeness_margin : float
        Smallest ``|d|`` (up to 0.3, to 0.0005) that changes the category; ``inf`` when none does.
    nearest : str
        The category reached at the smaller of the two margins (relative to its flag range), or ``""``.
    flags : tuple of str
        ``("intensity_uncertain",)`` when a margin is inside its flag range, else ``()``.
    """

    confidence: float
    od_scale_margin: float
    completeness_margin: float
    nearest: str
    flags: tuple[str, ...]


class _Rescorer:
    """The category of a cell table with every OD times ``k`` and every completeness plus ``d``.

    Only the three cumulative counts the category rules read are recomputed (any staining; intense or
    weak-to-moderate complete; intense complete), with the same boundaries as
    :func:`~her2fast.scoring.rules.intensity_class_from_od` (``od >= band``) and
    :func:`~her2fast.scoring.rules.classify_cells` (``completeness >= complete_fraction``).
    """

    def __init__(self, od: np.ndarray, completeness: np.ndarray, rules: ScoringRules) -> None:
        self.n = int(od.size)
        stained = completeness > 0  # a cell with no stained perimeter stays negative under any error
        self.od = od[stained]
        self.comp = completeness[stained]
        self.rules = rules

    def category(self, k: float, d: float) -> str:
        r = self.rules
        od, n = self.od * k, self.n
        faint = int(np.count_nonzero(od >= r.faint_od))
        strong = od >= r.strong_od
        complete = (self.comp + d) >= r.complete_fraction
        n_strong = int(np.count_nonzero(strong))
        intense_complete = int(np.count_nonzero(strong & complete))
        weak_or_more_complete = n_strong + int(np.count_nonzero(~strong & complete & (od >= r.weak_od)))
        counts = np.array(
            [
                n - faint,
                faint - weak_or_more_complete,
                weak_or_more_complete - n_strong,
                n_strong - intense_complete,
                intense_complete,
            ],
            dtype=np.int64,
        )
        return slide_category(ClassFractions(n_tumour_cells=n, per_class=counts / max(n, 1), counts=counts), r)

    def margin(self, category: str, limit: float, axis: str, tol: float) -> tuple[float, str]:
        """Smallest step (``ln k`` or ``d``, either sign, up to ``limit``) that changes the category.

        Every count grows with ``k`` and with ``d`` and the category grows with the counts, so along each
        direction the category changes once at most per boundary: bisection finds the first change.
        """
        best, other = math.inf, ""
        for sign in (-1.0, 1.0):

            def at(s: float, sign: float = sign) -> str:
                return self.category(math.exp(sign * s), 0.0) if axis == "od" else self.category(1.0, sign * s)

            if at(limit) == category:
                continue
            lo, hi = 0.0, limit
            while hi - lo > tol:
                mid = 0.5 * (lo + hi)
                if at(mid) == category:
                    lo = mid
                else:
                    hi = mid
            if hi < best:
                best, other = hi, at(hi)
        return best, other


def measurement_confidence(
    cells: CellTable,
    rules: ScoringRules = DEFAULT_RULES,
    uncertainty: MeasurementUncertainty = DEFAULT_UNCERTAINTY,
) -> MeasurementConfidence:
    """Probability that the slide category survives the shared measurement errors, and its margins.

    Each tumour cell's intensity class is re-derived from ``k * membrane_dab_od`` and its class from
    ``completeness + d`` (cells with no stained perimeter stay unstained); the category of the re-scored
    table is compared with the category of the table as measured. The probability is a Gauss-Hermite
    sum over ``ln k ~ N(0, od_scale_sigma^2)`` and ``d ~ N(0, completeness_sigma^2)``, independent.

    Parameters
    ----------
    cells : CellTable
        The slide's cells (only tumour cells count). Its ``membrane_dab_od`` must be the OD the
        ``intensity`` column was derived from with ``rules`` (true of every table the pipeline makes).
    rules : ScoringRules
    uncertainty : MeasurementUncertainty

    Returns
    -------
    MeasurementConfidence

    Examples
    --------
    >>> import numpy as np
    >>> from her2fast.scoring import CellTable, intensity_class_from_od
    >>> od = np.r_[np.full(150, 1.2), np.full(850, 0.02)].astype(np.float32)  # 15 % strong cells
    >>> t = CellTable(cell_id=np.arange(1000), x=np.zeros(1000), y=np.zeros(1000),
    ...               is_tumour=np.ones(1000, bool), intensity=intensity_class_from_od(od),
    ...               completeness=np.r_[np.ones(150), np.zeros(850)], membrane_dab_od=od)
    >>> m = measurement_confidence(t)   # 1.2 is ln(1.5) = 0.41 above the 0.80 strong cut-off
    >>> round(m.confidence, 3), round(m.od_scale_margin, 2), m.flags
    (0.997, 0.41, ())
    """
    if not isinstance(cells, CellTable):
        raise InvalidInputError(f"cells must be a her2fast CellTable, got {type(cells).__name__}")
    if not isinstance(uncertainty, MeasurementUncertainty):
        raise InvalidInputError(f"uncertainty must be a MeasurementUncertainty, got {type(uncertainty).__name__}")
    tum = cells.is_tumour
    od = np.nan_to_num(cells.membrane_dab_od[tum].astype(np.float64), nan=0.0)
    comp = cells.completeness[tum].astype(np.float64)
    if od.size == 0:
        return MeasurementConfidence(1.0, math.inf, math.inf, "", ())
    # the category as measured, re-derived from the OD column so both sides use the same read-out
    rescore = _Rescorer(od, comp, rules)
    category = rescore.category(1.0, 0.0)
    u = uncertainty
    x, w = np.polynomial.hermite_e.hermegauss(u.quadrature_points)
    w = w / w.sum()
    ks = [(math.exp(u.od_scale_sigma * xi), wi) for xi, wi in zip(x, w)] if u.od_scale_sigma > 0 else [(1.0, 1.0)]
    ds = [(u.completeness_sigma * xj, wj) for xj, wj in zip(x, w)] if u.completeness_sigma > 0 else [(0.0, 1.0)]
    same = sum(wk * wd for k, wk in ks for d, wd in ds if rescore.category(k, d) == category)
    od_margin, od_other = rescore.margin(category, math.log(2.0), "od", 1e-3)
    comp_margin, comp_other = rescore.margin(category, 0.3, "completeness", 5e-4)
    # nearest: the margin that is closer relative to its flag range
    rel_od = od_margin / u.flag_od_scale if u.flag_od_scale > 0 else math.inf
    rel_comp = comp_margin / u.flag_completeness if u.flag_completeness > 0 else math.inf
    nearest = od_other if rel_od <= rel_comp else comp_other
    flagged = (u.flag_od_scale > 0 and od_margin <= u.flag_od_scale) or (
        u.flag_completeness > 0 and comp_margin <= u.flag_completeness
    )
    return MeasurementConfidence(
        confidence=float(min(1.0, max(0.0, same))),
        od_scale_margin=od_margin,
        completeness_margin=comp_margin,
        nearest=nearest,
        flags=("intensity_uncertain",) if flagged else (),
    )
