"""Hostile slide names cannot become links, scripts or spreadsheet formulas in the evaluation reports and CSV files."""

from __future__ import annotations

import csv
import io
import re
from html.parser import HTMLParser
from urllib.parse import unquote

import pytest

from her2fast._csv import FORMULA_STARTS, safe_cell, safe_row, writer
from her2fast.io.store import ResultsStore, SlideIdentity
from her2fast.validation.evaluate import ReferenceRow, evaluate_rows, write_evaluation
from her2fast.validation.report import render_html

HOSTILE = [
    "javascript:alert(document.domain).tiff",
    "javascript:alert(1).tiff",
    '"><script>alert(1)</script>.tiff',
    "=cmd|' -C calc'!A0.tiff",
    "+1.tiff",
    "-2+3.tiff",
    "@x.tiff",
    "\t=1+1.tiff",
    "\r=1+1.tiff",
    "two\nlines<img src=x onerror=alert(1)>.tiff",
    "tab\there'onmouseover='alert(1).tiff",
]
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def hostile_report(out):
    """Every hostile name scored discordantly (links to its result JSON and overlay in ``out``), plus one failure."""
    refs, rows = [], []
    for i, name in enumerate(HOSTILE):
        stem = name.removesuffix(".tiff")
        refs.append(ReferenceRow(line=i + 2, slide=name, score="3+"))
        rows.append(
            {
                "status": "ok",
                "score": "0",
                "confidence": 0.9,
                "percent_complete": 1.5,
                "outputs": {"json": str(out / f"{stem}.her2fast.json"), "overlay": str(out / f"{stem}.overlay.png")},
            }
        )
    refs.append(ReferenceRow(line=len(HOSTILE) + 2, slide='=HYPERLINK("http://x").tiff', score="2+"))
    rows.append({"status": "failed", "error": "=cmd|' /C calc'!A0 <script>alert(1)</script>"})
    return evaluate_rows(refs, rows, n_boot=20)


def test_html_links_stay_relative_and_text_is_escaped(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    text = render_html(hostile_report(out), out)
    parser = _Tags()
    parser.feed(text)
    tags = [t for t, _ in parser.tags]
    assert "script" not in tags and "<script" not in text.lower()
    assert not any(k.startswith("on") for _, attrs in parser.tags for k in attrs)  # no injected handler
    hrefs = [attrs["href"] for tag, attrs in parser.tags if tag == "a"]
    assert len(hrefs) == 2 * len(HOSTILE)  # overlay and result JSON of each discordant slide
    assert all(h.startswith("./") and ":" not in h for h in hrefs), hrefs
    assert 'href="javascript:' not in text.lower()
    expected = {f"./{n.removesuffix('.tiff')}.her2fast.json" for n in HOSTILE}
    assert expected <= {unquote(h) for h in hrefs}  # the links still lead to the files
    for name in HOSTILE:  # names are shown, escaped, their control characters written as escapes
        shown = name.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
        assert (
            shown.replace("&", "&amp;")
            .replace("<", "&lt;")
            .replace(">", "&gt;")
            .replace('"', "&quot;")
            .replace("'", "&#x27;")
            in text
        )
        assert "\n" not in shown and "\t" not in shown and "\r" not in shown


def test_html_links_without_a_folder_are_relative_or_file_uris(tmp_path):
    report = hostile_report(tmp_path)
    parser = _Tags()
    parser.feed(render_html(report))
    hrefs = [attrs["href"] for tag, attrs in parser.tags if tag == "a"]
    assert hrefs and all(h.startswith("file:///") for h in hrefs)
    rel = evaluate_rows(
        [ReferenceRow(line=2, slide="javascript:alert(1).tiff", score="3+")],
        [{"status": "ok", "score": "0", "outputs": {"json": "javascript:alert(1).her2fast.json"}}],
        n_boot=10,
    )
    parser = _Tags()
    parser.feed(render_html(rel))
    assert [attrs["href"] for tag, attrs in parser.tags if tag == "a"] == ["./javascript%3Aalert%281%29.her2fast.json"]


def _assert_neutral(rows):
    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA_STARTS) or _NUMBER.fullmatch(cell), repr(cell)


def test_evaluation_csv_cells_are_neutralised(tmp_path):
    out = tmp_path / "out"
    files = write_evaluation(hostile_report(out), out)
    tables = {}
    for key in ("confusion", "slides", "discordant", "contest"):
        with open(files[key], newline="", encoding="utf-8") as fh:
            tables[key] = list(csv.reader(fh))
        _assert_neutral(tables[key])
    slides = [r[1] for r in tables["slides"][1:]]
    assert slides[: len(HOSTILE)] == [safe_cell(n) for n in HOSTILE]
    assert "'=cmd|' -C calc'!A0.tiff" in slides and "'+1.tiff" in slides and "'@x.tiff" in slides
    assert "'\t=1+1.tiff" in slides and "'\r=1+1.tiff" in slides
    assert "two\nlines<img src=x onerror=alert(1)>.tiff" in slides  # harmless start: unchanged
    assert '\'=HYPERLINK("http://x").tiff' in [r[0] for r in tables["contest"][1:]]
    reason = tables["slides"][0].index("reason")
    assert tables["slides"][-1][reason].startswith("'=cmd|")
    assert [r[1] for r in tables["discordant"][1:]] == [safe_cell(n) for n in HOSTILE]
    assert all(r[2] == "1.5" for r in tables["contest"][1 : len(HOSTILE) + 1])


def test_store_exports_are_neutralised(tmp_path):
    with ResultsStore(tmp_path / "db.sqlite") as store:
        for i, name in enumerate(HOSTILE):
            store.quarantine(SlideIdentity(path=name, size=1, mtime=-1.5, sha256=f"{i:064x}"), reason="@SUM(1+1)*cmd|")
        store.export_quarantine_csv(tmp_path / "q.csv")
    with open(tmp_path / "q.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    _assert_neutral(rows)
    header = rows[0]
    body = [dict(zip(header, r)) for r in rows[1:]]
    assert sorted(r["slide_path"] for r in body) == sorted(safe_cell(n) for n in HOSTILE)
    assert {r["reason"] for r in body} == {"'@SUM(1+1)*cmd|"}
    assert {r["slide_mtime"] for r in body} == {"-1.5"}  # a negative number stays a number


@pytest.mark.parametrize(
    "value", [-1.3, "-1.3", "+2", "-0.5e-3", ".5", "-7", 0, None, 2.5, "", "3+", "0", "plain.tiff"]
)
def test_numbers_and_plain_text_are_kept(value):
    assert safe_cell(value) == value


@pytest.mark.parametrize(
    "value",
    ["=1+1", "+1.tiff", "-1.3.tiff", "-", "+", "@x", "\t1", "\r1", "-1,3", "- 1", "-inf", "-nan", "=cmd|' -C calc'!A0"],
)
def test_formula_like_text_is_prefixed(value):
    assert safe_cell(value) == "'" + value


def test_writer_neutralises_every_row():
    buf = io.StringIO()
    w = writer(buf)
    w.writerow(["bias", -1.3, "-1.3", "=1+1"])
    w.writerows([["@a", "+b"], [1, "-2"]])
    rows = list(csv.reader(io.StringIO(buf.getvalue())))
    assert rows == [["bias", "-1.3", "-1.3", "'=1+1"], ["'@a", "'+b"], ["1", "-2"]]
    assert safe_row(("=a", 3)) == ["'=a", 3]
