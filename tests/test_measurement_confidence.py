"""Measurement confidence: the category's stability under a shared OD-scale or completeness error."""

from __future__ import annotations

import math

import numpy as np
import pytest

from her2fast.errors import InvalidInputError
from her2fast.scoring import (
    DEFAULT_RULES,
    CellTable,
    MeasurementUncertainty,
    intensity_class_from_od,
    measurement_confidence,
    score_cells,
)


def _table(od, completeness, tumour=None) -> CellTable:
    od = np.asarray(od, np.float32)
    n = od.size
    return CellTable(
        cell_id=np.arange(n),
        x=np.zeros(n),
        y=np.zeros(n),
        is_tumour=np.ones(n, bool) if tumour is None else np.asarray(tumour),
        intensity=intensity_class_from_od(od),
        completeness=np.asarray(completeness, np.float32),
        membrane_dab_od=od,
    )


def _slide(n_pos: int, od_pos: float, comp_pos: float = 1.0, n: int = 2000) -> CellTable:
    return _table(
        np.r_[np.full(n_pos, od_pos), np.zeros(n - n_pos)], np.r_[np.full(n_pos, comp_pos), np.zeros(n - n_pos)]
    )


def test_far_from_every_cut_off_is_certain_and_unflagged():
    # 40 % of cells intense complete at OD 2.0 (ln(2.0/0.8) = 0.92 above the strong cut-off)
    m = measurement_confidence(_slide(800, 2.0))
    assert score_cells(_slide(800, 2.0)).category == "3+"
    assert m.confidence > 0.999
    assert m.od_scale_margin == math.inf  # nothing up to ln 2 changes it
    assert m.flags == ()


def test_membranes_just_above_the_strong_cut_off_are_flagged_and_the_margin_is_the_log_distance():
    od = DEFAULT_RULES.strong_od * 1.10  # ln 1.10 = 0.095 above
    m = measurement_confidence(_slide(400, od))
    assert m.flags == ("intensity_uncertain",)
    assert m.nearest == "2+"
    assert abs(m.od_scale_margin - math.log(1.10)) <= 0.002
    assert 0.2 < m.confidence < 0.8  # about Phi(0.095 / 0.15) = 0.74


def test_the_margin_does_not_depend_on_the_number_of_cells():
    # a sampling confidence grows with n; a shared measurement error does not average out
    small = measurement_confidence(_slide(40, 0.88, n=200))
    big = measurement_confidence(_slide(40_000, 0.88, n=200_000))
    assert small.od_scale_margin == big.od_scale_margin
    assert abs(small.confidence - big.confidence) < 1e-9


def test_completeness_just_above_the_complete_fraction_is_flagged_through_the_completeness_margin():
    c = DEFAULT_RULES.complete_fraction + 0.02
    m = measurement_confidence(_slide(400, 2.0, comp_pos=c))
    assert m.flags == ("intensity_uncertain",)
    assert abs(m.completeness_margin - 0.02) <= 0.001  # 0.02 above the complete fraction
    assert m.od_scale_margin == math.inf


def test_faint_cells_at_the_noise_floor_flag_a_1plus_against_0():
    # 1+ decided by faint cells whose OD is just above faint_od: a tone curve makes it 0
    od = DEFAULT_RULES.faint_od * 1.2
    t = _table(np.r_[np.full(300, od), np.zeros(1700)], np.r_[np.full(300, 0.5), np.zeros(1700)])
    assert score_cells(t).category == "1+"
    m = measurement_confidence(t)
    assert m.flags == ("intensity_uncertain",)
    assert m.nearest in ("0+", "0")


def test_off_switches_give_certainty_and_only_tumour_cells_count():
    t = _slide(400, DEFAULT_RULES.strong_od * 1.05)
    off = MeasurementUncertainty(od_scale_sigma=0, completeness_sigma=0, flag_od_scale=0, flag_completeness=0)
    m = measurement_confidence(t, uncertainty=off)
    assert m.confidence == 1.0 and m.flags == ()
    # the same near-cut-off cells as non-tumour cells change nothing
    od = np.r_[np.full(400, 0.84), np.full(1600, 2.0)]
    comp = np.ones(2000)
    tumour = np.r_[np.zeros(400, bool), np.ones(1600, bool)]
    assert measurement_confidence(_table(od, comp, tumour)).flags == ()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"od_scale_sigma": -0.1},
        {"od_scale_sigma": float("nan")},
        {"completeness_sigma": "0.1"},
        {"flag_od_scale": 5.0},
        {"flagged_confidence": 0.2},
        {"quadrature_points": 8},
        {"quadrature_points": 10**6},
    ],
)
def test_bad_uncertainty_settings_are_refused_by_name(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(InvalidInputError, match=name):
        MeasurementUncertainty(**kwargs)


def test_wrong_argument_types_are_her2fast_errors():
    with pytest.raises(InvalidInputError, match="CellTable"):
        measurement_confidence({"od": [1.0]})
    with pytest.raises(InvalidInputError, match="MeasurementUncertainty"):
        measurement_confidence(_slide(10, 1.0), uncertainty=0.1)


def test_the_fast_rescoring_matches_classify_cells_on_random_tables():
    from her2fast.scoring import class_fractions, classify_cells, slide_category
    from her2fast.scoring.uncertainty import _Rescorer

    rng = np.random.default_rng(7)
    for _ in range(300):
        n = int(rng.integers(1, 400))
        od = rng.lognormal(np.log(rng.uniform(0.03, 1.5)), 0.6, n)
        comp = np.clip(rng.uniform(-0.3, 1.2, n), 0, 1)
        k, d = float(np.exp(rng.normal(0, 0.3))), float(rng.normal(0, 0.05))
        cls = classify_cells(intensity_class_from_od(od * k), np.clip(comp + d, 0, 1) * (comp > 0))
        assert _Rescorer(od, comp, DEFAULT_RULES).category(k, d) == slide_category(class_fractions(cls))
