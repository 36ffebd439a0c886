"""One document, three renderings: every figure of the evaluation and calibration documents appears in the text,
Markdown and HTML renderings, and hostile strings stay inert in each."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from her2fast import __version__
from her2fast.errors import InvalidInputError
from her2fast.scoring import DEFAULT_RULES, CalibrationProfile, measurement_settings
from her2fast.validation.calibrate import (
    CalibrationReport,
    CrossValidation,
    FitResult,
    agreement_figures,
    calibration_document,
    format_calibration,
    write_calibration,
)
from her2fast.validation.document import evaluation_document
from her2fast.validation.evaluate import ReferenceRow, evaluate_rows, format_summary, write_evaluation
from her2fast.validation.markdown import escape_markdown, render_markdown
from her2fast.validation.presentation import Document, Paragraph, Section, Table, visible
from her2fast.validation.report import render_document
from her2fast.validation.text import render_text

HOSTILE = [
    "<script>alert(1)</script>.svs",
    "a|b||c.svs",
    "`code` ``more``.svs",
    "two\nlines\r\tand a tab.svs",
    "[x](javascript:alert(1)).svs",
    "![img](http://evil.example/x.png).svs",
    "*em* _em_ **strong** ~~gone~~.svs",
    "# heading.svs",
    "1. item.svs",
    "- item.svs",
    "&amp; &lt;b&gt; \\| \\`.svs",
    "www.evil.example http://evil.example.svs",
    "\x1b[31mred\x1b[0m \u202eevil\u2028.svs",
    "\"quoted\" 'single' <img src=x onerror=alert(1)>.svs",
]


def _squash(text: str) -> str:
    return " ".join(text.split())


def assert_every_figure_shown(doc: Document, text: str, markdown: str, page: str) -> None:
    """Each text of the document, escaped as each format escapes it, is in that format's rendering."""
    flat = _squash(text)
    missing = {"text": [], "markdown": [], "html": []}
    for s in doc.figures():
        if _squash(visible(s)) not in flat:
            missing["text"].append(s)
        if escape_markdown(s) not in markdown:
            missing["markdown"].append(s)
        if html.escape(visible(s), quote=True) not in page:
            missing["html"].append(s)
    assert missing == {"text": [], "markdown": [], "html": []}


def evaluation(tmp_path, names=("a.svs", "b.svs", "c.svs", "d.svs", "e.svs", "f.svs", "g.svs", "h.svs")):
    """Every kind of figure: 0+ (ultralow), ISH, % complete, cut-offs, discordant slides with overlays, a
    failed and a not scorable slide, a result from the store."""
    from PIL import Image

    slides = tmp_path / "slides"
    slides.mkdir(exist_ok=True)
    scores = [("0+", "0", "0+"), ("0", "1+", "1+"), ("1+", "1+", "1+"), ("2+", "3+", "3+"), ("3+", "3+", "3+")]
    scores += [("2+", "2+", "2+"), ("3+", None, None), ("1+", "failed", None)]
    refs, rows = [], []
    for i, (name, (reference, score, category)) in enumerate(zip(names, scores)):
        overlay = slides / f"s{i}.overlay.png"
        Image.new("RGB", (64, 48), (200, 30, 30)).save(overlay)
        refs.append(
            ReferenceRow(line=i + 2, slide=name, score=reference, percent_complete=10.0 * i, ish_amplified=i > 3)
        )
        if score == "failed":
            rows.append({"status": "failed", "error": f"cannot read {name}"})
            continue
        rows.append(
            {
                "status": "ok",
                "score": score,
                "category": category,
                "stratum": category,
                "confidence": 0.55 + 0.06 * i if score else None,
                "percent_complete": 10.0 * i + 3.0,
                "flags": ["tissue_pieces_disagree"] if i == 1 else [],
                "not_scorable": f"{name} has too few tumour cells" if score is None else None,
                "outputs": {"overlay": str(overlay), "json": str(slides / f"s{i}.her2fast.json")},
                "skipped": i == 2,
                "package_version": __version__,
                "model_versions": {"membrane_unet": "ab" * 32},
            }
        )
    return evaluate_rows(refs, rows, n_boot=50, source="lab <reference>.csv")


