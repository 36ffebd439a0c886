"""ASCO/CAP scoring of a cell table: pure functions, no I/O.

:mod:`.rules` classifies each tumour cell by membrane intensity and completeness and turns the class
fractions into the slide category, stratum and confidence; :mod:`.uncertainty` re-scores the table
under a shared measurement error (OD scale, completeness) for a confidence that counts measurement;
:mod:`.profile` holds a lab's calibrated thresholds (:class:`CalibrationProfile`) and re-scores stored
cell tables under other rules.
"""

from __future__ import annotations

from .profile import (
    DEFAULT_FITTED_FIELDS,
    FITTABLE_FIELDS,
    CalibrationProfile,
    measurement_settings,
    rescore_cells,
)
from .rules import (
    CATEGORIES,
    CELL_COLUMNS,
    DEFAULT_RULES,
    STRATA,
    CellClass,
    CellTable,
    ClassFractions,
    IntensityClass,
    ScoringResult,
    ScoringRules,
    SlideConfidence,
    SlideSummary,
    class_fractions,
    classify_cells,
    intensity_class_from_od,
    score_cells,
    slide_category,
    slide_confidence,
    slide_stratum,
    slide_summary,
)
from .uncertainty import (
    DEFAULT_UNCERTAINTY,
    MeasurementConfidence,
    MeasurementUncertainty,
    measurement_confidence,
)

__all__ = [
    "CATEGORIES",
    "CELL_COLUMNS",
    "IntensityClass",
    "CellClass",
    "ScoringRules",
    "DEFAULT_RULES",
    "CellTable",
    "ClassFractions",
    "SlideConfidence",
    "SlideSummary",
    "ScoringResult",
    "STRATA",
    "intensity_class_from_od",
    "classify_cells",
    "class_fractions",
    "slide_category",
    "slide_stratum",
    "slide_confidence",
    "slide_summary",
    "score_cells",
    "MeasurementUncertainty",
    "DEFAULT_UNCERTAINTY",
    "MeasurementConfidence",
    "measurement_confidence",
    "CalibrationProfile",
    "DEFAULT_FITTED_FIELDS",
    "FITTABLE_FIELDS",
    "measurement_settings",
    "rescore_cells",
]
