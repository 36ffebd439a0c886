"""her2fast.validation.evaluate: metrics against scikit-learn, and the reference-CSV reader's errors."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from her2fast import InvalidInputError
from her2fast.validation.evaluate import (
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
    rows = read_reference_csv(
        write(tmp_path, "slide,score,percent_complete,ish\na.tiff,2+,35%,amplified\nb.tiff,negative,,\n")
    )
    assert [(r.slide, r.score, r.percent_complete, r.ish_amplified, r.line) for r in rows] == [
        ("a.tiff", "2+", 35.0, True, 2),
        ("b.tiff", "negative", None, None, 3),
    ]


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


# ------------------------------------------------------------------ rows -> EvaluationReport -> files
from her2fast.validation.evaluate import (  # noqa: E402
    ReferenceRow,
    evaluate_rows,
    format_summary,
    outcome_from_row,
    write_evaluation,
)


def ref(line, slide, score, pc=None, ish=None):
    return ReferenceRow(line=line, slide=slide, score=score, percent_complete=pc, ish_amplified=ish)


def row(score, category=None, confidence=0.9, pc=None, status="ok", error=None, outputs=None, **extra):
    return {
        "slide_path": "/x",
        "status": status,
        "score": score,
        "category": category or score,
        "stratum": None,
        "confidence": confidence,
        "percent_complete": pc,
        "percentages": {},
        "error": error,
        "outputs": outputs or {},
        "skipped": False,
        "package_version": "0.1.0",
        "model_versions": {"unet": "ab"},
        **extra,
    }


def test_failed_and_not_scorable_slides_are_listed_and_excluded_never_dropped():
    refs = [ref(2, "a", "3+"), ref(3, "b", "1+"), ref(4, "c", "2+"), ref(5, "d", "0")]
    rows = [row("3+"), row("1+"), row(None, confidence=None), row(None, status="failed", error="corrupt JPEG")]
    r = evaluate_rows(refs, rows, n_boot=20)
    assert r.counts() == {"scored": 2, "not_scorable": 1, "failed": 1, "total": 4, "discordant": 0, "from_store": 0}
    assert r.summary.confusion.sum() == 2 and r.summary.accuracy == 1.0
    assert [(o.slide, o.status) for o in r.excluded] == [("c", "not_scorable"), ("d", "failed")]
    assert r.excluded[1].reason == "corrupt JPEG"
    text = format_summary(r)
    assert "2 scored" in text and "1 not scorable, 1 failed" in text and "Left out: not scorable or failed (2)" in text
    assert re.search(r"\n +d +5 +0 +failed +corrupt JPEG\n", text)  # slide, line, reference, status, reason
    assert "accuracy 1.000 (2/2 slides)" in text
    d = r.to_dict()
    assert d["counts"]["failed"] == 1 and len(d["excluded_from_figures"]) == 2


def test_nothing_scored_gives_counts_and_no_figures(tmp_path):
    r = evaluate_rows([ref(2, "a", "3+")], [row(None, status="failed", error="x")], n_boot=10)
    assert r.summary is None and "No slide was scored" in format_summary(r)
    files = write_evaluation(r, tmp_path)
    assert json.loads(files["json"].read_text())["agreement"] is None


def test_rows_may_be_a_mapping_and_must_align():
    refs = [ref(2, "a", "3+"), ref(3, "b", "0")]
    r = evaluate_rows(refs, {"a": row("3+")}, n_boot=10)
    assert [o.status for o in r.outcomes] == ["scored", "failed"]
    with pytest.raises(InvalidInputError, match="2 reference rows but 1 results"):
        evaluate_rows(refs, [row("3+")])


def test_group_reference_compares_groups():
    refs = [ref(2, "a", "negative"), ref(3, "b", "positive"), ref(4, "c", "equivocal")]
    r = evaluate_rows(refs, [row("1+"), row("3+"), row("1+")], n_boot=10)
    assert r.level == "group" and r.summary.labels == ("negative", "equivocal", "positive")
    assert [o.slide for o in r.discordant] == ["c"] and r.summary.accuracy == pytest.approx(2 / 3)
    assert r.ultralow is None and r.summary.cutoffs == []


def test_ultralow_split_ish_and_percent_complete():
    refs = [
        ref(2, "a", "0+", pc=0.0, ish=False),
        ref(3, "b", "0", pc=0.0, ish=False),
        ref(4, "c", "0+", pc=1.0),
        ref(5, "d", "3+", pc=60.0, ish=True),
        ref(6, "e", "2+", pc=20.0, ish=True),
    ]
    rows = [
        row("0", "0+", pc=0.5),
        row("0", "0+", pc=0.0),
        row("0", "0", pc=2.0),
        row("3+", pc=50.0),
        row("2+", pc=26.0),
    ]
    r = evaluate_rows(refs, rows, n_boot=10)
    assert r.summary.accuracy == 1.0  # 0+ counts as 0 in the four-class table
    assert r.ultralow["n"] == 3 and r.ultralow["agree"] == 1
    assert r.ultralow["confusion"] == [[0, 1], [1, 1]]  # rows predicted (null, ultralow), columns reference
    assert (
        r.ish["her2fast"]["agree"] == 3 and r.ish["her2fast"]["n_decided"] == 3 and r.ish["her2fast"]["equivocal"] == 1
    )
    pc = r.percent_complete
    err = np.array([0.5, 0, 1.0, -10, 6])
    assert pc["n"] == 5 and pc["mean_abs_error"] == pytest.approx(np.abs(err).mean())
    assert pc["bias"] == pytest.approx(err.mean()) and pc["max_abs_error"] == 10


def test_calibration_bins_count_every_scored_slide_with_a_confidence():
    refs = [ref(i + 2, f"s{i}", s) for i, s in enumerate(["3+", "3+", "1+", "2+", "0"])]
    rows = [
        row("3+", confidence=0.99),
        row("2+", confidence=0.55),
        row("1+", confidence=0.72),
        row("2+", confidence=1.0),
        row("0", confidence=None),
    ]
    bins = evaluate_rows(refs, rows, n_boot=10).calibration
    assert [b["n"] for b in bins] == [1, 0, 1, 0, 2] and sum(b["correct"] for b in bins) == 3
    assert bins[0]["fraction_correct"] == 0.0 and bins[-1]["mean_confidence"] == pytest.approx(0.995)


def test_outcome_reads_missing_fields_from_the_result_json(tmp_path):
    js = tmp_path / "a.her2fast.json"
    js.write_text(
        json.dumps(
            {
                "score": None,
                "percent_complete": 12.5,
                "flags": ["too_few_tumour_cells"],
                "not_scorable": "only 80 tumour cells found",
                "counts": {"tumour_cells": 80},
            }
        )
    )
    o = outcome_from_row(ref(2, "a", "1+"), {"status": "ok", "score": None, "outputs": {"json": str(js)}})
    assert o.status == "not_scorable" and o.reason == "only 80 tumour cells found" and o.tumour_cells == 80
    assert o.percent_complete == 12.5 and o.flags == ("too_few_tumour_cells",)
    o = outcome_from_row(ref(2, "a", "1+"), {"status": "ok", "score": "2+", "percentages": {"complete": 33.0}})
    assert o.percent_complete == 33.0 and o.agrees("score") is False and o.agrees("group") is False
    with pytest.raises(InvalidInputError, match="unknown score '5\\+'"):
        outcome_from_row(ref(2, "a", "1+"), {"status": "ok", "score": "5+"})


def test_write_evaluation_files(tmp_path):
    from PIL import Image

    overlay = tmp_path / "slides" / "b.overlay.png"
    overlay.parent.mkdir()
    Image.new("RGB", (900, 600), (200, 30, 30)).save(overlay)
    refs = [ref(2, "a.svs", "3+", pc=70.0), ref(3, "b.svs", "1+", pc=3.0), ref(4, "c.svs", "0")]
    rows = [
        row("3+", pc=64.0, confidence=0.97),
        row("2+", pc=15.0, confidence=0.61, outputs={"overlay": str(overlay)}),
        row(None, status="failed", error="unreadable"),
    ]
    out = tmp_path / "eval"
    files = write_evaluation(evaluate_rows(refs, rows, n_boot=50, source="ref.csv"), out)
    assert set(files) == {"json", "confusion", "slides", "discordant", "contest", "html", "markdown"}
    assert all(p.exists() and p.parent == out for p in files.values())
    with files["confusion"].open() as fh:
        lines = list(csv.reader(fh))
    assert lines[0] == ["predicted \\ reference", "0", "1+", "2+", "3+"]
    assert lines[3] == ["2+", "0", "1", "0", "0"] and lines[4] == ["3+", "0", "0", "0", "1"]
    with files["discordant"].open() as fh:
        disc = list(csv.DictReader(fh))
    assert [(d["slide"], d["reference"], d["predicted"], d["overlay"]) for d in disc] == [
        ("b.svs", "1+", "2+", "../slides/b.overlay.png")
    ]
    with files["contest"].open() as fh:
        contest = list(csv.DictReader(fh))
    assert list(contest[0]) == ["slide", "score", "percent_complete", "confidence"]
    assert [(c["slide"], c["score"], c["percent_complete"]) for c in contest] == [
        ("a.svs", "3+", "64"),
        ("b.svs", "2+", "15"),
        ("c.svs", "", ""),
    ]
    d = json.loads(files["json"].read_text())
    assert d["agreement"]["accuracy"] == 0.5 and d["agreement"]["confusion"]["rows"] == "predicted"
    assert d["percent_complete"]["mean_abs_error"] == pytest.approx(9.0)
    assert d["versions"] == [{"her2fast": "0.1.0", "models": {"unet": "ab"}}]
    assert "data:image/png;base64," in files["html"].read_text()
    md = files["markdown"].read_text(encoding="utf-8")
    assert "- accuracy **0.500** (1/2 slides)" in md and "[overlay](./../slides/b.overlay.png)" in md


# ------------------------------------------------------------------------ end to end, through the CLI
@pytest.fixture(scope="module")
def phantom_reference(tmp_path_factory):
    """Three 1024^2 phantoms (0, 1+, 3+; seeds the models never saw) and an all-glass slide, in a reference CSV.

    The 3+ phantom's reference says 2+ (a discordant slide by construction); the glass cannot be scored.
    """
    import tifffile

    from her2fast.scoring import slide_summary
    from her2fast.synth import make_slide

    folder = tmp_path_factory.mktemp("evaluate_e2e")
    (folder / "slides").mkdir()
    lines = ["slide,score,percent_complete"]
    truth = {}
    for cat, seed in (("0", 961), ("1+", 962), ("3+", 963)):
        name = f"slides/p{cat.replace('+', 'p')}.tiff"
        gt = make_slide(folder / name, category=cat, width=1024, height=1024, seed=seed)
        truth[name] = gt.category
        reference = "2+" if cat == "3+" else gt.category
        lines.append(f"{name},{reference},{slide_summary(gt.cells).percent_complete:.2f}")
    glass = np.full((512, 512, 3), 246, np.uint8)
    with tifffile.TiffWriter(folder / "slides" / "glass.tiff", bigtiff=True) as tif:
        tif.write(
            glass,
            tile=(256, 256),
            photometric="rgb",
            compression="jpeg",
            resolution=(20000.0, 20000.0),
            resolutionunit="CENTIMETER",
        )
    lines.append("slides/glass.tiff,0,")
    (folder / "reference.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder, truth


@pytest.mark.slow
def test_evaluate_cli_end_to_end(phantom_reference, capsys):
    from her2fast.cli import main

    folder, truth = phantom_reference
    out = folder / "eval"
    rc = main(["evaluate", str(folder / "reference.csv"), "--out", str(out), "--n-boot", "200", "-q"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    for name in (
        "evaluation.json",
        "confusion.csv",
        "slides.csv",
        "discordant.csv",
        "contest.csv",
        "report.html",
        "report.md",
    ):
        assert (out / name).exists(), name
    # the printed accuracy is what the files say
    refs = {r.slide: r.score for r in read_reference_csv(folder / "reference.csv")}
    with (out / "contest.csv").open(newline="") as fh:
        contest = list(csv.DictReader(fh))
    assert [c["slide"] for c in contest] == list(refs)
    scored = [c for c in contest if c["score"]]
    agree = sum(c["score"] == ("0" if refs[c["slide"]] == "0+" else refs[c["slide"]]) for c in scored)
    m = re.search(r"accuracy (\d\.\d{3}) \((\d+)/(\d+) slides\)", printed)
    assert m and (int(m.group(2)), int(m.group(3))) == (agree, len(scored)), printed
    assert float(m.group(1)) == pytest.approx(agree / len(scored), abs=5e-4)
    report = json.loads((out / "evaluation.json").read_text())
    assert report["agreement"]["accuracy"] == pytest.approx(agree / len(scored))
    assert report["agreement"]["n"] == len(scored) == 3
    cm = np.array(report["agreement"]["confusion"]["matrix"])
    with (out / "confusion.csv").open(newline="") as fh:
        assert [[int(v) for v in r[1:]] for r in list(csv.reader(fh))[1:]] == cm.tolist()
    # the glass is listed, counted and left out -- never dropped silently
    assert report["counts"]["not_scorable"] == 1 and report["counts"]["total"] == 4
    assert "1 not scorable" in printed and "slides/glass.tiff" in printed
    # the 3+ phantom against a 2+ reference is discordant, with its overlay linked and pictured
    with (out / "discordant.csv").open(newline="") as fh:
        disc = {d["slide"]: d for d in csv.DictReader(fh)}
    d = disc["slides/p3p.tiff"]
    assert d["reference"] == "2+" and d["predicted"] == "3+" and (out / d["overlay"]).exists()
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count('<img class="thumb"') == len(disc)
    assert report["percent_complete"]["n"] == 3
    # a second run takes every result from the results store
    rc = main(["evaluate", str(folder / "reference.csv"), "--out", str(out), "--n-boot", "200", "-q"])
    again = capsys.readouterr().out
    assert rc == 0 and re.search(r"\((3|4) taken from the results store\)", again), again
    assert re.search(r"accuracy \d\.\d{3} \(\d+/\d+ slides\)", again).group(0) == m.group(0)


def test_evaluate_cli_input_errors_exit_1(tmp_path, capsys):
    from her2fast.cli import main

    (tmp_path / "a.tiff").write_bytes(b"x")
    (tmp_path / "ref.csv").write_text("slide,score\na.tiff,2+\nb.tiff,1+\n", encoding="utf-8")
    assert main(["evaluate", str(tmp_path / "ref.csv"), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "line 3: slide file not found" in err and "b.tiff" in err
    (tmp_path / "ref.csv").write_text("slide,score\na.tiff,strong\n", encoding="utf-8")
    assert main(["evaluate", str(tmp_path / "ref.csv"), "--out", str(tmp_path / "o")]) == 1
    assert "line 2: unknown score 'strong'" in capsys.readouterr().err


def test_batch_rows_are_matched_to_reference_slides_by_path(tmp_path):
    from her2fast.validation.evaluate import _align_rows

    paths = [tmp_path / "b.svs", tmp_path / "a.svs", tmp_path / "c.svs"]
    a, b = {"slide_path": str(paths[1]), "score": "1+"}, {"slide_path": str(paths[0]), "score": "3+"}
    assert _align_rows(paths[:2], [b, a]) == [b, a]  # the batch kept the order
    assert _align_rows(paths, [a, b]) == [b, a, None]  # reordered, one missing: matched by path
