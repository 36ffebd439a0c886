"""her2fast.scoring: the ASCO/CAP rules on cell tables (known answers at and around each threshold)."""

from __future__ import annotations

import numpy as np
import pytest

from her2fast import InvalidInputError
from her2fast.scoring import (
    CellClass,
    CellTable,
    ScoringRules,
    class_fractions,
    classify_cells,
    intensity_class_from_od,
    score_cells,
    slide_category,
)


def _cat(counts: dict[int, int], total: int = 1000) -> str:
    classes = np.concatenate([np.full(n, c, np.int8) for c, n in counts.items()] + [np.zeros(total - sum(counts.values()), np.int8)])
    return slide_category(class_fractions(classes))


def test_classify_cells_table():
    inten = np.array([0, 0, 1, 1, 2, 2, 2, 3, 3, 3, 1])
    comp = np.array([0.0, 1.0, 0.3, 1.0, 0.5, 0.9, 1.0, 0.5, 0.9, 0.89, 0.0])
    got = classify_cells(inten, comp)
    F, W, II, IC, N = CellClass.FAINT_INCOMPLETE, CellClass.WEAK_MODERATE_COMPLETE, CellClass.INTENSE_INCOMPLETE, CellClass.INTENSE_COMPLETE, CellClass.NEGATIVE
    assert got.tolist() == [N, N, F, F, F, W, W, II, IC, II, N]
    assert got.dtype == np.int8


@pytest.mark.parametrize(
    "counts, expected",
    [
        ({}, "0"),
        ({1: 1}, "0+"),
        ({1: 100}, "0+"),  # exactly 10 % is not > 10 %
        ({1: 101}, "1+"),
        ({2: 100}, "0+"),  # 10 % 2+ cells: no criterion > 10 %, some staining -> ultralow
        ({2: 101}, "2+"),
        ({3: 101}, "2+"),  # the unusual pattern: intense incomplete -> 2+
        ({4: 100, 2: 1}, "2+"),  # cumulative: 3+ cells count towards the 2+ criterion
        ({4: 101}, "3+"),
        ({4: 60, 2: 41}, "2+"),
        ({1: 60, 2: 41}, "1+"),
    ],
)
def test_slide_category_thresholds(counts, expected):
    assert _cat(counts) == expected


def test_rules_are_configurable():
    classes = np.array([4] * 6 + [0] * 94)
    assert slide_category(class_fractions(classes)) == "0+"  # 6 % stained: ultralow
    assert slide_category(class_fractions(classes), ScoringRules(positive_fraction=0.05)) == "3+"
    # completeness threshold moves a cell between complete and incomplete
    assert classify_cells([3], [0.85], ScoringRules(complete_fraction=0.8)).tolist() == [CellClass.INTENSE_COMPLETE]


def test_only_tumour_cells_count():
    cls = np.array([4] * 50 + [0] * 50)
    tum = np.array([False] * 50 + [True] * 50)
    fr = class_fractions(cls, tum)
    assert fr.n_tumour_cells == 50 and fr.intense_complete == 0.0
    assert slide_category(fr) == "0"


def test_no_tumour_cells_is_an_error():
    with pytest.raises(InvalidInputError, match="no tumour cells"):
        slide_category(class_fractions(np.zeros(0, np.int8)))


def test_intensity_class_from_od():
    r = ScoringRules()
    od = [0.0, r.faint_od - 1e-6, r.faint_od, r.weak_od, r.strong_od - 1e-6, r.strong_od, 5.0]
    assert intensity_class_from_od(od).tolist() == [0, 0, 1, 2, 2, 3, 3]


def test_input_validation():
    with pytest.raises(InvalidInputError, match="intensity"):
        classify_cells([4], [1.0])
    with pytest.raises(InvalidInputError, match="completeness"):
        classify_cells([1], [1.5])
    with pytest.raises(InvalidInputError, match="same shape"):
        classify_cells([1, 2], [1.0])
    with pytest.raises(ValueError, match="faint_od"):
        ScoringRules(faint_od=0.5, weak_od=0.2)
    with pytest.raises(InvalidInputError, match="CellTable.x"):
        CellTable(cell_id=[1, 2], x=[0.0], y=[0, 0], is_tumour=[1, 1], intensity=[0, 0], completeness=[0, 0],
                  membrane_dab_od=[0, 0])


def test_cell_table_roundtrip_and_score(tmp_path):
    n = 200
    rng = np.random.default_rng(0)
    t = CellTable(cell_id=np.arange(1, n + 1), x=rng.random(n), y=rng.random(n), is_tumour=np.ones(n, bool),
                  intensity=np.r_[np.full(30, 3), np.zeros(n - 30)], completeness=np.r_[np.ones(30), np.zeros(n - 30)],
                  membrane_dab_od=np.r_[np.ones(30), np.zeros(n - 30)])
    res = score_cells(t)
    assert res.category == "3+" and res.fractions.as_percentages()["intense_complete"] == 15.0
    t.save_npz(tmp_path / "c.npz")
    back = CellTable.load_npz(tmp_path / "c.npz")
    for name in ("cell_id", "x", "is_tumour", "intensity", "completeness", "region"):
        np.testing.assert_array_equal(getattr(back, name), getattr(t, name))
    assert len(t.select(t.intensity > 0)) == 30
