"""Nuclei on the membrane map are dropped (:func:`her2fast.stages.nuclei.drop_nuclei_on_membrane`): against a
per-nucleus loop on random maps, its checks, and on a real 3+ patch, where the hematoxylin leak of dark DAB
membranes otherwise seeds cells on the membranes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import her2fast
from her2fast.errors import InvalidInputError
from her2fast.stages.membrane import predict, white_balance_to_training
from her2fast.stages.nuclei import NucleiSettings, drop_nuclei_on_membrane
from her2fast.stages.resolution import white_balance, white_point

from _helpers import load_rgb, shared_file


def _reference(labels: np.ndarray, membrane: np.ndarray, max_share: float) -> np.ndarray:
    out = np.zeros_like(labels)
    k = 0
    for i in range(1, int(labels.max()) + 1):
        px = labels == i
        if not px.any():
            continue  # an unused label gets no new number either way
        if membrane[px].mean() <= max_share:
            k += 1
            out[px] = k
    return out


@pytest.mark.parametrize("seed", range(6))
def test_drop_equals_a_per_nucleus_loop_on_random_maps(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 30, size=(40, 50)).astype(np.int32)
    labels[rng.random(labels.shape) < 0.3] = 0
    labels = np.unique(labels, return_inverse=True)[1].reshape(labels.shape).astype(np.int32)  # 0..n, no gaps
    membrane = rng.random(labels.shape) < rng.uniform(0.2, 0.8)
    for share in (0.3, 0.6, 0.9):
        got = drop_nuclei_on_membrane(labels, membrane, share)
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, _reference(labels, membrane, share))
    np.testing.assert_array_equal(drop_nuclei_on_membrane(labels, membrane, 1.0), labels)


def test_checks():
    labels = np.zeros((4, 4), np.int32)
    with pytest.raises(InvalidInputError, match="one shape"):
        drop_nuclei_on_membrane(labels, np.zeros((3, 4), bool), 0.5)
    for bad in (0.0, 1.5, float("nan")):
        with pytest.raises(InvalidInputError, match="max_share"):
            drop_nuclei_on_membrane(labels, np.zeros((4, 4), bool), bad)
        with pytest.raises(InvalidInputError, match="max_membrane_share"):
            NucleiSettings(max_membrane_share=bad)


def _share_of_cells_on_membrane(rgb: np.ndarray, share: float) -> tuple[float, int]:
    settings = her2fast.ScoreSettings()
    settings = dataclasses.replace(settings, nuclei=NucleiSettings(max_membrane_share=share))
    r = her2fast.score(rgb, settings=settings, progress=False)
    mpp = r.resolution["mpp"]
    balanced, _ = white_balance(rgb)
    bg, _ = white_point(balanced)
    membrane = predict(white_balance_to_training(balanced, bg), mpp, threads=1) >= 0.5
    ix = np.clip(np.rint(r.cells.x).astype(int), 0, rgb.shape[1] - 1)
    iy = np.clip(np.rint(r.cells.y).astype(int), 0, rgb.shape[0] - 1)
    return float(membrane[iy, ix].mean()), len(ix)


@pytest.mark.slow
def test_a_real_3plus_patch_seeds_few_cells_on_its_membranes():
    rgb = load_rgb(shared_file("ihc/her2-ihc-40x/her2ihc40x_score3+.png"))
    on_kept, n_kept = _share_of_cells_on_membrane(rgb, 1.0)
    on, n = _share_of_cells_on_membrane(rgb, NucleiSettings().max_membrane_share)
    assert on_kept > 0.3  # without the rule: many "cells" centred on the brown membranes
    assert on < 0.2 and n < n_kept
