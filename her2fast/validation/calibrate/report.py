"""What :func:`~her2fast.validation.calibrate.calibrate` found (:class:`CalibrationReport`) and its files:
``profile.json``, ``calibration.json``, ``calibration.html`` and ``calibration.md``, and the text
``her2fast calibrate`` prints.

The figures are laid out once (:func:`calibration_document`, a
:class:`~her2fast.validation.presentation.Document`) and rendered as text, Markdown and HTML by the
renderers of :mod:`her2fast.validation.text`, :mod:`~her2fast.validation.markdown` and
:mod:`~her2fast.validation.report`.

Examples
--------
>>> _g(0.123456), _g(None), _ci({"accuracy": 0.8, "accuracy_ci": [0.7, 0.9]}, "accuracy")
('0.1235', '-', '0.800 [0.700, 0.900]')
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..._files import atomic_write_text
from ...scoring import (
    CalibrationProfile,
)
from ..markdown import render_markdown
from ..presentation import Document, Paragraph, Section, Table, confusion_table
from ..report import render_document
from ..text import render_text
from .cross_validation import CrossValidation
from .fitting import FitResult

__all__ = [
    "CalibrationReport",
    "calibration_document",
    "write_calibration",
    "format_calibration",
    "write_html",
    "write_markdown",
]


@dataclass
class CalibrationReport:
    """What :func:`calibrate` found and wrote.

    Attributes
    ----------
    profile : CalibrationProfile
    fit : FitResult
        The fit on every usable slide (the profile's parameters).
    cross_validation : CrossValidation
    figures : dict
        :func:`agreement_figures` of the held-out scores.
    slides : list of dict
        Per reference slide: ``line``, ``slide``, ``reference``, ``status`` (``used`` / ``excluded``), the
        scores ``default``, ``calibrated`` (the full fit), ``held_out`` (its fold's fit), ``fold``,
        ``tumour_cells``, ``reason``.
    warnings : list of str
    timings : dict of str to float
        ``scoring`` (slides, from the store when already done), ``fit``, ``cross_validation``.
    files : dict of str to Path
    """

    profile: CalibrationProfile
    fit: FitResult
    cross_validation: CrossValidation
    figures: dict
    slides: list[dict]
    warnings: list[str]
    timings: dict[str, float]
    files: dict[str, Path] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready dict (``calibration.json``)."""
        params = {
            f: {
                "default": self.fit.defaults[f],
                "calibrated": round(self.fit.parameters[f], 6),
                "folds_min": round(min(p[f] for p in self.cross_validation.fold_parameters), 6),
                "folds_max": round(max(p[f] for p in self.cross_validation.fold_parameters), 6),
            }
            for f in self.fit.parameters
        }
        return {
            "profile": {"name": self.profile.name, "sha256": self.profile.sha256},
            "her2fast_version": self.profile.her2fast_version,
            "models": dict(self.profile.models),
            "reference": dict(self.profile.reference),
            "parameters": params,
            "fit": {
                "agreement_calibrated": round(self.fit.agreement, 4),
                "agreement_defaults": round(self.fit.agreement_defaults, 4),
                "evaluations": self.fit.evaluations,
                "seconds": round(self.fit.seconds, 3),
            },
            "cross_validation": {
                "folds": len(self.cross_validation.fold_parameters),
                "figures": self.figures,
            },
            "warnings": list(self.warnings),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "slides": self.slides,
        }


def _g(v) -> str:
    return "-" if v is None else f"{v:.4g}"


def _ci(figs: Mapping, key: str) -> str:
    lo, hi = figs[f"{key}_ci"]
    return f"{figs[key]:.3f} [{lo:.3f}, {hi:.3f}]"


#: names of the held-out figures
_FIGURES = {"accuracy": "accuracy", "kappa_quadratic": "quadratic kappa", "low_agreement": "0 / low / 3+"}


def calibration_document(report: CalibrationReport) -> Document:
    """The calibration's document: what ``her2fast calibrate`` prints and ``calibration.md`` / ``.html`` show.

    Warnings, the fitted parameters (default, calibrated, range over the folds), the held-out agreement of
    the defaults and of the calibration (with 95 % bootstrap intervals and their paired difference), both
    confusion matrices and every reference slide.
    """
    p = report.profile
    f = report.figures
    ref = p.reference
    meta = (
        f"sha256 {p.sha256}",
        f"her2fast {p.her2fast_version}",
        f"created {p.created}",
        f"reference {ref.get('file', '')} (sha256 {str(ref.get('sha256', ''))[:16]}, {ref.get('scored')} of "
        f"{ref.get('slides')} slides used)",
    )
    params = Table(
        ("parameter", "default", "calibrated", "range over folds"),
        [
            (k, _g(v["default"]), _g(v["calibrated"]), f"{v['folds_min']:.4g} - {v['folds_max']:.4g}")
            for k, v in report.to_dict()["parameters"].items()
        ],
    )
    folds = len(report.cross_validation.fold_parameters)
    keys = ["accuracy", "kappa_quadratic"] + (["low_agreement"] if "low_agreement" in f["default"] else [])
    rows = []
    for k in keys:
        d = f["difference"][k]
        diff = f"{d['value']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]"
        rows.append((_FIGURES[k], _ci(f["default"], k), _ci(f["calibrated"], k), diff))
    held_out = Table(("figure", "defaults", "calibrated", "difference"), rows)
    note = (
        f"{folds}-fold cross-validation: every slide scored by a fit that never saw it; 95 % percentile "
        "bootstrap intervals over slides; the difference (calibrated minus defaults) is paired."
    )
    slides = Table(
        ("line", "slide", "reference", "status", "defaults", "calibrated (held out)", "calibrated (all)", "reason"),
        [
            (
                s["line"],
                s["slide"],
                s["reference"],
                s["status"],
                s.get("default") or "",
                s.get("held_out") or "",
                s.get("calibrated") or "",
                s.get("reason") or "",
            )
            for s in report.slides
        ],
    )
    sections = [
        Section("", tuple(Paragraph(w, "warning") for w in report.warnings)),
        Section("Parameters", (params,)),
        Section("Held-out agreement", (Paragraph(note, "note"), held_out)),
        *(
            Section(f"Confusion, {name} (held out)", (confusion_table(f["labels"], f[key]["confusion"]),))
            for key, name in (("default", "defaults"), ("calibrated", "calibrated"))
        ),
        Section(f"Slides ({len(report.slides)})", (slides,)),
    ]
    return Document(f"Calibration profile {p.name}", meta, tuple(sections))


def format_calibration(report: CalibrationReport, *, max_rows: int | None = 20) -> str:
    """The text ``her2fast calibrate`` prints: :func:`render_text` of :func:`calibration_document`.

    ``max_rows``: rows shown of the slides table (every row when None).
    """
    return render_text(calibration_document(report), max_rows=max_rows)


def write_html(report: CalibrationReport, path: str | Path) -> Path:
    """``calibration.html``: :func:`calibration_document` as one self-contained page (every string escaped)."""
    return atomic_write_text(path, render_document(calibration_document(report)))


def write_markdown(report: CalibrationReport, path: str | Path) -> Path:
    """``calibration.md``: :func:`calibration_document` as Markdown (every string escaped)."""
    return atomic_write_text(path, render_markdown(calibration_document(report)))


def write_calibration(report: CalibrationReport, out_dir: str | Path) -> dict[str, Path]:
    """Write ``profile.json``, ``calibration.json``, ``calibration.html`` and ``calibration.md`` into ``out_dir``."""
    from ...io.profile import save_profile

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"profile": save_profile(report.profile, out)}
    files["json"] = out / "calibration.json"
    files["json"].write_text(json.dumps(report.to_dict(), indent=1, allow_nan=False), encoding="utf-8")
    files["html"] = write_html(report, out / "calibration.html")
    files["markdown"] = write_markdown(report, out / "calibration.md")
    report.files = files
    return files
