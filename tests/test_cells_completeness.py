"""Membrane completeness: gaps, the tolerance band at the territory edge, the radius cap, and the bias
against the phantom's true cells with the shipped U-Net (see docs/scoring.md, "Completeness")."""

from __future__ import annotations

import numpy as np
import pytest

from her2fast.stages.cells import CellSettings, _close_gaps, measure_tile, membrane_rays

from _helpers import nucleus, ring


def _close_gaps_reference(covered: np.ndarray, gap: int) -> np.ndarray:
    """Loop reference: each circular run of <= gap uncovered rays with covered rays on both sides is filled."""
    out = covered.copy()
    n = covered.shape[1]
    for i, row in enumerate(covered):
        if not row.any() or row.all():
            continue
        start = int(np.flatnonzero(row)[0])  # walk the circle from a covered ray
        k = 1
        while k <= n:
            j = (start + k) % n
            if row[j]:
                k += 1
                continue
            length = 0
            while not row[(start + k + length) % n]:
                length += 1
            if length <= gap:
                for m in range(length):
                    out[i, (start + k + m) % n] = True
            k += length
    return out


@pytest.mark.parametrize("seed", range(6))
def test_close_gaps_equals_a_loop_reference_on_random_rays(seed):
    rng = np.random.default_rng(seed)
    covered = rng.random((200, 72)) < rng.uniform(0.2, 0.95)
    covered[0] = False
    covered[1] = True
    for gap in (0, 1, 3, 7):
        np.testing.assert_array_equal(
            _close_gaps(covered, gap), _close_gaps_reference(covered, gap), err_msg=f"gap {gap}"
        )


def test_a_two_pixel_gap_is_complete_and_a_twenty_pixel_gap_is_not():
    size, c = 96, (48, 48)
    r_mid = 12.0  # 6 um
    for gap_px, complete in ((2, True), (20, False)):
        half = np.degrees(gap_px / r_mid) / 2
        mem = ring(size, c, 11.0, 13.0, gap_deg=(90 - half, 90 + half))
        cell = measure_tile(mem, 0.8 * mem, nucleus(size, c), mpp=0.5).cells
        assert len(cell) == 1
        assert bool(cell.completeness[0] >= 0.9) is complete, (gap_px, cell.completeness[0])
        if not complete:
            assert cell.completeness[0] == pytest.approx(1 - 2 * half / 360, abs=0.04)


def test_a_cell_larger_than_the_radius_cap_finds_its_membrane():
    # a 25-px ring whose nucleus sits 6 px off-centre: the membrane lies 19-31 px (9.5-15.5 um) from the
    # nucleus centre, partly beyond max_radius_um = 12 um (24 px), all within 12 + cap_reach_um = 16 um
    size = 128
    mem = ring(size, (64, 64), 24.0, 26.0)
    nuc = nucleus(size, (58, 64))
    new = measure_tile(mem, 1.5 * mem, nuc, mpp=0.5).cells
    assert new.completeness[0] == pytest.approx(1.0) and new.intensity[0] == 3
    old = measure_tile(mem, 1.5 * mem, nuc, mpp=0.5, settings=CellSettings(cap_reach_um=0.0)).cells
    assert 0.3 < old.completeness[0] < 0.9
    # a ring wholly beyond the cap: no membrane in the territory, so the cell is not stained at all
    # (whether a cell is stained comes from its own territory only)
    far = ring(size, (64, 64), 29.0, 31.0)
    far_cell = measure_tile(far, 1.5 * far, nucleus(size, (64, 64)), mpp=0.5).cells
    assert far_cell.completeness[0] == 0.0 and far_cell.intensity[0] == 0


