"""The stain gate in the scoring path: a slide that is not HER2 membrane IHC gets no score (exit code 3 on
the command line), with the reason and the figures behind it in the result; a slide that passes carries
the figures in its provenance, and one outside the models' training range a capped confidence."""

from __future__ import annotations

import json

import pytest

import her2fast
from her2fast.api import OUTSIDE_TRAINING_CONFIDENCE
from her2fast.pipeline import ScoreSettings

from _helpers import shared_file


@pytest.fixture(scope="module")
def phantom(phantom_slide):
    """A 3+ phantom slide (1024 x 1024 at 0.5 um/px), made once per test run (shared with test_hostile_images.py)."""
    return phantom_slide(category="3+", width=1024, height=1024, seed=7301)


def test_a_real_he_slide_gets_no_score(tmp_path):
    from her2fast.cli import main

    path = shared_file("wsi/cmu-1-small-region.svs")
    r = her2fast.score(path, progress=False)
    assert r.score is None and r.category is None and r.confidence is None
    assert r.not_scorable.startswith("not_her2_ihc: looks like H&E")
    assert "not_her2_ihc" in r.flags and len(r.cells) == 0
    gate = r.provenance["qc"]["stain_gate"]
    assert gate["scorable"] is False and gate["figures"]["eosin_fraction"] > 0.25
    # the command line: exit 3, and no score in the written JSON
    assert main(["score", str(path), "--out", str(tmp_path), "--no-pictures"]) == 3
    (written,) = tmp_path.glob("*.her2fast.json")
    d = json.loads(written.read_text())
    assert d["score"] is None and d["not_scorable"].startswith("not_her2_ihc")


def test_a_her2_phantom_passes_with_the_figures_in_provenance(phantom):
    r = her2fast.score(phantom.path, progress=False)
    gate = r.provenance["qc"]["stain_gate"]
    assert gate["scorable"] is True and gate["reason"] is None
    assert "outside_training_range" not in r.flags and r.score == "3+"
    assert r.timings["stain_gate"] > 0


def test_outside_training_range_caps_the_confidence(phantom, monkeypatch):
    import her2fast.qc as qc

    real = qc.check_slide_stain

    def far(*args, **kwargs):
        d = real(*args, **kwargs)
        return qc.StainGateDecision(
            True, None, d.message, d.figures, training_distance=3.0, outside_training_range=True
        )

    monkeypatch.setattr(qc, "check_slide_stain", far)
    r = her2fast.score(phantom.path, progress=False)
    assert r.score == "3+" and "outside_training_range" in r.flags
    assert r.confidence is not None and r.confidence <= OUTSIDE_TRAINING_CONFIDENCE


def test_the_gate_can_be_switched_off_and_old_settings_ran_without_it():
    assert ScoreSettings().stain_gate is True
    assert ScoreSettings(stain_gate=False).stain_gate is False
    d = ScoreSettings().to_dict()
    del d["stain_gate"]
    assert ScoreSettings.from_dict(d).stain_gate is False
    with pytest.raises(her2fast.InvalidInputError, match="stain_gate"):
        ScoreSettings(stain_gate="yes")


@pytest.mark.parametrize("mpp", [2.5, 20.0])
def test_a_slide_too_coarse_to_judge_membranes_is_not_scored(tmp_path, mpp):
    """A small image declared at a coarse resolution is refused at once, before it is resampled to the
    working resolution (at 20 um/px a 512^2 image would become 20,480^2 px)."""
    import numpy as np
    from PIL import Image

    from her2fast.pipeline.run import MAX_SCORING_MPP

    path = tmp_path / "coarse.png"
    Image.fromarray(np.full((512, 512, 3), 200, np.uint8)).save(path)
    r = her2fast.score(path, mpp=mpp, progress=False)
    assert mpp > MAX_SCORING_MPP and r.score is None and "resolution_too_coarse" in r.flags
    assert "coarser than" in r.not_scorable and r.timings.get("tissue") is None
