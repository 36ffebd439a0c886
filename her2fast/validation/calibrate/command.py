"""``her2fast calibrate``: score the reference slides through the results store, fit, cross-validate and write
the profile with its figures (:func:`calibrate`).

Examples
--------
>>> import inspect
>>> list(inspect.signature(calibrate).parameters)[:2]
['reference_csv', 'out_dir']
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from ...errors import InvalidInputError
from ...scoring import (
    DEFAULT_FITTED_FIELDS,
    CalibrationProfile,
    CellTable,
    measurement_settings,
)
from ..reference_csv import ReferenceRow, read_reference_csv
from .agreement import _labels, _level
from .cells import CellSet
from .cross_validation import cross_validate
from .figures import agreement_figures, reference_warnings
from .fitting import _searches, fit_rules
from .report import CalibrationReport, write_calibration, write_html, write_markdown

__all__ = ["calibrate"]


def _file_sha256(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    data = path.read_bytes()
    h.update(data)
    return h.hexdigest(), len(data)


def calibrate(
    reference_csv: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    name: str | None = None,
    scores_dir: str | os.PathLike | None = None,
    store=None,
    mpp: float | None = None,
    settings=None,
    providers="auto",
    workers: int | None = None,
    progress: bool = True,
    scheduler=None,
    fields: Sequence[str] = DEFAULT_FITTED_FIELDS,
    strength: float = 1.0,
    folds: int = 10,
    n_boot: int = 2000,
    seed: int = 0,
) -> CalibrationReport:
    """Fit the scoring thresholds to a lab's reference slides and write the profile with honest figures.

    Parameters
    ----------
    reference_csv : str or PathLike
        ``slide,score[,percent_complete][,ish]`` as ``her2fast evaluate`` reads it
        (:func:`~her2fast.validation.reference_csv.read_reference_csv`).
    out_dir : str or PathLike
        The profile folder: ``profile.json`` (what ``--profile`` takes), ``calibration.json``,
        ``calibration.html``, ``calibration.md``.
    name : str, optional
        The profile's name (default: the CSV's name and today's date).
    scores_dir : str or PathLike, optional
        Where the slides' results go (default ``out_dir/slides``); give the ``--out`` folder of an earlier
        ``her2fast evaluate`` or ``batch`` of these slides and nothing is scored again.
    store : ResultsStore, str or PathLike, optional
        The results store (default ``scores_dir/results.db``).
    mpp, settings, providers, workers, progress, scheduler
        As :func:`her2fast.service.batch.run_batch`. ``settings.rules`` are the defaults the fit starts
        from; the profile records the measurement settings and refuses runs with others.
    fields : sequence of str
        The ScoringRules fields to fit.
    strength : float
        Regularisation toward the defaults (:func:`fit_rules`).
    folds : int
        Cross-validation folds (leave-one-slide-out when at least the number of slides).
    n_boot, seed : int
        Bootstrap resamples and seed (folds and intervals).

    Returns
    -------
    CalibrationReport
        With ``files``: ``profile``, ``json``, ``html``, ``markdown``.

    Raises
    ------
    InvalidInputError
        A problem in the CSV, fewer than 4 usable slides, or a reference of one class only.
    """
    from ... import __version__
    from ...pipeline import ScoreSettings
    from ...service.batch import model_versions, run_batch

    settings = ScoreSettings() if settings is None else settings
    if not isinstance(settings, ScoreSettings):
        raise InvalidInputError(f"settings must be a her2fast.ScoreSettings, got {type(settings).__name__}")
    _searches(fields)
    csv_path = Path(reference_csv)
    refs: list[ReferenceRow] = read_reference_csv(csv_path, check_files=True)
    out = Path(out_dir)
    work = Path(scores_dir) if scores_dir is not None else out / "slides"
    paths = [Path(r.slide) if Path(r.slide).is_absolute() else csv_path.parent / r.slide for r in refs]
    t0 = time.perf_counter()
    batch = run_batch(
        [str(p) for p in paths],
        work,
        store=store,
        workers=workers,
        mpp=mpp,
        settings=settings,
        providers=providers,
        progress=progress,
        scheduler=scheduler,
        pictures=False,
        geojson=False,
    )
    t_scoring = time.perf_counter() - t0
    from ..evaluate import _align_rows

    rows = _align_rows(paths, list(batch.rows))
    tables: list[CellTable] = []
    used_refs: list[ReferenceRow] = []
    slides: list[dict] = []
    slide_hashes = []
    for ref, row in zip(refs, rows):
        entry = {"line": ref.line, "slide": ref.slide, "reference": ref.score, "status": "excluded"}
        slides.append(entry)
        if row is None or row.get("status") != "ok":
            entry["reason"] = str((row or {}).get("error") or "no result")
            continue
        if row.get("score") is None:
            entry["reason"] = f"not scorable: {row.get('not_scorable')}"
            continue
        cells_file = (row.get("outputs") or {}).get("cells")
        try:
            table = CellTable.load_npz(cells_file) if cells_file else None
        except (OSError, ValueError) as exc:
            entry["reason"] = (
                f"cannot read the cell table {cells_file}: {exc}; score the slide again (new scores folder)"
            )
            continue
        if table is None:
            entry["reason"] = "the result has no cell table; score the slide again (new scores folder)"
            continue
        if not table.is_tumour.any():
            entry["reason"] = "no tumour cells"
            continue
        entry.update(status="used", tumour_cells=int(table.is_tumour.sum()), index=len(tables))
        tables.append(table)
        used_refs.append(ref)
        slide_hashes.append(f"{row.get('slide_sha256')},{ref.score}")
    reference = [r.score for r in used_refs]
    if len(tables) < 4:
        raise InvalidInputError(
            f"only {len(tables)} of the {len(refs)} reference slides were scored; at least 4 are needed to "
            f"calibrate (CAP asks for 20 positive and 20 negative); see {work} for why the others failed"
        )
    level = _level(reference)
    if len(set(_labels(reference, level))) < 2:
        raise InvalidInputError(
            f"every usable reference slide is {_labels(reference, level)[0]}: a calibration needs slides of at "
            "least two classes (CAP asks for 20 positive and 20 negative)"
        )
    cs = CellSet.from_tables(tables)
    base = settings.rules
    fit = fit_rules(cs, reference, fields=fields, base=base, strength=strength)
    cv = cross_validate(cs, reference, folds=folds, seed=seed, fields=fields, base=base, strength=strength)
    figures = agreement_figures(cv.default, cv.calibrated, reference, n_boot=n_boot, seed=seed)
    warnings = reference_warnings(reference, [r.ish_amplified for r in used_refs])
    excluded = [s for s in slides if s["status"] == "excluded"]
    if excluded:
        warnings.append(
            f"{len(excluded)} reference slide(s) left out (failed or not scorable): "
            + ", ".join(f"{s['slide']} ({s['reason']})" for s in excluded[:5])
            + (" ..." if len(excluded) > 5 else "")
        )
    d = figures["difference"]
    if d["accuracy"]["value"] < 0 or d["kappa_quadratic"]["value"] < 0:
        warnings.append(
            "on held-out slides the calibrated thresholds agree less with the reference than the defaults: keep "
            "the defaults (score without --profile)"
        )
    elif d["accuracy"]["ci"][0] <= 0:
        warnings.append(
            "the held-out gain over the defaults is within the bootstrap interval of no gain: the reference set "
            "cannot show that the calibration helps"
        )
    full = cs.categories(fit.rules)
    for s in slides:
        if s["status"] == "used":
            i = s.pop("index")
            s.update(default=cv.default[i], calibrated=full[i], held_out=cv.calibrated[i], fold=cv.fold[i])
    versions = model_versions(settings)
    sha, size = _file_sha256(csv_path)
    now = datetime.now(timezone.utc)
    summary = {
        "cross_validation_folds": len(cv.fold_parameters),
        "held_out": {
            k: {
                kk: figures[k][kk]
                for kk in (
                    "accuracy",
                    "accuracy_ci",
                    "kappa_quadratic",
                    "kappa_quadratic_ci",
                    "low_agreement",
                    "low_agreement_ci",
                )
                if kk in figures[k]
            }
            for k in ("default", "calibrated")
        },
    }
    by_score: dict[str, int] = {}
    for lab in _labels(reference, level):
        by_score[lab] = by_score.get(lab, 0) + 1
    profile = CalibrationProfile(
        name=name or f"{csv_path.stem} {now.date().isoformat()}",
        parameters=fit.parameters,
        models={k: v for k, v in versions.items() if k not in ("settings", "profile")},
        her2fast_version=__version__,
        measurement=measurement_settings(settings.to_dict()),
        created=now.isoformat(timespec="seconds"),
        reference={
            "file": csv_path.name,
            "sha256": sha,
            "bytes": size,
            "slides": len(refs),
            "scored": len(tables),
            "by_score": by_score,
            "slides_sha256": hashlib.sha256("\n".join(sorted(slide_hashes)).encode()).hexdigest(),
        },
        figures=summary,
        defaults=fit.defaults,
        warnings=warnings,
    )
    report = CalibrationReport(
        profile=profile,
        fit=fit,
        cross_validation=cv,
        figures=figures,
        slides=slides,
        warnings=warnings,
        timings={"scoring": t_scoring, "fit": fit.seconds, "cross_validation": cv.seconds},
    )
    write_calibration(report, out)
    # the profile as written (its sha256 is that of the file, what results record)
    from ...io.profile import load_profile

    report.profile = load_profile(report.files["profile"])
    report.files["json"].write_text(json.dumps(report.to_dict(), indent=1, allow_nan=False), encoding="utf-8")
    write_html(report, report.files["html"])
    write_markdown(report, report.files["markdown"])
    return report
