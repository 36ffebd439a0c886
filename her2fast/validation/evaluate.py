"""Agreement between her2fast's scores and a lab's reference scores.

Three layers:

- pure metrics on label arrays (:func:`confusion_matrix`, :func:`cohen_kappa`,
  :func:`bootstrap_kappa_interval`, :func:`precision_recall`, :func:`cutoff_agreement`,
  :func:`agreement_summary`) and the reference-CSV reader (:func:`read_reference_csv`);
- :func:`evaluate_rows`: reference rows + results-store rows -> :class:`EvaluationReport` (pure: no
  scoring; it reads only the result JSON files the rows point to), :func:`format_summary` (the text
  ``her2fast evaluate`` prints) and :func:`write_evaluation` (``evaluation.json``, ``confusion.csv``,
  ``slides.csv``, ``discordant.csv``, ``contest.csv``, ``report.html``);
- :func:`run_evaluation`: reads the CSV, scores the slides with :func:`her2fast.service.batch.run_batch` (slides
  already in the results store with the same content and versions are not scored again) and writes
  everything -- what ``her2fast evaluate REFERENCE.csv --out DIR`` runs.

The figures themselves (:class:`EvaluationReport`, :class:`SlideOutcome`, :class:`AgreementSummary`,
:class:`CutoffAgreement`) and the score vocabulary are defined in :mod:`her2fast.validation.summary`,
which :mod:`her2fast.validation.report` draws from; they import from here as well.

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
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError
from .summary import (
    GROUPS,
    SCORES,
    STATUSES,
    AgreementSummary,
    CutoffAgreement,
    EvaluationReport,
    SlideOutcome,
    four_class,
    normalise_score,
    to_group,
)

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

_ISH_WORDS = {"amplified": True, "positive": True, "not amplified": False, "non-amplified": False,
              "not-amplified": False, "negative": False}


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
    p = [four_class(s) for s in predicted]
    r = [four_class(s) for s in reference]
    return [
        _binary(q, np.array([f(s) for s in p]), np.array([f(s) for s in r])) for q, f in _CUTOFFS.items()
    ]


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
        pred = [four_class(s) for s in predicted]
        ref = [four_class(s) for s in ref]
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


# ------------------------------------------------------------------------- slides and results
#: Bin edges of the calibration table (the confidence is Phi(margin) >= 0.5).
CALIBRATION_EDGES: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def _opt_float(v) -> float | None:
    if v is None or v == "":
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _flags(v) -> tuple[str, ...]:
    if not v:
        return ()
    if isinstance(v, str):
        v = json.loads(v) if v.lstrip().startswith("[") else [f for f in v.split(",")]
    return tuple(str(f).strip() for f in v if str(f).strip())


def _result_json(outputs: Mapping[str, str]) -> dict:
    path = outputs.get("json") if outputs else None
    if not path:
        return {}
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return d if isinstance(d, dict) else {}


def outcome_from_row(reference: ReferenceRow, row: Mapping | None, *, path: str | None = None) -> SlideOutcome:
    """Join one reference row with its results-store row (as :func:`her2fast.service.batch.run_batch` returns it).

    Parameters
    ----------
    reference : ReferenceRow
    row : mapping or None
        ``status`` (``"ok"`` / ``"failed"``), ``score``, ``category``, ``stratum``, ``confidence``,
        ``error``, ``outputs`` (``json`` -> the result JSON, ``overlay`` -> the picture, ...), ``skipped``
        and the percent complete (``percent_complete``, ``percentages["complete"]`` or the result JSON).
        Fields missing from the row are taken from the result JSON when it exists. None: no result.
    path : str, optional
        The slide file (default: the row's ``slide_path``, else the reference's ``slide``).

    Returns
    -------
    SlideOutcome
        ``"failed"`` for a failed run or no row, ``"not_scorable"`` for a result without a score.
    """
    base = dict(line=reference.line, slide=reference.slide, reference=reference.score,
                reference_percent_complete=reference.percent_complete, ish_amplified=reference.ish_amplified)
    if row is None:
        return SlideOutcome(path=path or reference.slide, status="failed", reason="no result for this slide", **base)
    outputs = {str(k): str(v) for k, v in (row.get("outputs") or {}).items() if v}
    d = _result_json(outputs)

    def pick(key):
        v = row.get(key)
        return d.get(key) if v is None else v

    path = path or str(row.get("slide_path") or reference.slide)
    status = str(row.get("status") or ("ok" if d else "failed"))
    common = dict(path=path, outputs=outputs, skipped=bool(row.get("skipped", False)), **base)
    if status == "failed":
        return SlideOutcome(status="failed", reason=str(row.get("error") or "failed (no message)"),
                            flags=_flags(pick("flags")), **common)
    percentages = row.get("percentages") or {}
    pc = _opt_float(row.get("percent_complete"))
    if pc is None and isinstance(percentages, Mapping):
        pc = _opt_float(percentages.get("complete"))
    if pc is None:
        pc = _opt_float(d.get("percent_complete"))
    counts = d.get("counts") or {}
    tumour = row.get("tumour_cells", counts.get("tumour_cells"))
    fields = dict(percent_complete=pc, flags=_flags(pick("flags")),
                  tumour_cells=None if tumour is None else int(tumour), **common)
    score = pick("score")
    if score is None or score == "":
        reason = d.get("not_scorable") or row.get("not_scorable") or row.get("error") or "not scorable"
        return SlideOutcome(status="not_scorable", reason=str(reason), **fields)
    try:
        score = four_class(str(score))
        category = pick("category")
        category = normalise_score(category) if category else score
    except InvalidInputError as exc:
        raise InvalidInputError(f"result of {path}: {exc}") from None
    return SlideOutcome(status="scored", score=score, category=category, stratum=pick("stratum"),
                        confidence=_opt_float(pick("confidence")), **fields)


def _ultralow_split(scored: list[SlideOutcome]) -> dict | None:
    if not any(o.reference == "0+" for o in scored):
        return None
    both = [o for o in scored if o.reference in ("0", "0+") and o.category in ("0", "0+")]
    names = ("null", "ultralow")
    pred = ["ultralow" if o.category == "0+" else "null" for o in both]
    ref = ["ultralow" if o.reference == "0+" else "null" for o in both]
    cm = confusion_matrix(pred, ref, names) if both else np.zeros((2, 2), np.int64)
    return {"labels": list(names), "confusion": cm.tolist(), "n": len(both), "agree": int(np.trace(cm)),
            "accuracy": float(np.trace(cm) / len(both)) if both else float("nan"),
            "note": "slides that both her2fast and the reference call HER2-0 (0 or 0+); rows predicted"}


def _ish_agreement(scored: list[SlideOutcome]) -> dict | None:
    with_ish = [o for o in scored if o.ish_amplified is not None]
    if not with_ish:
        return None

    def table(labels: list[str]) -> dict:
        groups = [to_group(s) for s in labels]
        amp = [o.ish_amplified for o in with_ish]
        rows = {g: {"amplified": sum(1 for x, a in zip(groups, amp) if x == g and a),
                    "not_amplified": sum(1 for x, a in zip(groups, amp) if x == g and not a)} for g in GROUPS}
        decided = [(g, a) for g, a in zip(groups, amp) if g != "equivocal"]
        agree = sum((g == "positive") == a for g, a in decided)
        return {"table": rows, "n_decided": len(decided), "agree": agree,
                "concordance": agree / len(decided) if decided else float("nan"),
                "equivocal": sum(g == "equivocal" for g in groups)}

    return {"n": len(with_ish),
            "note": "IHC positive (3+) vs amplified and negative (0, 1+) vs not amplified; 2+ (equivocal) is "
                    "decided by ISH and not counted in the concordance",
            "her2fast": table([o.score for o in with_ish]),
            "reference": table([o.reference for o in with_ish])}


def _percent_complete_error(scored: list[SlideOutcome]) -> dict | None:
    pairs = [(o.percent_complete, o.reference_percent_complete) for o in scored
             if o.percent_complete is not None and o.reference_percent_complete is not None]
    if not pairs:
        return None
    p, r = np.array(pairs, dtype=np.float64).T
    err = p - r
    corr = float(np.corrcoef(p, r)[0, 1]) if len(p) > 2 and p.std() > 0 and r.std() > 0 else float("nan")
    return {"n": len(pairs), "mean_abs_error": float(np.abs(err).mean()), "bias": float(err.mean()),
            "rmse": float(np.sqrt((err ** 2).mean())), "max_abs_error": float(np.abs(err).max()),
            "pearson_r": corr, "unit": "percentage points (her2fast minus reference)"}


def _calibration(scored: list[SlideOutcome], level: str) -> list[dict]:
    edges = CALIBRATION_EDGES
    bins = []
    for k, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        last = k == len(edges) - 2
        sel = [o for o in scored if o.confidence is not None
               and (lo <= o.confidence < hi or (last and o.confidence >= hi) or (k == 0 and o.confidence < lo))]
        correct = [bool(o.agrees(level)) for o in sel]
        bins.append({"lo": lo, "hi": hi, "n": len(sel),
                     "mean_confidence": float(np.mean([o.confidence for o in sel])) if sel else float("nan"),
                     "fraction_correct": float(np.mean(correct)) if sel else float("nan"),
                     "correct": int(sum(correct))})
    return bins


def _versions(rows: Sequence[Mapping | None]) -> list[dict]:
    seen: list[dict] = []
    for row in rows:
        if not row or row.get("status") == "failed":
            continue
        models = row.get("model_versions")
        if isinstance(models, str):
            models = json.loads(models) if models else {}
        v = {"her2fast": row.get("package_version"), "models": dict(models or {})}
        if v["her2fast"] is None:
            prov = _result_json(row.get("outputs") or {}).get("provenance", {})
            v = {"her2fast": prov.get("her2fast_version"), "models": dict(prov.get("models", {}))}
        if v["her2fast"] is not None and v not in seen:
            seen.append(v)
    return seen


def evaluate_rows(
    references: Sequence[ReferenceRow],
    results: Sequence[Mapping | None] | Mapping[str, Mapping | None],
    *,
    n_boot: int = 2000,
    seed: int = 0,
    source: str | Path | None = None,
) -> EvaluationReport:
    """Agreement of results with reference scores: a pure function of the two tables.

    Parameters
    ----------
    references : sequence of ReferenceRow
        From :func:`read_reference_csv`.
    results : sequence or mapping
        One results-store row per reference row, in the same order (what
        :func:`her2fast.service.batch.run_batch` returns), or a mapping from the reference's ``slide`` to its
        row; None (or a missing key) for a slide without a result. See :func:`outcome_from_row`.
    n_boot, seed : int
        Bootstrap resamples and seed of the 95 % kappa intervals.
    source : str or Path, optional
        The reference CSV, for the report.

    Returns
    -------
    EvaluationReport
        Slides that failed or were not scorable are listed in ``excluded`` and left out of every
        figure (the counts say how many).

    Examples
    --------
    >>> refs = [ReferenceRow(line=2, slide="a.svs", score="3+"), ReferenceRow(line=3, slide="b.svs", score="1+"),
    ...         ReferenceRow(line=4, slide="c.svs", score="2+")]
    >>> rows = [{"status": "ok", "score": "3+", "confidence": 0.99}, {"status": "ok", "score": "2+"},
    ...         {"status": "failed", "error": "corrupt JPEG"}]
    >>> r = evaluate_rows(refs, rows, n_boot=10)
    >>> r.counts()["scored"], r.summary.accuracy, [o.slide for o in r.discordant], [o.slide for o in r.excluded]
    (2, 0.5, ['b.svs'], ['c.svs'])
    """
    refs = list(references)
    if not refs:
        raise InvalidInputError("no reference rows to evaluate")
    if isinstance(results, Mapping):
        rows = [results.get(r.slide) for r in refs]
    else:
        rows = list(results)
        if len(rows) != len(refs):
            raise InvalidInputError(f"{len(refs)} reference rows but {len(rows)} results: give one result per "
                                    "reference row, in the same order (or a mapping slide -> row)")
    outcomes = [outcome_from_row(ref, row) for ref, row in zip(refs, rows)]
    level = "group" if any(r.score in GROUPS for r in refs) else "score"
    scored = [o for o in outcomes if o.scored]
    summary = None
    if scored:
        summary = agreement_summary([o.score for o in scored], [o.reference for o in scored], n_boot=n_boot, seed=seed)
    return EvaluationReport(
        outcomes=outcomes, level=level, summary=summary,
        ultralow=_ultralow_split(scored) if level == "score" else None,
        ish=_ish_agreement(scored), percent_complete=_percent_complete_error(scored),
        calibration=_calibration(scored, level), versions=_versions(rows),
        source=None if source is None else str(source), n_boot=n_boot, seed=seed,
    )


# ------------------------------------------------------------------------------ text and files
def _f(v: float | None, nd: int = 3) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{nd}f}"


def format_confusion(summary: AgreementSummary) -> str:
    """The confusion matrix as a text table (rows predicted, columns reference, with totals)."""
    labels = summary.labels
    w = max(6, max(len(lab) for lab in labels) + 2)
    cm = summary.confusion
    lines = [" " * 12 + "reference".center(w * len(labels)),
             f"{'predicted':>12s}" + "".join(f"{lab:>{w}s}" for lab in labels) + f"{'total':>{w}s}"]
    for lab, row in zip(labels, cm):
        lines.append(f"{lab:>12s}" + "".join(f"{v:{w}d}" for v in row) + f"{row.sum():{w}d}")
    lines.append(f"{'total':>12s}" + "".join(f"{v:{w}d}" for v in cm.sum(axis=0)) + f"{cm.sum():{w}d}")
    return "\n".join(lines)


def format_summary(report: EvaluationReport) -> str:
    """The compact text ``her2fast evaluate`` prints: counts, confusion matrix, accuracy, kappas, cut-offs."""
    c = report.counts()
    out = [f"{c['total']} slides in {report.source or 'the reference'}: {c['scored']} scored"
           + (f" ({c['from_store']} taken from the results store)" if c["from_store"] else "")
           + f", {c['not_scorable']} not scorable, {c['failed']} failed"]
    if report.excluded:
        out.append(f"excluded from every figure below ({len(report.excluded)}):")
        out += [f"  line {o.line} {o.slide}: {o.status.replace('_', ' ')}: {o.reason}" for o in report.excluded]
    s = report.summary
    if s is None:
        out.append("no slide was scored: no agreement figures")
        return "\n".join(out)
    what = "clinical groups (reference in group words)" if report.level == "group" else "ASCO/CAP classes (0+ counts as 0)"
    out.append(f"confusion matrix, {what}; rows predicted, columns reference:")
    out.append(format_confusion(s))
    n, agree = int(s.confusion.sum()), int(np.trace(s.confusion))
    out.append(f"accuracy {s.accuracy:.3f} ({agree}/{n} slides)")
    out.append("Cohen's kappa (95 % bootstrap CI): " + "; ".join(
        f"{k} {_f(s.kappa[k])} ({_f(s.kappa_interval[k][0], 2)}..{_f(s.kappa_interval[k][1], 2)})"
        for k in ("unweighted", "linear", "quadratic")))
    out.append("precision / recall: " + "; ".join(f"{lab} {_f(p, 2)}/{_f(r, 2)}" for lab, (p, r) in s.precision_recall.items()))
    for cut in s.cutoffs:
        out.append(f"cut-off {cut.question}: {cut.agree}/{cut.n} agree, sensitivity {_f(cut.sensitivity, 2)}, "
                   f"specificity {_f(cut.specificity, 2)}")
    if report.ultralow:
        u = report.ultralow
        out.append(f"null vs ultralow (slides both call HER2-0): {u['agree']}/{u['n']} agree")
    if report.ish:
        h, r = report.ish["her2fast"], report.ish["reference"]
        out.append(f"vs ISH ({report.ish['n']} slides): her2fast {h['agree']}/{h['n_decided']} concordant "
                   f"({h['equivocal']} equivocal 2+); reference IHC {r['agree']}/{r['n_decided']}")
    if report.percent_complete:
        p = report.percent_complete
        out.append(f"% complete membranes ({p['n']} slides): mean absolute error {p['mean_abs_error']:.1f} points, "
                   f"bias {p['bias']:+.1f}, max {p['max_abs_error']:.1f}")
    out.append(f"discordant slides: {len(report.discordant)}"
               + (": " + ", ".join(f"{o.slide} ({o.predicted_label(report.level)} vs {o.reference_label(report.level)})"
                                   for o in report.discordant[:10]) if report.discordant else "")
               + (" ..." if len(report.discordant) > 10 else ""))
    return "\n".join(out)


def _rel(path: str | None, out_dir: Path) -> str:
    if not path:
        return ""
    try:
        return os.path.relpath(Path(path).resolve(), out_dir.resolve())
    except ValueError:  # another drive (Windows)
        return str(path)


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for row in rows:
            w.writerow([_cell(v) for v in row])
    return path


def write_evaluation(report: EvaluationReport, out_dir: str | Path) -> dict[str, Path]:
    """Write the evaluation files to ``out_dir`` (created if missing).

    Files: ``evaluation.json`` (every figure and slide), ``confusion.csv`` (rows predicted, columns
    reference), ``slides.csv`` (every reference slide and its outcome), ``discordant.csv``,
    ``contest.csv`` (slide, score, percent_complete, confidence -- the fields of the Warwick HER2
    contest; empty where a slide has no score) and ``report.html`` (one self-contained page, see
    :mod:`her2fast.validation.report`). Links to slide outputs are relative to ``out_dir``.

    Returns
    -------
    dict of str to Path
        ``json``, ``confusion``, ``slides``, ``discordant``, ``contest``, ``html``.
    """
    from .report import write_html

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    files["json"] = out / "evaluation.json"
    files["json"].write_text(json.dumps(report.to_dict(), indent=1, allow_nan=False), encoding="utf-8")
    labels = report.labels
    cm = report.summary.confusion if report.summary is not None else np.zeros((len(labels),) * 2, np.int64)
    files["confusion"] = _write_csv(out / "confusion.csv", ["predicted \\ reference", *labels],
                                    [[lab, *map(int, row)] for lab, row in zip(labels, cm)])
    lv = report.level
    files["slides"] = _write_csv(
        out / "slides.csv",
        ["line", "slide", "status", "reference", "predicted", "agrees", "category", "stratum", "percent_complete",
         "reference_percent_complete", "confidence", "ish_amplified", "tumour_cells", "flags", "reason", "overlay",
         "result_json", "from_store"],
        [[o.line, o.slide, o.status, o.reference_label(lv), o.predicted_label(lv), o.agrees(lv), o.category,
          o.stratum, o.percent_complete, o.reference_percent_complete, o.confidence, o.ish_amplified,
          o.tumour_cells, ";".join(o.flags), o.reason, _rel(o.outputs.get("overlay"), out),
          _rel(o.outputs.get("json"), out), o.skipped] for o in report.outcomes])
    files["discordant"] = _write_csv(
        out / "discordant.csv",
        ["line", "slide", "reference", "predicted", "category", "stratum", "percent_complete",
         "reference_percent_complete", "confidence", "flags", "overlay", "result_json"],
        [[o.line, o.slide, o.reference_label(lv), o.predicted_label(lv), o.category, o.stratum, o.percent_complete,
          o.reference_percent_complete, o.confidence, ";".join(o.flags), _rel(o.outputs.get("overlay"), out),
          _rel(o.outputs.get("json"), out)] for o in report.discordant])
    files["contest"] = _write_csv(
        out / "contest.csv", ["slide", "score", "percent_complete", "confidence"],
        [[o.slide, o.score, round(o.percent_complete, 2) if o.scored and o.percent_complete is not None else None,
          round(o.confidence, 4) if o.scored and o.confidence is not None else None] for o in report.outcomes])
    files["html"] = write_html(report, out / "report.html")
    return files


def _align_rows(paths: Sequence[Path], rows: list[dict]) -> list[dict | None]:
    """One row per reference slide: by position when the batch kept the order, else by slide path."""

    def keys(p) -> set[str]:
        return {os.path.abspath(p), str(Path(p).resolve())}

    if len(rows) == len(paths) and all(keys(p) & keys(r.get("slide_path") or "") for p, r in zip(paths, rows)):
        return list(rows)
    by_path: dict[str, dict] = {}
    for r in rows:
        for k in keys(r.get("slide_path") or ""):
            by_path.setdefault(k, r)
    return [next((by_path[k] for k in keys(p) if k in by_path), None) for p in paths]


def run_evaluation(
    reference_csv: str | Path,
    out_dir: str | Path,
    *,
    mpp: float | None = None,
    settings=None,
    providers="auto",
    workers: int | None = None,
    progress: bool = True,
    pictures: bool = True,
    geojson: bool = True,
    store=None,
    scheduler=None,
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[EvaluationReport, dict[str, Path]]:
    """Score the reference CSV's slides (or take them from the results store) and write the evaluation.

    Parameters
    ----------
    reference_csv : str or Path
        ``slide,score[,percent_complete][,ish]`` (see :func:`read_reference_csv`); slide paths relative
        to the CSV's folder.
    out_dir : str or Path
        Per-slide reports, the results store (``results.db``) and the evaluation files.
    mpp, settings, providers, workers, progress, pictures, geojson, store, scheduler
        Passed to :func:`her2fast.service.batch.run_batch`. ``pictures`` gives the overlays that the report's
        thumbnails of discordant slides come from.
    n_boot, seed : int
        Bootstrap of the kappa intervals.

    Returns
    -------
    (EvaluationReport, dict of str to Path)
        The report and the files of :func:`write_evaluation`.

    Raises
    ------
    InvalidInputError
        A problem in the CSV (naming its line) or a missing slide file. A slide that fails to score is
        not an error: it is listed among the excluded slides.
    """
    csv_path = Path(reference_csv)
    refs = read_reference_csv(csv_path, check_files=True)
    from ..service.batch import run_batch

    paths = [Path(r.slide) if Path(r.slide).is_absolute() else csv_path.parent / r.slide for r in refs]
    out = Path(out_dir)
    batch = run_batch([str(p) for p in paths], out, store=store, workers=workers, mpp=mpp, settings=settings,
                      providers=providers, progress=progress, scheduler=scheduler, pictures=pictures, geojson=geojson)
    report = evaluate_rows(refs, _align_rows(paths, list(batch.rows)), n_boot=n_boot, seed=seed, source=csv_path)
    return report, write_evaluation(report, out)
