"""Field-of-view mode: camera photos and viewer snapshots without a resolution, and images in memory."""

from __future__ import annotations

import json

import numpy as np
import pytest

FIELD_UM = 200.0  # side of the phantom fields (micrometres): 100-130 nuclei
SEED = 811  # not a training seed


def phantom_png(tmp_path, mpp, *, category="2+", seed=SEED, size_um=FIELD_UM, name=None):
    """A phantom field rendered at ``mpp`` and saved as a plain PNG with no resolution in it."""
    from PIL import Image

    from her2fast.synth import make_tile

    tile = make_tile(int(round(size_um / mpp)), category=category, mpp=mpp, seed=seed)
    path = tmp_path / (name or f"field_{mpp:g}.png")
    Image.fromarray(tile.rgb).save(path)
    with Image.open(path) as im:
        assert "dpi" not in im.info  # no resolution travels with it
    return path, tile


@pytest.mark.parametrize("mpp", [0.25, 0.35, 0.5, 0.75, 1.0])
def test_resolution_of_a_phantom_png_is_estimated_within_15_percent(tmp_path, mpp):
    from her2fast.io.slide import open_slide
    from her2fast.stages.resolution import estimate_resolution

    path, _ = phantom_png(tmp_path, mpp)
    found = []

    def estimate(pixels, where):
        found.append(estimate_resolution(pixels, path=where))
        return found[-1].mpp

    with open_slide(path, estimate_mpp=estimate) as slide:
        assert slide.mpp_source == "estimated" and slide.metadata_mpp is None
        assert slide.mpp == pytest.approx(mpp, rel=0.15)
    est = found[0]
    assert est.n_nuclei >= 50
    lo, hi = est.interval
    assert lo < mpp < hi  # the ~95 % range holds the truth
    assert 0 < est.sampling_spread < est.relative_uncertainty < 0.5


def test_a_png_without_resolution_is_read_as_a_field(tmp_path):
    import her2fast
    from her2fast.scoring import ScoringRules

    path, tile = phantom_png(tmp_path, 0.35, category="3+", size_um=180.0)
    r = her2fast.score(path, progress=False)
    assert r.kind == "field"
    assert r.resolution["source"] == "estimated"
    assert r.resolution["mpp"] == pytest.approx(0.35, rel=0.15)
    assert r.resolution["relative_uncertainty"] > 0 and r.resolution["n_nuclei"] >= 30
    assert r.provenance["resolution"] == r.resolution and r.provenance["kind"] == "field"
    assert r.provenance["slide"]["mpp_source"] == "estimated"
    assert len(r.provenance["white_balance"]["white_point"]) == 3
    # fewer tumour cells than a slide needs: read, flagged, not refused
    n = r.counts["tumour_cells"]
    assert 0 < n < ScoringRules().min_tumour_cells
    assert r.score == "3+" and r.stratum == "3+" and r.percent_complete is not None
    assert "few_cells" in r.flags and "too_few_tumour_cells" not in r.flags and r.not_scorable is None
    assert set(r.percentages) and sum(r.percentages.values()) == pytest.approx(100.0, abs=0.1)
    back = her2fast.SlideResult.from_json(r.to_json())
    assert back.kind == "field" and back.resolution == json.loads(r.to_json())["resolution"]


def test_the_same_image_scored_as_a_slide_is_refused_for_few_cells(tmp_path):
    import her2fast

    path, _ = phantom_png(tmp_path, 0.5, category="3+", size_um=180.0)
    r = her2fast.score(path, mpp=0.5, field=False, progress=False)
    assert r.kind == "slide" and r.score is None
    assert "too_few_tumour_cells" in r.flags


def test_an_array_is_a_field_and_mpp_wins_over_the_estimate():
    import her2fast
    from her2fast.synth import make_tile

    rgb = make_tile(int(FIELD_UM / 0.5), category="0", mpp=0.5, seed=SEED).rgb
    given = her2fast.score(rgb, mpp=0.6, progress=False)
    assert given.kind == "field" and given.path == "<array>"
    assert given.resolution == {"mpp": 0.6, "source": "user"}
    assert given.provenance["slide"]["mpp_x"] == 0.6
    # glass cannot be measured, but a given resolution never asks for an estimate
    glass = np.full((300, 300, 3), 238, np.uint8)
    r = her2fast.score(glass, mpp=0.5, progress=False)
    assert r.kind == "field" and r.score is None and "no_tissue" in r.flags


