"""her2fast.validation.report: the one-page HTML report, its confusion table, calibration plot and thumbnails."""

from __future__ import annotations

import re
from xml.etree import ElementTree

import numpy as np
import pytest

from her2fast import InvalidInputError
from her2fast.validation.evaluate import ReferenceRow, evaluate_rows
from her2fast.validation.report import (
    calibration_image,
    calibration_svg,
    confusion_html,
    render_html,
    thumbnail_data_uri,
    write_html,
)


def report_with(tmp_path, n=40, seed=3):
    """A report over n random slides (about 70 % agreeing), with an overlay picture for every slide."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    scores = ["0", "1+", "2+", "3+"]
    refs, rows = [], []
    for i in range(n):
        r = scores[rng.integers(4)]
        p = r if rng.random() < 0.7 else scores[rng.integers(4)]
        overlay = tmp_path / "slides" / f"s{i}.overlay.png"
        overlay.parent.mkdir(exist_ok=True)
        Image.new("RGB", (640, 480), tuple(int(v) for v in rng.integers(0, 255, 3))).save(overlay)
        refs.append(ReferenceRow(line=i + 2, slide=f"s{i}.svs", score=r))
        rows.append(
            {
                "status": "ok",
                "score": p,
                "confidence": float(rng.uniform(0.5, 1.0)),
                "outputs": {"overlay": str(overlay)},
            }
        )
    refs.append(ReferenceRow(line=n + 2, slide="broken.svs", score="2+"))
    rows.append({"status": "failed", "error": "Unsupported TIFF compression: 52479"})
    return evaluate_rows(refs, rows, n_boot=100)


def table_numbers(html_text: str, cls: str) -> list[list[int]]:
    table = re.search(rf'<table class="{cls}">(.*?)</table>', html_text, re.S).group(1)
    rows = re.findall(r"<tr><th>[^<]*</th>(.*?)</tr>", table, re.S)
    numbers = [[int(v) for v in re.findall(r"<td[^>]*>(\d+)</td>", r)] for r in rows]
    return [r for r in numbers if r]  # header rows hold no <td>


def test_html_holds_the_confusion_matrix_and_figures(tmp_path):
    report = report_with(tmp_path)
    path = write_html(report, tmp_path / "out" / "report.html")
    text = path.read_text(encoding="utf-8")
    cm = report.summary.confusion
    numbers = table_numbers(text, "confusion")
    expected = [[*map(int, r), int(r.sum())] for r in cm] + [[*map(int, cm.sum(axis=0)), int(cm.sum())]]
    assert numbers == expected
    assert f"accuracy <b>{report.summary.accuracy:.3f}</b>" in text
    for k in ("unweighted", "linear", "quadratic"):
        assert f"<td>{report.summary.kappa[k]:.3f}</td>" in text
    assert "Unsupported TIFF compression" in text and "1 failed" in text
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")  # self-contained
    n_disc = len(report.discordant)
    assert text.count('<img class="thumb" src="data:image/png;base64,') == n_disc > 0
    assert 'href="./../slides/' in text  # overlay links relative to the page


def test_thumbnails_are_downscaled_pngs(tmp_path):
    import base64
    import io

    from PIL import Image

    p = tmp_path / "big.png"
    Image.new("RGB", (1600, 900), (10, 200, 10)).save(p)
    uri = thumbnail_data_uri(p, max_size=120)
    with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as im:
        assert im.format == "PNG" and max(im.size) == 120
    assert thumbnail_data_uri(tmp_path / "missing.png") is None and thumbnail_data_uri(None) is None
    (tmp_path / "junk.png").write_bytes(b"not an image")
    assert thumbnail_data_uri(tmp_path / "junk.png") is None


def test_calibration_plot_svg_and_png():
    bins = [
        {"lo": 0.5, "hi": 0.6, "n": 3, "mean_confidence": 0.55, "fraction_correct": 1 / 3},
        {"lo": 0.9, "hi": 1.0, "n": 10, "mean_confidence": 0.98, "fraction_correct": 0.9},
        {"lo": 0.6, "hi": 0.7, "n": 0, "mean_confidence": float("nan"), "fraction_correct": float("nan")},
    ]
    svg = calibration_svg(bins)
    root = ElementTree.fromstring(svg)  # well-formed XML
    circles = root.findall("{http://www.w3.org/2000/svg}circle")
    assert len(circles) == 2
    assert "no scored slide" in calibration_svg([])
    img = calibration_image(bins, width=300, height=260)
    assert img.size == (300, 260) and img.mode == "RGB"
    arr = np.asarray(img)
    assert (np.abs(arr.astype(int) - (120, 150, 220)).sum(axis=2) == 0).any()  # the dots are drawn


def test_confusion_table_checks_its_shape():
    text = confusion_html(("a", "b"), [[1, 2], [0, 3]])
    assert table_numbers(text, "confusion") == [[1, 2, 3], [0, 3, 3], [1, 5, 6]]
    with pytest.raises(InvalidInputError, match="2x2"):
        confusion_html(("a", "b"), [[1, 2, 3]])


def test_render_refuses_other_objects():
    with pytest.raises(InvalidInputError, match="EvaluationReport"):
        render_html({"accuracy": 1.0})


def test_report_without_scored_slides(tmp_path):
    r = evaluate_rows([ReferenceRow(line=2, slide="x.svs", score="1+")], [None], n_boot=10)
    text = render_html(r, tmp_path)
    assert "No slide was scored" in text and "no result for this slide" in text
