"""The stain gate (her2fast.qc): H&E, nuclear and cytoplasmic DAB refused; HER2 IHC of every category passes."""

from __future__ import annotations

import doctest
import json
import math
from pathlib import Path

import numpy as np
import pytest

from her2fast.errors import InvalidInputError
from her2fast.qc import (
    REASON_CYTOPLASMIC,
    REASON_HE,
    REASON_NUCLEAR,
    REASONS,
    StainGateDecision,
    StainGateRules,
    check_slide_stain,
    check_stain,
)
from her2fast.stages.stain import StainVectors

from _helpers import load_rgb, shared_file

TUNE = [
    "11_Oct_HER2_0_case_1__HER2_0_case_1_20.png",
    "13_Dec_03_HER2_2+_D+__HER2_2+_D+_1.png",
    "30_Nov_23_HER2_2+_D+_04__04_HER2_2+_D+_34.png",
    "3_April_HER2_3+_D+_case_1__HER2_3+_D+_1_14.png",
    "3_April_HER2_3+_D+_case_1__HER2_3+_D+_1_8.png",
    "HER2_1+_case_01__IMG_8697.png",
    "HER2_2+_DISH+_case_01__HER2_2_Pos_DISH_8.png",
    "HER2_2+_DISH+_case_02__IMG_8210.png",
    "HER2_2+_DISH+_case_05__HER2_2+DISH+05_17.png",
    "HER2_2+_DISH+_case_07__IMG_8718.png",
    "HER2_2+_DISH+_case_08__8_July_Pos_Dish_64.png",
    "HER2_2+_DISH+_case_09__17_Jul_D_Pos_86.png",
]
HER2_PATCHES = ["her2ihc40x_score0.png", "her2ihc40x_score1+.png", "her2ihc40x_score2+.png", "her2ihc40x_score3+.png"]


def gate(path: Path, mpp: float | None) -> StainGateDecision:
    """The gate with the inputs run_slide has after its stain step (default ScoreSettings)."""
    from her2fast.io.slide import open_slide
    from her2fast.pipeline import ScoreSettings
    from her2fast.stages.stain import slide_stain_vectors
    from her2fast.stages.tissue import detect_tissue, tile_grid

    s = ScoreSettings()
    with open_slide(path, mpp=mpp) as slide:
        tissue = detect_tissue(slide)
        grid = tile_grid(slide, tissue, tile_size=s.tile_size, overlap=s.overlap, mpp=s.mpp, min_tissue=s.min_tissue)
        stains = slide_stain_vectors(slide, grid, background=tissue.background)
        return check_slide_stain(slide, tissue, grid, stains)


def gate_rgb(rgb: np.ndarray, tmp_path: Path, mpp: float = 0.5) -> StainGateDecision:
    from PIL import Image

    path = tmp_path / "image.png"
    Image.fromarray(rgb).save(path)
    return gate(path, mpp)


# ------------------------------------------------------------------------------------ real images
@pytest.mark.parametrize("name,mpp", [("cmu-1-small-region.svs", None), ("tcga-cr-7395-01a-01-ts1.svs", 0.5)])
def test_real_he_slides_are_refused_as_he(name, mpp):
    d = gate(shared_file(f"wsi/{name}"), mpp)
    assert not d.scorable
    assert d.reason == REASON_HE
    assert d.figures["eosin_fraction"] >= StainGateRules().min_eosin_fraction
    assert "H&E" in d.message


def test_skimage_ihc_is_refused_as_not_a_membrane_pattern(ihc_image, tmp_path):
    d = gate_rgb(np.tile(ihc_image, (3, 3, 1)), tmp_path)
    assert not d.scorable
    assert d.reason in (REASON_NUCLEAR, REASON_CYTOPLASMIC)


@pytest.mark.parametrize("name", HER2_PATCHES)
def test_real_her2_patches_pass(name):
    d = gate(shared_file(f"ihc/her2-ihc-40x/{name}"), 0.6)
    assert d.scorable, d.message
    assert d.reason is None
    assert d.figures["eosin_fraction"] == 0.0


@pytest.mark.parametrize("name", TUNE)
def test_real_her2_tune_images_pass(name):
    path = shared_file(f"ihc/real-fields/tune/chula/{name}")
    width = load_rgb(path).shape[1]
    d = gate(path, 420.0 / width)  # no resolution in the photos; see benchmarks/qc_gate.py
    assert d.scorable, d.message


# ------------------------------------------------------------------------------------ phantoms
@pytest.mark.parametrize("category", ["0", "0+", "1+", "2+", "3+"])
def test_phantoms_of_every_category_pass(category, tmp_path):
    from her2fast.synth import make_tile

    d = gate_rgb(make_tile(704, category=category, seed=7001).rgb, tmp_path)
    assert d.scorable, d.message
    assert d.figures["eosin_fraction"] == 0.0  # a HER2 0 slide (hematoxylin only) is not taken for H&E


