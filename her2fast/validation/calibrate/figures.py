"""The figures of a calibration: agreement of the default and calibrated scores with the reference, with
paired percentile bootstrap intervals (:func:`agreement_figures`), and why a reference set is too small or
one-sided (:func:`reference_warnings`).

Examples
--------
>>> figs = agreement_figures(["0", "1+", "3+"], ["0", "1+", "3+"], ["0", "1+", "3+"], n_boot=10)
>>> figs["calibrated"]["accuracy"], figs["difference"]["accuracy"]["value"]
(1.0, 0.0)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...errors import InvalidInputError
from ..statistics import confusion_matrix
from ..summary import GROUPS, SCORES
from .agreement import _kappa_q, _labels, _level

__all__ = ["agreement_figures", "reference_warnings"]


#: labels of the HER2-0 / HER2-low / 3+ agreement
LOW_LABELS: tuple[str, ...] = ("0", "low", "3+")


def _low3(label: str) -> str:
    return {"0": "0", "1+": "low", "2+": "low", "3+": "3+"}[label]


def _interval(values: np.ndarray, level: float = 0.95) -> list[float]:
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(values, [a, 1.0 - a])
    return [round(float(lo), 4), round(float(hi), 4)]


def agreement_figures(
    default: Sequence[str], calibrated: Sequence[str], reference: Sequence[str], *, n_boot: int = 2000, seed: int = 0
) -> dict:
    """Agreement of two sets of scores with the reference, with percentile bootstrap intervals over slides.

    Parameters
    ----------
    default, calibrated : sequence of str
        Slide scores (five-way categories are folded to the four ASCO/CAP classes).
    reference : sequence of str
    n_boot, seed : int
        Bootstrap resamples (the same resamples for both, so the difference is paired).

    Returns
    -------
    dict
        ``n``, ``level`` (``"score"`` or ``"group"``), ``labels``; per ``default`` / ``calibrated``:
        ``accuracy``, ``kappa_quadratic``, ``kappa_unweighted`` (and ``low_agreement``: HER2-0 vs
        HER2-low (1+, 2+) vs 3+, for scores), ``confusion`` (rows predicted, columns reference), each
        figure with ``*_ci`` (95 %); ``difference``: calibrated - default of accuracy and quadratic
        kappa with their paired intervals.
    """
    from ..statistics import cohen_kappa

    level = _level(reference)
    labels = GROUPS if level == "group" else SCORES
    ref = _labels(reference, level)
    sets = {"default": _labels(default, level), "calibrated": _labels(calibrated, level)}
    n = len(ref)
    if not n or any(len(v) != n for v in sets.values()):
        raise InvalidInputError("default, calibrated and reference must hold one score per slide, and some")
    index = {lab: i for i, lab in enumerate(labels)}
    r = np.array([index[s] for s in ref])
    rng = np.random.default_rng(seed)
    boot = rng.integers(0, n, size=(max(1, int(n_boot)), n))
    out: dict = {"n": n, "level": level, "labels": list(labels)}
    per: dict[str, dict[str, np.ndarray]] = {}
    for name, pred in sets.items():
        p = np.array([index[s] for s in pred])
        figs: dict = {
            "accuracy": float((p == r).mean()),
            "kappa_quadratic": cohen_kappa(pred, ref, labels, "quadratic"),
            "kappa_unweighted": cohen_kappa(pred, ref, labels),
            "confusion": confusion_matrix(pred, ref, labels).tolist(),
        }
        samples = {
            "accuracy": (p[boot] == r[boot]).mean(axis=1),
            "kappa_quadratic": np.array([_kappa_q(p[b], r[b], len(labels)) for b in boot]),
        }
        if level == "score":
            pl = np.array([_low3(s) for s in pred])
            rl = np.array([_low3(s) for s in ref])
            figs["low_agreement"] = float((pl == rl).mean())
            samples["low_agreement"] = (pl[boot] == rl[boot]).mean(axis=1)
        for key, vals in samples.items():
            figs[f"{key}_ci"] = _interval(vals)
        figs = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in figs.items()}
        out[name] = figs
        per[name] = samples
    out["difference"] = {
        key: {
            "value": round(out["calibrated"][key] - out["default"][key], 4),
            "ci": _interval(per["calibrated"][key] - per["default"][key]),
        }
        for key in per["default"]
    }
    return out


def reference_warnings(reference: Sequence[str], ish: Sequence[bool | None] | None = None) -> list[str]:
    """Why a reference set is too small or too one-sided to calibrate on (empty when it is fine).

    CAP's validation of an IHC assay asks for at least 20 positive and 20 negative cases; a class with few
    slides leaves the threshold next to it resting on those few (it stays near its default).

    Parameters
    ----------
    reference : sequence of str
        Reference scores of the slides the fit uses.
    ish : sequence of bool or None, optional
        ISH amplified per slide, where known: a 2+ with ISH counts as positive (amplified) or negative.
    """
    warnings = []
    level = _level(reference)
    labels = _labels(reference, level)
    ish = list(ish) if ish is not None else [None] * len(labels)
    if level == "group":
        pos = sum(lab == "positive" for lab in labels)
        neg = sum(lab == "negative" for lab in labels)
        classes = GROUPS
    else:
        pos = sum(lab == "3+" or (lab == "2+" and a is True) for lab, a in zip(labels, ish))
        neg = sum(lab in ("0", "1+") or (lab == "2+" and a is False) for lab, a in zip(labels, ish))
        classes = SCORES
    if pos < 20 or neg < 20:
        warnings.append(
            f"small reference set: {pos} positive and {neg} negative slides; CAP asks for at least 20 positive and "
            "20 negative cases to validate an assay, and a calibration fitted on fewer is uncertain (see the "
            "cross-validated intervals)"
        )
    for c in classes:
        k = labels.count(c)
        if k == 0:
            warnings.append(
                f"one-sided reference set: no slide is {c}; the threshold between {c} and its neighbours cannot be "
                "fitted from it and stays near its default"
            )
        elif k < 3:
            warnings.append(
                f"only {k} reference slide(s) {c}: the threshold next to {c} rests on them; add more {c} slides"
            )
    return warnings
