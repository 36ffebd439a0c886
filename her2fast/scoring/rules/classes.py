"""The rules and the per-cell step: :class:`ScoringRules` (the thresholds), the intensity and cell classes
(:class:`IntensityClass`, :class:`CellClass`), and a cell's class from its membrane OD and completeness
(:func:`intensity_class_from_od`, :func:`classify_cells`); the slide categories (:data:`CATEGORIES`,
:data:`STRATA`).

Examples
--------
>>> CellClass(int(classify_cells([3], [1.0])[0])).name, DEFAULT_RULES.complete_fraction <= 1.0
('INTENSE_COMPLETE', True)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from ...errors import InvalidInputError

__all__ = [
    "CATEGORIES",
    "IntensityClass",
    "CellClass",
    "ScoringRules",
    "DEFAULT_RULES",
    "STRATA",
    "intensity_class_from_od",
    "classify_cells",
]


#: The slide categories, in increasing order of HER2 expression ("0" = null, "0+" = ultralow).
CATEGORIES: tuple[str, ...] = ("0", "0+", "1+", "2+", "3+")
#: The same categories under the names of the 2023 strata (reports, ``SlideResult.stratum``).
STRATA: tuple[str, ...] = ("null", "ultralow", "1+", "2+", "3+")


class IntensityClass(IntEnum):
    """Membrane staining intensity of one cell, as a pathologist grades it."""

    NONE = 0
    FAINT = 1  #: faint / barely perceptible
    WEAK_MODERATE = 2
    STRONG = 3  #: intense


class CellClass(IntEnum):
    """Per-cell ASCO/CAP class from intensity and completeness (see :func:`classify_cells`)."""

    NEGATIVE = 0  #: no membrane staining
    FAINT_INCOMPLETE = 1  #: faint (any completeness) or weak-moderate but incomplete: a "1+ cell"
    WEAK_MODERATE_COMPLETE = 2  #: a "2+ cell"
    INTENSE_INCOMPLETE = 3  #: the "unusual" pattern; counts towards 2+
    INTENSE_COMPLETE = 4  #: a "3+ cell"


@dataclass(frozen=True)
class ScoringRules:
    """Thresholds of the ASCO/CAP rules; the defaults are the guideline's.

    Parameters
    ----------
    positive_fraction : float
        A criterion is met when *more than* this fraction of tumour cells meet it (ASCO/CAP: 10 %).
    complete_fraction : float
        A membrane is *complete* when at least this fraction of its perimeter is stained.
    near_cutoff_z : float
        :func:`slide_confidence` flags a slide ``"near_cutoff"`` when a criterion that decides its
        category is fewer than this many binomial standard errors from its threshold (2.0).
    min_tumour_cells : int
        Fewer tumour cells than this are flagged ``"few_cells"`` (200).
    faint_od, weak_od, strong_od : float
        Lower bounds of the *measured* membrane DAB optical density of the FAINT, WEAK_MODERATE and
        STRONG intensity classes (0.05, 0.15, 0.80), used by :func:`intensity_class_from_od` for measured
        cells. The measure (:func:`her2fast.stages.cells.measure_tile`, ``membrane_dab_od``) is the 75th
        percentile over a cell's covered rays of the peak deconvolved DAB OD of its own membrane run,
        gated by the own side of the membrane ridge (a neighbour's membrane seen through the blur counts
        0), minus the cell's cytoplasmic DAB. weak_od was fitted on training-seed phantom tiles (0.153,
        ``benchmarks/calibrate_intensity.py``); faint_od (whose tile fit is degenerate, 0.002) and
        strong_od (tile fit 0.67) were chosen on training-seed phantom slides (seeds 801-810, every
        preset: 115/120, the old measure and bands 102/120), never on held-out ones.
        The phantom's rendering bands are 0.08 / 0.40 / 1.20 on the renderer's own undeconvolved DAB
        (``docs/synth.md``). docs/scoring.md has the figures.
    ultralow_fraction : float
        HER2-ultralow (``"0+"``) needs faint staining in *more than* this fraction of tumour cells (1 %).
        The guideline's line is "> 0 %"; a measured slide always has a few cells measured faint by
        noise (held-out null phantoms: 0.04-0.05 % of ~2,200 tumour cells, i.e. one cell), so a slide
        would never be null. 0 gives the guideline's literal rule. Below ``positive_fraction``.
    """

    positive_fraction: float = 0.10
    complete_fraction: float = 0.90
    faint_od: float = 0.05
    weak_od: float = 0.15
    strong_od: float = 0.80
    near_cutoff_z: float = 2.0
    min_tumour_cells: int = 200
    ultralow_fraction: float = 0.01

    def __post_init__(self) -> None:
        if not (np.isfinite(self.near_cutoff_z) and self.near_cutoff_z >= 0):
            raise InvalidInputError(f"near_cutoff_z must be finite and >= 0, got {self.near_cutoff_z}")
        if (
            isinstance(self.min_tumour_cells, bool)
            or not isinstance(self.min_tumour_cells, (int, np.integer))
            or self.min_tumour_cells < 0
        ):
            raise InvalidInputError(f"min_tumour_cells must be an integer >= 0, got {self.min_tumour_cells!r}")
        if not 0.0 <= self.positive_fraction < 1.0:
            raise InvalidInputError(f"positive_fraction must be in [0, 1), got {self.positive_fraction}")
        if not (
            np.isfinite(self.ultralow_fraction)
            and 0.0 <= self.ultralow_fraction
            and (
                self.ultralow_fraction < self.positive_fraction
                or self.ultralow_fraction == self.positive_fraction == 0.0
            )
        ):
            raise InvalidInputError(
                f"ultralow_fraction must be in [0, positive_fraction = {self.positive_fraction}), "
                f"got {self.ultralow_fraction}"
            )
        if not 0.0 < self.complete_fraction <= 1.0:
            raise InvalidInputError(f"complete_fraction must be in (0, 1], got {self.complete_fraction}")
        if not 0.0 < self.faint_od < self.weak_od < self.strong_od:
            raise InvalidInputError(
                "the OD thresholds must satisfy 0 < faint_od < weak_od < strong_od, got "
                f"{self.faint_od}, {self.weak_od}, {self.strong_od}"
            )


DEFAULT_RULES = ScoringRules()


def intensity_class_from_od(membrane_dab_od: np.ndarray, rules: ScoringRules = DEFAULT_RULES) -> np.ndarray:
    """Intensity class (int8, :class:`IntensityClass`) of measured membrane DAB optical densities.

    Parameters
    ----------
    membrane_dab_od : array_like of float
        DAB OD of each cell's membrane (along the DAB stain vector).
    rules : ScoringRules
        ``faint_od``, ``weak_od`` and ``strong_od`` are the class boundaries.

    Examples
    --------
    >>> intensity_class_from_od([0.0, 0.1, 0.5, 2.0]).tolist()
    [0, 1, 2, 3]
    """
    od = np.asarray(membrane_dab_od, dtype=np.float64)
    edges = np.array([rules.faint_od, rules.weak_od, rules.strong_od])
    return np.searchsorted(edges, od, side="right").astype(np.int8)


def classify_cells(intensity: np.ndarray, completeness: np.ndarray, rules: ScoringRules = DEFAULT_RULES) -> np.ndarray:
    """Per-cell :class:`CellClass` (int8) from membrane intensity class and completeness.

    ======================================  ==========================
    intensity, completeness c               class
    ======================================  ==========================
    NONE, or c == 0                         NEGATIVE
    FAINT (any c)                           FAINT_INCOMPLETE
    WEAK_MODERATE, c < complete_fraction    FAINT_INCOMPLETE (1+ cell)
    WEAK_MODERATE, c >= complete_fraction   WEAK_MODERATE_COMPLETE
    STRONG, c < complete_fraction           INTENSE_INCOMPLETE
    STRONG, c >= complete_fraction          INTENSE_COMPLETE
    ======================================  ==========================

    Parameters
    ----------
    intensity : array_like of int
        :class:`IntensityClass` values (0-3).
    completeness : array_like of float
        Stained fraction of each cell's perimeter, in [0, 1].
    rules : ScoringRules

    Examples
    --------
    >>> classify_cells([0, 1, 2, 2, 3, 3], [0.0, 0.4, 0.5, 0.95, 0.5, 1.0]).tolist()
    [0, 1, 1, 2, 3, 4]
    """
    inten = np.asarray(intensity)
    comp = np.asarray(completeness, dtype=np.float64)
    if inten.shape != comp.shape:
        raise InvalidInputError(
            f"intensity and completeness must have the same shape, got {inten.shape} and {comp.shape}"
        )
    if inten.size and (inten.min() < 0 or inten.max() > 3):
        raise InvalidInputError(
            f"intensity must hold IntensityClass values 0..3, got range {inten.min()}..{inten.max()}"
        )
    if comp.size and (np.isnan(comp).any() or comp.min() < 0 or comp.max() > 1):
        raise InvalidInputError("completeness must be in [0, 1] (fraction of the perimeter stained), without NaN")
    complete = comp >= rules.complete_fraction
    out = np.zeros(inten.shape, np.int8)
    stained = (inten > 0) & (comp > 0)
    out[stained] = CellClass.FAINT_INCOMPLETE
    out[stained & (inten == IntensityClass.WEAK_MODERATE) & complete] = CellClass.WEAK_MODERATE_COMPLETE
    strong = stained & (inten == IntensityClass.STRONG)
    out[strong & ~complete] = CellClass.INTENSE_INCOMPLETE
    out[strong & complete] = CellClass.INTENSE_COMPLETE
    return out
