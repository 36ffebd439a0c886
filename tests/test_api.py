"""her2fast.score / SlideResult / `her2fast score`: phantoms end to end, bad inputs, JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import shared_file

SIZE = 2048
SEED = 700  # not a training seed (membrane: make_tile seeds; epithelium SVM: slide seeds 101-104)


PHANTOM_SEED = 931  # not a training seed either; the region test crops these phantoms


@pytest.fixture(scope="session")
def phantoms(phantom_slide):
    """2048^2 phantom slides of the clear categories 3+ and 0, with their ground truth (made once per test run:
    the region test crops the same slides)."""
    return {cat: phantom_slide(category=cat, width=SIZE, height=SIZE, seed=PHANTOM_SEED) for cat in ("3+", "0")}


@pytest.fixture(scope="session")
def results(phantoms):
    import her2fast

    return {cat: her2fast.score(gt.path, progress=False) for cat, gt in phantoms.items()}


def write_blank_slide(path, size=1024, mpp=0.5, value=246):
    """An all-glass pyramidal tiled TIFF that OpenSlide opens as generic-tiff with mpp."""
    import tifffile

    img = np.full((size, size, 3), value, np.uint8)
    px_per_cm = 1e4 / mpp
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        level, sub = img, 0
        while True:
            tif.write(
                level,
                tile=(256, 256),
                photometric="rgb",
                compression="jpeg",
                subfiletype=sub,
                resolution=(px_per_cm * size / level.shape[1],) * 2,
                resolutionunit="CENTIMETER",
            )
            if level.shape[0] <= 256:
                break
            level, sub = level[::2, ::2].copy(), 1


@pytest.mark.parametrize("cat", ["3+", "0"])
def test_clear_phantom_scores_its_category(results, phantoms, cat):
    r = results[cat]
    truth = phantoms[cat]
    assert truth.category in (cat, "0+" if cat == "0" else cat)
    assert r.score == cat, (r.score, r.percentages, r.flags)
    assert r.stratum in (("3+",) if cat == "3+" else ("null", "ultralow"))
    assert r.not_scorable is None and r.confidence is not None and 0.5 <= r.confidence <= 1
    n_true = int(truth.cells.is_tumour.sum())
    assert 0.6 * n_true <= r.counts["tumour_cells"] <= 1.2 * n_true
    assert abs(sum(r.percentages.values()) - 100.0) < 0.01
    if cat == "3+":
        assert r.percentages["intense_complete"] > 20 and r.percent_complete > 30
    else:
        assert r.percent_complete < 1


def test_result_provenance_and_timings(results):
    import her2fast

    r = results["3+"]
    p = r.provenance
    assert p["her2fast_version"] == her2fast.__version__
    assert len(p["models"]["epithelium_svm"]) == 64
    from her2fast.stages.membrane import load_model_config

    assert p["models"]["membrane_unet"] == load_model_config().sha256
    assert p["providers"] and p["stains"]["dab"]
    assert p["slide"]["width"] == SIZE and p["slide"]["vendor"] == "generic-tiff"
    assert abs(p["slide"]["mpp_x"] - 0.5) < 1e-6
    assert p["settings"]["tile_size"] == r.provenance["settings"]["tile_size"]
    for stage in ("tissue", "stain", "epithelium", "read", "membrane", "nuclei", "cells", "total"):
        assert r.timings[stage] >= 0
    # stage timings are busy seconds summed over the threads (lanes) that ran them; the tile phase's
    # wall time is part of the total
    assert r.timings["total"] >= r.timings["tiles_wall"]
    lanes = r.provenance["pipeline"]["threads"]["inference_lanes"]
    assert r.timings["membrane"] <= lanes * r.timings["tiles_wall"] * 1.05 + 0.05
    # every cell lies on the slide, in level-0 pixels, ids 1..n
    c = r.cells
    assert len(c) == r.counts["cells"] and np.array_equal(c.cell_id, np.arange(1, len(c) + 1))
    assert c.x.min() >= 0 and c.x.max() < SIZE and c.y.min() >= 0 and c.y.max() < SIZE


def test_confidence_counts_the_measurement_error_and_records_both_parts(results):
    from her2fast import ScoreSettings
    from her2fast.scoring import ScoringRules, measurement_confidence

    for r in results.values():
        parts = r.provenance["confidence"]
        rules = ScoringRules(**r.provenance["settings"]["rules"])
        m = measurement_confidence(r.cells, rules, ScoreSettings().measurement)
        assert parts["measurement"] == pytest.approx(m.confidence, abs=1e-4)
        assert parts["od_scale_margin"] == (
            None if not np.isfinite(m.od_scale_margin) else pytest.approx(m.od_scale_margin, abs=1e-4)
        )
        expected = min(parts["sampling"], parts["measurement"])
        if "intensity_uncertain" in r.flags:
            expected = min(expected, ScoreSettings().measurement.flagged_confidence)
        assert ("intensity_uncertain" in r.flags) == bool(m.flags)
        assert r.confidence == pytest.approx(expected, abs=1e-4)


def test_settings_saved_before_the_measurement_error_load_without_it():
    from dataclasses import asdict

    from her2fast import ScoreSettings
    from her2fast.pipeline.settings import NO_MEASUREMENT_ERROR

    d = ScoreSettings().to_dict()
    assert ScoreSettings.from_dict(d) == ScoreSettings()
    old = {k: v for k, v in d.items() if k != "measurement"}
    assert ScoreSettings.from_dict(old).measurement == NO_MEASUREMENT_ERROR
    assert asdict(NO_MEASUREMENT_ERROR)["od_scale_sigma"] == 0
    from her2fast.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="measurement"):
        ScoreSettings(measurement={"od_scale_sigma": 0.1})


def test_json_round_trip(results, tmp_path):
    from her2fast import SlideResult

    r = results["3+"]
    back = SlideResult.from_json(r.to_json())
    assert back.score == r.score and back.stratum == r.stratum and back.flags == r.flags
    assert back.counts == r.counts and back.provenance == json.loads(json.dumps(r.provenance))
    assert back.percent_complete == pytest.approx(r.percent_complete, abs=1e-4)
    for col in ("cell_id", "x", "y", "is_tumour", "intensity", "completeness", "closed"):
        assert np.array_equal(getattr(back.cells, col), getattr(r.cells, col)), col
    arr = r.cell_array()
    assert arr.dtype.names[:3] == ("cell_id", "x", "y") and len(arr) == len(r.cells)
    # from a file, without the cell table
    f = tmp_path / "r.json"
    f.write_text(r.to_json(include_cells=False))
    small = SlideResult.from_json(f)
    assert small.score == r.score and len(small.cells) == 0


def test_all_glass_is_not_scorable(tmp_path):
    import her2fast

    path = tmp_path / "glass.tiff"
    write_blank_slide(path)
    r = her2fast.score(path, progress=False)
    assert r.score is None and r.stratum is None and r.percent_complete is None
    assert "no_tissue" in r.flags and "glass" in r.not_scorable
    assert r.counts["tiles_tissue"] == 0 and len(r.cells) == 0
    json.loads(r.to_json())  # still serialisable


def test_too_few_tumour_cells_is_not_scorable(tmp_path):
    import her2fast
    from her2fast.synth import make_slide

    gt = make_slide(tmp_path / "tiny.tiff", category="3+", width=384, height=384, seed=SEED)
    r = her2fast.score(gt.path, progress=False)
    assert r.score is None and r.confidence is None
    assert "too_few_tumour_cells" in r.flags or "no_epithelium" in r.flags
    assert "200" in r.not_scorable or "epithelium" in r.not_scorable


@pytest.mark.parametrize(
    "name, error, text",
    [
        ("broken.svs", "UnsupportedSlideError", "broken.svs"),
        ("unopenable.tiff", "UnsupportedSlideError", "unopenable.tiff"),
        ("small_dicom.dcm", "UnsupportedSlideError", "small_dicom.dcm"),
        ("unreadable.svs", "SlideReadError", "unreadable.svs"),
        ("test3-DAPI-2-(387).ndpi", "NotBrightfieldError", "fluorescence"),
        ("tcga-cr-7395-01a-01-ts1.svs", "MissingResolutionError", "pass mpp="),
        ("boxes.png", "MissingResolutionError", "boxes.png"),
    ],
)
def test_broken_files_raise_named_errors(name, error, text):
    import her2fast
    from her2fast import errors

    with pytest.raises(getattr(errors, error)) as info:
        her2fast.score(shared_file(f"wsi/{name}"), progress=False)
    assert text in str(info.value)
    assert isinstance(info.value, errors.Her2FastError)


def test_missing_file():
    import her2fast

    with pytest.raises(her2fast.SlideNotFoundError, match="nope.svs"):
        her2fast.score("nope.svs", progress=False)


def test_settings_validation():
    from her2fast import ScoreSettings
    from her2fast.errors import InvalidInputError
    from her2fast.scoring import ScoringRules
    from her2fast.stages.cells import CellSettings

    with pytest.raises(InvalidInputError, match=r"overlap must be >= 2 \* cells.max_radius_um / mpp = 48 px"):
        ScoreSettings(overlap=32)
    with pytest.raises(InvalidInputError, match="membrane_method"):
        ScoreSettings(membrane_method="magic")
    with pytest.raises(InvalidInputError, match="cells.rules and rules differ"):
        ScoreSettings(rules=ScoringRules(min_tumour_cells=5))
    s = ScoreSettings(
        rules=ScoringRules(min_tumour_cells=5), cells=CellSettings(rules=ScoringRules(min_tumour_cells=5))
    )
    assert ScoreSettings.from_dict(json.loads(json.dumps(s.to_dict()))) == s


def test_progress_line():
    import io

    from her2fast.pipeline import Progress

    buf = io.StringIO()
    p = Progress("x.svs", 20, every=10, stream=buf)
    for _ in range(20):
        p.update()
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2 and lines[-1].startswith("x.svs: 20/20 tiles (100 %)") and "ETA" in lines[0]


def test_cli_score_good_and_bad(tmp_path, capsys):
    from her2fast.cli import main

    out = tmp_path / "out"
    bad = shared_file("wsi/broken.svs")
    glass = tmp_path / "glass.tiff"
    write_blank_slide(glass, size=512)
    rc = main(["score", str(bad), str(glass), "--out", str(out), "--json", "-q", "--no-pictures"])
    captured = capsys.readouterr()
    assert rc == 1  # one slide failed; the other still completed
    err = [ln for ln in captured.err.splitlines() if "broken.svs" in ln]
    assert len(err) == 1 and "UnsupportedSlideError" in err[0]
    line = json.loads(captured.out.strip().splitlines()[-1])
    assert line["score"] is None and "no_tissue" in line["flags"]
    assert (out / "glass.her2fast.json").exists()
    rc = main(["score", str(glass), "--out", str(out), "-q", "--no-pictures"])
    assert rc == 3 and "not scorable" in capsys.readouterr().out


def test_import_stays_light():
    import subprocess
    import sys

    code = "import sys, her2fast; print(any(m in sys.modules for m in ('her2fast.api', 'onnxruntime', 'scipy')))"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        == "False"
    )


@pytest.mark.parametrize("category", ["3+", "0"])
def test_a_region_inside_the_tumour_with_no_glass_in_view_scores_like_its_truth(tmp_path, phantom_slide, category):
    """An exported region of interest (a crop inside the tumour: no glass for the stain and white-balance
    estimates) scores as the ground truth of that region; checked by hand on 1024^2 and 2048^2 crops of
    all four categories (docs/epithelium.md)."""
    from PIL import Image
    from scipy.ndimage import uniform_filter

    import her2fast
    from her2fast.io.slide import open_slide
    from her2fast.scoring import ScoringRules, score_cells

    g = phantom_slide(category=category, width=SIZE, height=SIZE, seed=PHANTOM_SEED)
    per = g.epithelium_mask_mpp / g.mpp  # level-0 px per mask px
    side = 768
    k = int(side / per)
    dense = uniform_filter((g.epithelium_mask > 0).astype(float), k, mode="constant")
    cy, cx = np.unravel_index(np.argmax(dense), dense.shape)
    x0, y0 = int((cx - k // 2) * per), int((cy - k // 2) * per)
    with open_slide(g.path) as sl:
        roi = sl.read(x0, y0, side, side)
    assert np.percentile(roi.reshape(-1, 3), 99, axis=0).min() < 252  # no glass-white in view
    Image.fromarray(roi).save(tmp_path / "roi.png")
    r = her2fast.score(tmp_path / "roi.png", mpp=g.mpp, progress=False)
    c = g.cells
    inside = (c.x >= x0) & (c.x < x0 + side) & (c.y >= y0) & (c.y < y0 + side) & c.is_tumour
    truth = score_cells(c.select(inside), ScoringRules())
    expected = "0" if truth.category == "0+" else truth.category
    assert r.score == expected == ("0" if category == "0" else category)
    assert r.counts["tumour_cells"] >= 0.8 * inside.sum()


def test_cli_whole_tiles_option_reaches_the_settings(tmp_path, capsys):
    from her2fast.cli import main

    glass = tmp_path / "glass.tiff"
    write_blank_slide(glass, size=512)
    for extra, crop in (([], True), (["--whole-tiles"], False)):
        out = tmp_path / f"out_{crop}"
        main(["score", str(glass), "--out", str(out), "-q", "--no-pictures", *extra])
        d = json.loads((out / "glass.her2fast.json").read_text())
        assert d["provenance"]["settings"]["crop_to_epithelium"] is crop
    capsys.readouterr()
