"""``her2fast.score(path)``: one slide in, a :class:`SlideResult` out.

:func:`score` opens the slide, runs :func:`her2fast.pipeline.run_slide` (tissue, tiles, stain,
epithelium, membrane, nuclei, cells) and scores the tumour cells with :func:`her2fast.scoring.score_cells`
(ASCO/CAP 2018 categories and the 2023 strata). A slide that cannot be scored -- empty glass, no
epithelium, a stain the stain gate refuses, a tumour area mostly out of focus or under ink, fewer tumour
cells than ``ScoringRules.min_tumour_cells`` -- gives ``score=None`` with the reason in ``not_scorable``
and ``flags``: never a number that was not measured. A file that cannot be
read raises the errors of :mod:`her2fast.io.slide` (:class:`~her2fast.errors.SlideReadError` and
subclasses, :class:`~her2fast.errors.MissingResolutionError`, :class:`~her2fast.errors.NotBrightfieldError`).

Fields of view
--------------
A microscope-camera photo or a viewer snapshot is one *field*, not a slide (``kind="field"``): a plain image
(PNG, JPEG, BMP, one-level TIFF) with no resolution in its metadata, or a numpy RGB array -- or any image scored
with ``field=True``. A field without glass in view has its colour cast taken off on its brightest tissue
(:func:`her2fast.stages.resolution.white_balance`; with glass, the pipeline measures against the glass as for a
slide); without ``mpp=`` its resolution is estimated from its nuclei
(:func:`her2fast.stages.resolution.estimate_resolution`, reported in ``resolution`` and
``provenance["resolution"]``); and it is read with whatever tumour cells it holds: under
``ScoringRules.min_tumour_cells`` it is flagged ``few_cells`` rather than refused. ``docs/fields.md`` says more.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from .errors import InvalidInputError
from .pipeline import ScoreSettings, SlideMaps, ThreadPlan, run_slide
from .scoring import CELL_COLUMNS, CalibrationProfile, CellClass, CellTable, measurement_confidence, score_cells

#: the highest confidence a slide flagged ``outside_training_range`` or ``channel_order_suspect`` (stain gate) is
#: given
OUTSIDE_TRAINING_CONFIDENCE = 0.8

__all__ = ["SlideResult", "ScoreSettings", "score", "apply_profile", "run_models", "RESULT_FORMAT_VERSION"]

#: Version of the JSON layout written by :meth:`SlideResult.to_json`.
RESULT_FORMAT_VERSION = 1


def _num(v: float | None, nd: int = 4) -> float | None:
    if v is None:
        return None
    v = float(v)
    return round(v, nd) if math.isfinite(v) else None


@dataclass
class SlideResult:
    """The HER2 score of one slide and everything needed to trust or audit it.

    Attributes
    ----------
    path : str
        The slide file.
    score : {"0", "1+", "2+", "3+"} or None
        ASCO/CAP 2018 category; None when the slide is not scorable (see ``not_scorable``).
    stratum : {"null", "ultralow", "1+", "2+", "3+"} or None
        The 2023 strata (``"0"`` splits into null / ultralow).
    category : {"0", "0+", "1+", "2+", "3+"} or None
        :func:`her2fast.scoring.slide_category` (``"0+"`` = ultralow), for agreement tables.
    percent_complete : float or None
        % of tumour cells with a stained, complete membrane.
    confidence : float or None
        The lower of two probabilities that the category holds: under cell sampling (``Phi(margin_z)``,
        :func:`her2fast.scoring.slide_confidence`) and under the scanner and lab errors of the membrane
        read-out (:func:`her2fast.scoring.measurement_confidence`); at most
        ``settings.measurement.flagged_confidence`` when flagged ``intensity_uncertain`` and
        :data:`OUTSIDE_TRAINING_CONFIDENCE` when flagged ``outside_training_range``. Both parts and the
        measurement margins are in ``provenance["confidence"]``.
    margin_z : float or None
        Distance of the nearest deciding criterion from its cut-off in binomial standard errors
        (None when no criterion applies).
    nearest : str
        The category across that cut-off.
    percentages : dict of str to float
        % of tumour cells per :class:`~her2fast.scoring.CellClass` (lower-case names).
    counts : dict of str to int
        ``cells``, ``tumour_cells``, per class, ``closed``, tiles (total, with tissue, with epithelium,
        segmented), artefact loops.
    closed_ratio, mean_membrane_od : float or None
    flags : list of str
        ``near_cutoff``, ``intensity_uncertain`` (the category changes under a plausible scanner or lab
        error of the membrane OD or completeness), ``few_cells``, ``unusual_pattern``, ``no_tumour_cells``,
        ``no_tissue``, ``no_epithelium``, ``too_few_tumour_cells``, ``stain_vectors_fallback``,
        ``gpu_fallback_to_cpu``, ``resolution_too_coarse``, ``outside_training_range``, ``channel_order_suspect``,
        ``quality_excluded`` (the quality map left unusable tissue out, ``provenance["qc"]["quality"]``),
        ``unusable_tumour_area`` (too much of the tumour area was unusable: not scorable),
        ``tissue_pieces_disagree`` (separate tissue pieces read different categories, e.g. an on-slide
        control: per-piece readings in ``provenance["qc"]["pieces"]``, confidence at most 0.8), and the stain gate's
        refusals (``greyscale_image``, ``not_her2_ihc``, ``channels_swapped``, ``nuclear_dab_pattern``,
        ``cytoplasmic_dab_pattern``).
    not_scorable : str or None
        Why ``score`` is None, in words.
    timings : dict of str to float
        Seconds per stage (``open``, ``tissue``, ``grid``, ``stain``, ``epithelium``, ``read``,
        ``deconvolve``, ``membrane``, ``nuclei``, ``cells``, ``quality``, ``merge``, ``scoring``, ``total``).
    provenance : dict
        ``her2fast_version``, ``models`` (name -> sha256), ``providers``, ``settings``, ``slide``
        (path, vendor, width, height, mpp_x, mpp_y, mpp_source, levels, objective_power), ``stains``,
        ``qc``, ``confidence`` (``sampling``, ``measurement``, ``od_scale_margin``,
        ``completeness_margin``, ``nearest_under_measurement_error``),
        ``created`` (Unix time); ``profile`` (name, sha256, created, parameters) when scored with a
        calibration profile.
    cells : CellTable
        Every cell found (level-0 pixel centres), tumour or not.
    maps : SlideMaps or None
        Low-resolution masks for reports (not serialised).
    kind : {"slide", "field"}
        ``"field"`` for a field of view (see the module's "Fields of view"): read with the cells it has.
    resolution : dict
        The micrometres per pixel scored at: ``mpp``, ``source`` (``"metadata"``, ``"user"`` or
        ``"estimated"``) and, when estimated, ``relative_uncertainty``, ``interval_95``, ``n_nuclei`` and the
        rest of :meth:`her2fast.stages.resolution.ResolutionEstimate.to_dict`.
    """

    path: str
    score: str | None
    stratum: str | None
    category: str | None
    percent_complete: float | None
    confidence: float | None
    margin_z: float | None
    nearest: str
    percentages: dict[str, float]
    counts: dict[str, int]
    closed_ratio: float | None
    mean_membrane_od: float | None
    flags: list[str]
    not_scorable: str | None
    timings: dict[str, float]
    provenance: dict
    cells: CellTable = field(default_factory=CellTable.empty, repr=False)
    maps: SlideMaps | None = field(default=None, repr=False, compare=False)
    kind: str = "slide"
    resolution: dict = field(default_factory=dict)

    @property
    def scorable(self) -> bool:
        """Whether a score was given."""
        return self.score is not None

    def cell_array(self) -> np.ndarray:
        """The cell table as a numpy structured array (one record per cell)."""
        dt = [(c, getattr(self.cells, c).dtype) for c in CELL_COLUMNS]
        arr = np.empty(len(self.cells), dtype=dt)
        for c in CELL_COLUMNS:
            arr[c] = getattr(self.cells, c)
        return arr

    def cell_classes(self) -> np.ndarray:
        """(n,) int8 :class:`~her2fast.scoring.CellClass` of every cell under this result's rules."""
        from .scoring import ScoringRules

        rules = ScoringRules(**self.provenance.get("settings", {}).get("rules", {}))
        return self.cells.cell_class(rules)

    def to_dict(self, *, include_cells: bool = True) -> dict:
        """JSON-ready dict; ``include_cells`` adds the cell table as column lists."""
        d = {
            "format_version": RESULT_FORMAT_VERSION,
            "path": self.path,
            "score": self.score,
            "stratum": self.stratum,
            "category": self.category,
            "percent_complete": _num(self.percent_complete),
            "confidence": _num(self.confidence),
            "margin_z": _num(self.margin_z),
            "nearest": self.nearest,
            "percentages": {k: _num(v) for k, v in self.percentages.items()},
            "counts": {k: int(v) for k, v in self.counts.items()},
            "closed_ratio": _num(self.closed_ratio),
            "mean_membrane_od": _num(self.mean_membrane_od),
            "flags": list(self.flags),
            "not_scorable": self.not_scorable,
            "timings": {k: round(float(v), 4) for k, v in self.timings.items()},
            "provenance": self.provenance,
            "kind": self.kind,
            "resolution": self.resolution,
        }
        if include_cells:
            d["cells"] = {c: getattr(self.cells, c).tolist() for c in CELL_COLUMNS}
        return d

    def to_json(self, *, include_cells: bool = True, indent: int | None = 1) -> str:
        """The result as JSON text (:meth:`from_json` reads it back).

        Floats are rounded (4 decimals for fractions and percentages; cell columns keep float32
        precision), so a round trip gives equal scores, flags and tables.
        """
        return json.dumps(self.to_dict(include_cells=include_cells), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, d: dict) -> SlideResult:
        """Inverse of :meth:`to_dict`.

        Raises
        ------
        InvalidInputError
            ``d`` is not a result of this format: a missing field, a field of the wrong type, or a cell table
            with unknown or missing columns, non-numeric values or columns of different lengths (the message
            names the field).
        """
        if not isinstance(d, dict) or "score" not in d or "provenance" not in d:
            raise InvalidInputError("not a her2fast SlideResult: expected a dict with 'score' and 'provenance'")
        version = d.get("format_version", 0)
        if isinstance(version, bool) or not isinstance(version, int):
            raise InvalidInputError(f"not a her2fast SlideResult: format_version must be an integer, got {version!r}")
        if version > RESULT_FORMAT_VERSION:
            raise InvalidInputError(
                f"SlideResult format {version} is newer than this her2fast reads "
                f"({RESULT_FORMAT_VERSION}); upgrade her2fast"
            )
        missing = [k for k in _REQUIRED_FIELDS if k not in d]
        if missing:
            raise InvalidInputError(f"not a her2fast SlideResult: missing field(s) {', '.join(missing)}")
        for key, kinds in _FIELD_TYPES.items():
            if key in d and not isinstance(d[key], kinds):
                want = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
                raise InvalidInputError(
                    f"not a her2fast SlideResult: field {key!r} must be {want}, got {type(d[key]).__name__}"
                )
        return cls(
            path=d["path"],
            score=d["score"],
            stratum=d["stratum"],
            category=d.get("category"),
            percent_complete=d["percent_complete"],
            confidence=d["confidence"],
            margin_z=d.get("margin_z"),
            nearest=d.get("nearest", ""),
            percentages=dict(d["percentages"]),
            counts=dict(d["counts"]),
            closed_ratio=d.get("closed_ratio"),
            mean_membrane_od=d.get("mean_membrane_od"),
            flags=list(d["flags"]),
            not_scorable=d["not_scorable"],
            timings=dict(d["timings"]),
            provenance=d["provenance"],
            cells=_cells_from_dict(d.get("cells")),
            kind=d.get("kind", "slide"),
            resolution=dict(d.get("resolution") or {}),
        )

    @classmethod
    def from_json(cls, text: str | Path) -> SlideResult:
        """Read :meth:`to_json` output (the text, or a path to a ``.json`` file)."""
        if isinstance(text, Path) or (isinstance(text, str) and not text.lstrip().startswith("{")):
            path = Path(text)
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise InvalidInputError(f"cannot read result file {path}: {exc}") from None
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"not a her2fast result JSON: {exc}") from None
        return cls.from_dict(d)