@pytest.mark.parametrize("kind", ["he", "nuclear_dab", "cytoplasmic_dab"])
def test_wrong_stain_renders_are_refused_with_their_reason(kind, tmp_path):
    from her2fast.synth.wrong_stains import render_wrong_stain

    t = render_wrong_stain(kind, 704, seed=7101)
    d = gate_rgb(t.rgb, tmp_path)
    assert not d.scorable
    assert d.reason == t.expected_reason


def test_wrong_stain_renders_keep_the_phantom_layout_and_vary_by_seed():
    from her2fast.synth.wrong_stains import render_wrong_stain

    a = render_wrong_stain("nuclear_dab", 128, seed=3, jpeg_quality=None)
    b = render_wrong_stain("nuclear_dab", 128, seed=3, jpeg_quality=None)
    c = render_wrong_stain("nuclear_dab", 128, seed=4, jpeg_quality=None)
    np.testing.assert_array_equal(a.rgb, b.rgb)
    assert not np.array_equal(a.rgb, c.rgb)
    # DAB only inside nuclei (truth), and the stained pixels are browner than the unstained nuclei
    assert (a.positive_mask <= a.nuclei_mask).all()
    assert a.positive_mask.any() and (a.nuclei_mask & ~a.positive_mask).any()
    blue = a.rgb[..., 2].astype(float) - a.rgb[..., 0]
    assert blue[a.positive_mask].mean() < blue[a.nuclei_mask & ~a.positive_mask].mean()
    he = render_wrong_stain("he", 128, seed=3, jpeg_quality=None)
    assert he.second_stain[he.positive_mask & ~he.nuclei_mask].mean() > 0.1  # eosin in cytoplasm and stroma
    with pytest.raises(InvalidInputError, match="kind"):
        render_wrong_stain("trichrome", 64)


# ------------------------------------------------------------------------------------ the decision
def test_decision_carries_figures_and_serialises(tmp_path):
    from her2fast.synth import make_tile

    d = gate_rgb(make_tile(704, category="2+", seed=7002).rgb, tmp_path)
    for key in (
        "eosin_fraction",
        "off_axis_hue_deg",
        "two_stain_residual",
        "nuclear_blob_share",
        "cell_dab_q25_od",
        "cell_pale_ratio",
        "hematoxylin_to_training_deg",
        "tissue_od_median",
    ):
        assert math.isfinite(d.figures[key]), key
    assert d.outside_training_range == (d.training_distance > 1.0)
    assert not d.outside_training_range  # a phantom lies in the models' training range
    out = json.loads(json.dumps(d.to_dict()))
    assert out["scorable"] is True and out["reason"] is None
    assert set(REASONS) == {
        "greyscale_image",
        REASON_HE,
        "not_her2_ihc: no DAB/hematoxylin pair",
        "channels_swapped",
        REASON_NUCLEAR,
        REASON_CYTOPLASMIC,
    }


def test_he_decision_does_not_depend_on_the_tiles():
    # the colour check runs on the thumbnail alone; an all-eosin thumbnail is H&E, an all-hematoxylin one
    # (a HER2 0 slide) is not
    s = StainVectors.standard()
    mask = np.ones((48, 48), bool)
    eosin = np.array([0.07, 0.99, 0.11]) / np.linalg.norm([0.07, 0.99, 0.11])
    pink = np.broadcast_to(np.round(250 * np.exp(-0.7 * eosin)).astype(np.uint8), (48, 48, 3)).copy()
    blue = np.broadcast_to(np.round(250 * np.exp(-0.7 * s.hematoxylin)).astype(np.uint8), (48, 48, 3)).copy()
    assert check_stain(pink, mask, s, []).reason == REASON_HE
    d = check_stain(blue, mask, s, [])
    assert d.scorable and d.figures["eosin_fraction"] == 0.0
    assert math.isnan(d.figures["nuclear_blob_share"])


def test_bad_inputs_name_the_argument():
    s = StainVectors.standard()
    thumb = np.full((8, 8, 3), 200, np.uint8)
    with pytest.raises(InvalidInputError, match="tissue_mask"):
        check_stain(thumb, np.ones((4, 4), bool), s, [])
    with pytest.raises(InvalidInputError, match="stains"):
        check_stain(thumb, np.ones((8, 8), bool), "standard", [])
    with pytest.raises(InvalidInputError, match=r"tiles\[0\]"):
        check_stain(thumb, np.ones((8, 8), bool), s, [np.zeros((8, 8), np.uint8)])
    with pytest.raises(InvalidInputError, match="min_eosin_fraction"):
        StainGateRules(min_eosin_fraction=2.0)


def test_examples_run():
    import her2fast.qc.stain_gate
    import her2fast.synth.wrong_stains

    for module in (her2fast.qc.stain_gate, her2fast.synth.wrong_stains):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.attempted > 0 and result.failed == 0
