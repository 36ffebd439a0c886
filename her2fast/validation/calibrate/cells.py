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
from dataclasses import dataclass

import numpy as np

from ...errors import InvalidInputError
from ...scoring import (
    CellTable,
    ClassFractions,
    ScoringRules,
    classify_cells,
    intensity_class_from_od,
    slide_category,
)

__all__ = ["CellSet"]


_N_CLASSES = 5  # CellClass values


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

        The same as :func:`her2fast.scoring.rescore_cells` of each slide's table (tested).
        """
        cls = classify_cells(intensity_class_from_od(self.od, rules), self.completeness, rules)
        n = len(self)
        counts = np.bincount(self.slide * _N_CLASSES + cls, minlength=n * _N_CLASSES).reshape(n, _N_CLASSES)
        out = []
        for k, c in zip(self.n_cells.tolist(), counts):
            out.append(slide_category(ClassFractions(n_tumour_cells=k, per_class=c / k, counts=c), rules))
        return out