_NUMBER = (int, float, type(None))
_REQUIRED_FIELDS: tuple[str, ...] = ("path", "stratum", "percent_complete", "confidence", "percentages", "counts")
_REQUIRED_FIELDS += ("flags", "not_scorable", "timings")
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "path": (str,),
    "score": (str, type(None)),
    "stratum": (str, type(None)),
    "category": (str, type(None)),
    "percent_complete": _NUMBER,
    "confidence": _NUMBER,
    "margin_z": _NUMBER,
    "nearest": (str,),
    "percentages": (dict,),
    "counts": (dict,),
    "closed_ratio": _NUMBER,
    "mean_membrane_od": _NUMBER,
    "flags": (list,),
    "not_scorable": (str, type(None)),
    "timings": (dict,),
    "provenance": (dict,),
    "cells": (dict, type(None)),
    "kind": (str,),
    "resolution": (dict, type(None)),
}


def _cells_from_dict(cells: dict | None) -> CellTable:
    """The cell table of :meth:`SlideResult.to_dict` (column lists), checked column by column."""
    if not cells:
        return CellTable.empty()
    unknown = sorted(str(k) for k in cells if k not in CELL_COLUMNS)
    if unknown:
        raise InvalidInputError(
            f"not a her2fast SlideResult: unknown cell column(s) {', '.join(unknown)}; the columns are "
            f"{', '.join(CELL_COLUMNS)}"
        )
    columns = {}
    for name, values in cells.items():
        if not isinstance(values, list) or not all(isinstance(v, (int, float)) for v in values):
            raise InvalidInputError(f"not a her2fast SlideResult: cell column {name!r} must be a list of numbers")
        columns[name] = np.asarray(values)
    try:
        return CellTable(**columns)
    except TypeError:  # a required column is missing
        need = [c for c in CELL_COLUMNS[:7] if c not in columns]
        raise InvalidInputError(
            f"not a her2fast SlideResult: the cell table lacks column(s) {', '.join(need)}"
        ) from None
    except (ValueError, OverflowError) as exc:  # lengths differ, or values do not fit the column's type
        if isinstance(exc, InvalidInputError):
            raise InvalidInputError(f"not a her2fast SlideResult: {exc}") from None
        raise InvalidInputError(
            f"not a her2fast SlideResult: a cell column has values of the wrong kind: {exc}"
        ) from None


