"""``her2fast evaluate``: read the reference CSV, score its slides through the results store and write the
evaluation (:func:`run_evaluation`).

Examples
--------
>>> from pathlib import Path
>>> _align_rows([Path("a.svs")], [{"slide_path": "a.svs", "status": "ok"}])[0]["status"]
'ok'
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..._files import input_keys
from ...errors import InvalidInputError
from ..reference_csv import read_reference_csv
from ..statistics import CALIBRATION_EDGES as CALIBRATION_EDGES
from ..summary import (
    EvaluationReport,
)
from ..text import format_confusion as format_confusion
from .files import EVALUATION_FILES, write_evaluation
from .outcomes import evaluate_rows

__all__ = ["run_evaluation"]


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
    from ...service.batch import run_batch

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
    from ...io.store import ResultsStore

    with ResultsStore(out if store is None else getattr(store, "path", store), read_only=True) as st:
        reviews = st.latest_reviews()  # sign-offs made in her2fast view
    rows = [{**r, "review": reviews.get(r.get("id"))} for r in rows]  # type: ignore[arg-type]  # no id: no review
    report = evaluate_rows(refs, _align_rows(paths, rows), n_boot=n_boot, seed=seed, source=csv_path)
    return report, write_evaluation(report, out, protect=protect)
