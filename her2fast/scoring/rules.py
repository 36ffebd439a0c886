"""ASCO/CAP HER2 IHC scoring rules, written once, as pure functions on a cell table.

The pipeline (measured cells) and the phantom generator (:mod:`her2fast.synth`, true cells) both call
these functions, so a phantom's ground-truth category and a scored slide's category mean the same thing.
Nothing here reads files or images.

Two steps:

1. **Per cell** -- :func:`classify_cells` maps each tumour cell's membrane *intensity class* and membrane
   *completeness* (fraction of its perimeter that is stained) to a :class:`CellClass`.
2. **Per slide** -- :func:`class_fractions` counts the classes among tumour cells and :func:`slide_category`
   applies the ASCO/CAP 2018 thresholds (with the 2023 ASCO/CAP "HER2-low/ultralow" strata of 0):

   ======  =====================================================================================
   "3+"    complete, intense (circumferential) membrane staining in > 10 % of tumour cells
   "2+"    weak-to-moderate complete staining in > 10 % of tumour cells -- cumulative with the 3+
           cells -- or the "unusual" pattern: intense but incomplete (e.g. basolateral) staining
           in > 10 % (ASCO/CAP 2018, Wolff et al., Fig. 1, note on unusual patterns)
   "1+"    incomplete, faint / barely perceptible staining in > 10 % of tumour cells (cumulative:
           every stained cell counts)
   "0+"    HER2-ultralow: IHC 0 with faint incomplete staining in > 0 % and <= 10 % of tumour cells
   "0"     HER2-null: no membrane staining at all
   ======  =====================================================================================

Counting is cumulative (a cell of a higher class also satisfies every lower criterion), as a
pathologist reads a slide: 6 % of cells at 3+ and 6 % at 2+ is "12 % with at least weak-to-moderate
complete staining", i.e. 2+.

References
----------
.. [1] Wolff AC, Hammond MEH, Allison KH, et al. Human epidermal growth factor receptor 2 testing in
   breast cancer: ASCO/CAP clinical practice guideline focused update. J Clin Oncol 2018;36:2105-2122.
.. [2] Wolff AC, Somerfield MR, Dowsett M, et al. HER2 testing in breast cancer: ASCO-CAP guideline
   update. J Clin Oncol 2023;41:3867-3872 (HER2-low, -ultralow).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import InvalidInputError

__all__ = [
    "CATEGORIES",
    "IntensityClass",
    "CellClass",
    "ScoringRules",
    "DEFAULT_RULES",
    "CellTable",
    "ClassFractions",
    "SlideConfidence",
    "SlideSummary",
    "ScoringResult",
    "STRATA",
    "intensity_class_from_od",
    "classify_cells",
    "class_fractions",
    "slide_category",
    "slide_stratum",
    "slide_confidence",
    "slide_summary",
    "score_cells",
]

#: The slide categories, in increasing order of HER2 expression ("0" = null, "0+" = ultralow).
CATEGORIES: tuple[str, ...] = ("0", "0+", "1+", "2+", "3+")
#: The same categories under the names of the 2023 strata (reports, ``SlideResult.stratum``).
STRATA: tuple[str, ...] = ("null", "ultralow", "1+", "2+", "3+")


class IntensityClass(IntEnum):
    """Membrane staining intensity of one cell, as a pathologist grades it."""

    NONE = 0
    FAINT = 1  #: faint / barely perceptible
    WEAK_MODERATE = 2
    STRONG = 3  #: intense


class CellClass(IntEnum):
    """Per-cell ASCO/CAP class from intensity and completeness (see :func:`classify_cells`)."""

    NEGATIVE = 0  #: no membrane staining
    FAINT_INCOMPLETE = 1  #: faint (any completeness) or weak-moderate but incomplete: a "1+ cell"
    WEAK_MODERATE_COMPLETE = 2  #: a "2+ cell"
    INTENSE_INCOMPLETE = 3  #: the "unusual" pattern; counts towards 2+
    INTENSE_COMPLETE = 4  #: a "3+ cell"


@dataclass(frozen=True)
class ScoringRules:
    """Thresholds of the ASCO/CAP rules; the defaults are the guideline's.

    Parameters
    ----------
    positive_fraction : float
        A criterion is met when *more than* this fraction of tumour cells meet it (ASCO/CAP: 10 %).
    complete_fraction : float
        A membrane is *complete* when at least this fraction of its perimeter is stained.
    near_cutoff_z : float
        :func:`slide_confidence` flags a slide ``"near_cutoff"`` when a criterion that decides its
        category is fewer than this many binomial standard errors from its threshold (2.0).
    min_tumour_cells : int
        Fewer tumour cells than this are flagged ``"few_cells"`` (200).
    faint_od, weak_od, strong_od : float
        Lower bounds of the *measured* membrane DAB optical density of the FAINT, WEAK_MODERATE and
        STRONG intensity classes (0.05, 0.15, 0.80), used by :func:`intensity_class_from_od` for measured
        cells. The measure (:func:`her2fast.stages.cells.measure_tile`, ``membrane_dab_od``) is the 75th
        percentile over a cell's covered rays of the peak deconvolved DAB OD of its own membrane run,
        gated by the own side of the membrane ridge (a neighbour's membrane seen through the blur counts
        0), minus the cell's cytoplasmic DAB. weak_od was fitted on training-seed phantom tiles (0.153,
        ``benchmarks/calibrate_intensity.py``); faint_od (whose tile fit is degenerate, 0.002) and
        strong_od (tile fit 0.67) were chosen on training-seed phantom slides (seeds 801-810, every
        preset: 115/120, the old measure and bands 102/120), never on held-out ones.
        The phantom's rendering bands are 0.08 / 0.40 / 1.20 on the renderer's own undeconvolved DAB
        (``docs/synth.md``). docs/scoring.md has the figures.
    ultralow_fraction : float
        HER2-ultralow (``"0+"``) needs faint staining in *more than* this fraction of tumour cells (1 %).
        The guideline's line is "> 0 %"; a measured slide always has a few cells measured faint by
        noise (held-out null phantoms: 0.04-0.05 % of ~2,200 tumour cells, i.e. one cell), so a slide
        would never be null. 0 gives the guideline's literal rule. Below ``positive_fraction``.
    """

    positive_fraction: float = 0.10
    complete_fraction: float = 0.90
    faint_od: float = 0.05
    weak_od: float = 0.15
    strong_od: float = 0.80
    near_cutoff_z: float = 2.0
    min_tumour_cells: int = 200
    ultralow_fraction: float = 0.01

    def __post_init__(self) -> None:
        if not (np.isfinite(self.near_cutoff_z) and self.near_cutoff_z >= 0):
            raise InvalidInputError(f"near_cutoff_z must be finite and >= 0, got {self.near_cutoff_z}")
        if (
            isinstance(self.min_tumour_cells, bool)
            or not isinstance(self.min_tumour_cells, (int, np.integer))
            or self.min_tumour_cells < 0
        ):
            raise InvalidInputError(f"min_tumour_cells must be an integer >= 0, got {self.min_tumour_cells!r}")
        if not 0.0 <= self.positive_fraction < 1.0:
            raise InvalidInputError(f"positive_fraction must be in [0, 1), got {self.positive_fraction}")
        if not (
            np.isfinite(self.ultralow_fraction)
            and 0.0 <= self.ultralow_fraction
            and (
                self.ultralow_fraction < self.positive_fraction
                or self.ultralow_fraction == self.positive_fraction == 0.0
            )
        ):
            raise InvalidInputError(
                f"ultralow_fraction must be in [0, positive_fraction = {self.positive_fraction}), "
                f"got {self.ultralow_fraction}"
            )
        if not 0.0 < self.complete_fraction <= 1.0:
            raise InvalidInputError(f"complete_fraction must be in (0, 1], got {self.complete_fraction}")
        if not 0.0 < self.faint_od < self.weak_od < self.strong_od:
            raise InvalidInputError(
                "the OD thresholds must satisfy 0 < faint_od < weak_od < strong_od, got "
                f"{self.faint_od}, {self.weak_od}, {self.strong_od}"
            )


DEFAULT_RULES = ScoringRules()

#: The columns of a :class:`CellTable`, in order (``SlideResult`` JSON and structured arrays use this order).
CELL_COLUMNS = (
    "cell_id",
    "x",
    "y",
    "is_tumour",
    "intensity",
    "completeness",
    "membrane_dab_od",
    "region",
    "closed",
    "membrane_thickness",
    "area",
)
#: Columns that may be left out when a table is built (filled with zeros / False): the expression region
#: (phantoms) and what only measured cells have (:func:`her2fast.stages.cells.measure_tile`).
_OPTIONAL_COLUMNS = ("region", "closed", "membrane_thickness", "area")


@dataclass
class CellTable:
    """One row per cell, as parallel numpy arrays (the whole-slide state of the cells stage).

    Attributes
    ----------
    cell_id : (n,) int64
        Unique within a slide or tile; equals the value of the cell in a cell label map.
    x, y : (n,) float32
        Cell centre in pixels of the image it belongs to (level 0 for a slide).
    is_tumour : (n,) bool
        Tumour (epithelial) cell; only tumour cells are scored.
    intensity : (n,) int8
        :class:`IntensityClass` of the membrane staining.
    completeness : (n,) float32
        Fraction of the perimeter that is stained, in [0, 1].
    membrane_dab_od : (n,) float32
        DAB optical density of the stained membrane (centre line), 0 where unstained.
    region : (n,) int8
        Expression region the cell belongs to (heterogeneous phantoms; 0 elsewhere).
    closed : (n,) bool
        The cell's nucleus lies inside a closed membrane loop (a skeleton loop enclosing a cell-sized
        region that holds this nucleus and no other); measured cells only, False elsewhere.
    membrane_thickness : (n,) float32
        Median width (um) of the stained membrane where it is crossed by rays from the nucleus centre;
        0 where unstained or not measured.
    area : (n,) float32
        Area of the cell territory (um^2); 0 where not measured.

    The optional columns (``region``, ``closed``, ``membrane_thickness``, ``area``) may be omitted when
    a table is built and are then filled with zeros / False; older ``.npz`` files without them load.
    """

    cell_id: np.ndarray
    x: np.ndarray
    y: np.ndarray
    is_tumour: np.ndarray
    intensity: np.ndarray
    completeness: np.ndarray
    membrane_dab_od: np.ndarray
    region: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    closed: np.ndarray = field(default_factory=lambda: np.zeros(0, np.bool_))
    membrane_thickness: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    area: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    _DTYPES = {
        "cell_id": np.int64,
        "x": np.float32,
        "y": np.float32,
        "is_tumour": np.bool_,
        "intensity": np.int8,
        "completeness": np.float32,
        "membrane_dab_od": np.float32,
        "region": np.int8,
        "closed": np.bool_,
        "membrane_thickness": np.float32,
        "area": np.float32,
    }

    def __post_init__(self) -> None:
        n = len(np.asarray(self.cell_id))
        for name in _OPTIONAL_COLUMNS:
            if len(np.asarray(getattr(self, name))) == 0 and n:
                setattr(self, name, np.zeros(n, self._DTYPES[name]))
        for name in CELL_COLUMNS:
            arr: np.ndarray = np.asarray(getattr(self, name), dtype=self._DTYPES[name])
            if arr.ndim != 1 or arr.shape[0] != n:
                raise InvalidInputError(
                    f"CellTable.{name} must be a 1-D array of {n} values (one per cell), got shape {arr.shape}"
                )
            setattr(self, name, arr)

    def __len__(self) -> int:
        return int(self.cell_id.shape[0])

    @classmethod
    def empty(cls) -> CellTable:
        """A table with no rows."""
        return cls(**{name: np.zeros(0, cls._DTYPES[name]) for name in CELL_COLUMNS})

    @classmethod
    def concatenate(cls, tables: list[CellTable]) -> CellTable:
        """Rows of several tables, in order."""
        if not tables:
            return cls.empty()
        return cls(**{name: np.concatenate([getattr(t, name) for t in tables]) for name in CELL_COLUMNS})

    def select(self, rows: np.ndarray) -> CellTable:
        """The rows picked by a boolean mask or an index array."""
        return CellTable(**{name: getattr(self, name)[rows] for name in CELL_COLUMNS})

    def cell_class(self, rules: ScoringRules = DEFAULT_RULES) -> np.ndarray:
        """:func:`classify_cells` of every row."""
        return classify_cells(self.intensity, self.completeness, rules)

    def save_npz(self, path: str | Path | BinaryIO) -> None:
        """Write the table as a compressed ``.npz`` (plain arrays, no pickle)."""
        np.savez_compressed(path, **{name: getattr(self, name) for name in CELL_COLUMNS})

    @classmethod
    def load_npz(cls, path: str | Path) -> CellTable:
        """Read a table written by :meth:`save_npz`."""
        with np.load(path, allow_pickle=False) as data:
            missing = [c for c in CELL_COLUMNS if c not in data.files and c not in _OPTIONAL_COLUMNS]
            if missing:
                raise InvalidInputError(f"{path} is not a her2fast cell table: missing columns {missing}")
            return cls(**{name: data[name] for name in CELL_COLUMNS if name in data.files})


@dataclass(frozen=True)
class ClassFractions:
    """Fractions of tumour cells per :class:`CellClass` and the cumulative fractions the rules test.

    Attributes
    ----------
    n_tumour_cells : int
    per_class : (5,) float64
        Fraction of tumour cells in each :class:`CellClass`, indexed by the class value.
    at_least_faint : float
        Any membrane staining (classes 1-4): the 1+ / ultralow criterion.
    at_least_weak_complete : float
        Weak-to-moderate or intense complete, or intense incomplete (classes 2-4): the 2+ criterion.
    intense_complete : float
        Class 4: the 3+ criterion.
    """

    n_tumour_cells: int
    per_class: np.ndarray
    counts: np.ndarray | None = None  #: (5,) int64 tumour cells per class, when known

    def _cumulative(self, first: int, last: int = len(CellClass)) -> float:
        # From the counts when known: k / n is correctly rounded, so exactly 10 % is never > 0.10,
        # whereas a sum of rounded per-class fractions may be.
        if self.counts is not None and self.n_tumour_cells:
            return int(np.asarray(self.counts)[first:last].sum()) / self.n_tumour_cells
        return float(self.per_class[first:last].sum())

    @property
    def at_least_faint(self) -> float:
        return self._cumulative(1)

    @property
    def at_least_weak_complete(self) -> float:
        return self._cumulative(2)

    @property
    def intense_complete(self) -> float:
        return self._cumulative(CellClass.INTENSE_COMPLETE)

    @property
    def intense_incomplete(self) -> float:
        """Class 3: the unusual pattern."""
        return self._cumulative(CellClass.INTENSE_INCOMPLETE, CellClass.INTENSE_INCOMPLETE + 1)

    def as_percentages(self) -> dict[str, float]:
        """``{class name (lower case): percentage of tumour cells}`` for reports."""
        return {c.name.lower(): round(100.0 * float(self.per_class[c]), 4) for c in CellClass}


@dataclass(frozen=True)
class SlideConfidence:
    """How far a slide's category is from changing, under the sampling uncertainty of its cell counts.

    Attributes
    ----------
    margin_z : float
        Distance of the nearest deciding criterion from its threshold, in binomial standard errors
        (``inf`` when no criterion applies, e.g. no staining on a null slide).
    nearest : str
        The category on the other side of that threshold (e.g. ``"3+"`` for a 2+ slide whose 3+
        criterion is close), or ``""``.
    confidence : float
        ``Phi(margin_z)`` (standard normal CDF), in [0.5, 1]: the one-sided probability that the true
        fraction is on the observed side of the nearest threshold.
    flags : tuple of str
        ``"near_cutoff"`` (margin_z < ``rules.near_cutoff_z``), ``"few_cells"`` (fewer than
        ``rules.min_tumour_cells`` tumour cells), ``"unusual_pattern"`` (2+ only through intense
        incomplete staining), ``"no_tumour_cells"``.
    """

    margin_z: float
    nearest: str
    confidence: float
    flags: tuple[str, ...]


@dataclass(frozen=True)
class SlideSummary:
    """Slide-level membrane statistics of the tumour cells (reports).

    Attributes
    ----------
    n_tumour_cells : int
    percent_complete : float
        % of tumour cells with a stained, complete membrane (completeness >= ``complete_fraction``).
    n_closed : int
        Tumour cells inside a closed membrane loop.
    closed_ratio : float
        ``n_closed / n_tumour_cells`` (0 without tumour cells).
    mean_membrane_od : float
        Mean membrane DAB OD of the stained tumour cells (0 when none is stained).
    """

    n_tumour_cells: int
    percent_complete: float
    n_closed: int
    closed_ratio: float
    mean_membrane_od: float


@dataclass(frozen=True)
class ScoringResult:
    """The slide category and the fractions it was decided from.

    ``stratum`` is the category under the 2023 strata names (:data:`STRATA`), ``confidence`` and
    ``summary`` come from :func:`slide_confidence` and :func:`slide_summary`.
    """

    category: str
    fractions: ClassFractions
    rules: ScoringRules
    stratum: str = ""
    confidence: SlideConfidence | None = None
    summary: SlideSummary | None = None


def intensity_class_from_od(membrane_dab_od: np.ndarray, rules: ScoringRules = DEFAULT_RULES) -> np.ndarray:
    """Intensity class (int8, :class:`IntensityClass`) of measured membrane DAB optical densities.

    Parameters
    ----------
    membrane_dab_od : array_like of float
        DAB OD of each cell's membrane (along the DAB stain vector).
    rules : ScoringRules
        ``faint_od``, ``weak_od`` and ``strong_od`` are the class boundaries.

    Examples
    --------
    >>> intensity_class_from_od([0.0, 0.1, 0.5, 2.0]).tolist()
    [0, 1, 2, 3]
    """
    od = np.asarray(membrane_dab_od, dtype=np.float64)
    edges = np.array([rules.faint_od, rules.weak_od, rules.strong_od])
    return np.searchsorted(edges, od, side="right").astype(np.int8)


def classify_cells(intensity: np.ndarray, completeness: np.ndarray, rules: ScoringRules = DEFAULT_RULES) -> np.ndarray:
    """Per-cell :class:`CellClass` (int8) from membrane intensity class and completeness.

    ======================================  ==========================
    intensity, completeness c               class
    ======================================  ==========================
    NONE, or c == 0                         NEGATIVE
    FAINT (any c)                           FAINT_INCOMPLETE
    WEAK_MODERATE, c < complete_fraction    FAINT_INCOMPLETE (1+ cell)
    WEAK_MODERATE, c >= complete_fraction   WEAK_MODERATE_COMPLETE
    STRONG, c < complete_fraction           INTENSE_INCOMPLETE
    STRONG, c >= complete_fraction          INTENSE_COMPLETE
    ======================================  ==========================

    Parameters
    ----------
    intensity : array_like of int
        :class:`IntensityClass` values (0-3).
    completeness : array_like of float
        Stained fraction of each cell's perimeter, in [0, 1].
    rules : ScoringRules

    Examples
    --------
    >>> classify_cells([0, 1, 2, 2, 3, 3], [0.0, 0.4, 0.5, 0.95, 0.5, 1.0]).tolist()
    [0, 1, 1, 2, 3, 4]
    """
    inten = np.asarray(intensity)
    comp = np.asarray(completeness, dtype=np.float64)
    if inten.shape != comp.shape:
        raise InvalidInputError(
            f"intensity and completeness must have the same shape, got {inten.shape} and {comp.shape}"
        )
    if inten.size and (inten.min() < 0 or inten.max() > 3):
        raise InvalidInputError(
            f"intensity must hold IntensityClass values 0..3, got range {inten.min()}..{inten.max()}"
        )
    if comp.size and (np.isnan(comp).any() or comp.min() < 0 or comp.max() > 1):
        raise InvalidInputError("completeness must be in [0, 1] (fraction of the perimeter stained), without NaN")
    complete = comp >= rules.complete_fraction
    out = np.zeros(inten.shape, np.int8)
    stained = (inten > 0) & (comp > 0)
    out[stained] = CellClass.FAINT_INCOMPLETE
    out[stained & (inten == IntensityClass.WEAK_MODERATE) & complete] = CellClass.WEAK_MODERATE_COMPLETE
    strong = stained & (inten == IntensityClass.STRONG)
    out[strong & ~complete] = CellClass.INTENSE_INCOMPLETE
    out[strong & complete] = CellClass.INTENSE_COMPLETE
    return out


def class_fractions(cell_class: np.ndarray, is_tumour: np.ndarray | None = None) -> ClassFractions:
    """Fractions of tumour cells in each :class:`CellClass`.

    Parameters
    ----------
    cell_class : array_like of int
        Output of :func:`classify_cells`.
    is_tumour : array_like of bool, optional
        Which cells are tumour cells (default: all).
    """
    cls = np.asarray(cell_class)
    if is_tumour is not None:
        tum = np.asarray(is_tumour, dtype=bool)
        if tum.shape != cls.shape:
            raise InvalidInputError(f"is_tumour must have the shape of cell_class {cls.shape}, got {tum.shape}")
        cls = cls[tum]
    n = int(cls.size)
    counts = np.bincount(cls.astype(np.int64).ravel(), minlength=len(CellClass))[: len(CellClass)].astype(np.float64)
    per_class = counts / n if n else counts
    return ClassFractions(n_tumour_cells=n, per_class=per_class, counts=counts.astype(np.int64))


def slide_category(fractions: ClassFractions, rules: ScoringRules = DEFAULT_RULES) -> str:
    """ASCO/CAP category ("0", "0+", "1+", "2+", "3+") from tumour cell class fractions.

    Raises
    ------
    InvalidInputError
        When there are no tumour cells (no category can be given; score more tissue).

    Examples
    --------
    >>> import numpy as np
    >>> slide_category(class_fractions(np.array([4] * 11 + [0] * 89)))
    '3+'
    >>> slide_category(class_fractions(np.array([4] * 10 + [2] + [0] * 89)))  # 10 % is not > 10 %
    '2+'
    """
    if fractions.n_tumour_cells == 0:
        raise InvalidInputError("no tumour cells to score: a category needs at least one tumour cell")
    p = rules.positive_fraction
    if fractions.intense_complete > p:
        return "3+"
    if fractions.at_least_weak_complete > p:
        return "2+"
    if fractions.at_least_faint > p:
        return "1+"
    if fractions.at_least_faint > rules.ultralow_fraction:
        return "0+"
    return "0"


def slide_stratum(fractions: ClassFractions, rules: ScoringRules = DEFAULT_RULES) -> str:
    """The category under the 2023 strata names: "null", "ultralow", "1+", "2+", "3+".

    Examples
    --------
    >>> import numpy as np
    >>> slide_stratum(class_fractions(np.array([1] * 5 + [0] * 95)))
    'ultralow'
    """
    return STRATA[CATEGORIES.index(slide_category(fractions, rules))]


def _normal_cdf(z: float) -> float:
    import math

    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0))) if math.isfinite(z) else (1.0 if z > 0 else 0.0)


def slide_confidence(fractions: ClassFractions, rules: ScoringRules = DEFAULT_RULES) -> SlideConfidence:
    """Margin of the slide category to its nearest cut-off, in binomial standard errors, and flags.

    The category is decided by a cascade of criteria (3+: intense complete > p; 2+: classes 2-4 > p;
    1+: any staining > p; ultralow: any staining > ``rules.ultralow_fraction``). It changes when the
    criterion that decided it falls to its threshold or a higher one rises to its threshold, so only
    those are *deciding*. For each, with ``f`` the observed fraction of ``n`` tumour cells and ``t`` its
    threshold, ``z = (f - t) / sqrt(t (1 - t) / n)`` (a one-sample binomial z); for a null/ultralow line
    at ``t = 0`` the count of stained cells ``k`` gives ``z = sqrt(k)`` (Poisson). ``margin_z`` is the
    smallest ``|z|``; ``confidence = Phi(margin_z)``.

    Parameters
    ----------
    fractions : ClassFractions
    rules : ScoringRules
        ``positive_fraction``, ``ultralow_fraction``, ``near_cutoff_z``, ``min_tumour_cells``.

    Returns
    -------
    SlideConfidence

    Examples
    --------
    >>> import numpy as np
    >>> c = slide_confidence(class_fractions(np.array([4] * 105 + [0] * 895)))  # 10.5 % 3+ cells
    >>> c.nearest, round(c.margin_z, 2), c.flags
    ('2+', 0.53, ('near_cutoff',))
    """
    import math

    n = fractions.n_tumour_cells
    if n == 0:
        return SlideConfidence(margin_z=0.0, nearest="", confidence=0.5, flags=("no_tumour_cells",))
    p = rules.positive_fraction
    u = rules.ultralow_fraction
    k_stained = int(round(fractions.at_least_faint * n))

    def z_of(f: float, thr: float) -> float:
        if 0.0 < thr < 1.0:
            return (f - thr) / math.sqrt(thr * (1.0 - thr) / n)
        return math.sqrt(k_stained) if k_stained else -math.inf  # a line at 0: Poisson on the count

    # (criterion holds, z, category above the line, category below it), in cascade order
    lines = [
        (fractions.intense_complete > p, z_of(fractions.intense_complete, p), "3+", "2+"),
        (fractions.at_least_weak_complete > p, z_of(fractions.at_least_weak_complete, p), "2+", "1+"),
        (fractions.at_least_faint > p, z_of(fractions.at_least_faint, p), "1+", "0+"),
        (fractions.at_least_faint > u, z_of(fractions.at_least_faint, u), "0+", "0"),
    ]
    margin, nearest = math.inf, ""
    for holds, z, above, below in lines:
        if math.isfinite(z) and abs(z) <= margin:  # ties: the lower line (the nearer category)
            margin, nearest = abs(z), (below if holds else above)
        if holds:
            break  # lower criteria cannot change the category
    flags = []
    if margin < rules.near_cutoff_z:
        flags.append("near_cutoff")
    if n < rules.min_tumour_cells:
        flags.append("few_cells")
    if (
        slide_category(fractions, rules) == "2+"
        and fractions.at_least_weak_complete - fractions.intense_incomplete <= p
    ):
        flags.append("unusual_pattern")
    return SlideConfidence(margin_z=margin, nearest=nearest, confidence=_normal_cdf(margin), flags=tuple(flags))


def slide_summary(cells: CellTable, rules: ScoringRules = DEFAULT_RULES) -> SlideSummary:
    """% complete membranes, closed-membrane count and ratio, mean membrane OD of the tumour cells."""
    t = cells.select(cells.is_tumour)
    n = len(t)
    stained = (t.intensity > 0) & (t.completeness > 0)
    complete = stained & (t.completeness.astype(np.float64) >= rules.complete_fraction)
    n_closed = int(t.closed.sum())
    return SlideSummary(
        n_tumour_cells=n,
        percent_complete=100.0 * int(complete.sum()) / n if n else 0.0,
        n_closed=n_closed,
        closed_ratio=n_closed / n if n else 0.0,
        mean_membrane_od=float(t.membrane_dab_od[stained].astype(np.float64).mean()) if stained.any() else 0.0,
    )


def score_cells(cells: CellTable, rules: ScoringRules = DEFAULT_RULES) -> ScoringResult:
    """Classify the cells of a table and give the slide category, stratum, confidence and summary.

    Pure (no I/O). Raises :class:`~her2fast.errors.InvalidInputError` without tumour cells.
    """
    fr = class_fractions(cells.cell_class(rules), cells.is_tumour)
    category = slide_category(fr, rules)
    return ScoringResult(
        category=category,
        fractions=fr,
        rules=rules,
        stratum=STRATA[CATEGORIES.index(category)],
        confidence=slide_confidence(fr, rules),
        summary=slide_summary(cells, rules),
    )
