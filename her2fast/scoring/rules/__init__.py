"""ASCO/CAP HER2 IHC scoring rules, written once, as pure functions on a cell table.

The pipeline (measured cells) and the phantom generator (:mod:`her2fast.synth`, true cells) both call
these functions, so a phantom's ground-truth category and a scored slide's category mean the same thing.
Nothing here reads files or images.

Two steps:

1. **Per cell** -- :func:`classify_cells` maps each tumour cell's membrane *intensity class* and membrane
   *completeness* (fraction of its perimeter that is stained) to a :class:`CellClass`.
2. **Per slide** -- :func:`class_fractions` counts the classes among tumour cells and :func:`slide_category`
   applies the ASCO/CAP 2018 thresholds (with the 2023 ASCO/CAP "HER2-low/ultralow" strata of 0):

   ======  =====================================================================================
   "3+"    complete, intense (circumferential) membrane staining in > 10 % of tumour cells
   "2+"    weak-to-moderate complete staining in > 10 % of tumour cells -- cumulative with the 3+
           cells -- or the "unusual" pattern: intense but incomplete (e.g. basolateral) staining
           in > 10 % (ASCO/CAP 2018, Wolff et al., Fig. 1, note on unusual patterns)
   "1+"    incomplete, faint / barely perceptible staining in > 10 % of tumour cells (cumulative:
           every stained cell counts)
   "0+"    HER2-ultralow: IHC 0 with faint incomplete staining in > 0 % and <= 10 % of tumour cells
   "0"     HER2-null: no membrane staining at all
   ======  =====================================================================================

Counting is cumulative (a cell of a higher class also satisfies every lower criterion), as a
pathologist reads a slide: 6 % of cells at 3+ and 6 % at 2+ is "12 % with at least weak-to-moderate
complete staining", i.e. 2+.

References
----------
.. [1] Wolff AC, Hammond MEH, Allison KH, et al. Human epidermal growth factor receptor 2 testing in
   breast cancer: ASCO/CAP clinical practice guideline focused update. J Clin Oncol 2018;36:2105-2122.
.. [2] Wolff AC, Somerfield MR, Dowsett M, et al. HER2 testing in breast cancer: ASCO-CAP guideline
   update. J Clin Oncol 2023;41:3867-3872 (HER2-low, -ultralow).

Modules
-------
- :mod:`~her2fast.scoring.rules.classes`: :class:`ScoringRules`, :data:`DEFAULT_RULES`, :class:`IntensityClass`,
  :class:`CellClass`, :func:`intensity_class_from_od`, :func:`classify_cells`, :data:`CATEGORIES`, :data:`STRATA`.
- :mod:`~her2fast.scoring.rules.table`: :class:`CellTable`, :data:`CELL_COLUMNS`.
- :mod:`~her2fast.scoring.rules.fractions`: :class:`ClassFractions`, :func:`class_fractions`,
  :func:`slide_category`, :func:`slide_stratum`.
- :mod:`~her2fast.scoring.rules.confidence`: :class:`SlideConfidence`, :func:`slide_confidence`.
- :mod:`~her2fast.scoring.rules.summary`: :class:`SlideSummary`, :class:`ScoringResult`, :func:`slide_summary`,
  :func:`score_cells`.

Every public name of these modules is importable from ``her2fast.scoring.rules``.

Examples
--------
>>> import numpy as np
>>> from her2fast.scoring.rules import class_fractions, classify_cells, slide_category
>>> cells = classify_cells([3] * 15 + [0] * 85, [1.0] * 15 + [0.0] * 85)
>>> slide_category(class_fractions(cells))
'3+'
"""

from __future__ import annotations

from .classes import (
    CATEGORIES,
    DEFAULT_RULES,
    STRATA,
    CellClass,
    IntensityClass,
    ScoringRules,
    classify_cells,
    intensity_class_from_od,
)
from .confidence import SlideConfidence, slide_confidence
from .fractions import ClassFractions, class_fractions, slide_category, slide_stratum
from .summary import ScoringResult, SlideSummary, score_cells, slide_summary
from .table import CELL_COLUMNS as CELL_COLUMNS
from .table import CellTable

__all__ = [
    "CATEGORIES",
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
]