def test_the_evaluation_document_holds_every_figure_of_the_report(tmp_path):
    r = evaluation(tmp_path)
    figs = evaluation_document(r, tmp_path).figures()
    s = r.summary
    assert r.ultralow and r.ish and r.percent_complete and s.cutoffs and r.discordant and r.excluded
    expected = [f"{s.accuracy:.3f}", f"({int(np.trace(s.confusion))}/{int(s.confusion.sum())} slides)"]
    for k in ("unweighted", "linear", "quadratic"):
        lo, hi = s.kappa_interval[k]
        expected += [f"{s.kappa[k]:.3f}", f"{lo:.2f}..{hi:.2f}"]
    expected += [f"{v:.2f}" for pr in s.precision_recall.values() for v in pr if np.isfinite(v)]
    for c in s.cutoffs:
        expected += [c.question, f"{c.agree}/{c.n}", f"{c.accuracy:.3f}"]
    expected += [f"{r.ultralow['agree']}/{r.ultralow['n']}", f"{r.percent_complete['mean_abs_error']:.1f}"]
    expected += [f"{r.ish['her2fast']['agree']}/{r.ish['her2fast']['n_decided']}"]
    expected += [f"{b['correct']}/{b['n']}" for b in r.calibration]
    expected += [o.slide for o in r.discordant + r.excluded] + [o.reason for o in r.excluded]
    assert [e for e in expected if e not in figs] == []
    # the confusion matrix, row by row with its totals
    tables = [b for sec in evaluation_document(r).sections for b in sec.blocks if isinstance(b, Table)]
    cm = [[int(c.text) for c in row[1:]] for row in tables[0].rows]
    assert cm == [[*map(int, row), int(row.sum())] for row in s.confusion] + [
        [*map(int, s.confusion.sum(axis=0)), int(s.confusion.sum())]
    ]


def test_every_figure_appears_in_text_markdown_and_html(tmp_path):
    r = evaluation(tmp_path)
    doc = evaluation_document(r, tmp_path)
    assert_every_figure_shown(doc, render_text(doc), render_markdown(doc), render_document(doc))
    # what the command prints and the files it writes show them too
    out = tmp_path / "eval"
    files = write_evaluation(r, out)
    written = evaluation_document(r, out)
    md, page = files["markdown"].read_text(encoding="utf-8"), files["html"].read_text(encoding="utf-8")
    assert_every_figure_shown(written, format_summary(r, max_rows=None), md, page)
    assert page.count('<img class="thumb"') == len(r.discordant)  # HTML adds the thumbnails
    assert md.count("[overlay](./../slides/") == len(r.discordant)  # Markdown links the overlays


def test_a_renderer_that_drops_a_figure_is_caught(tmp_path):
    doc = evaluation_document(evaluation(tmp_path))
    text = render_text(doc)
    dropped = text.replace("mean absolute error", "")
    with pytest.raises(AssertionError, match="mean absolute error"):
        assert_every_figure_shown(doc, dropped, render_markdown(doc), render_document(doc))


def test_the_printed_text_keeps_its_lines_and_caps_long_tables(tmp_path):
    r = evaluation(tmp_path)
    text = format_summary(r)
    assert (
        "8 slides in lab <reference>.csv: 6 scored (1 taken from the results store), 1 not scorable, 1 failed." in text
    )
    assert re.search(r"accuracy \d\.\d{3} \(\d+/\d+ slides\)", text)
    many = evaluate_rows(
        [ReferenceRow(line=i + 2, slide=f"s{i}.svs", score="3+") for i in range(30)],
        [{"status": "ok", "score": "1+"}] * 30,
        n_boot=10,
    )
    capped = format_summary(many, max_rows=5)
    assert "s4.svs" in capped and "s5.svs" not in capped and "... 25 more rows" in capped
    assert "s29.svs" in format_summary(many, max_rows=None)


