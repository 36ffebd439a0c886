"""The evaluation as one presentation document (:func:`evaluation_document`): what ``her2fast evaluate`` prints,
and what ``report.md`` and ``report.html`` show.

Built once from an :class:`~her2fast.validation.summary.EvaluationReport`; the renderers
(:func:`~her2fast.validation.text.render_text`, :func:`~her2fast.validation.markdown.render_markdown`,
:func:`~her2fast.validation.report.render_document`) only lay it out.

Examples
--------
>>> from her2fast.validation.evaluate import ReferenceRow, evaluate_rows
>>> r = evaluate_rows([ReferenceRow(line=2, slide="a.svs", score="3+")], [{"status": "ok", "score": "3+"}], n_boot=10)
>>> doc = evaluation_document(r)
>>> [s.title for s in doc.sections][:4]
['', 'Confusion matrix', 'Agreement', 'Clinical cut-offs']
>>> "1.000" in doc.figures()
True
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import InvalidInputError
from .presentation import Block, Cell, Document, Figure, Paragraph, Plot, Section, Table, confusion_table, link, number
from .summary import GROUPS, EvaluationReport, SlideOutcome

__all__ = ["evaluation_document", "TITLE"]

#: Title of the evaluation's document.
TITLE = "her2fast: agreement with reference HER2 scores"

_WHAT_THIS_SHOWS = (
    "How often her2fast's score matches this reference on these slides, with intervals that reflect how few "
    "slides there are. It does not show that either is right, that the agreement carries over to other "
    "laboratories, stains or scanners, or that her2fast is fit for diagnosis; a lab must judge that against "
    "its own validation protocol (e.g. CAP's, with enough slides per category)."
)
_CONFIDENCE_NOTE = (
    "Confidence is Phi(margin): the distance of the deciding cell fraction from its cut-off in binomial "
    "standard errors. It accounts for counting noise only, not for segmentation errors; a well-calibrated "
    "tool has its dots on the dashed line (correct fraction = mean confidence)."
)


def _meta(report: EvaluationReport) -> tuple[str, ...]:
    versions = "; ".join(
        f"her2fast {v.get('her2fast')}, models "
        + ", ".join(f"{k} {str(m)[:12]}" for k, m in (v.get("models") or {}).items())
        for v in report.versions
    )
    return (
        f"reference: {report.source or '-'}",
        time.strftime("%Y-%m-%d %H:%M"),
        versions or f"her2fast {__version__}",
    )


def _counts(report: EvaluationReport) -> Section:
    c = report.counts()
    head = (
        f"{c['total']} slides in {report.source or 'the reference'}: {c['scored']} scored"
        + (f" ({c['from_store']} taken from the results store)" if c["from_store"] else "")
        + f", {c['not_scorable']} not scorable, {c['failed']} failed."
    )
    return Section(
        "",
        (
            Paragraph(head),
            Paragraph("Slides without a score are left out of every figure and listed under 'Left out'.", "note"),
        ),
    )


def _agreement(report: EvaluationReport) -> list[Section]:
    s = report.summary
    if s is None:
        return [Section("Agreement", (Paragraph("No slide was scored: there are no agreement figures."),))]
    level_text = (
        "clinical groups (the reference is given as negative / equivocal / positive)"
        if report.level == "group"
        else "ASCO/CAP classes 0, 1+, 2+, 3+ (0+ ultralow counts as 0)"
    )
    n, agree = int(s.confusion.sum()), int(np.trace(s.confusion))
    kappa = Table(
        ("Cohen's kappa", "value", "95 % bootstrap CI"),
        [
            (k, number(s.kappa[k]), f"{number(s.kappa_interval[k][0], 2)}..{number(s.kappa_interval[k][1], 2)}")
            for k in ("unweighted", "linear", "quadratic")
        ],
        notes=(f"{report.n_boot} bootstrap resamples of the slides (seed {report.seed}).",),
    )
    pr = Table(
        ("class", "precision", "recall"),
        [(lab, number(p, 2), number(r, 2)) for lab, (p, r) in s.precision_recall.items()],
    )
    out = [
        Section(
            "Confusion matrix",
            (
                Paragraph(f"{level_text}; rows her2fast (predicted), columns reference.", "note"),
                confusion_table(s.labels, s.confusion),
            ),
        ),
        Section(
            "Agreement", (Figure("accuracy", f"{s.accuracy:.3f}", f"({agree}/{n} slides)", headline=True), kappa, pr)
        ),
    ]
    if s.cutoffs:
        rows = [
            (c.question, f"{c.agree}/{c.n}", number(c.accuracy), number(c.sensitivity, 2), number(c.specificity, 2))
            for c in s.cutoffs
        ]
        header = ("question", "agree", "accuracy", "sensitivity", "specificity")
        out.append(Section("Clinical cut-offs", (Table(header, rows),)))
    return out


def _extras(report: EvaluationReport) -> list[Section]:
    out = []
    if report.ultralow:
        u = report.ultralow
        out.append(
            Section(
                "HER2-0: null vs ultralow",
                (
                    Paragraph(f"{u['note']}.", "note"),
                    Figure("null vs ultralow", f"{u['agree']}/{u['n']}", "agree"),
                    confusion_table(u["labels"], u["confusion"]),
                ),
            )
        )
    if report.ish:
        i = report.ish
        header = ("IHC by", "concordant", "equivocal (2+)", *(f"{g}: amplified / not" for g in GROUPS))
        rows = [
            (
                who,
                f"{i[who]['agree']}/{i[who]['n_decided']}",
                i[who]["equivocal"],
                *(f"{i[who]['table'][g]['amplified']}/{i[who]['table'][g]['not_amplified']}" for g in GROUPS),
            )
            for who in ("her2fast", "reference")
        ]
        out.append(Section(f"Against ISH ({i['n']} slides)", (Paragraph(f"{i['note']}.", "note"), Table(header, rows))))
    if report.percent_complete:
        p = report.percent_complete
        figures: list[Block] = [
            Figure("slides with a reference percentage", str(p["n"])),
            Figure("mean absolute error", f"{p['mean_abs_error']:.1f}", "points"),
            Figure("bias", f"{p['bias']:+.1f}", "points (her2fast minus reference)"),
            Figure("RMSE", f"{p['rmse']:.1f}", "points"),
            Figure("largest error", f"{p['max_abs_error']:.1f}", "points"),
            Figure("Pearson r", number(p["pearson_r"], 2)),
        ]
        out.append(Section("% cells with complete membrane staining", tuple(figures)))
    if report.summary is not None:
        bins = Table(
            ("confidence", "slides", "mean confidence", "correct"),
            [
                (f"{b['lo']:.1f}-{b['hi']:.1f}", b["n"], number(b["mean_confidence"]), f"{b['correct']}/{b['n']}")
                for b in report.calibration
            ],
            notes=(_CONFIDENCE_NOTE,),
        )
        out.append(Section("Calibration: confidence vs correctness", (Plot(tuple(report.calibration)), bins)))
    return out


def _discordant(report: EvaluationReport, base: Path | None) -> Section:
    lv = report.level
    disc = report.discordant
    title = f"Discordant slides ({len(disc)})"
    if not disc:
        return Section(title, (Paragraph("None."),))

    def row(o: SlideOutcome) -> tuple:
        overlay = o.outputs.get("overlay")
        ref_pc = "" if o.reference_percent_complete is None else number(o.reference_percent_complete, 1)
        return (
            Cell(o.slide, href=link(o.outputs.get("json"), base)),
            o.line,
            o.reference_label(lv),
            Cell(str(o.predicted_label(lv)), strong=True),
            o.stratum or "",
            number(o.percent_complete, 1),
            ref_pc,
            number(o.confidence, 2),
            ", ".join(o.flags),
            Cell("overlay", href=link(overlay, base), image=overlay) if overlay else "",
        )

    header = (
        "slide",
        "line",
        "reference",
        "her2fast",
        "stratum",
        "% complete",
        "% complete (ref.)",
        "confidence",
        "flags",
        "overlay",
    )
    return Section(title, (Table(header, [row(o) for o in disc]),))


def _excluded(report: EvaluationReport) -> Section:
    exc = report.excluded
    title = f"Left out: not scorable or failed ({len(exc)})"
    if not exc:
        return Section(title, (Paragraph("None."),))
    rows = [(o.slide, o.line, o.reference, o.status.replace("_", " "), o.reason or "") for o in exc]
    return Section(title, (Table(("slide", "line", "reference", "status", "reason"), rows),))


def evaluation_document(report: EvaluationReport, out_dir: str | Path | None = None) -> Document:
    """The evaluation's document: counts, confusion matrix, agreement, cut-offs, ultralow, ISH, % complete,
    calibration, discordant and left-out slides.

    Parameters
    ----------
    report : EvaluationReport
    out_dir : str or Path, optional
        Folder the rendering will be written to: links to the slides' overlays and result files are
        relative to it (absolute ``file:`` URIs when None).

    Returns
    -------
    Document

    Raises
    ------
    InvalidInputError
        ``report`` is not an EvaluationReport.
    """
    if not isinstance(report, EvaluationReport):
        raise InvalidInputError(
            f"report must be a her2fast.validation.evaluate.EvaluationReport, got {type(report).__name__}"
        )
    base = None if out_dir is None else Path(out_dir)
    sections: Sequence[Section] = [
        _counts(report),
        *_agreement(report),
        *_extras(report),
        _discordant(report, base),
        _excluded(report),
        Section("What this shows", (Paragraph(_WHAT_THIS_SHOWS, "note"),)),
    ]
    return Document(TITLE, _meta(report), tuple(sections))