def _slide_meta(slide) -> dict:
    w, h = slide.dimensions
    return {
        "path": str(slide.path),
        "vendor": slide.vendor,
        "width": int(w),
        "height": int(h),
        "mpp_x": float(slide.mpp_x),
        "mpp_y": float(slide.mpp_y),
        "mpp_source": slide.mpp_source,
        "levels": int(slide.level_count),
        "objective_power": slide.objective_power,
    }


def run_models(settings: ScoreSettings | None = None) -> dict[str, str]:
    """Model name -> sha256 of the models a run with ``settings`` uses (the epithelium classifier, and the
    membrane U-Net for ``membrane_method="unet"``).

    Raises
    ------
    ModelError
        A model is missing or corrupt.
    """
    from .stages.epithelium import default_model

    settings = ScoreSettings() if settings is None else settings
    models = {"epithelium_svm": default_model().sha256}
    if settings.membrane_method == "unet":
        from .stages.membrane import load_model_config

        models["membrane_unet"] = load_model_config().sha256
    return models


def apply_profile(profile, settings: ScoreSettings | None = None) -> tuple[ScoreSettings, CalibrationProfile]:
    """Check a calibration profile against a run's models and settings, and put its thresholds in the settings.

    Parameters
    ----------
    profile : CalibrationProfile, str or Path
        A profile, a folder ``her2fast calibrate`` wrote, or its ``profile.json``.
    settings : ScoreSettings, optional
        The run's settings (default ``ScoreSettings()``); the profile's parameters replace those fields of
        ``settings.rules`` (and of ``settings.cells.rules``).

    Returns
    -------
    (ScoreSettings, CalibrationProfile)

    Raises
    ------
    ProfileError
        The profile cannot be read, or was made with other models, another her2fast or other
        measurement settings (:meth:`~her2fast.scoring.CalibrationProfile.check_compatible`).
    """
    from dataclasses import replace

    from .io.profile import load_profile

    settings = ScoreSettings() if settings is None else settings
    if not isinstance(settings, ScoreSettings):
        raise InvalidInputError(f"settings must be a her2fast.ScoreSettings, got {type(settings).__name__}")
    prof = load_profile(profile)
    prof.check_compatible(run_models(settings), __version__, settings.to_dict())
    rules = prof.rules(settings.rules)
    return replace(settings, rules=rules, cells=replace(settings.cells, rules=rules)), prof


