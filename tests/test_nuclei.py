"""her2fast.nuclei.segment_nuclei on phantom tiles (exact nucleus masks) and its input checks."""

from __future__ import annotations

import numpy as np
import pytest

from her2fast.errors import InvalidInputError
from her2fast.nuclei import NucleiSettings, nuclei_scores, segment_nuclei
from her2fast.stain import deconvolve
from her2fast.synth import make_tile


@pytest.mark.parametrize("category,seed", [("3+", 11), ("1+", 12), ("0", 13)])
def test_nuclei_found_on_phantom_tiles(category, seed):
    tile = make_tile(seed=seed, size=384, category=category)
    labels = segment_nuclei(deconvolve(tile.rgb).hematoxylin, tile.mpp)
    assert labels.dtype == np.int32 and labels.shape == tile.rgb.shape[:2]
    s = nuclei_scores(labels, tile.nuclei_mask)
    assert s["recall"] >= 0.8 and s["precision"] >= 0.8 and s["dice"] >= 0.7, s


def test_touching_nuclei_are_split_and_a_waist_is_not():
    yy, xx = np.indices((60, 100))
    two = ((np.hypot(yy - 30, xx - 38) < 9) | (np.hypot(yy - 30, xx - 54) < 9)).astype(np.float32) * 0.5
    assert segment_nuclei(two, 0.5).max() == 2
    one = (np.hypot(yy - 30, xx - 50) < 10).astype(np.float32) * 0.5
    assert segment_nuclei(one, 0.5).max() == 1


def test_mask_and_settings_checks():
    od = np.zeros((20, 20), np.float32)
    assert segment_nuclei(od, 0.5).max() == 0
    with pytest.raises(InvalidInputError, match="mask"):
        segment_nuclei(od, 0.5, mask=np.ones((3, 3), bool))
    with pytest.raises(InvalidInputError, match="NaN"):
        segment_nuclei(np.full((5, 5), np.nan), 0.5)
    with pytest.raises(InvalidInputError, match="mpp"):
        segment_nuclei(od, 0.0)
    with pytest.raises(InvalidInputError, match="threshold_od"):
        NucleiSettings(threshold_od=-1)