def test_the_cap_rule_applies_only_where_the_territory_was_cut_by_the_cap():
    # the territory ends 10 px out at a neighbour's territory: inside a 13-px cap, membrane beyond is not
    # counted; with a 9.5-px cap the exit is beyond the cap and it is (the label beyond does not matter)
    lab = np.ones((61, 61), np.int32)
    lab[:, 40:] = 2
    mem = np.zeros((61, 61), bool)
    mem[:, 44] = True
    centre = np.array([[30.0, 30.0]])
    run, _ = membrane_rays(lab, mem, mem * 1.0, centre, n_rays=360, cap_radius=13.0, cap_reach=8.0)
    assert run[0, 0] == 0  # ray 0 points right (0.5 degrees)
    run, _ = membrane_rays(lab, mem, mem * 1.0, centre, n_rays=360, cap_radius=9.5, cap_reach=8.0)
    assert run[0, 0] > 0
    run, _ = membrane_rays(lab, mem, mem * 1.0, centre, n_rays=360, cap_radius=9.5, cap_reach=2.0)
    assert run[0, 0] == 0  # out of reach


def test_tolerance_band_counts_membrane_one_pixel_beyond_the_territory():
    lab = np.zeros((41, 41), np.int32)
    lab[:, :21] = 1
    lab[:, 21:] = 2
    mem = np.zeros((41, 41), bool)
    mem[:, 21:23] = True  # the neighbour holds the whole membrane band, starting right at the edge
    centre = np.array([[10.0, 20.0]])
    run0, _ = membrane_rays(lab, mem, mem * 1.0, centre, n_rays=8, outside_reach=0.0)
    run1, _ = membrane_rays(lab, mem, mem * 1.0, centre, n_rays=8, outside_reach=1.0)
    assert run0[0, 0] == 0 and run1[0, 0] > 0
    assert CellSettings().outside_reach_um == 0.5


def test_settings_reject_a_cap_reach_beyond_the_margin():
    from her2fast import InvalidInputError

    with pytest.raises(InvalidInputError, match="cap_reach_um"):
        CellSettings(cap_reach_um=13.0)
    with pytest.raises(InvalidInputError, match="cap_reach_um"):
        CellSettings(cap_reach_um=-1.0)
    with pytest.raises(InvalidInputError, match="cap_reach"):
        membrane_rays(np.ones((4, 4), np.int32), np.zeros((4, 4), bool), np.zeros((4, 4)), [[1.0, 1.0]], cap_reach=-1)


@pytest.mark.slow
def test_completeness_bias_with_the_unet_on_held_out_phantom_tiles():
    """Held-out phantom tiles (seed 5000), the pipeline's inputs: U-Net membrane, deconvolved DAB,
    segmented nuclei. Bound: |mean completeness error| on stained true cells <= 0.12 and >= 65 % of the
    truly complete cells measured complete. Measured: the 4000-step model (held-out Dice 0.844) +0.097,
    92 %, 37 % of incomplete cells measured complete (it finds more membrane: recall 0.86); the
    1200-step model +0.05, 84 %, 21 %; before the tolerance band and the cap rule about -0.13, 51 % on
    benchmarks/diagnose_cells.py tiles. Slide level the % complete error is 2.5 points (docs/scoring.md)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from diagnose_cells import match, measure_inputs, summarise, tile_inputs, true_core_cells

    pairs = []
    for cat in ("2+", "3+"):
        gt, dab, nuc, prob = tile_inputs(cat, "typical", 5000, 512, None)
        true = true_core_cells(gt)
        meas = measure_inputs(gt, dab, nuc, prob)["c"]
        meas = meas.select(meas.is_tumour)
        i, j = match(meas, true, 6.0)
        pairs.append((meas.select(i), true.select(j)))
    s = summarise(pairs)
    print(
        f"\nU-Net completeness: bias {s['bias']:+.3f}, MAE {s['mae']:.3f}, complete recall {s['complete_recall']:.3f}, "
        f"false complete {s['false_complete']:.3f}, % complete true/measured {s['pct_true']:.1f}/{s['pct_meas']:.1f}"
    )
    assert abs(s["bias"]) <= 0.12
    assert s["complete_recall"] >= 0.65
    assert s["false_complete"] <= 0.45  # 0.37 with the 4000-step model (few incomplete cells on these tiles)
