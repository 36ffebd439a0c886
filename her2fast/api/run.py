""":func:`score`: open the input, run the pipeline, score the tumour cells and put the result together
(see :mod:`her2fast.api`).

Examples
--------
>>> OUTSIDE_TRAINING_CONFIDENCE
0.8
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import InvalidInputError
from ..pipeline import ScoreSettings, ThreadPlan, run_slide
from ..scoring import CellClass, measurement_confidence, score_cells
from .inputs import _open_input, _slide_meta
from .profiles import apply_profile
from .result import SlideResult, _num

__all__ = ["score"]


#: the highest confidence a slide flagged ``outside_training_range`` or ``channel_order_suspect`` (stain gate) is
#: given
OUTSIDE_TRAINING_CONFIDENCE = 0.8


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
    from ..io.regions import as_selection
    from ..stages.membrane import check_providers

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
