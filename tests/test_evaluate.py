"""her2fast.evaluate: metrics against scikit-learn, and the reference-CSV reader's errors."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from her2fast import InvalidInputError
from her2fast.evaluate import (
    SCORES,
    agreement_summary,
    bootstrap_kappa_interval,
    cohen_kappa,
    confusion_matrix,
    cutoff_agreement,
    precision_recall,
    read_reference_csv,
    to_group,
)


def random_scores(seed: int, n: int):
    rng = np.random.default_rng(seed)
    ref = rng.choice(SCORES, n)
    noise = rng.integers(-1, 2, n) * (rng.random(n) < 0.3)
    pred = [SCORES[int(np.clip(SCORES.index(r) + d, 0, 3))] for r, d in zip(ref, noise)]
    return pred, list(ref)


@pytest.mark.parametrize("seed", range(5))
def test_metrics_equal_scikit_learn_on_random_labels(seed):
    pred, ref = random_scores(seed, 60 + seed * 17)
    np.testing.assert_array_equal(confusion_matrix(pred, ref), sk_confusion_matrix(ref, pred, labels=list(SCORES)).T)
    for w in (None, "linear", "quadratic"):
        assert cohen_kappa(pred, ref, weights=w) == pytest.approx(
            cohen_kappa_score(ref, pred, labels=list(SCORES), weights=w), abs=1e-12
        )
    pr = precision_recall(pred, ref)
    from sklearn.metrics import precision_score, recall_score

    p = precision_score(ref, pred, labels=list(SCORES), average=None, zero_division=np.nan)
    r = recall_score(ref, pred, labels=list(SCORES), average=None, zero_division=np.nan)
    np.testing.assert_allclose([pr[s][0] for s in SCORES], p, equal_nan=True)
    np.testing.assert_allclose([pr[s][1] for s in SCORES], r, equal_nan=True)


def test_bootstrap_interval_contains_the_estimate_and_is_reproducible():
    pred, ref = random_scores(7, 80)
    k = cohen_kappa(pred, ref, weights="quadratic")
    lo, hi = bootstrap_kappa_interval(pred, ref, weights="quadratic", n_boot=500, seed=1)
    assert lo <= k <= hi and hi - lo < 0.5
    assert (lo, hi) == bootstrap_kappa_interval(pred, ref, weights="quadratic", n_boot=500, seed=1)


def test_perfect_agreement_and_cutoffs():
    ref = ["0", "1+", "2+", "3+", "0+", "3+"]
    s = agreement_summary(ref, ref, n_boot=50)
    assert s.accuracy == 1.0 and s.kappa["unweighted"] == pytest.approx(1.0)
    assert all(c.accuracy == 1.0 for c in s.cutoffs)
    cut = {c.question: c for c in cutoff_agreement(["0", "1+", "3+"], ["1+", "1+", "2+"])}
    assert cut[">=1+ (not HER2-0)"].agree == 2
    assert cut["3+"].specificity == pytest.approx(2 / 3)


def test_group_words_compare_in_groups():
    s = agreement_summary(["1+", "2+", "3+", "0"], ["negative", "equivocal", "positive", "negative"], n_boot=20)
    assert s.labels == ("negative", "equivocal", "positive") and s.accuracy == 1.0
    assert to_group("0+") == "negative"


def write(tmp_path, text: str, files=("a.tiff", "b.tiff")):
    for f in files:
        (tmp_path / f).write_bytes(b"x")
    p = tmp_path / "ref.csv"
    p.write_text(text, encoding="utf-8")
    return p


def test_reference_csv_reads_scores_percentages_and_ish(tmp_path):
    rows = read_reference_csv(write(tmp_path, "slide,score,percent_complete,ish\na.tiff,2+,35%,amplified\nb.tiff,negative,,\n"))
    assert [(r.slide, r.score, r.percent_complete, r.ish_amplified, r.line) for r in rows] == [
        ("a.tiff", "2+", 35.0, True, 2), ("b.tiff", "negative", None, None, 3)]


@pytest.mark.parametrize(
    "text, match",
    [
        ("slide,grade\na.tiff,2+\n", r"line 1: missing column\(s\) score"),
        ("slide,score\na.tiff,4+\n", r"line 2: unknown score '4\+'"),
        ("slide,score\na.tiff,2+\nc.tiff,1+\n", r"line 3: slide file not found: .*c.tiff"),
        ("slide,score\na.tiff,2+\na.tiff,1+\n", r"line 3: slide 'a.tiff' already listed on line 2"),
        ("slide,score,percent_complete\na.tiff,2+,150\n", r"line 2: percent_complete 150.0 is outside 0..100"),
        ("slide,score,ish\na.tiff,2+,maybe\n", r"line 2: ish 'maybe'"),
        ("slide,score\n", "no rows after the header"),
    ],
)
def test_reference_csv_errors_name_the_line_and_problem(tmp_path, text, match):
    with pytest.raises(InvalidInputError, match=match):
        read_reference_csv(write(tmp_path, text))


def test_missing_reference_file(tmp_path):
    with pytest.raises(InvalidInputError, match="reference CSV not found"):
        read_reference_csv(tmp_path / "nope.csv")
