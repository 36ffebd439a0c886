"""Agreement between her2fast's scores and a lab's reference scores (issue 9, metrics part).

Pure functions on label arrays plus the reference-CSV reader; no slide I/O. ``her2fast evaluate``
(once ``her2fast.score`` exists) scores the slides and feeds these functions.

Score vocabularies
------------------
- ASCO/CAP categories ``"0"``, ``"0+"`` (ultralow), ``"1+"``, ``"2+"``, ``"3+"``; agreement tables use
  the four ASCO/CAP 2018 classes 0, 1+, 2+, 3+ (``"0+"`` counts as ``"0"``), and the ultralow /
  null split is reported separately where the reference has it.
- Clinical groups ``negative`` (0, 1+), ``equivocal`` (2+), ``positive`` (3+): a reference given in
  these words is compared with predictions mapped the same way.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import InvalidInputError

__all__ = [
    "SCORES",
    "GROUPS",
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
]

#: The four ASCO/CAP 2018 classes of the agreement tables, in order.
SCORES: tuple[str, ...] = ("0", "1+", "2+", "3+")
#: The clinical groups.
GROUPS: tuple[str, ...] = ("negative", "equivocal", "positive")

_SCORE_WORDS = {
    "0": "0", "0+": "0+", "1+": "1+", "2+": "2+", "3+": "3+",
    "1": "1+", "2": "2+", "3": "3+", "null": "0", "ultralow": "0+",
}
_GROUP_WORDS = {"negative": "negative", "neg": "negative", "equivocal": "equivocal", "positive": "positive", "pos": "positive"}
_ISH_WORDS = {"amplified": True, "positive": True, "not amplified": False, "non-amplified": False,
              "not-amplified": False, "negative": False}


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


def _four_class(score: str) -> str:
    s = normalise_score(score)
    if s in GROUPS:
        raise InvalidInputError(f"score {score!r} is a clinical group, not an ASCO/CAP class")
    return "0" if s == "0+" else s


@dataclass(frozen=True)
class ReferenceRow:
    """One line of a reference CSV."""

    line: int  #: line number in the file (header = 1)
    slide: str  #: slide path as written (relative paths resolve against the CSV's folder)
    score: str  #: canonical score or group word
    percent_complete: float | None = None  #: % tumour cells with complete membrane staining
    ish_amplified: bool | None = None


def read_reference_csv(path: str | Path, *, check_files: bool = True) -> list[ReferenceRow]:
    """Read ``slide,score[,percent_complete][,ish]`` rows; errors name the line and the problem.

    Parameters
    ----------
    path : str or Path
        CSV with a header row holding at least ``slide`` and ``score``.
    check_files : bool, optional
        Check that every slide file exists (relative paths are taken relative to the CSV).

    Raises
    ------
    InvalidInputError
        Missing file or column, an unknown score or ISH word, a percentage outside 0..100, a slide
        listed twice or missing on disk -- naming the file, the line and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"reference CSV not found: {path}")
    rows: list[ReferenceRow] = []
    seen: dict[str, int] = {}
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        missing = [c for c in ("slide", "score") if c not in header]
        if missing:
            raise InvalidInputError(f"{path}: line 1: missing column(s) {', '.join(missing)}; the header must name "
                                    f"slide,score[,percent_complete][,ish], got {reader.fieldnames}")
        for i, raw in enumerate(reader, start=2):
            rec = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
            where = f"{path}: line {i}"
            slide = rec.get("slide", "")
            if not slide:
                raise InvalidInputError(f"{where}: empty slide name")
            try:
                score = normalise_score(rec.get("score", ""))
            except InvalidInputError as exc:
                raise InvalidInputError(f"{where}: {exc}") from None
            pc = None
            if rec.get("percent_complete"):
                try:
                    pc = float(rec["percent_complete"].rstrip("%"))
                except ValueError:
                    raise InvalidInputError(f"{where}: percent_complete {rec['percent_complete']!r} is not a number") from None
                if not 0.0 <= pc <= 100.0:
                    raise InvalidInputError(f"{where}: percent_complete {pc} is outside 0..100")
            ish = None
            if rec.get("ish"):
                word = rec["ish"].lower()
                if word not in _ISH_WORDS:
                    raise InvalidInputError(f"{where}: ish {rec['ish']!r} is not one of amplified / not amplified")
                ish = _ISH_WORDS[word]
            if slide in seen:
                raise InvalidInputError(f"{where}: slide {slide!r} already listed on line {seen[slide]}")
            seen[slide] = i
            if check_files:
                file = Path(slide) if Path(slide).is_absolute() else path.parent / slide
                if not file.exists():
                    raise InvalidInputError(f"{where}: slide file not found: {file}")
            rows.append(ReferenceRow(line=i, slide=slide, score=score, percent_complete=pc, ish_amplified=ish))
    if not rows:
        raise InvalidInputError(f"{path}: no rows after the header")
    return rows


def _indices(values, labels: tuple[str, ...], name: str) -> np.ndarray:
    index = {lab: i for i, lab in enumerate(labels)}
    out = np.empty(len(values), dtype=np.int64)
    for j, v in enumerate(values):
        if v not in index:
            raise InvalidInputError(f"{name}[{j}] = {v!r} is not one of {labels}")
        out[j] = index[v]
    return out