# ------------------------------------------------------------------------------------ calibration
def calibration_report(slide_names) -> CalibrationReport:
    reference = ["0", "1+", "2+", "3+"] * 3
    default = ["0", "0", "2+", "3+", "0", "1+", "1+", "3+", "1+", "1+", "2+", "2+"]
    calibrated = ["0", "1+", "2+", "3+", "0", "1+", "2+", "3+", "0", "1+", "2+", "2+"]
    figures = agreement_figures(default, calibrated, reference, n_boot=50)
    from her2fast import ScoreSettings

    profile = CalibrationProfile(
        name="lab <b>&</b> | `A`",
        parameters={"strong_od": 0.61, "complete_fraction": 0.8},
        models={"membrane_unet": "b" * 64},
        her2fast_version=__version__,
        measurement=measurement_settings(ScoreSettings().to_dict()),
        created="2024-01-01T00:00:00+00:00",
        reference={"file": "ref|<x>.csv", "sha256": "c" * 64, "slides": 13, "scored": 12},
    )
    fit = FitResult(
        rules=DEFAULT_RULES,
        parameters={"strong_od": 0.61, "complete_fraction": 0.8},
        defaults={"strong_od": DEFAULT_RULES.strong_od, "complete_fraction": DEFAULT_RULES.complete_fraction},
        agreement=1.0,
        agreement_defaults=0.8,
        objective=0.9,
        evaluations=10,
        seconds=0.1,
    )
    cv = CrossValidation(
        default=default,
        calibrated=calibrated,
        fold=[i % 3 for i in range(12)],
        fold_parameters=[{"strong_od": 0.6 + 0.01 * k, "complete_fraction": 0.8} for k in range(3)],
        seconds=0.2,
    )
    slides = [
        {"line": i + 2, "slide": name, "reference": reference[i], "status": "used", "default": default[i]}
        | {"calibrated": calibrated[i], "held_out": calibrated[i], "fold": i % 3}
        for i, name in enumerate(slide_names[:12])
    ]
    slides.append(
        {"line": 14, "slide": slide_names[-1], "reference": "2+", "status": "excluded", "reason": "no <result>"}
    )
    return CalibrationReport(
        profile=profile,
        fit=fit,
        cross_validation=cv,
        figures=figures,
        slides=slides,
        warnings=["small reference set: <12> slides | `few`"],
        timings={"scoring": 1.0},
    )


def test_every_calibration_figure_appears_in_text_markdown_and_html(tmp_path):
    names = [f"s{i}.svs" for i in range(13)]
    report = calibration_report(names)
    doc = calibration_document(report)
    figs = doc.figures()
    f = report.figures
    for k in ("accuracy", "kappa_quadratic", "low_agreement"):
        for who in ("default", "calibrated"):
            lo, hi = f[who][f"{k}_ci"]
            assert f"{f[who][k]:.3f} [{lo:.3f}, {hi:.3f}]" in figs
        assert any(x.startswith(f"{f['difference'][k]['value']:+.3f} [") for x in figs)
    assert {"0.61", "0.8", "0.6 - 0.62"} <= set(figs) and set(names) <= set(figs) and "no <result>" in figs
    assert [str(v) for row in f["calibrated"]["confusion"] for v in row] == [
        c.text
        for sec in doc.sections
        if sec.title.startswith("Confusion, calibrated")
        for row in sec.blocks[0].rows[:-1]
        for c in row[1:-1]
    ]
    text = format_calibration(report, max_rows=None)
    assert "warning: small reference set" in text and "Held-out agreement" in text
    files = write_calibration(report, tmp_path / "prof")
    assert set(files) == {"profile", "json", "html", "markdown"}
    md, page = files["markdown"].read_text(encoding="utf-8"), files["html"].read_text(encoding="utf-8")
    assert_every_figure_shown(doc, text, md, page)


# --------------------------------------------------------------------------------- hostile strings
class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.rows: list[list[str]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th") and self.rows:
            self.rows[-1].append(tag)

    def handle_data(self, data):
        self.text.append(data)


def _unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)(?:\\\\)*\|", line))


