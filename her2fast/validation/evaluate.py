"""Agreement between her2fast's scores and a lab's reference scores.

Three layers:

- pure metrics on label arrays (:mod:`her2fast.validation.statistics`: :func:`confusion_matrix`,
  :func:`cohen_kappa`, :func:`bootstrap_kappa_interval`, :func:`precision_recall`, :func:`cutoff_agreement`,
  :func:`agreement_summary`) and the reference-CSV reader (:mod:`her2fast.validation.reference_csv`:
  :func:`read_reference_csv`);
- :func:`evaluate_rows`: reference rows + results-store rows -> :class:`EvaluationReport` (pure: no
  scoring; it reads only the result JSON files the rows point to), :func:`format_summary` (the text
  ``her2fast evaluate`` prints, :mod:`her2fast.validation.text`) and :func:`write_evaluation`
  (``evaluation.json``, ``confusion.csv``, ``slides.csv``, ``discordant.csv``, ``contest.csv``, ``report.html``);
- :func:`run_evaluation`: reads the CSV, scores the slides with :func:`her2fast.service.batch.run_batch` (slides
  already in the results store with the same content and versions are not scored again) and writes
  everything -- what ``her2fast evaluate REFERENCE.csv --out DIR`` runs.

The figures themselves (:class:`EvaluationReport`, :class:`SlideOutcome`, :class:`AgreementSummary`,
:class:`CutoffAgreement`) and the score vocabulary are defined in :mod:`her2fast.validation.summary`,
which :mod:`her2fast.validation.report` draws from. Every name of ``__all__`` imports from here as well,
wherever it is defined.

Score vocabularies
------------------
- ASCO/CAP categories ``"0"``, ``"0+"`` (ultralow), ``"1+"``, ``"2+"``, ``"3+"``; agreement tables use
  the four ASCO/CAP 2018 classes 0, 1+, 2+, 3+ (``"0+"`` counts as ``"0"``), and the ultralow /
  null split is reported separately where the reference has it.
- Clinical groups ``negative`` (0, 1+), ``equivocal`` (2+), ``positive`` (3+): a reference given in
  these words is compared with predictions mapped the same way.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import _csv as safe_csv
from .._files import atomic_write_text, check_not_input, input_keys
from ..errors import InvalidInputError
from .reference_csv import ReferenceRow, read_reference_csv
from .statistics import CALIBRATION_EDGES as CALIBRATION_EDGES
from .statistics import (
    agreement_summary,
    bootstrap_kappa_interval,
    calibration_bins,
    cohen_kappa,
    confusion_matrix,
    cutoff_agreement,
    ish_agreement,
    percent_complete_error,
    precision_recall,
    ultralow_split,
)
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
from .text import format_confusion as format_confusion
from .text import format_summary

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
        and the percent complete (``percent_complete``, ``percentages["complete"]`` or the result JSON);
        optionally ``review``, the run's sign-off in force (``score_after``, ``reviewer``). Fields missing
        from the row are taken from the result JSON when it exists. None: no result.
    path : str, optional
        The slide file (default: the row's ``slide_path``, else the reference's ``slide``).

    Returns
    -------
    SlideOutcome
        ``"failed"`` for a failed run or no row, ``"not_scorable"`` for a result without a score.
    """
    base: dict[str, Any] = dict(
        line=reference.line,
        slide=reference.slide,
        reference=reference.score,
        reference_percent_complete=reference.percent_complete,
        ish_amplified=reference.ish_amplified,
    )
    if row is None:
        return SlideOutcome(path=path or reference.slide, status="failed", reason="no result for this slide", **base)
    outputs = {str(k): str(v) for k, v in (row.get("outputs") or {}).items() if v}
    d = _result_json(outputs)

    def pick(key):
        v = row.get(key)
        return d.get(key) if v is None else v

    path = path or str(row.get("slide_path") or reference.slide)
    status = str(row.get("status") or ("ok" if d else "failed"))
    review = row.get("review") if isinstance(row.get("review"), Mapping) else None
    signed = {"reviewed_score": review.get("score_after"), "reviewer": review.get("reviewer")} if review else {}
    common: dict[str, Any] = dict(path=path, outputs=outputs, skipped=bool(row.get("skipped", False)), **signed, **base)
    if status == "failed":
        return SlideOutcome(
            status="failed",
            reason=str(row.get("error") or "failed (no message)"),
            flags=_flags(pick("flags")),
            **common,
        )
    percentages = row.get("percentages") or {}
    pc = _opt_float(row.get("percent_complete"))
    if pc is None and isinstance(percentages, Mapping):
        pc = _opt_float(percentages.get("complete"))
    if pc is None:
        pc = _opt_float(d.get("percent_complete"))
    counts = d.get("counts") or {}
    tumour = row.get("tumour_cells", counts.get("tumour_cells"))
    fields: dict[str, Any] = dict(
        percent_complete=pc, flags=_flags(pick("flags")), tumour_cells=None if tumour is None else int(tumour), **common
    )
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
    return SlideOutcome(
        status="scored",
        score=score,
        category=category,
        stratum=pick("stratum"),
        confidence=_opt_float(pick("confidence")),
        **fields,
    )


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
            raise InvalidInputError(
                f"{len(refs)} reference rows but {len(rows)} results: give one result per "
                "reference row, in the same order (or a mapping slide -> row)"
            )
    outcomes = [outcome_from_row(ref, row) for ref, row in zip(refs, rows)]
    level = "group" if any(r.score in GROUPS for r in refs) else "score"
    scored = [o for o in outcomes if o.scored]
    summary = None
    if scored:
        summary = agreement_summary([o.score for o in scored], [o.reference for o in scored], n_boot=n_boot, seed=seed)
    return EvaluationReport(
        outcomes=outcomes,
        level=level,
        summary=summary,
        ultralow=ultralow_split(scored) if level == "score" else None,
        ish=ish_agreement(scored),
        percent_complete=percent_complete_error(scored),
        calibration=calibration_bins(scored, level),
        versions=_versions(rows),
        source=None if source is None else str(source),
        n_boot=n_boot,
        seed=seed,
    )


