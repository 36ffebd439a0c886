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
    classes = np.concatenate(
        [np.full(n, c, np.int8) for c, n in counts.items()] + [np.zeros(total - sum(counts.values()), np.int8)]
    )
    return slide_category(class_fractions(classes))


def test_classify_cells_table():
    inten = np.array([0, 0, 1, 1, 2, 2, 2, 3, 3, 3, 1])
    comp = np.array([0.0, 1.0, 0.3, 1.0, 0.5, 0.9, 1.0, 0.5, 0.9, 0.89, 0.0])
    got = classify_cells(inten, comp)
    F, W, II, IC, N = (
        CellClass.FAINT_INCOMPLETE,
        CellClass.WEAK_MODERATE_COMPLETE,
        CellClass.INTENSE_INCOMPLETE,
        CellClass.INTENSE_COMPLETE,
        CellClass.NEGATIVE,
    )
    assert got.tolist() == [N, N, F, F, F, W, W, II, IC, II, N]
    assert got.dtype == np.int8


@pytest.mark.parametrize(
    "counts, expected",
    [
        ({}, "0"),
        ({1: 1}, "0"),  # one faint cell in 1000: under the ultralow floor (1 %)
        ({1: 10}, "0"),  # exactly 1 % is not > 1 %
        ({1: 11}, "0+"),
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
        CellTable(
            cell_id=[1, 2],
            x=[0.0],
            y=[0, 0],
            is_tumour=[1, 1],
            intensity=[0, 0],
            completeness=[0, 0],
            membrane_dab_od=[0, 0],
        )


def test_cell_table_roundtrip_and_score(tmp_path):
    n = 200
    rng = np.random.default_rng(0)
    t = CellTable(
        cell_id=np.arange(1, n + 1),
        x=rng.random(n),
        y=rng.random(n),
        is_tumour=np.ones(n, bool),
        intensity=np.r_[np.full(30, 3), np.zeros(n - 30)],
        completeness=np.r_[np.ones(30), np.zeros(n - 30)],
        membrane_dab_od=np.r_[np.ones(30), np.zeros(n - 30)],
    )
    res = score_cells(t)
    assert res.category == "3+" and res.fractions.as_percentages()["intense_complete"] == 15.0
    t.save_npz(tmp_path / "c.npz")
    back = CellTable.load_npz(tmp_path / "c.npz")
    for name in ("cell_id", "x", "is_tumour", "intensity", "completeness", "region"):
        np.testing.assert_array_equal(getattr(back, name), getattr(t, name))
    assert len(t.select(t.intensity > 0)) == 30


# ----------------------------------------------------------------- exhaustive thresholds
from her2fast.scoring import (  # noqa: E402
    CATEGORIES,
    STRATA,
    IntensityClass,
    slide_confidence,
    slide_stratum,
    slide_summary,
)


def _classes(n: int, counts: dict[int, int]) -> np.ndarray:
    parts = [np.full(k, c, np.int8) for c, k in counts.items()]
    return np.concatenate(parts + [np.zeros(n - sum(counts.values()), np.int8)])


def _expected(
    n: int, k4: int, k23: int, k1: int, p_num: int = 1, p_den: int = 10, u_num: int = 1, u_den: int = 100
) -> str:
    """The rules in integer arithmetic: a criterion holds when k / n > p_num / p_den (ultralow: > u_num / u_den)."""
    more = lambda k: k * p_den > p_num * n  # noqa: E731
    if more(k4):
        return "3+"
    if more(k4 + k23):
        return "2+"
    if more(k4 + k23 + k1):
        return "1+"
    return "0+" if (k4 + k23 + k1) * u_den > u_num * n else "0"


@pytest.mark.parametrize("n", list(range(1, 121)) + [199, 200, 201, 999, 1000, 1001, 12345])
def test_every_count_around_each_ten_percent_line(n):
    line = n // 10
    ks = sorted({max(0, min(n, line + d)) for d in (-2, -1, 0, 1, 2)})
    for k in ks:
        # 3+ line (class 4), 2+ line (classes 2-4, cumulative, incl. the unusual pattern), 1+ line
        for counts, args in [
            ({4: k}, (k, 0, 0)),
            ({2: k}, (0, k, 0)),
            ({3: k}, (0, k, 0)),
            ({4: k // 2, 2: k - k // 2}, (k // 2, k - k // 2, 0)),
            ({1: k}, (0, 0, k)),
            ({1: k - k // 3, 2: k // 3}, (0, k // 3, k - k // 3)),
        ]:
            fr = class_fractions(_classes(n, counts))
            assert slide_category(fr) == _expected(n, *args), (n, counts)
            assert slide_stratum(fr) == STRATA[CATEGORIES.index(_expected(n, *args))]


@pytest.mark.parametrize("p", [0.05, 0.10, 0.15, 0.20])
def test_configurable_positive_fraction_is_exact_at_the_line(p):
    rules = ScoringRules(positive_fraction=p)
    for n in (20, 100, 300, 1000):
        k = round(p * n)
        assert slide_category(class_fractions(_classes(n, {4: k})), rules) != "3+"  # exactly p: not > p
        assert slide_category(class_fractions(_classes(n, {4: k + 1})), rules) == "3+"


def test_completeness_cut_exactly_and_one_ulp_around():
    for cut in (0.9, 0.8, 0.95, 1.0):
        rules = ScoringRules(complete_fraction=cut)
        below = np.nextafter(cut, 0.0)
        above = min(np.nextafter(cut, 2.0), 1.0)
        for inten, low, high in [
            (2, CellClass.FAINT_INCOMPLETE, CellClass.WEAK_MODERATE_COMPLETE),
            (3, CellClass.INTENSE_INCOMPLETE, CellClass.INTENSE_COMPLETE),
        ]:
            got = classify_cells([inten] * 3, [below, cut, above], rules).tolist()
            assert got == [low, high, high], (cut, inten, got)
        # faint cells are 1+ cells at any completeness > 0; no completeness is negative
        assert classify_cells([1, 1, 1], [below, cut, 0.0], rules).tolist() == [1, 1, 0]


def test_od_bands_exactly_and_one_ulp_around():
    r = ScoringRules()
    for edge, cls in [
        (r.faint_od, IntensityClass.FAINT),
        (r.weak_od, IntensityClass.WEAK_MODERATE),
        (r.strong_od, IntensityClass.STRONG),
    ]:
        got = intensity_class_from_od([np.nextafter(edge, 0.0), edge, np.nextafter(edge, 9.0)]).tolist()
        assert got == [cls - 1, cls, cls]
    custom = ScoringRules(faint_od=0.1, weak_od=0.5, strong_od=1.0)
    assert intensity_class_from_od([0.099, 0.1, 0.499, 0.5, 0.999, 1.0], custom).tolist() == [0, 1, 1, 2, 2, 3]


# ------------------------------------------------------------------------- confidence and flags
def test_confidence_margin_in_binomial_standard_errors():
    n = 1000
    se = np.sqrt(0.1 * 0.9 / n)
    c = slide_confidence(class_fractions(_classes(n, {4: 130})))  # 13 % 3+ cells
    assert c.nearest == "2+" and c.margin_z == pytest.approx(0.03 / se)
    import math

    assert c.confidence == pytest.approx(0.5 * (1 + math.erf(c.margin_z / math.sqrt(2))))
    assert "near_cutoff" not in c.flags and 0.99 < c.confidence <= 1.0
    near = slide_confidence(class_fractions(_classes(n, {4: 101})))
    assert near.nearest == "2+" and near.margin_z < 0.2 and "near_cutoff" in near.flags and near.confidence < 0.6


def test_confidence_uses_only_deciding_criteria():
    # 2+ slide: deciding = the 2+ line (fall to 1+) and the 3+ line (rise to 3+); the 1+ line is irrelevant
    n = 1000
    fr = class_fractions(_classes(n, {4: 95, 2: 200}))  # 9.5 % 3+: close to the 3+ line
    c = slide_confidence(fr)
    assert slide_category(fr) == "2+" and c.nearest == "3+"
    assert c.margin_z == pytest.approx(0.005 / np.sqrt(0.09 / n))
    # 1+ slide far from every line but with 2+ cells near 10 %
    fr1 = class_fractions(_classes(n, {1: 500, 2: 98}))
    c1 = slide_confidence(fr1)
    assert slide_category(fr1) == "1+" and c1.nearest == "2+" and "near_cutoff" in c1.flags


def test_null_and_ultralow_line_and_flags():
    literal = ScoringRules(ultralow_fraction=0.0)  # the guideline's "> 0 %"
    null = slide_confidence(class_fractions(np.zeros(1000, np.int8)), literal)
    assert null.nearest == "1+" and null.margin_z == pytest.approx(0.1 / np.sqrt(0.09 / 1000))
    one = slide_confidence(class_fractions(_classes(1000, {1: 1})), literal)
    assert slide_category(class_fractions(_classes(1000, {1: 1})), literal) == "0+"
    assert one.nearest == "0" and one.margin_z == pytest.approx(1.0) and "near_cutoff" in one.flags
    # the default 1 % floor: a null slide's nearest line is the ultralow one, a binomial z at 1 %
    null = slide_confidence(class_fractions(np.zeros(1000, np.int8)))
    assert null.nearest == "0+" and null.margin_z == pytest.approx(0.01 / np.sqrt(0.0099 / 1000))
    two = slide_confidence(class_fractions(_classes(1000, {1: 2})))
    assert slide_category(class_fractions(_classes(1000, {1: 2}))) == "0"
    assert two.nearest == "0+" and two.margin_z == pytest.approx(0.008 / np.sqrt(0.0099 / 1000))
    many = slide_confidence(class_fractions(_classes(1000, {1: 50})))  # 5 % faint: ultralow
    assert many.nearest == "1+"  # the 1+ line (z = -5.3) is nearer than the null line (sqrt(50) = 7.1)
    few = slide_confidence(class_fractions(_classes(50, {4: 40})))
    assert "few_cells" in few.flags
    unusual = slide_confidence(class_fractions(_classes(1000, {3: 300})))
    assert "unusual_pattern" in unusual.flags
    assert slide_confidence(class_fractions(np.zeros(0, np.int8))).flags == ("no_tumour_cells",)
    with pytest.raises(InvalidInputError, match="near_cutoff_z"):
        ScoringRules(near_cutoff_z=-1)
    with pytest.raises(InvalidInputError, match="ultralow_fraction"):
        ScoringRules(ultralow_fraction=0.2)
    with pytest.raises(InvalidInputError, match="ultralow_fraction"):
        ScoringRules(ultralow_fraction=0.1)  # = positive_fraction: 0+ could never be reached
    assert ScoringRules(positive_fraction=0.0, ultralow_fraction=0.0).ultralow_fraction == 0.0


@pytest.mark.parametrize("n", [50, 100, 101, 999, 1000, 1001, 4321])
def test_every_count_around_the_ultralow_floor(n):
    for u_num, u_den in ((1, 100), (0, 1), (1, 50)):
        rules = ScoringRules(ultralow_fraction=u_num / u_den)
        line = n * u_num // u_den
        for k in sorted({max(0, line + d) for d in (-2, -1, 0, 1, 2)}):
            fr = class_fractions(_classes(n, {1: k}))
            assert slide_category(fr, rules) == _expected(n, 0, 0, k, u_num=u_num, u_den=u_den), (n, k, u_num, u_den)


def test_score_cells_gives_stratum_confidence_and_summary():
    n = 100
    t = CellTable(
        cell_id=np.arange(1, n + 1),
        x=np.zeros(n),
        y=np.zeros(n),
        is_tumour=np.r_[np.ones(90, bool), np.zeros(10, bool)],
        intensity=np.r_[np.full(20, 3), np.full(10, 1), np.zeros(70)],
        completeness=np.r_[np.ones(20), np.full(10, 0.5), np.zeros(70)],
        membrane_dab_od=np.r_[np.full(20, 2.0), np.full(10, 0.2), np.zeros(70)],
        closed=np.r_[np.ones(15, bool), np.zeros(85, bool)],
    )
    res = score_cells(t)
    assert res.category == "3+" and res.stratum == "3+"
    s = slide_summary(t)
    assert s.n_tumour_cells == 90 and s.n_closed == 15
    assert s.percent_complete == pytest.approx(100 * 20 / 90) and s.closed_ratio == pytest.approx(15 / 90)
    assert s.mean_membrane_od == pytest.approx((20 * 2.0 + 10 * 0.2) / 30, rel=1e-6)
    assert res.summary == s and res.confidence is not None and res.confidence.nearest == "2+"