def confusion_matrix(predicted, reference, labels: tuple[str, ...] = SCORES) -> np.ndarray:
    """Counts with **rows = predicted, columns = reference** (the paper's Table 5 layout).

    Note that scikit-learn's ``confusion_matrix(y_true, y_pred)`` is the transpose.
    """
    if len(predicted) != len(reference):
        raise InvalidInputError(f"predicted and reference differ in length: {len(predicted)} vs {len(reference)}")
    p = _indices(predicted, labels, "predicted")
    r = _indices(reference, labels, "reference")
    k = len(labels)
    return np.bincount(p * k + r, minlength=k * k).reshape(k, k)


def cohen_kappa(predicted, reference, labels: tuple[str, ...] = SCORES, weights: str | None = None) -> float:
    """Cohen's kappa, unweighted or with ``weights="linear"`` / ``"quadratic"`` (ordinal classes).

    Same definition as ``sklearn.metrics.cohen_kappa_score``; 1.0 when both raters agree perfectly
    and the chance agreement is 1 (a single class).
    """
    if weights not in (None, "linear", "quadratic"):
        raise InvalidInputError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")
    cm = confusion_matrix(predicted, reference, labels).astype(np.float64)
    n = cm.sum()
    if n == 0:
        raise InvalidInputError("no slides to compare")
    k = len(labels)
    i, j = np.indices((k, k))
    if weights is None:
        w = (i != j).astype(np.float64)
    elif weights == "linear":
        w = np.abs(i - j).astype(np.float64)
    else:
        w = ((i - j) ** 2).astype(np.float64)
    expected = np.outer(cm.sum(axis=1), cm.sum(axis=0)) / n
    denom = (w * expected).sum()
    if denom == 0:
        return 1.0
    return float(1.0 - (w * cm).sum() / denom)


def bootstrap_kappa_interval(
    predicted, reference, labels: tuple[str, ...] = SCORES, weights: str | None = None,
    *, n_boot: int = 2000, level: float = 0.95, seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of :func:`cohen_kappa` (slides resampled with replacement, seeded)."""
    p = np.asarray(predicted, dtype=object)
    r = np.asarray(reference, dtype=object)
    rng = np.random.default_rng(seed)
    n = len(p)
    values = np.empty(n_boot)
    for b in range(n_boot):
        idx = rng.integers(0, n, n)
        values[b] = cohen_kappa(p[idx], r[idx], labels, weights)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(values, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def precision_recall(predicted, reference, labels: tuple[str, ...] = SCORES) -> dict[str, tuple[float, float]]:
    """Per class: (precision, recall); NaN where the class was never predicted / never in the reference."""
    cm = confusion_matrix(predicted, reference, labels)
    out = {}
    for c, lab in enumerate(labels):
        tp = cm[c, c]
        pred_c, ref_c = cm[c, :].sum(), cm[:, c].sum()
        out[lab] = (tp / pred_c if pred_c else float("nan"), tp / ref_c if ref_c else float("nan"))
    return out


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


_CUTOFFS = {
    ">=1+ (not HER2-0)": lambda s: s in ("1+", "2+", "3+"),
    "HER2-low (1+, or 2+)": lambda s: s in ("1+", "2+"),
    "3+": lambda s: s == "3+",
}


def _binary(question: str, yes_pred: np.ndarray, yes_ref: np.ndarray) -> CutoffAgreement:
    pos, neg = yes_ref.sum(), (~yes_ref).sum()
    return CutoffAgreement(
        question=question,
        n=int(len(yes_ref)),
        agree=int((yes_pred == yes_ref).sum()),
        sensitivity=float((yes_pred & yes_ref).sum() / pos) if pos else float("nan"),
        specificity=float((~yes_pred & ~yes_ref).sum() / neg) if neg else float("nan"),
    )


def cutoff_agreement(predicted, reference) -> list[CutoffAgreement]:
    """Agreement at 0 vs >=1+, HER2-low vs not, and 3+ vs not (scores in the four ASCO/CAP classes).

    HER2-low is 1+ or 2+ (2+ without ISH amplification in practice; ISH is compared separately).
    """
    p = [_four_class(s) for s in predicted]
    r = [_four_class(s) for s in reference]
    return [
        _binary(q, np.array([f(s) for s in p]), np.array([f(s) for s in r])) for q, f in _CUTOFFS.items()
    ]


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


def agreement_summary(predicted, reference, *, n_boot: int = 2000, seed: int = 0) -> AgreementSummary:
    """Confusion matrix, accuracy, kappas with bootstrap intervals, per-class P/R and cut-offs.

    A reference in clinical-group words is compared in groups; otherwise in the four ASCO/CAP classes.
    """
    ref = [normalise_score(s) for s in reference]
    if any(s in GROUPS for s in ref):
        labels = GROUPS
        pred = [to_group(s) for s in predicted]
        ref = [to_group(s) for s in ref]
        cutoffs: list[CutoffAgreement] = []
    else:
        labels = SCORES
        pred = [_four_class(s) for s in predicted]
        ref = [_four_class(s) for s in ref]
        cutoffs = cutoff_agreement(pred, ref)
    cm = confusion_matrix(pred, ref, labels)
    kinds = {"unweighted": None, "linear": "linear", "quadratic": "quadratic"}
    return AgreementSummary(
        labels=labels,
        confusion=cm,
        accuracy=float(np.trace(cm) / cm.sum()),
        kappa={name: cohen_kappa(pred, ref, labels, w) for name, w in kinds.items()},
        kappa_interval={name: bootstrap_kappa_interval(pred, ref, labels, w, n_boot=n_boot, seed=seed)
                        for name, w in kinds.items()},
        precision_recall=precision_recall(pred, ref, labels),
        cutoffs=cutoffs,
    )
