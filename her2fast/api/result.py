""":class:`SlideResult`, the score of one slide and everything needed to audit it, and its serialisation:
:meth:`SlideResult.to_dict` / :meth:`~SlideResult.to_json`, and reading it back, checked field by field
(:meth:`SlideResult.from_dict` / :meth:`~SlideResult.from_json`).

Examples
--------
>>> _num(0.123456), _num(float("nan")), RESULT_FORMAT_VERSION
(0.1235, None, 1)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError
from ..pipeline import SlideMaps
from ..scoring import CELL_COLUMNS, CellTable

__all__ = ["SlideResult", "RESULT_FORMAT_VERSION"]


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
        from ..scoring import ScoringRules

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
