"""Reference rows and results-store rows to figures: one :class:`~her2fast.validation.summary.SlideOutcome`
per reference slide (:func:`outcome_from_row`) and the :class:`~her2fast.validation.summary.EvaluationReport`
of them all (:func:`evaluate_rows`; pure: no scoring, it reads only the result JSON files the rows point to).

Examples
--------
>>> _opt_float("0.5"), _opt_float(""), _flags("a, b")
(0.5, None, ('a', 'b'))
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ...errors import InvalidInputError
from ..reference_csv import ReferenceRow
from ..statistics import CALIBRATION_EDGES as CALIBRATION_EDGES
from ..statistics import (
    agreement_summary,
    calibration_bins,
    ish_agreement,
    percent_complete_error,
    ultralow_split,
)
from ..summary import (
    GROUPS,
    EvaluationReport,
    SlideOutcome,
    four_class,
    normalise_score,
)
from ..text import format_confusion as format_confusion

__all__ = ["outcome_from_row", "evaluate_rows"]


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