def score(
    path: str | Path | np.ndarray,
    *,
    mpp: float | None = None,
    providers="auto",
    settings: ScoreSettings | None = None,
    progress: bool = True,
    threads: ThreadPlan | None = None,
    profile=None,
    include=None,
    exclude=None,
    field: bool | None = None,
) -> SlideResult:
    """Score the HER2 status of one whole slide image, or of one field of view.

    Parameters
    ----------
    path : str, Path or (H, W, 3) uint8 array
        A slide OpenSlide reads (SVS, NDPI, MRXS, tiled TIFF, DICOM, ...), a plain image (PNG, JPEG, BMP,
        TIFF), or an RGB image in memory (a field; its ``path`` in the result is ``"<array>"``).
    mpp : float, optional
        Micrometres per level-0 pixel; overrides the metadata and always wins. Without it, a slide needs a
        resolution in its metadata; a field without one has it estimated from its nuclei
        (:func:`her2fast.stages.resolution.estimate_resolution`).
    providers : "auto" or list of str
        What runs the membrane U-Net (``"auto"``: GPU when onnxruntime-gpu sees one; else OpenVINO
        in bf16 on a CPU with bf16 units when it is installed, agrees and is faster on a probe tile;
        else ONNX Runtime's CPU provider). An explicit list of ONNX Runtime providers wins (CPU
        appended as the last resort); ``["OpenVINO"]`` runs OpenVINO (see
        :class:`her2fast.stages.membrane.MembraneSession`).
    settings : ScoreSettings, optional
        Tile geometry, membrane method, nuclei, cell and scoring parameters (default ``ScoreSettings()``).
    progress : bool
        Print a progress line (tiles done / total, ETA) on stderr.
    threads : ThreadPlan, optional
        Reader / inference / post-processing threads of the tile stream (default: sized to the
        machine by :meth:`her2fast.pipeline.ThreadPlan.for_machine`). The result does not depend on it.
    profile : CalibrationProfile, str or Path, optional
        A lab's calibration (``her2fast calibrate``; a folder, its ``profile.json`` or the object): its
        thresholds replace those of ``settings.rules`` (:func:`apply_profile`), and
        ``provenance["profile"]`` names it (name, sha256, parameters).
    include, exclude : str, Path or her2fast.io.regions.Regions, optional
        GeoJSON polygons in level-0 pixels (QuPath: File > Export objects as GeoJSON): score only the
        tissue inside ``include`` and leave out what lies inside ``exclude`` (e.g. an on-slide control
        tissue). A cell counts when its centre is kept; ``provenance["qc"]["regions"]`` names the files
        (sha256) and ``counts["cells_outside_regions"]`` the cells dropped.
    field : bool, optional
        Score the image as one field of view (``kind="field"``: white-balanced on its own white point when
        it has no glass, resolution estimated when unknown, read with the cells it has). Default: a field when ``path`` is
        an array or a plain image without a resolution in its metadata. ``True`` for a plain image with one;
        ``False`` scores such an image as a slide (then it needs ``mpp=``). Slides OpenSlide reads are
        never fields.

    Returns
    -------
    SlideResult
        ``score`` None with a reason in ``not_scorable`` (and a flag) for empty glass, no epithelium or
        fewer tumour cells than ``settings.rules.min_tumour_cells`` (a field is read with at least one
        tumour cell, flagged ``few_cells`` under that minimum).

    Raises
    ------
    SlideNotFoundError, UnsupportedSlideError, SlideReadError
        The file is missing, not a slide, or corrupt (the message names the file and the fix).
    MissingResolutionError
        No resolution in the file and no ``mpp=``; for a field, too few nuclei to estimate it (the message
        names the image and the fix, ``mpp=`` / ``--mpp``).
    InvalidInputError
        An array that is not (H, W, 3) uint8, ``field=False`` for an array, or ``field=True`` for a slide
        OpenSlide reads.
    NotBrightfieldError
        A fluorescence slide.
    ModelError
        A shipped model is missing or corrupt, or onnxruntime is not installed (for the U-Net).
    ProfileError
        The profile cannot be read or was made with other models, another her2fast or other
        measurement settings.
    InvalidInputError
        A region file that cannot be read as GeoJSON polygons (the message names the file).

    Examples
    --------
    >>> import her2fast
    >>> result = her2fast.score("slide.svs")  # doctest: +SKIP
    >>> result.score, result.stratum, result.percent_complete  # doctest: +SKIP
    ('3+', '3+', 71.2)
    """
    from .io.regions import as_selection
    from .stages.membrane import check_providers

    providers = check_providers(providers)
    regions = as_selection(include, exclude)
    settings = ScoreSettings() if settings is None else settings
    if not isinstance(settings, ScoreSettings):
        raise InvalidInputError(f"settings must be a her2fast.ScoreSettings, got {type(settings).__name__}")
    if field not in (None, True, False):
        raise InvalidInputError(f"field must be True, False or None (decide from the image), got {field!r}")
    prof = None
    if profile is not None:
        settings, prof = apply_profile(profile, settings)
    t_start = time.perf_counter()
    slide, is_field, estimate, balance = _open_input(path, mpp, field)
    with slide:
        t_open = time.perf_counter() - t_start
        meta = _slide_meta(slide)
        out = run_slide(slide, settings, providers=providers, progress=progress, threads=threads, regions=regions)
    timings = {"open": t_open, **out.timings}
    resolution: dict[str, object] = {"mpp": round(float(slide.mpp), 5), "source": slide.mpp_source}
    if estimate is not None:
        resolution.update(estimate.to_dict())
    t0 = time.perf_counter()
    rules = settings.rules
    cells = out.cells
    flags = list(out.flags)
    counts = dict(out.counts)
    counts["cells"] = len(cells)
    n_tumour = int(cells.is_tumour.sum())
    counts["tumour_cells"] = n_tumour
    not_scorable = out.not_scorable
    result_score = stratum = category = None
    percent_complete = confidence = margin_z = closed_ratio = mean_od = None
    nearest = ""
    confidence_parts: dict[str, object] = {}
    percentages: dict[str, float] = {}
    if n_tumour:
        res = score_cells(cells, rules)
        fr = res.fractions
        summary, sampling = res.summary, res.confidence
        assert summary is not None and sampling is not None  # score_cells fills both
        percentages = {k: v for k, v in fr.as_percentages().items()}
        cls_counts = fr.counts if fr.counts is not None else np.round(fr.per_class * n_tumour)
        for c in CellClass:
            counts[c.name.lower()] = int(cls_counts[c])
        counts["closed"] = int(summary.n_closed)
        percent_complete = summary.percent_complete
        closed_ratio = summary.closed_ratio
        mean_od = summary.mean_membrane_od
        flags += [f for f in sampling.flags if f not in flags]
        if (n_tumour >= rules.min_tumour_cells or is_field) and not_scorable is None:
            category = res.category
            result_score = "0" if category == "0+" else category
            stratum = res.stratum
            margin_z = sampling.margin_z if math.isfinite(sampling.margin_z) else None
            nearest = sampling.nearest
            measured = measurement_confidence(cells, rules, settings.measurement)
            flags += [f for f in measured.flags if f not in flags]
            # the lower of the two: a slide is as uncertain as its weakest link
            confidence = min(sampling.confidence, measured.confidence)
            if measured.flags:
                confidence = min(confidence, settings.measurement.flagged_confidence)
            confidence_parts = {
                "sampling": round(sampling.confidence, 4),
                "measurement": round(measured.confidence, 4),
                "od_scale_margin": _num(measured.od_scale_margin),
                "completeness_margin": _num(measured.completeness_margin),
                "nearest_under_measurement_error": measured.nearest,
            }
    elif not_scorable is None:
        flags.append("no_tumour_cells")
    if confidence is not None and ("outside_training_range" in flags or "channel_order_suspect" in flags):
        # stains unlike anything the models were trained on, or colours that lean towards red and blue
        # swapped: the sampling confidence does not cover that
        confidence = min(confidence, OUTSIDE_TRAINING_CONFIDENCE)
    if confidence is not None and "tissue_pieces_disagree" in flags:
        # separate tissue pieces read different categories: a control or heterogeneity; the per-piece
        # readings are in provenance["qc"]["pieces"]
        confidence = min(confidence, settings.measurement.flagged_confidence)
    if is_field and n_tumour and n_tumour < rules.min_tumour_cells and "few_cells" not in flags:
        flags.append("few_cells")  # a field is read with the cells it has, flagged
    if not_scorable is None and n_tumour < rules.min_tumour_cells and not is_field:
        not_scorable = (
            f"only {n_tumour} tumour cells found; at least {rules.min_tumour_cells} are needed "
            "for a score (ScoringRules.min_tumour_cells)"
        )
        flags.append("too_few_tumour_cells")
    if not_scorable is None and is_field and not n_tumour:
        not_scorable = "no tumour cells found in the field"
    timings["scoring"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_start
    provenance = {
        "her2fast_version": __version__,
        "models": dict(out.model_sha256),
        "providers": list(out.providers),
        "settings": settings.to_dict(),
        "slide": meta,
        "stains": out.stains,
        "qc": dict(out.qc),
        "confidence": confidence_parts,
        "pipeline": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.performance.items()},
        "created": round(time.time(), 3),
        "kind": "field" if is_field else "slide",
        "resolution": resolution,
    }
    if balance is not None:
        provenance["white_balance"] = balance
    if prof is not None:
        provenance["profile"] = prof.provenance()
    return SlideResult(
        path="<array>" if isinstance(path, np.ndarray) else str(path),
        score=result_score,
        stratum=stratum,
        category=category,
        percent_complete=percent_complete,
        confidence=confidence,
        margin_z=margin_z,
        nearest=nearest,
        percentages=percentages,
        counts=counts,
        closed_ratio=closed_ratio,
        mean_membrane_od=mean_od,
        flags=flags,
        not_scorable=not_scorable,
        timings=timings,
        provenance=provenance,
        cells=cells,
        maps=out.maps,
        kind="field" if is_field else "slide",
        resolution=resolution,
    )


