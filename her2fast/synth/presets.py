"""Slide composition presets: which tumour cells express HER2 how, for each ASCO/CAP category.

A preset gives, for one or more *expression regions* (a heterogeneous slide has several), the
fraction of tumour cells in each :class:`her2fast.scoring.CellClass`, plus the confounders (cytoplasmic
DAB blush, non-specific stromal DAB). The category a preset claims is checked against
:func:`her2fast.scoring.score_cells` on the cells actually generated (tests do this for every preset).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InvalidInputError
from ..scoring import CATEGORIES

__all__ = ["RegionMix", "Preset", "PRESETS", "get_preset", "preset_names"]


@dataclass(frozen=True)
class RegionMix:
    """One expression region of a phantom.

    Parameters
    ----------
    share : float
        Share of the tumour cells that lie in this region (shares of a preset sum to 1).
    mixture : tuple of 5 floats
        Fraction of the region's tumour cells in each CellClass, in order NEGATIVE, FAINT_INCOMPLETE,
        WEAK_MODERATE_COMPLETE, INTENSE_INCOMPLETE, INTENSE_COMPLETE (sums to 1).
    """

    share: float
    mixture: tuple[float, float, float, float, float]

    def __post_init__(self) -> None:
        if len(self.mixture) != 5 or min(self.mixture) < 0 or abs(sum(self.mixture) - 1.0) > 1e-9:
            raise InvalidInputError(
                f"RegionMix.mixture must be 5 non-negative fractions summing to 1, got {self.mixture}"
            )
        if not 0.0 < self.share <= 1.0:
            raise InvalidInputError(f"RegionMix.share must be in (0, 1], got {self.share}")


@dataclass(frozen=True)
class Preset:
    """A slide composition: expression regions, tissue make-up and confounders.

    Parameters
    ----------
    name : str
        ``"<category>/<variant>"``, e.g. ``"2+/unusual"``.
    category : str
        The ASCO/CAP category the composition produces (checked by the tests).
    description : str
    regions : tuple of RegionMix
    tumour_fraction : float
        Share of the tissue area covered by tumour nests.
    blush_od : float
        Mean cytoplasmic DAB OD of stained tumour cells (a confounder; scales with intensity class).
    stroma_dab_od : float
        Mean non-specific DAB OD of the stroma (a confounder).
    counterstain : float
        Hematoxylin strength of nuclei (labs differ; 1 = the reference; jittered +-10 % per slide).
    submembrane : float
        Diffuse DAB just inside stained membranes, as a fraction of the membrane OD (decays over ~1.6 um).
    """

    name: str
    category: str
    description: str
    regions: tuple[RegionMix, ...]
    tumour_fraction: float = 0.5
    blush_od: float = 0.02
    stroma_dab_od: float = 0.015
    counterstain: float = 1.0
    submembrane: float = 0.08

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise InvalidInputError(f"Preset.category must be one of {CATEGORIES}, got {self.category!r}")
        if abs(sum(r.share for r in self.regions) - 1.0) > 1e-9:
            raise InvalidInputError(f"preset {self.name}: region shares must sum to 1")


def _p(name: str, description: str, *regions: tuple[float, tuple[float, ...]], **kw: float) -> Preset:
    return Preset(
        name=name,
        category=name.split("/")[0],
        description=description,
        regions=tuple(RegionMix(share, tuple(mix)) for share, mix in regions),  # type: ignore[arg-type]
        **kw,
    )


#        NEG    1+cell 2+cell intense-incompl 3+cell
PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        _p("0/typical", "HER2-null: no membrane staining", (1.0, (1.0, 0, 0, 0, 0)), blush_od=0.0, stroma_dab_od=0.01),
        _p(
            "0+/typical",
            "HER2-ultralow: faint incomplete staining in ~5 % of tumour cells",
            (1.0, (0.95, 0.05, 0, 0, 0)),
            blush_od=0.01,
        ),
        _p(
            "0+/near-threshold",
            "ultralow just under the 10 % line (~8 % faint incomplete)",
            (1.0, (0.92, 0.08, 0, 0, 0)),
            blush_od=0.01,
        ),
        _p(
            "1+/typical",
            "faint incomplete staining in ~55 % of tumour cells, a few 2+ cells",
            (1.0, (0.40, 0.55, 0.05, 0, 0)),
            counterstain=1.8,
            blush_od=0.04,
            stroma_dab_od=0.04,
        ),
        _p(
            "1+/near-threshold",
            "just over the 10 % line (~13 % faint incomplete)",
            (1.0, (0.87, 0.13, 0, 0, 0)),
            counterstain=1.8,
            stroma_dab_od=0.04,
        ),
        _p(
            "2+/typical",
            "weak-to-moderate complete staining in ~37 % of tumour cells, 8 % intense incomplete, 8 % 3+ cells",
            (1.0, (0.12, 0.35, 0.37, 0.08, 0.08)),
            blush_od=0.12,
            stroma_dab_od=0.05,
            submembrane=0.45,
            tumour_fraction=0.6,
        ),
        _p(
            "2+/near-threshold",
            "~13 % weak-to-moderate complete, most others 1+",
            (1.0, (0.30, 0.55, 0.13, 0.0, 0.02)),
            blush_od=0.03,
        ),
        _p(
            "2+/unusual",
            "intense but incomplete (basolateral-like) staining in ~30 % of tumour cells",
            (1.0, (0.30, 0.36, 0.04, 0.30, 0.0)),
            blush_od=0.03,
        ),
        _p(
            "2+/heterogeneous",
            "a 2+ region and a 1+ region that is still >10 % 2+ cells",
            (0.5, (0.15, 0.40, 0.40, 0, 0.05)),
            (0.5, (0.40, 0.47, 0.13, 0, 0)),
            blush_od=0.03,
        ),
        _p(
            "3+/typical",
            "intense complete staining in ~65 % of tumour cells",
            (1.0, (0.03, 0.07, 0.20, 0.05, 0.65)),
            blush_od=0.12,
            stroma_dab_od=0.06,
            submembrane=0.3,
            tumour_fraction=0.6,
        ),
        _p(
            "3+/near-threshold",
            "~13 % intense complete, many 2+ cells",
            (1.0, (0.20, 0.30, 0.35, 0.02, 0.13)),
            blush_od=0.04,
            stroma_dab_od=0.02,
        ),
        _p(
            "3+/heterogeneous",
            "a 3+ region (35 %) next to a 1+ region: ~23 % intense complete overall",
            (0.35, (0.03, 0.07, 0.20, 0.05, 0.65)),
            (0.65, (0.40, 0.55, 0.05, 0, 0)),
            blush_od=0.05,
            stroma_dab_od=0.025,
        ),
    ]
}


def preset_names() -> list[str]:
    """All preset names, ``"<category>/<variant>"``."""
    return list(PRESETS)


def get_preset(category: str, variant: str = "typical") -> Preset:
    """The preset ``f"{category}/{variant}"``; the error lists the valid names."""
    name = f"{category}/{variant}"
    if name not in PRESETS:
        if category not in CATEGORIES:
            raise InvalidInputError(f"category must be one of {', '.join(CATEGORIES)}, got {category!r}")
        valid = [n.split("/")[1] for n in PRESETS if n.startswith(category + "/")]
        raise InvalidInputError(f"variant {variant!r} does not exist for category {category}; choose one of {valid}")
    return PRESETS[name]