def test_an_image_without_nuclei_gives_a_clear_error(tmp_path):
    from PIL import Image

    import her2fast
    from her2fast.cli import main

    path = tmp_path / "blank_snapshot.png"
    rgb = np.full((400, 400, 3), (236, 228, 232), np.uint8)
    rgb[100:300, 100:300] = (205, 150, 120)  # a brown smear, no nuclei
    Image.fromarray(rgb).save(path)
    with pytest.raises(her2fast.MissingResolutionError) as info:
        her2fast.score(path, progress=False)
    text = str(info.value)
    assert "blank_snapshot.png" in text and "--mpp" in text and "nuclei" in text
    with pytest.raises(her2fast.MissingResolutionError, match="<array>"):
        her2fast.score(rgb, progress=False)
    assert main(["score", str(path), "--out", str(tmp_path / "out"), "-q", "--no-pictures"]) == 1


def test_field_options_are_checked(tmp_path):
    import her2fast

    with pytest.raises(her2fast.InvalidInputError, match="field"):
        her2fast.score(np.zeros((8, 8, 3), np.uint8), field=False, progress=False)
    with pytest.raises(her2fast.InvalidInputError, match="field"):
        her2fast.score(np.zeros((8, 8, 3), np.uint8), mpp=0.5, field="yes", progress=False)
    with pytest.raises(her2fast.InvalidInputError, match="uint8"):
        her2fast.score(np.zeros((8, 8, 3), np.float32), mpp=0.5, progress=False)


def test_white_balance_keeps_the_glass_and_takes_the_cast_off_tissue_without_glass():
    from her2fast.stages.resolution import white_balance, white_point

    rng = np.random.default_rng(0)
    cast = np.array([1.0, 0.88, 0.94])  # a pink camera white balance
    tissue = (rng.integers(100, 170, (64, 64, 1)) * cast).astype(np.uint8)
    with_glass = tissue.copy()
    with_glass[:, :16] = (238, 226, 232)  # pinkish glass
    out, info = white_balance(with_glass)
    assert info["glass"] is True
    assert np.array_equal(out, with_glass)  # the pipeline measures against the glass it finds
    bg, glass = white_point(tissue)
    assert not glass
    out, info = white_balance(tissue)
    assert info["glass"] is False
    point = np.percentile(out.reshape(-1, 3).astype(float), 99, axis=0)
    assert point.max() - point.min() <= 2  # the cast is gone
    assert point.max() == pytest.approx(bg.max(), abs=2)  # but tissue is not made glass


def test_plain_images_with_a_resolution_stay_slides(tmp_path):
    from PIL import Image

    from her2fast.io.slide import open_slide

    path = tmp_path / "with_dpi.png"
    Image.fromarray(np.full((64, 64, 3), 240, np.uint8)).save(path, dpi=(25400 / 0.5, 25400 / 0.5))

    def never(pixels, where):
        raise AssertionError("a resolution in the metadata must not be estimated")

    with open_slide(path, estimate_mpp=never) as slide:
        assert slide.mpp_source == "metadata" and slide.metadata_mpp == pytest.approx((0.5, 0.5))


def test_cli_scores_a_photo_and_reports_the_estimate(tmp_path, capsys):
    from her2fast.cli import main

    path, _ = phantom_png(tmp_path, 0.5, category="3+", size_um=180.0, name="photo.png")
    rc = main(["score", str(path), "--out", str(tmp_path / "out"), "-q", "--no-pictures"])
    assert rc == 0
    line = capsys.readouterr().out
    assert "field" in line and "estimated" in line and "um/px" in line
    rc = main(["score", str(path), "--out", str(tmp_path / "out2"), "-q", "--no-pictures", "--json", "--mpp", "0.45"])
    d = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert d["kind"] == "field" and d["resolution"] == {"mpp": 0.45, "source": "user"}


def test_a_field_without_tumour_cells_is_not_scorable(monkeypatch):
    import her2fast
    import her2fast.api.run as api  # score() looks run_slide up there
    from her2fast.pipeline.run import PipelineOutput, SlideMaps
    from her2fast.scoring import CellTable

    def no_cells(slide, settings, **kwargs):
        return PipelineOutput(CellTable.empty(), SlideMaps(), {}, {}, [], None, {}, [], {})

    monkeypatch.setattr(api, "run_slide", no_cells)
    r = her2fast.score(np.full((64, 64, 3), 200, np.uint8), mpp=0.5, progress=False)
    assert r.kind == "field" and r.score is None
    assert r.not_scorable == "no tumour cells found in the field" and "no_tumour_cells" in r.flags
    assert "few_cells" not in r.flags
