"""The tumour cells of many slides in one table (:class:`CellSet`), re-scored all at once under other rules.

Examples
--------
>>> import numpy as np
>>> from her2fast.scoring import DEFAULT_RULES
>>> cs = CellSet(od=np.array([0.0, 1.0]), completeness=np.array([0.0, 1.0]), slide=np.array([0, 1]),
...              n_cells=np.array([1, 1]))
>>> cs.categories(DEFAULT_RULES)
['0', '3+']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ...errors import InvalidInputError
from ...scoring import (
    CellTable,
    ClassFractions,
    ScoringRules,
    classify_cells,
    slide_category,
)

__all__ = ["CellSet"]


_N_CLASSES = 5  # CellClass values
_N_STATES = 3  # completeness: 0 (nothing stained), below complete_fraction, at or above it


@dataclass
class CellSet:
    """The tumour cells of many slides, concatenated, for re-scoring them all at once under other rules.

    Attributes
    ----------
    od, completeness : (m,) arrays
        ``membrane_dab_od`` and ``completeness`` of every tumour cell.
    slide : (m,) int64
        The slide (0..n-1) each cell belongs to.
    n_cells : (n,) int64
        Tumour cells per slide (each > 0).
    """

    od: np.ndarray
    completeness: np.ndarray
    slide: np.ndarray
    n_cells: np.ndarray
    #: ("base" | "nan" | "intensity" | "state", key) -> array: the slide offsets and NaN ODs once, the
    #: intensity classes of the last OD bands and the completeness states of the last complete_fraction
    _cache: dict[tuple[str, tuple], np.ndarray] = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def from_tables(cls, tables: Sequence[CellTable]) -> CellSet:
        """From measured cell tables (one per slide; only tumour cells are kept).

        Raises
        ------
        InvalidInputError
            A table without tumour cells (it has no score to calibrate).
        """
        ods, comps, idx, counts = [], [], [], []
        for i, t in enumerate(tables):
            if not isinstance(t, CellTable):
                raise InvalidInputError(f"tables[{i}] must be a CellTable, got {type(t).__name__}")
            tum = np.asarray(t.is_tumour, bool)
            k = int(tum.sum())
            if k == 0:
                raise InvalidInputError(f"tables[{i}] has no tumour cells: leave that slide out")
            ods.append(t.membrane_dab_od[tum])
            comps.append(t.completeness[tum])
            idx.append(np.full(k, i, np.int64))
            counts.append(k)
        if not counts:
            raise InvalidInputError("no cell tables to calibrate on")
        return cls(
            od=np.concatenate(ods).astype(np.float64),
            completeness=np.concatenate(comps).astype(np.float64),
            slide=np.concatenate(idx),
            n_cells=np.asarray(counts, np.int64),
        )

    def __len__(self) -> int:
        return int(self.n_cells.shape[0])

    def subset(self, slides: Sequence[int] | np.ndarray) -> CellSet:
        """The cells of these slides, renumbered 0..len(slides)-1 in the given order."""
        slides = np.asarray(slides, np.int64)
        remap = np.full(len(self), -1, np.int64)
        remap[slides] = np.arange(len(slides))
        keep = remap[self.slide] >= 0
        order = np.argsort(remap[self.slide[keep]], kind="stable")
        return CellSet(
            od=self.od[keep][order],
            completeness=self.completeness[keep][order],
            slide=remap[self.slide[keep]][order],
            n_cells=self.n_cells[slides],
        )

    def categories(self, rules: ScoringRules) -> list[str]:
        """The slide category ("0", "0+", "1+", "2+", "3+") of every slide under ``rules``.

        The same as :func:`her2fast.scoring.rescore_cells` of each slide's table (tested). A cell's class
        depends only on its intensity class (0-3) and on whether its completeness is 0, below
        ``complete_fraction`` or at least that; the cells are counted per slide in those 12 groups
        (intensity classes cached per OD bands, groups per ``complete_fraction``, as a fit changes one
        field at a time) and the groups mapped to classes with :func:`her2fast.scoring.classify_cells`.
        """
        n = len(self)
        group = self._groups(rules)
        counts12 = np.bincount(group, minlength=n * 4 * _N_STATES).reshape(n, 4 * _N_STATES)
        inten = np.repeat(np.arange(4), _N_STATES)
        comp = np.tile([0.0, 0.5 * rules.complete_fraction, 1.0], 4)
        to_class = np.zeros((4 * _N_STATES, _N_CLASSES), np.int64)
        to_class[np.arange(4 * _N_STATES), classify_cells(inten, comp, rules)] = 1
        counts = counts12 @ to_class
        out = []
        for k, c in zip(self.n_cells.tolist(), counts):
            out.append(slide_category(ClassFractions(n_tumour_cells=k, per_class=c / k, counts=c), rules))
        return out

    def _groups(self, rules: ScoringRules) -> np.ndarray:
        """Per cell: slide * 12 + intensity class * 3 + completeness state (see :meth:`categories`)."""
        if ("base", ()) not in self._cache:
            c = self.completeness
            if c.size and (np.isnan(c).any() or c.min() < 0 or c.max() > 1):
                raise InvalidInputError(
                    "completeness must be in [0, 1] (fraction of the perimeter stained), without NaN"
                )
            self._cache[("base", ())] = (self.slide * (4 * _N_STATES)).astype(np.int32)
            self._cache[("nan", ())] = np.isnan(self.od)
        bands = (rules.faint_od, rules.weak_od, rules.strong_od)
        inten = self._cache.get(("intensity", bands))
        if inten is None:
            # intensity_class_from_od (searchsorted over the bands, NaN above every band) by comparisons
            od = self.od
            inten = (od >= bands[0]).view(np.int8) + (od >= bands[1]).view(np.int8) + (od >= bands[2]).view(np.int8)
            inten[self._cache[("nan", ())]] = 3
            inten = inten * np.int8(_N_STATES)
            self._cache = {k: v for k, v in self._cache.items() if k[0] != "intensity"}
            self._cache[("intensity", bands)] = inten
        state = self._cache.get(("state", (rules.complete_fraction,)))
        if state is None:
            c = self.completeness
            state = (c > 0).view(np.int8) + (c >= max(rules.complete_fraction, np.nextafter(0.0, 1.0))).view(np.int8)
            self._cache = {k: v for k, v in self._cache.items() if k[0] != "state"}
            self._cache[("state", (rules.complete_fraction,))] = state
        return self._cache[("base", ())] + (inten + state)
