"""The quality map in a slide's run (ScoreSettings.quality_map): cells in unusable tissue left out, what was
removed in provenance["qc"]["quality"], the quality_excluded flag and the unusable_tumour_area rule."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from her2fast.errors import InvalidInputError
from her2fast.pipeline import ScoreSettings
from her2fast.qc import QUALITY_REASONS, REASON_UNUSABLE, QualityRules, quality_map

SIZE = 1024
SEED = 930  # not a training seed; its blur band (seed 930) crosses about a third of the tumour
MPP = 0.5


def _score(path, on: bool):
    import her2fast

    return her2fast.score(path, progress=False, settings=ScoreSettings(quality_map=on))


def _rows(cells) -> np.ndarray:
    """The cell table as rows of (x, y, is_tumour, intensity, completeness, membrane OD), for set comparisons."""
    return np.stack(
        [cells.x, cells.y, cells.is_tumour, cells.intensity, cells.completeness, cells.membrane_dab_od], axis=1
    ).astype(np.float64)


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    from her2fast.synth import make_slide

    return make_slide(tmp_path_factory.mktemp("qrun") / "clean.tiff", category="3+", width=SIZE, height=SIZE, seed=SEED)


def _banded(phantom, name: str, width_um: float):
    from her2fast.synth.artefacts import add_blur_band
    from her2fast.synth.perturb import read_level0, write_slide

    rgb, mpp = read_level0(phantom.path)
    art = add_blur_band(rgb, mpp, seed=SEED, width_um=width_um)
    path = write_slide(phantom.path.parent / name, art.rgb, mpp)
    return path, art.mask


@pytest.fixture(scope="module")
def clean_runs(phantom):
    return {on: _score(phantom.path, on) for on in (False, True)}


@pytest.fixture(scope="module")
def band_runs(phantom):
    path, mask = _banded(phantom, "band.tiff", 150.0)
    return mask, {on: _score(path, on) for on in (False, True)}


# ------------------------------------------------------------------------------------------- settings
def test_quality_map_is_on_by_default_and_old_settings_load_with_it_off():
    assert ScoreSettings().quality_map is True
    d = ScoreSettings().to_dict()
    assert ScoreSettings.from_dict(d).quality_map is True
    assert ScoreSettings.from_dict({**d, "quality_map": False}).quality_map is False
    old = {k: v for k, v in d.items() if k != "quality_map"}
    assert ScoreSettings.from_dict(old).quality_map is False
    assert ScoreSettings.from_dict(old).stain_gate is True  # only the missing key takes its old value


@pytest.mark.parametrize("bad", ["yes", 1, None])
def test_quality_map_setting_must_be_a_bool(bad):
    with pytest.raises(InvalidInputError, match="quality_map"):
        ScoreSettings(quality_map=bad)
    assert ScoreSettings(quality_map=np.bool_(False)).quality_map is False


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5])
def test_max_unusable_tumour_must_be_a_fraction(bad):
    with pytest.raises(InvalidInputError, match="max_unusable_tumour"):
        QualityRules(max_unusable_tumour=bad)


# ------------------------------------------------------------------------------------- map accounting
def test_tally_and_point_lookup_agree_with_the_upsampled_map():
    from her2fast.synth import make_tile
    from her2fast.synth.artefacts import add_ink

    rgb = make_tile(384, category="2+", seed=3).rgb
    art = add_ink(rgb, MPP, seed=4, width_um=40.0)
    q = quality_map(art.rgb, MPP)
    shape = rgb.shape[:2]
    core = (37, 21, 350, 301)  # not aligned with the 8-px map pixels
    sl = (slice(21, 301), slice(37, 350))
    tumour = np.zeros(shape, bool)
    tumour[100:250, 50:300] = True
    t = q.tally(core, tumour)
    ink = q.upsample(shape, "pen_ink")
    assert t.removed_px["pen_ink"] == int(ink[sl].sum()) > 0
    assert t.removed_px["any"] == int(q.upsample(shape)[sl].sum())
    assert t.tumour_px == int(tumour[sl].sum())
    assert t.tumour_removed_px["any"] == int((q.upsample(shape) & tumour)[sl].sum())
    assert 0 < t.unusable_tumour_fraction < 1
    yy, xx = np.mgrid[0 : shape[0] : 7, 0 : shape[1] : 5]
    at = q.unusable_at(xx.ravel().astype(float) + 0.3, yy.ravel().astype(float) - 0.4)
    assert np.array_equal(at["pen_ink"], ink[yy.ravel(), xx.ravel()])
    assert np.array_equal(at["any"], q.upsample(shape)[yy.ravel(), xx.ravel()])


# ------------------------------------------------------------------------------------------- the run
def test_clean_phantom_is_unchanged_with_the_quality_map(clean_runs):
    off, on = clean_runs[False], clean_runs[True]
    assert on.score == off.score == "3+"
    assert len(on.cells) == len(off.cells) > 200
    assert np.array_equal(_rows(on.cells), _rows(off.cells))
    assert on.percent_complete == off.percent_complete
    assert "quality_excluded" not in on.flags
    q = on.provenance["qc"]["quality"]
    assert q["removed_um2"]["any"] == 0 and q["cells_removed"] == 0 and q["scorable"] is True
    assert set(q["removed_um2"]) == {*QUALITY_REASONS, "any"}  # every reason is reported, folds and bubbles too
    assert q["tumour_um2"] > 0.5 * q["tissue_um2"] > 0
    assert "quality" not in off.provenance["qc"]
    assert on.provenance["settings"]["quality_map"] is True
    assert "quality" in on.timings
    json.loads(on.to_json(include_cells=False))  # provenance is plain JSON


def test_blur_band_cells_are_left_out_and_the_removed_share_reported(band_runs, clean_runs):
    band, runs = band_runs
    off, on = runs[False], runs[True]

    def in_band(cells, mask):
        i = np.clip(np.floor(cells.y + 0.5).astype(int), 0, SIZE - 1)
        j = np.clip(np.floor(cells.x + 0.5).astype(int), 0, SIZE - 1)
        return mask[i, j]

    n_off = int(in_band(off.cells, band).sum())
    n_on = int(in_band(on.cells, band).sum())
    assert n_off > 50  # the band holds cells the run without the map scores
    assert n_on <= 0.1 * n_off
    assert "quality_excluded" in on.flags and "quality_excluded" not in off.flags
    q = on.provenance["qc"]["quality"]
    assert q["cells_removed"] == len(off.cells) - len(on.cells) >= 0.9 * n_off
    assert q["tumour_cells_removed"] <= q["cells_removed"]
    assert on.counts["cells_quality_excluded"] == q["cells_removed"]
    # cells well away from the band are measured and kept exactly as without the map
    far = ~ndi.binary_dilation(band, iterations=int(40 / MPP))
    kept_on = _rows(on.cells.select(in_band(on.cells, far)))
    kept_off = _rows(off.cells.select(in_band(off.cells, far)))
    assert len(kept_off) > 100 and np.array_equal(kept_on, kept_off)
    # the removed share of tissue and of tumour is the band's share, give or take its edges
    assert q["removed_percent_of_tissue"]["pen_ink"] == 0
    assert q["removed_percent_of_tissue"]["out_of_focus"] == q["removed_percent_of_tissue"]["any"]
    share_of_tumour = q["removed_percent_of_tumour"]["any"]
    # the band's share of the tumour: of the tumour cells found on the clean slide (the blur loses cells)
    clean = clean_runs[False].cells
    truth = 100.0 * in_band(clean, band)[clean.is_tumour.astype(bool)].mean()
    assert abs(share_of_tumour - truth) < 6, (share_of_tumour, truth)
    assert q["scorable"] is True and on.score == off.score == "3+"


def test_slide_mostly_out_of_focus_is_not_scorable(phantom):
    path, band = _banded(phantom, "wide.tiff", 420.0)
    on = _score(path, True)
    assert on.score is None and on.category is None
    assert REASON_UNUSABLE in on.flags and "quality_excluded" in on.flags
    assert on.not_scorable.startswith(f"{REASON_UNUSABLE}: ")
    q = on.provenance["qc"]["quality"]
    assert q["removed_percent_of_tumour"]["any"] > 100 * q["max_unusable_tumour"]
    assert q["scorable"] is False
    off = _score(path, False)
    assert off.score is not None  # the same slide is scored when the map is off
