"""The files of an evaluation (:func:`write_evaluation`): ``evaluation.json``, ``confusion.csv``, ``slides.csv``,
``discordant.csv``, ``contest.csv``, ``report.html`` and ``report.md``, written atomically and never onto an input.

Examples
--------
>>> sorted(EVALUATION_FILES)[:3]
['confusion', 'contest', 'discordant']
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ... import _csv as safe_csv
from ..._files import atomic_write_text, check_not_input
from ..statistics import CALIBRATION_EDGES as CALIBRATION_EDGES
from ..summary import (
    EvaluationReport,
)
from ..text import format_confusion as format_confusion

__all__ = ["write_evaluation"]


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


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence], protect=()) -> Path:
    import io

    text = io.StringIO(newline="")
    w = safe_csv.writer(text)
    w.writerow(header)
    for row in rows:
        w.writerow([_cell(v) for v in row])
    return atomic_write_text(path, text.getvalue(), protect=protect)


#: The files :func:`write_evaluation` writes into its folder.
EVALUATION_FILES = {
    "json": "evaluation.json",
    "confusion": "confusion.csv",
    "slides": "slides.csv",
    "discordant": "discordant.csv",
    "contest": "contest.csv",
    "html": "report.html",
    "markdown": "report.md",
}


def write_evaluation(report: EvaluationReport, out_dir: str | Path, *, protect=()) -> dict[str, Path]:
    """Write the evaluation files to ``out_dir`` (created if missing), each atomically and never onto an input.

    Files: ``evaluation.json`` (every figure and slide), ``confusion.csv`` (rows predicted, columns
    reference), ``slides.csv`` (every reference slide and its outcome), ``discordant.csv``,
    ``contest.csv`` (slide, score, percent_complete, confidence -- the fields of the Warwick HER2
    contest; empty where a slide has no score), ``report.html`` (one self-contained page, see
    :mod:`her2fast.validation.report`) and ``report.md`` (the same document in Markdown, see
    :mod:`her2fast.validation.markdown`). Links to slide outputs are relative to ``out_dir``.

    Parameters
    ----------
    report : EvaluationReport
    out_dir : str or Path
    protect : collection of (int, int)
        (device, inode) keys (:func:`her2fast._files.input_keys`) of files none of these may replace, e.g.
        the reference CSV (``run_evaluation`` passes it).

    Returns
    -------
    dict of str to Path
        ``json``, ``confusion``, ``slides``, ``discordant``, ``contest``, ``html``, ``markdown``.

    Raises
    ------
    OutputError
        One of the files would replace a file of ``protect``.
    """
    from ..document import evaluation_document
    from ..markdown import render_markdown
    from ..report import render_document

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    protect = frozenset(protect)
    for name in EVALUATION_FILES.values():  # before anything is written
        check_not_input(out / name, protect)
    files: dict[str, Path] = {}
    files["json"] = atomic_write_text(
        out / "evaluation.json", json.dumps(report.to_dict(), indent=1, allow_nan=False), protect=protect
    )
    labels = report.labels
    cm = report.summary.confusion if report.summary is not None else np.zeros((len(labels),) * 2, np.int64)
    files["confusion"] = _write_csv(
        out / "confusion.csv",
        ["predicted \\ reference", *labels],
        [[lab, *map(int, row)] for lab, row in zip(labels, cm)],
        protect,
    )
    lv = report.level
    files["slides"] = _write_csv(
        out / "slides.csv",
        [
            "line",
            "slide",
            "status",
            "reference",
            "predicted",
            "agrees",
            "category",
            "stratum",
            "percent_complete",
            "reference_percent_complete",
            "confidence",
            "ish_amplified",
            "tumour_cells",
            "flags",
            "reason",
            "overlay",
            "result_json",
            "from_store",
            "reviewed_score",
            "reviewer",
        ],
        [
            [
                o.line,
                o.slide,
                o.status,
                o.reference_label(lv),
                o.predicted_label(lv),
                o.agrees(lv),
                o.category,
                o.stratum,
                o.percent_complete,
                o.reference_percent_complete,
                o.confidence,
                o.ish_amplified,
                o.tumour_cells,
                ";".join(o.flags),
                o.reason,
                _rel(o.outputs.get("overlay"), out),
                _rel(o.outputs.get("json"), out),
                o.skipped,
                o.reviewed_score,
                o.reviewer,
            ]
            for o in report.outcomes
        ],
        protect,
    )
    files["discordant"] = _write_csv(
        out / "discordant.csv",
        [
            "line",
            "slide",
            "reference",
            "predicted",
            "category",
            "stratum",
            "percent_complete",
            "reference_percent_complete",
            "confidence",
            "flags",
            "overlay",
            "result_json",
        ],
        [
            [
                o.line,
                o.slide,
                o.reference_label(lv),
                o.predicted_label(lv),
                o.category,
                o.stratum,
                o.percent_complete,
                o.reference_percent_complete,
                o.confidence,
                ";".join(o.flags),
                _rel(o.outputs.get("overlay"), out),
                _rel(o.outputs.get("json"), out),
            ]
            for o in report.discordant
        ],
        protect,
    )
    files["contest"] = _write_csv(
        out / "contest.csv",
        ["slide", "score", "percent_complete", "confidence"],
        [
            [
                o.slide,
                o.score,
                round(o.percent_complete, 2) if o.scored and o.percent_complete is not None else None,
                round(o.confidence, 4) if o.scored and o.confidence is not None else None,
            ]
            for o in report.outcomes
        ],
        protect,
    )
    document = evaluation_document(report, out)  # one layout, two formats (links relative to out)
    files["html"] = atomic_write_text(out / "report.html", render_document(document), protect=protect)
    files["markdown"] = atomic_write_text(out / "report.md", render_markdown(document), protect=protect)
    return files