def _check_markdown(md: str, names) -> None:
    assert "<" not in md and ">" not in md  # no raw HTML: every < > is an entity
    assert not re.search(r"(?<!\\)(?:\\\\)*`", md)  # every backtick escaped: no code span
    assert "://" not in md and not re.search(r"(?i)\bwww\.", md)  # no automatic link
    for block in md.split("\n\n"):  # a table row never breaks, nor changes its number of cells
        lines = block.splitlines()
        if lines and lines[0].startswith("|"):
            assert {_unescaped_pipes(x) for x in lines} == {_unescaped_pipes(lines[0])}, block
    markdown_it = pytest.importorskip("markdown_it")
    page = markdown_it.MarkdownIt("commonmark", {"html": True}).enable("table").enable("strikethrough").render(md)
    parser = _Html()
    parser.feed(page)
    tags = {t for t, _ in parser.tags}
    assert tags <= {"h1", "h2", "p", "ul", "li", "strong", "a", "table", "thead", "tbody", "tr", "th", "td"}, tags
    assert all(a["href"].startswith("./") for t, a in parser.tags if t == "a")
    for row in parser.rows:  # a table's rows all have its header's number of cells
        assert len(row) in {len(r) for r in parser.rows if "th" in r}
    shown = "".join(parser.text)  # entities already decoded by the parser
    for name in names:
        assert visible(name) in shown, name


def _check_html(page: str, names) -> None:
    parser = _Html()
    parser.feed(page)
    assert "script" not in {t for t, _ in parser.tags} and "<script" not in page.lower()
    assert not any(k.startswith("on") for _, attrs in parser.tags for k in attrs)
    assert all(a["href"].startswith("./") for t, a in parser.tags if t == "a" and "href" in a)
    assert {a["src"][:22] for t, a in parser.tags if t == "img"} <= {"data:image/png;base64,"}
    shown = "".join(parser.text)
    for name in names:
        assert visible(name) in shown, name


def _check_text(text: str, names) -> None:
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f\u2028\u2029\u202a-\u202e\u2066-\u2069]", text)
    for name in names:
        assert visible(name) in text, name


def test_hostile_slide_names_stay_inert_in_every_format(tmp_path):
    names = HOSTILE[:8]
    r = evaluation(tmp_path, names=names)
    out = tmp_path / "eval"
    files = write_evaluation(r, out)
    md, page = files["markdown"].read_text(encoding="utf-8"), files["html"].read_text(encoding="utf-8")
    shown = [o.slide for o in r.discordant + r.excluded]
    assert len(shown) >= 4
    _check_markdown(md, shown)
    _check_html(page, shown)
    _check_text(format_summary(r, max_rows=None), shown)
    assert_every_figure_shown(evaluation_document(r, out), format_summary(r, max_rows=None), md, page)


def test_hostile_strings_anywhere_in_a_document_stay_inert():
    rows = [(name, name, 1) for name in HOSTILE]
    doc = Document(
        HOSTILE[0],
        tuple(HOSTILE[1:3]),
        tuple(
            Section(
                name,
                (Paragraph(name), Paragraph(name, "note"), Paragraph(name, "warning"), Table(("a", "b", "n"), rows)),
            )
            for name in HOSTILE
        ),
    )
    md, page, text = render_markdown(doc), render_document(doc), render_text(doc)
    _check_markdown(md, HOSTILE)
    _check_html(page, HOSTILE)
    _check_text(text, HOSTILE)
    assert_every_figure_shown(doc, text, md, page)


def test_calibration_pages_escape_hostile_names(tmp_path):
    names = (HOSTILE * 2)[:13]
    report = calibration_report(names)
    files = write_calibration(report, tmp_path / "prof")
    shown = [*names, report.profile.name, report.warnings[0]]
    _check_markdown(files["markdown"].read_text(encoding="utf-8"), shown)
    _check_html(files["html"].read_text(encoding="utf-8"), shown)
    _check_text(format_calibration(report, max_rows=None), shown)


def test_tables_check_their_shape():
    with pytest.raises(InvalidInputError, match="2 cells for 3 columns"):
        Table(("a", "b", "c"), [("x", "y")])
