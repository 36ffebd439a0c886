"""CellTable.away_from_edge: which cells of a field lie at least a margin inside the image."""

from __future__ import annotations

import numpy as np
import pytest

from her2fast.errors import InvalidInputError
from her2fast.scoring import CellTable, score_cells


def _table(x, y, od=None, comp=None):
    n = len(x)
    od = np.zeros(n) if od is None else np.asarray(od, float)
    comp = np.zeros(n) if comp is None else np.asarray(comp, float)
    return CellTable(
        cell_id=np.arange(1, n + 1),
        x=np.asarray(x, float),
        y=np.asarray(y, float),
        is_tumour=np.ones(n, bool),
        intensity=(od >= 0.05).astype(np.int8),
        completeness=comp,
        membrane_dab_od=od,
    )


def test_margin_is_measured_from_the_pixel_edges():
    # a 100-px image spans [-0.5, 99.5); a margin of 10 px keeps centres in [9.5, 89.5]
    t = _table([9.4, 9.5, 50.0, 89.5, 89.6], [50.0] * 5)
    assert t.away_from_edge(100, 100, 10).tolist() == [False, True, True, True, False]
    t = _table([50.0] * 5, [9.4, 9.5, 50.0, 89.5, 89.6])
    assert t.away_from_edge(100, 100, 10).tolist() == [False, True, True, True, False]


def test_zero_margin_keeps_every_cell_of_the_image():
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-0.5, 63.5, 200), rng.uniform(-0.5, 31.5, 200)
    assert _table(x, y).away_from_edge(64, 32, 0).all()


def test_matches_a_brute_force_distance_to_the_edge():
    rng = np.random.default_rng(1)
    w, h, m = 300, 200, 17.3
    x, y = rng.uniform(-0.5, w - 0.5, 2000), rng.uniform(-0.5, h - 0.5, 2000)
    dist = np.minimum.reduce([x + 0.5, y + 0.5, w - 0.5 - x, h - 0.5 - y])
    assert (_table(x, y).away_from_edge(w, h, m) == (dist >= m)).all()


def test_dropping_stained_edge_cells_changes_the_reading():
    # 12 of 100 cells stained, 10 of them within 12 px of the edge: 1+ with them, ultralow (0+) without
    x = np.r_[np.full(10, 5.0), np.full(2, 50.0), np.full(88, 60.0)]
    y = np.full(100, 50.0)
    od = np.r_[np.full(12, 0.08), np.zeros(88)]
    t = _table(x, y, od=od, comp=np.r_[np.full(12, 0.3), np.zeros(88)])
    assert score_cells(t).category == "1+"
    keep = t.away_from_edge(100, 100, 12)
    assert keep.sum() == 90
    assert score_cells(t.select(keep)).category == "0+"


@pytest.mark.parametrize("args", [(0, 10, 1), (10, -1, 1), (10, 10, -1), (10, 10, np.nan), (np.inf, 10, 1)], ids=str)
def test_refuses_a_bad_size_or_margin(args):
    with pytest.raises(InvalidInputError, match="away_from_edge"):
        _table([1.0], [1.0]).away_from_edge(*args)
