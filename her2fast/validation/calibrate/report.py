"""What :func:`~her2fast.validation.calibrate.calibrate` found (:class:`CalibrationReport`) and its files:
``profile.json``, ``calibration.json``, ``calibration.html``, and the text ``her2fast calibrate`` prints.

Examples
--------
>>> _fmt(0.12345), _fmt(None), _ci({"accuracy": 0.8, "accuracy_ci": [0.7, 0.9]}, "accuracy")
('0.123', '-', '0.800 [0.700, 0.900]')
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ...scoring import (
    CalibrationProfile,
)
from .cross_validation import CrossValidation
from .fitting import FitResult

__all__ = ["CalibrationReport", "write_calibration", "format_calibration", "write_html"]


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


def _fmt(v, nd: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _ci(figs: Mapping, key: str) -> str:
    lo, hi = figs[f"{key}_ci"]
    return f"{figs[key]:.3f} [{lo:.3f}, {hi:.3f}]"


def format_calibration(report: CalibrationReport) -> str:
    """The text ``her2fast calibrate`` prints."""
    f = report.figures
    lines = [f"calibration profile {report.profile.name!r} (sha256 {report.profile.sha256[:12]})"]
    lines.append(
        f"  reference: {report.profile.reference.get('scored')} slides used of {report.profile.reference.get('slides')}"
    )
    for name, p in report.to_dict()["parameters"].items():
        lines.append(
            f"  {name:18s} default {p['default']:.4g} -> {p['calibrated']:.4g}  (folds {p['folds_min']:.4g}-{p['folds_max']:.4g})"
        )
    lines.append(
        f"  held-out agreement ({len(report.cross_validation.fold_parameters)}-fold cross-validation, 95 % bootstrap intervals):"
    )
    keys = ["accuracy", "kappa_quadratic"] + (["low_agreement"] if "low_agreement" in f["default"] else [])
    names = {"accuracy": "accuracy", "kappa_quadratic": "quadratic kappa", "low_agreement": "0 / low / 3+"}
    for key in keys:
        d = f["difference"][key]
        lines.append(
            f"    {names[key]:16s} defaults {_ci(f['default'], key)}   calibrated {_ci(f['calibrated'], key)}   "
            f"difference {d['value']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]"
        )
    for w in report.warnings:
        lines.append(f"  warning: {w}")
    return "\n".join(lines)


def _html_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    e = html.escape
    head = "".join(f"<th>{e(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{e(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_html(report: CalibrationReport, path: str | Path) -> Path:
    """``calibration.html``: one self-contained page (every string HTML-escaped)."""
    e = html.escape
    d = report.to_dict()
    f = report.figures
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{e('her2fast calibration: ' + report.profile.name)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #bbb;padding:3px 8px;text-align:left}.warn{background:#fff3cd;padding:.5em}</style>",
        "</head><body>",
        f"<h1>Calibration profile {e(report.profile.name)}</h1>",
        f"<p>sha256 {e(report.profile.sha256)}; her2fast {e(report.profile.her2fast_version)}; created "
        f"{e(report.profile.created)}; reference {e(str(report.profile.reference.get('file', '')))} (sha256 "
        f"{e(str(report.profile.reference.get('sha256', ''))[:16])}, {e(str(report.profile.reference.get('scored')))}"
        f" of {e(str(report.profile.reference.get('slides')))} slides used).</p>",
    ]
    for w in report.warnings:
        parts.append(f"<p class='warn'>Warning: {e(w)}</p>")
    parts.append("<h2>Parameters</h2>")
    parts.append(
        _html_table(
            ["parameter", "default", "calibrated", "range over folds"],
            [
                [k, p["default"], p["calibrated"], f"{p['folds_min']:.4g} - {p['folds_max']:.4g}"]
                for k, p in d["parameters"].items()
            ],
        )
    )
    parts.append(
        f"<h2>Held-out agreement</h2><p>{len(report.cross_validation.fold_parameters)}-fold cross-validation: "
        "every slide scored by a fit that never saw it; 95 % percentile bootstrap intervals over slides; the "
        "difference is paired.</p>"
    )
    keys = ["accuracy", "kappa_quadratic"] + (["low_agreement"] if "low_agreement" in f["default"] else [])
    parts.append(
        _html_table(
            ["figure", "defaults", "calibrated", "difference"],
            [
                [
                    k,
                    _ci(f["default"], k),
                    _ci(f["calibrated"], k),
                    f"{f['difference'][k]['value']:+.3f} [{f['difference'][k]['ci'][0]:+.3f}, "
                    f"{f['difference'][k]['ci'][1]:+.3f}]",
                ]
                for k in keys
            ],
        )
    )
    for name in ("default", "calibrated"):
        parts.append(f"<h3>Confusion, {e(name)} (rows predicted, columns reference)</h3>")
        parts.append(
            _html_table(["", *f["labels"]], [[lab, *row] for lab, row in zip(f["labels"], f[name]["confusion"])])
        )
    parts.append("<h2>Slides</h2>")
    parts.append(
        _html_table(
            ["line", "slide", "reference", "status", "defaults", "calibrated (held out)", "calibrated (all)", "reason"],
            [
                [
                    s["line"],
                    s["slide"],
                    s["reference"],
                    s["status"],
                    s.get("default"),
                    s.get("held_out"),
                    s.get("calibrated"),
                    s.get("reason"),
                ]
                for s in report.slides
            ],
        )
    )
    parts.append("</body></html>")
    out = Path(path)
    out.write_text("\n".join(parts), encoding="utf-8")
    return out


def write_calibration(report: CalibrationReport, out_dir: str | Path) -> dict[str, Path]:
    """Write ``profile.json``, ``calibration.json`` and ``calibration.html`` into ``out_dir``."""
    from ...io.profile import save_profile

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"profile": save_profile(report.profile, out)}
    files["json"] = out / "calibration.json"
    files["json"].write_text(json.dumps(report.to_dict(), indent=1, allow_nan=False), encoding="utf-8")
    files["html"] = write_html(report, out / "calibration.html")
    report.files = files
    return files
