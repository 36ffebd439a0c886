"""Agreement statistics of predicted against reference scores.

Pure functions on label sequences: :func:`confusion_matrix` (rows predicted, columns reference),
:func:`cohen_kappa` (unweighted, linear, quadratic) with :func:`bootstrap_kappa_interval`,
:func:`precision_recall`, :func:`cutoff_agreement` (the clinical cut-offs) and :func:`agreement_summary`
(all of them at once); and the figures over scored slides that :func:`her2fast.validation.evaluate.evaluate_rows`
adds: :func:`ultralow_split`, :func:`ish_agreement`, :func:`percent_complete_error`, :func:`calibration_bins`.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidInputError
from .summary import (
    GROUPS,
    SCORES,
    AgreementSummary,
    CutoffAgreement,
    SlideOutcome,
    four_class,
    normalise_score,
    to_group,
)

__all__ = [
    "confusion_matrix",
    "cohen_kappa",
    "bootstrap_kappa_interval",
    "precision_recall",
    "cutoff_agreement",
    "agreement_summary",
    "CALIBRATION_EDGES",
    "ultralow_split",
    "ish_agreement",
    "percent_complete_error",
    "calibration_bins",
]


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
    predicted,
    reference,
    labels: tuple[str, ...] = SCORES,
    weights: str | None = None,
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
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
    return [_binary(q, np.array([f(s) for s in p]), np.array([f(s) for s in r])) for q, f in _CUTOFFS.items()]


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
        kappa_interval={
            name: bootstrap_kappa_interval(pred, ref, labels, w, n_boot=n_boot, seed=seed) for name, w in kinds.items()
        },
        precision_recall=precision_recall(pred, ref, labels),
        cutoffs=cutoffs,
    )


# ------------------------------------------------------------------------- figures over scored slides
#: Bin edges of the calibration table (the confidence is Phi(margin) >= 0.5).
CALIBRATION_EDGES: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def ultralow_split(scored: list[SlideOutcome]) -> dict | None:
    """Null vs ultralow agreement on the slides that both her2fast and the reference call HER2-0.

    None when the reference never says ``"0+"``; else ``labels``, ``confusion`` (rows predicted), ``n``,
    ``agree``, ``accuracy`` and a ``note``.
    """
    if not any(o.reference == "0+" for o in scored):
        return None
    both = [o for o in scored if o.reference in ("0", "0+") and o.category in ("0", "0+")]
    names = ("null", "ultralow")
    pred = ["ultralow" if o.category == "0+" else "null" for o in both]
    ref = ["ultralow" if o.reference == "0+" else "null" for o in both]
    cm = confusion_matrix(pred, ref, names) if both else np.zeros((2, 2), np.int64)
    return {
        "labels": list(names),
        "confusion": cm.tolist(),
        "n": len(both),
        "agree": int(np.trace(cm)),
        "accuracy": float(np.trace(cm) / len(both)) if both else float("nan"),
        "note": "slides that both her2fast and the reference call HER2-0 (0 or 0+); rows predicted",
    }


def ish_agreement(scored: list[SlideOutcome]) -> dict | None:
    """Concordance of her2fast's and the reference's IHC groups with ISH, on the slides with an ISH result.

    None when no slide has one; else ``n``, a ``note`` and per rater (``her2fast``, ``reference``) the group
    x amplification ``table``, ``n_decided``, ``agree``, ``concordance`` and ``equivocal`` (2+ is not counted).
    """
    with_ish = [o for o in scored if o.ish_amplified is not None]
    if not with_ish:
        return None

    def table(labels: list[str]) -> dict:
        groups = [to_group(s) for s in labels]
        amp = [o.ish_amplified for o in with_ish]
        rows = {
            g: {
                "amplified": sum(1 for x, a in zip(groups, amp) if x == g and a),
                "not_amplified": sum(1 for x, a in zip(groups, amp) if x == g and not a),
            }
            for g in GROUPS
        }
        decided = [(g, a) for g, a in zip(groups, amp) if g != "equivocal"]
        agree = sum((g == "positive") == a for g, a in decided)
        return {
            "table": rows,
            "n_decided": len(decided),
            "agree": agree,
            "concordance": agree / len(decided) if decided else float("nan"),
            "equivocal": sum(g == "equivocal" for g in groups),
        }

    return {
        "n": len(with_ish),
        "note": "IHC positive (3+) vs amplified and negative (0, 1+) vs not amplified; 2+ (equivocal) is "
        "decided by ISH and not counted in the concordance",
        "her2fast": table([o.score for o in with_ish]),  # type: ignore[misc]  # scored outcomes have a score
        "reference": table([o.reference for o in with_ish]),
    }


def percent_complete_error(scored: list[SlideOutcome]) -> dict | None:
    """Error of her2fast's % complete membranes against the reference's, in percentage points.

    None when no slide has both; else ``n``, ``mean_abs_error``, ``bias``, ``rmse``, ``max_abs_error``,
    ``pearson_r`` and the ``unit``.
    """
    pairs = [
        (o.percent_complete, o.reference_percent_complete)
        for o in scored
        if o.percent_complete is not None and o.reference_percent_complete is not None
    ]
    if not pairs:
        return None
    p, r = np.array(pairs, dtype=np.float64).T
    err = p - r
    corr = float(np.corrcoef(p, r)[0, 1]) if len(p) > 2 and p.std() > 0 and r.std() > 0 else float("nan")
    return {
        "n": len(pairs),
        "mean_abs_error": float(np.abs(err).mean()),
        "bias": float(err.mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "max_abs_error": float(np.abs(err).max()),
        "pearson_r": corr,
        "unit": "percentage points (her2fast minus reference)",
    }


def calibration_bins(scored: list[SlideOutcome], level: str) -> list[dict]:
    """Confidence against correctness in the bins of :data:`CALIBRATION_EDGES`.

    ``level`` is ``"score"`` or ``"group"`` (what counts as agreeing). One dict per bin: ``lo``, ``hi``, ``n``, ``mean_confidence``, ``fraction_correct`` (NaN when empty) and
    ``correct``.
    """
    edges = CALIBRATION_EDGES
    bins = []
    for k, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        last = k == len(edges) - 2
        sel = [
            o
            for o in scored
            if o.confidence is not None
            and (lo <= o.confidence < hi or (last and o.confidence >= hi) or (k == 0 and o.confidence < lo))
        ]
        correct = [bool(o.agrees(level)) for o in sel]
        bins.append(
            {
                "lo": lo,
                "hi": hi,
                "n": len(sel),
                "mean_confidence": float(np.mean([o.confidence for o in sel])) if sel else float("nan"),
                "fraction_correct": float(np.mean(correct)) if sel else float("nan"),
                "correct": int(sum(correct)),
            }
        )
    return bins
