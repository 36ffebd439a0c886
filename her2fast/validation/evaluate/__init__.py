"""Agreement between her2fast's scores and a lab's reference scores.

Three layers:

- pure metrics on label arrays (:mod:`her2fast.validation.statistics`: :func:`confusion_matrix`,
  :func:`cohen_kappa`, :func:`bootstrap_kappa_interval`, :func:`precision_recall`, :func:`cutoff_agreement`,
  :func:`agreement_summary`) and the reference-CSV reader (:mod:`her2fast.validation.reference_csv`:
  :func:`read_reference_csv`);
- :func:`evaluate_rows`: reference rows + results-store rows -> :class:`EvaluationReport` (pure: no
  scoring; it reads only the result JSON files the rows point to), :func:`format_summary` (the text
  ``her2fast evaluate`` prints, :mod:`her2fast.validation.text`) and :func:`write_evaluation`
  (``evaluation.json``, ``confusion.csv``, ``slides.csv``, ``discordant.csv``, ``contest.csv``, ``report.html``,
  ``report.md``);
- :func:`run_evaluation`: reads the CSV, scores the slides with :func:`her2fast.service.batch.run_batch` (slides
  already in the results store with the same content and versions are not scored again) and writes
  everything -- what ``her2fast evaluate REFERENCE.csv --out DIR`` runs.

The figures themselves (:class:`EvaluationReport`, :class:`SlideOutcome`, :class:`AgreementSummary`,
:class:`CutoffAgreement`) and the score vocabulary are defined in :mod:`her2fast.validation.summary`; they
are laid out once as a document (:func:`her2fast.validation.document.evaluation_document`) that the
printed text, ``report.md`` and ``report.html`` render. Every name of ``__all__`` imports from here as well,
wherever it is defined.

Score vocabularies
------------------
- ASCO/CAP categories ``"0"``, ``"0+"`` (ultralow), ``"1+"``, ``"2+"``, ``"3+"``; agreement tables use
  the four ASCO/CAP 2018 classes 0, 1+, 2+, 3+ (``"0+"`` counts as ``"0"``), and the ultralow /
  null split is reported separately where the reference has it.
- Clinical groups ``negative`` (0, 1+), ``equivocal`` (2+), ``positive`` (3+): a reference given in
  these words is compared with predictions mapped the same way.

Modules
-------
- :mod:`~her2fast.validation.evaluate.outcomes`: :func:`outcome_from_row`, :func:`evaluate_rows` (rows to figures).
- :mod:`~her2fast.validation.evaluate.files`: :func:`write_evaluation` (the evaluation's files).
- :mod:`~her2fast.validation.evaluate.command`: :func:`run_evaluation` (what ``her2fast evaluate`` runs).

Every public name of these modules is importable from ``her2fast.validation.evaluate``.

Examples
--------
>>> from her2fast.validation.evaluate import ReferenceRow, evaluate_rows
>>> report = evaluate_rows([ReferenceRow(line=2, slide="a.svs", score="3+")], [{"status": "ok", "score": "3+"}])
>>> report.outcomes[0].status, report.outcomes[0].score, report.summary.accuracy
('scored', '3+', 1.0)
"""

from __future__ import annotations

from ..reference_csv import ReferenceRow, read_reference_csv
from ..statistics import CALIBRATION_EDGES as CALIBRATION_EDGES
from ..statistics import (
    agreement_summary,
    bootstrap_kappa_interval,
    cohen_kappa,
    confusion_matrix,
    cutoff_agreement,
    precision_recall,
)
from ..statistics import calibration_bins as calibration_bins
from ..statistics import ish_agreement as ish_agreement
from ..statistics import percent_complete_error as percent_complete_error
from ..statistics import ultralow_split as ultralow_split
from ..summary import (
    GROUPS,
    SCORES,
    STATUSES,
    AgreementSummary,
    CutoffAgreement,
    EvaluationReport,
    SlideOutcome,
    normalise_score,
    to_group,
)
from ..summary import four_class as four_class
from ..text import format_confusion as format_confusion
from ..text import format_summary
from .command import _align_rows as _align_rows
from .command import run_evaluation
from .files import EVALUATION_FILES as EVALUATION_FILES
from .files import write_evaluation
from .outcomes import evaluate_rows, outcome_from_row

__all__ = [
    "SCORES",
    "GROUPS",
    "STATUSES",
    "ReferenceRow",
    "read_reference_csv",
    "normalise_score",
    "to_group",
    "confusion_matrix",
    "cohen_kappa",
    "bootstrap_kappa_interval",
    "precision_recall",
    "CutoffAgreement",
    "cutoff_agreement",
    "AgreementSummary",
    "agreement_summary",
    "SlideOutcome",
    "EvaluationReport",
    "outcome_from_row",
    "evaluate_rows",
    "format_summary",
    "write_evaluation",
    "run_evaluation",
]
