"""One slide of a batch or of the watch-folder service: identify it, score it, record its row.

What :mod:`her2fast.service.batch` and :mod:`her2fast.service.watch` share:

- :func:`identify` -- a slide's content identity (path, size, mtime, sha256) or why it cannot be read;
- :func:`model_versions` -- the models, settings and profile a run would use, as hashes (part of the key a
  result is stored and found under);
- :func:`score_one` -- score a slide and publish its report, giving the run record to store;
- :func:`row_of` -- commit that record to the results store (or find the run a skip refers to);
- :func:`describe_error` -- the one-line form of an error stored in a ``failed`` row.

Which files are slides (:func:`scan_folder`, :data:`SLIDE_SUFFIXES`, :func:`is_slide_name`) is
:mod:`her2fast.service.slides`; writing the report files into the output folder (:func:`publish_report`,
:func:`free_name`, :func:`clean_stale_temp`) is :mod:`her2fast.service.publish`. Both are importable from
here too.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from .. import __version__
from .._files import snapshot
from ..errors import Her2FastError, InvalidInputError, ModelError, SlideChangedError
from ..io.store import ResultsStore, RunRecord, SlideIdentity, StoreError, slide_files, slide_identity
from .publish import clean_stale_temp, describe_output_error, free_name, publish_report
from .publish import report_owner as report_owner
from .slides import SLIDE_SUFFIXES, is_slide_name, scan_folder

__all__ = [
    "SLIDE_SUFFIXES",
    "clean_stale_temp",
    "describe_error",
    "describe_output_error",
    "free_name",
    "identify",
    "is_slide_name",
    "model_versions",
    "publish_report",
    "row_of",
    "scan_folder",
    "score_one",
]


def describe_error(exc: BaseException) -> str:
    """``"<ErrorType>: <message>"``: how an error is written into a ``failed`` row."""
    return f"{type(exc).__name__}: {exc}"


def identify(path: str) -> tuple[SlideIdentity, str | None]:
    """The content identity of a slide file, or why it cannot be read.

    Parameters
    ----------
    path : str

    Returns
    -------
    (SlideIdentity, str or None)
        The identity (:func:`her2fast.io.store.slide_identity`: absolute path, size, mtime, sha256) and
        None; or, for a missing or unreadable file, an identity with an empty sha256 and the reason.
    """
    try:
        return slide_identity(path), None
    except (InvalidInputError, SlideChangedError) as exc:
        return SlideIdentity(os.path.abspath(path), 0, 0.0, ""), str(exc)
    except OSError as exc:
        return SlideIdentity(os.path.abspath(path), 0, 0.0, ""), f"cannot read {path}: {exc}"


def model_versions(settings=None, profile=None) -> dict[str, str]:
    """The sha256 of every model a run with these settings uses, of the settings themselves, and of the profile.

    Cheap (no model is loaded): the epithelium classifier (shipped, or ``$HER2FAST_EPITHELIUM_MODEL``)
    and, for ``membrane_method="unet"``, the membrane U-Net, from the models' ``config.json`` (the
    loaders check the files against these hashes, so a run that succeeds used exactly these models);
    ``"settings"`` is the sha256 of the canonical JSON of ``settings.to_dict()`` (first 16 hex digits),
    so that the results store never hands back a result computed with other thresholds, bands or
    tiles (including defaults changed by a newer her2fast of the same version number).

    A calibration profile adds ``"profile"``, the first 16 hex digits of its sha256: a result is
    handed back only for the same profile (its provenance names the profile).

    Parameters
    ----------
    settings : ScoreSettings, optional
        With the profile's thresholds already in (:func:`her2fast.api.apply_profile`).
    profile : CalibrationProfile, optional

    Returns
    -------
    dict of str to str
        ``{"epithelium_svm": sha256[, "membrane_unet": sha256], "settings": sha256[:16][, "profile": sha256[:16]]}``.

    Raises
    ------
    ModelError
        A model's config.json is missing or unreadable.
    """
    import json
    from importlib.resources import files

    from ..pipeline import ScoreSettings
    from ..stages.membrane import load_model_config

    settings = ScoreSettings() if settings is None else settings
    folder = os.environ.get("HER2FAST_EPITHELIUM_MODEL") or str(files("her2fast") / "models" / "epithelium_svm")
    cfg = Path(folder) / "config.json"
    try:
        epi = str(json.loads(cfg.read_text())["sha256"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(
            f"cannot read the epithelium model's sha256 from {cfg}: {exc}; reinstall her2fast or fix "
            "$HER2FAST_EPITHELIUM_MODEL"
        ) from None
    versions = {"epithelium_svm": epi}
    if settings.membrane_method == "unet":
        versions["membrane_unet"] = load_model_config().sha256
    # repr of floats (inf included) and of numpy scalars: any valid settings hash, equal settings alike
    canonical = json.dumps(
        settings.to_dict(),
        sort_keys=True,
        separators=(",", ":"),
        default=lambda v: v.item() if hasattr(v, "item") else repr(v),
    )
    versions["settings"] = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    if profile is not None:
        versions["profile"] = profile.sha256[:16]
    return versions


def score_one(
    path: str,
    identity: SlideIdentity,
    out_dir: Path,
    name: str,
    versions: Mapping[str, str],
    *,
    mpp,
    settings,
    providers,
    progress: bool,
    pictures: bool,
    geojson: bool,
    profile=None,
    protect: Collection[tuple[int, int]] = (),
    owners: Mapping[str, str] | None = None,
) -> tuple[RunRecord, str | None]:
    """Score a slide and write its report; the run record to store and the kind of failure.

    The report is complete on disk (:func:`publish_report`: written into a temporary folder, flushed,
    renamed into place under a name that is this slide's alone) before this returns, and describes the
    bytes ``identity`` hashed: a slide that changed meanwhile publishes nothing. Nothing raises for a bad
    slide or an unwritable output folder: the record is ``failed`` with the reason.

    Parameters
    ----------
    path : str
        The slide.
    identity : SlideIdentity
        From :func:`identify`.
    out_dir : Path
        Report folder.
    name : str
        Wanted report name (the slide's file name without suffix; see :func:`free_name`).
    versions : mapping of str to str
        :func:`model_versions` of ``settings``, stored with the record.
    mpp, settings, providers, progress
        As :func:`her2fast.score`.
    pictures, geojson : bool
        Write the PNG pictures / the QuPath GeoJSON.
    profile : CalibrationProfile, optional
        As :func:`her2fast.score` (``settings`` should already hold its thresholds:
        :func:`her2fast.api.apply_profile`).
    protect, owners
        As :func:`publish_report`.

    Returns
    -------
    (RunRecord, str or None)
        The record, and None when it is ``ok``; else ``"slide"`` (the slide cannot be read or scored),
        ``"changed"`` (the slide changed while it was scored: score it again once it is complete) or
        ``"output"`` (its report cannot be written, e.g. a full disk: worth trying again later).
    """
    from ..api import score

    started = time.time()
    common: dict[str, Any] = dict(
        slide=identity, package_version=__version__, model_versions=dict(versions), started_at=started
    )

    def failed(error: str, kind: str) -> tuple[RunRecord, str]:
        return RunRecord(status="failed", error=error, finished_at=time.time(), **common), kind

    def changed() -> bool:
        try:
            return bool(identity.snapshot) and snapshot(slide_files(path)) != identity.snapshot
        except OSError:
            return True

    def changed_error() -> tuple[RunRecord, str]:
        exc = SlideChangedError(
            f"{path} changed while it was scored (rewritten or replaced); nothing was written for it: "
            "score it again once it is complete"
        )
        return failed(describe_error(exc), "changed")

    try:
        result = score(path, mpp=mpp, providers=providers, settings=settings, progress=progress, profile=profile)
    except (Her2FastError, OSError) as exc:
        return changed_error() if changed() else failed(describe_error(exc), "slide")
    except Exception as exc:  # noqa: BLE001 - a bug met on this slide must not stop the batch
        if changed():
            return changed_error()
        return failed(f"unexpected error, please report it: {describe_error(exc)}", "slide")
    t0 = time.perf_counter()
    try:
        outputs, hashes = publish_report(
            result, identity, out_dir, name, pictures=pictures, geojson=geojson, protect=protect, owners=owners
        )
    except SlideChangedError:
        return changed_error()
    except OSError as exc:
        return failed(describe_output_error(out_dir, exc), "output")
    except Her2FastError as exc:  # the slide reopened for the pictures, or no free name
        return changed_error() if changed() else failed(describe_error(exc), "slide")
    except Exception as exc:  # noqa: BLE001
        return failed(f"unexpected error while writing the report, please report it: {describe_error(exc)}", "slide")
    d = result.to_dict(include_cells=False)
    timings = {k: float(v) for k, v in d["timings"].items()}
    timings["outputs"] = round(time.perf_counter() - t0, 4)
    return RunRecord(
        status="ok",
        category=d["category"],
        score=d["score"],
        stratum=d["stratum"],
        percentages=d["percentages"],
        confidence=d["confidence"],
        timings=timings,
        outputs=outputs,
        output_sha256=hashes,
        finished_at=time.time(),
        percent_complete=d["percent_complete"],
        not_scorable=d["not_scorable"],
        flags=list(d["flags"]),
        **common,
    ), None


def row_of(store: ResultsStore, identity: SlideIdentity, record: RunRecord | None, versions: Mapping[str, str]) -> dict:
    """Commit a run to the results store, or look up the run a skip refers to.

    Parameters
    ----------
    store : ResultsStore
    identity : SlideIdentity
    record : RunRecord or None
        The run to commit; None when the slide was skipped (an ``ok`` run of the same content and versions
        is stored).
    versions : mapping of str to str
        The versions the skip was decided for.

    Returns
    -------
    dict
        The stored row (as :meth:`~her2fast.io.store.ResultsStore.rows` yields it) plus ``skipped``: True
        when nothing new was stored.

    Raises
    ------
    StoreError
        The store cannot be written, or the ``ok`` run a skip refers to is gone.
    """
    if record is None:
        row = store.find_done(identity.sha256, __version__, versions)
        if row is None:
            raise StoreError(
                f"the ok run of {identity.path} disappeared from results store {store.path} during the batch"
            )
        return {**row, "skipped": True}
    inserted, row = store.insert(record)
    return {**row, "skipped": not inserted}
