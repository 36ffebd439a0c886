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

Modules
-------
- :mod:`~her2fast.api.result`: :class:`SlideResult` and its JSON (``RESULT_FORMAT_VERSION``).
- :mod:`~her2fast.api.run`: :func:`score` (``OUTSIDE_TRAINING_CONFIDENCE``).
- :mod:`~her2fast.api.profiles`: :func:`run_models`, :func:`apply_profile`.
- :mod:`~her2fast.api.inputs`: opening a slide, an image or an array as a slide or a field.

Every public name of these modules is importable from ``her2fast.api``.

Examples
--------
>>> import json
>>> from her2fast.api import SlideResult
>>> r = SlideResult.from_json(json.dumps({"path": "a.svs", "score": None, "stratum": None,
...     "percent_complete": None, "confidence": None, "percentages": {}, "counts": {}, "flags": [],
...     "not_scorable": "no tissue found", "timings": {}, "provenance": {}}))
>>> r.score, r.not_scorable
(None, 'no tissue found')
"""

from __future__ import annotations

from ..pipeline import ScoreSettings
from .profiles import apply_profile, run_models
from .result import RESULT_FORMAT_VERSION, SlideResult
from .run import OUTSIDE_TRAINING_CONFIDENCE as OUTSIDE_TRAINING_CONFIDENCE
from .run import score

__all__ = [
    "SlideResult",
    "ScoreSettings",
    "score",
    "apply_profile",
    "run_models",
    "RESULT_FORMAT_VERSION",
]
