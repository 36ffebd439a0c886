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
interval over slides, and the paired difference. Written to ``calibration.json``, ``calibration.html`` and
``calibration.md`` (one document, :func:`calibration_document`, rendered as HTML and Markdown, and as the
text the command prints); warnings when the set is small or one-sided (CAP asks for at least 20 positive and 20 negative cases).

Modules
-------
- :mod:`~her2fast.validation.calibrate.cells`: :class:`CellSet` (the tumour cells of many slides, re-scored at once).
- :mod:`~her2fast.validation.calibrate.agreement`: :func:`agreement` (what the fit maximises).
- :mod:`~her2fast.validation.calibrate.fitting`: :class:`ParameterSearch`, :data:`SEARCH`, :class:`FitResult`,
  :func:`fit_rules`.
- :mod:`~her2fast.validation.calibrate.cross_validation`: :class:`CrossValidation`, :func:`cross_validate`.
- :mod:`~her2fast.validation.calibrate.figures`: :func:`agreement_figures`, :func:`reference_warnings`.
- :mod:`~her2fast.validation.calibrate.report`: :class:`CalibrationReport`, :func:`calibration_document`,
  :func:`format_calibration`, :func:`write_html`, :func:`write_markdown`, :func:`write_calibration`
  (``calibration.json`` / ``.html`` / ``.md``, ``profile.json``).
- :mod:`~her2fast.validation.calibrate.command`: :func:`calibrate` (the command's steps).

Every public name of these modules is importable from ``her2fast.validation.calibrate``.

Examples
--------
>>> from her2fast.validation.calibrate import agreement, reference_warnings
>>> round(agreement(["0", "1+", "3+", "3+"], ["0", "1+", "2+", "3+"]), 3)  # kappa 0.917 + 0.1 x 0.75
0.992
>>> reference_warnings(["0", "3+"])[0].startswith("small reference set")
True
"""

from __future__ import annotations

from .agreement import agreement
from .cells import CellSet
from .command import calibrate
from .cross_validation import CrossValidation, cross_validate
from .figures import LOW_LABELS as LOW_LABELS
from .figures import agreement_figures, reference_warnings
from .fitting import SEARCH, FitResult, ParameterSearch, fit_rules
from .report import (
    CalibrationReport,
    calibration_document,
    format_calibration,
    write_calibration,
    write_html,
    write_markdown,
)

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
    "write_markdown",
    "calibration_document",
]
