"""The evaluation as plain text: what ``her2fast evaluate`` prints (:func:`format_summary`).

The same figures as one HTML page: :mod:`her2fast.validation.report`.
"""

from __future__ import annotations

import math

import numpy as np

from .summary import AgreementSummary, EvaluationReport

__all__ = ["format_confusion", "format_summary"]


def _f(v: float | None, nd: int = 3) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{nd}f}"


def format_confusion(summary: AgreementSummary) -> str:
    """The confusion matrix as a text table (rows predicted, columns reference, with totals)."""
    labels = summary.labels
    w = max(6, max(len(lab) for lab in labels) + 2)
    cm = summary.confusion
    lines = [
        " " * 12 + "reference".center(w * len(labels)),
        f"{'predicted':>12s}" + "".join(f"{lab:>{w}s}" for lab in labels) + f"{'total':>{w}s}",
    ]
    for lab, row in zip(labels, cm):
        lines.append(f"{lab:>12s}" + "".join(f"{v:{w}d}" for v in row) + f"{row.sum():{w}d}")
    lines.append(f"{'total':>12s}" + "".join(f"{v:{w}d}" for v in cm.sum(axis=0)) + f"{cm.sum():{w}d}")
    return "\n".join(lines)


def format_summary(report: EvaluationReport) -> str:
    """The compact text ``her2fast evaluate`` prints: counts, confusion matrix, accuracy, kappas, cut-offs."""
    c = report.counts()
    out = [
        f"{c['total']} slides in {report.source or 'the reference'}: {c['scored']} scored"
        + (f" ({c['from_store']} taken from the results store)" if c["from_store"] else "")
        + f", {c['not_scorable']} not scorable, {c['failed']} failed"
    ]
    if report.excluded:
        out.append(f"excluded from every figure below ({len(report.excluded)}):")
        out += [f"  line {o.line} {o.slide}: {o.status.replace('_', ' ')}: {o.reason}" for o in report.excluded]
    s = report.summary
    if s is None:
        out.append("no slide was scored: no agreement figures")
        return "\n".join(out)
    what = (
        "clinical groups (reference in group words)" if report.level == "group" else "ASCO/CAP classes (0+ counts as 0)"
    )
    out.append(f"confusion matrix, {what}; rows predicted, columns reference:")
    out.append(format_confusion(s))
    n, agree = int(s.confusion.sum()), int(np.trace(s.confusion))
    out.append(f"accuracy {s.accuracy:.3f} ({agree}/{n} slides)")
    out.append(
        "Cohen's kappa (95 % bootstrap CI): "
        + "; ".join(
            f"{k} {_f(s.kappa[k])} ({_f(s.kappa_interval[k][0], 2)}..{_f(s.kappa_interval[k][1], 2)})"
            for k in ("unweighted", "linear", "quadratic")
        )
    )
    out.append(
        "precision / recall: " + "; ".join(f"{lab} {_f(p, 2)}/{_f(r, 2)}" for lab, (p, r) in s.precision_recall.items())
    )
    for cut in s.cutoffs:
        out.append(
            f"cut-off {cut.question}: {cut.agree}/{cut.n} agree, sensitivity {_f(cut.sensitivity, 2)}, "
            f"specificity {_f(cut.specificity, 2)}"
        )
    if report.ultralow:
        u = report.ultralow
        out.append(f"null vs ultralow (slides both call HER2-0): {u['agree']}/{u['n']} agree")
    if report.ish:
        h, r = report.ish["her2fast"], report.ish["reference"]
        out.append(
            f"vs ISH ({report.ish['n']} slides): her2fast {h['agree']}/{h['n_decided']} concordant "
            f"({h['equivocal']} equivocal 2+); reference IHC {r['agree']}/{r['n_decided']}"
        )
    if report.percent_complete:
        p = report.percent_complete
        out.append(
            f"% complete membranes ({p['n']} slides): mean absolute error {p['mean_abs_error']:.1f} points, "
            f"bias {p['bias']:+.1f}, max {p['max_abs_error']:.1f}"
        )
    out.append(
        f"discordant slides: {len(report.discordant)}"
        + (
            ": "
            + ", ".join(
                f"{o.slide} ({o.predicted_label(report.level)} vs {o.reference_label(report.level)})"
                for o in report.discordant[:10]
            )
            if report.discordant
            else ""
        )
        + (" ..." if len(report.discordant) > 10 else "")
    )
    return "\n".join(out)