def _open_input(path, mpp, field: bool | None):
    """The slide to score, whether it is a field, the resolution estimate (or None) and the white balance
    applied (or None); see :func:`score`."""
    from ._validate import as_rgb_uint8
    from .io.slide import Slide, image_slide, open_slide
    from .stages.resolution import ResolutionEstimate, estimate_resolution, white_balance

    estimates: list[ResolutionEstimate] = []

    def estimate(pixels: np.ndarray, where: Path) -> float:
        found = estimate_resolution(pixels, path=where)
        estimates.append(found)
        return found.mpp

    slide: Slide
    if isinstance(path, np.ndarray):
        if field is False:
            raise InvalidInputError("an image array is a field of view: score it with field=None or True")
        pixels = as_rgb_uint8(path, "image")
        if mpp is None:
            slide = image_slide(pixels, estimate(pixels, Path("<array>")), mpp_source="estimated")
        else:
            slide = image_slide(pixels, mpp, mpp_source="user")
    else:
        slide = open_slide(path, mpp=mpp, estimate_mpp=None if field is False else estimate)
    if slide.vendor != "image":
        if field:
            slide.close()
            raise InvalidInputError(
                f"{path} is a whole slide ({slide.vendor}), not a field of view: score it without field=True"
            )
        return slide, False, None, None
    is_field = field if field is not None else slide.metadata_mpp is None
    if not is_field:
        return slide, False, None, None
    try:
        w, h = slide.dimensions
        balanced, balance = white_balance(slide.read(0, 0, w, h))
        field_slide = image_slide(balanced, (slide.mpp_x, slide.mpp_y), path=slide.path, mpp_source=slide.mpp_source)
    finally:
        slide.close()
    return field_slide, True, (estimates[0] if estimates else None), balance