# ------------------------------------------------------------------------------ files
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
}


def write_evaluation(report: EvaluationReport, out_dir: str | Path, *, protect=()) -> dict[str, Path]:
    """Write the evaluation files to ``out_dir`` (created if missing), each atomically and never onto an input.

    Files: ``evaluation.json`` (every figure and slide), ``confusion.csv`` (rows predicted, columns
    reference), ``slides.csv`` (every reference slide and its outcome), ``discordant.csv``,
    ``contest.csv`` (slide, score, percent_complete, confidence -- the fields of the Warwick HER2
    contest; empty where a slide has no score) and ``report.html`` (one self-contained page, see
    :mod:`her2fast.validation.report`). Links to slide outputs are relative to ``out_dir``.

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
        ``json``, ``confusion``, ``slides``, ``discordant``, ``contest``, ``html``.

    Raises
    ------
    OutputError
        One of the files would replace a file of ``protect``.
    """
    from .report import render_html

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
    files["html"] = atomic_write_text(out / "report.html", render_html(report, out), protect=protect)
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
    profile=None,
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
    profile : CalibrationProfile, str or Path, optional
        A calibration profile (``her2fast calibrate``), passed to :func:`~her2fast.service.batch.run_batch`.
        Evaluate a profile on slides other than those it was fitted on.

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
    protect = input_keys([csv_path, *paths])
    for kind, name in EVALUATION_FILES.items():  # refuse before scoring, not after
        if input_keys([out / name]) & protect:
            raise InvalidInputError(
                f"{out / name} is an input of this evaluation (the reference CSV or a slide), and evaluate writes "
                f"its {kind} file there: choose another --out folder, or rename the input"
            )
    batch = run_batch(
        [str(p) for p in paths],
        out,
        store=store,
        workers=workers,
        mpp=mpp,
        settings=settings,
        providers=providers,
        progress=progress,
        scheduler=scheduler,
        pictures=pictures,
        geojson=geojson,
        profile=profile,
    )
    rows = list(batch.rows)
    from ..io.store import ResultsStore

    with ResultsStore(out if store is None else getattr(store, "path", store), read_only=True) as st:
        reviews = st.latest_reviews()  # sign-offs made in her2fast view
    rows = [{**r, "review": reviews.get(r.get("id"))} for r in rows]  # type: ignore[arg-type]  # no id: no review
    report = evaluate_rows(refs, _align_rows(paths, rows), n_boot=n_boot, seed=seed, source=csv_path)
    return report, write_evaluation(report, out, protect=protect)
