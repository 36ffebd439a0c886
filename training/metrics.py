"""Pixel metrics of a probability map against a boolean mask (numpy only)."""

from __future__ import annotations

import numpy as np

__all__ = ["confusion", "scores", "auc"]


def confusion(prob: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """(tp, fp, fn, tn) as int64."""
    pred = prob >= threshold
    t = truth.astype(bool)
    tp = int(np.count_nonzero(pred & t))
    fp = int(np.count_nonzero(pred & ~t))
    fn = int(np.count_nonzero(~pred & t))
    return np.array([tp, fp, fn, t.size - tp - fp - fn], np.int64)


def scores(c: np.ndarray) -> dict[str, float]:
    """Dice (= F1), accuracy, precision, recall from pooled (tp, fp, fn, tn)."""
    tp, fp, fn, tn = (float(v) for v in c)
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    dice = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    return {"dice": dice, "f1": dice, "accuracy": (tp + tn) / (tp + fp + fn + tn), "precision": prec, "recall": rec}


def auc(prob: np.ndarray, truth: np.ndarray, bins: int = 1000) -> float:
    """ROC AUC from a histogram of the probabilities (exact up to 1/bins ties)."""
    p = np.clip(prob.ravel(), 0, 1)
    t = truth.ravel().astype(bool)
    idx = np.minimum((p * bins).astype(np.int64), bins - 1)
    pos = np.bincount(idx[t], minlength=bins).astype(float)
    neg = np.bincount(idx[~t], minlength=bins).astype(float)
    if pos.sum() == 0 or neg.sum() == 0:
        return float("nan")
    # P(score_pos > score_neg) + 0.5 P(tie), scanning bins from high to low
    neg_below = np.cumsum(neg) - neg
    return float((pos * (neg_below + 0.5 * neg)).sum() / (pos.sum() * neg.sum()))
