"""The parameters of the cell stage: :class:`CellSettings` and its defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...errors import InvalidInputError
from ...scoring import DEFAULT_RULES, ScoringRules

__all__ = ["CellSettings", "DEFAULT_CELL_SETTINGS"]


@dataclass(frozen=True)
class CellSettings:
    """Parameters of :func:`measure_tile` (lengths in micrometres, converted with the tile's ``mpp``).

    Parameters
    ----------
    membrane_threshold : float
        Membrane probability at or above which a pixel is membrane (0.5; a boolean mask is 0/1).
    max_radius_um : float
        No cell reaches farther than this from its nucleus centre (12 um: the largest tumour cells are
        ~20 um across, and the nucleus may sit off-centre). The tile margin must be at least this wide;
        ``2 * max_radius_um`` makes the result independent of the tile grid.
    n_rays : int
        Rays per cell for completeness, intensity and thickness (72: 5 degree steps).
    outside_reach_um : float
        A ray that leaves its territory still counts membrane met less than this far beyond it (0.5 um,
        one pixel at 0.5 um/px): a tolerance band for where the territory edge falls inside a membrane
        one to two pixels wide (the optics blur it by sigma 0.35-0.5 um, so the split of a membrane
        between two cells is uncertain by about a pixel). With 0 a cell whose neighbour took the
        outer membrane pixels loses those rays: on held-out phantom tiles with the U-Net membrane,
        truly complete cells were measured complete in 60 % of cases with 0 and 80 % with 0.5 um
        (``benchmarks/diagnose_cells.py``). The band (like ``cap_reach_um``) widens the coverage of a
        cell that has membrane in its own territory only: whether a cell is stained, its OD and its
        thickness come from its own territory, so an unstained cell does not become stained through a
        neighbour's membrane.
    cap_reach_um : float
        A ray that leaves its territory at the radius cap (at a pixel farther than ``max_radius_um``
        from the centre) still finds membrane this far beyond it (4 um): the cap bounds
        the watershed, not the cell (on 800-px phantom tiles half the tumour cells reach more than 12 um
        from their nucleus centre, 4 % more than 16 um), and the membrane of such a cell lies beyond it.
        Only the membrane mask is read there, so the tile margin needed stays ``max_radius_um +
        cap_reach_um`` <= ``2 * max_radius_um``.
    membrane_od_weight : float
        On membrane pixels the landscape of the territories is ``probability + weight * min(OD / 3, 1)``,
        flooded with the ``climb`` rule of :func:`seeded_watershed`: neighbouring territories then split
        a membrane at the ridge of its stain, and a membrane stained on one side only (the stain rising
        from inside its own cell) goes to that cell. 0 splits on the probability alone.
    max_gap_deg : float
        Gaps in the membrane narrower than this (seen from the centre) are not gaps: a run of uncovered
        rays this narrow between covered ones counts as covered (15 degrees, ~2 um on a 16 um cell:
        junctions of three cells, a pixel of membrane taken by the neighbour).
    max_run_um : float
        Longest membrane run followed along a ray (a ray grazing a membrane).
    min_nucleus_um2 : float
        Smaller nucleus components are ignored (noise).
    min_loop_um2 : float
        Enclosed nucleus-free regions at least this large (and within ``max_radius_um`` of their
        centre) are counted as artefact loops; smaller ones are holes in a thick membrane.
    far_side_weight : float
        Weight ``w`` of the far side in the own-side gate of the membrane OD (0.9): per covered ray the
        run's peak OD is multiplied by ``clip((inner - w * outer) / ((1 - w) * inner), 0, 1)``, where
        ``inner`` / ``outer`` are the mean DAB OD 0.5-1.5 um inside / outside the membrane ridge. A
        cell's own membrane stain lies on its side of the boundary; a neighbour's membrane, seen through
        the blur, lies mostly on the far side. Gate 1: an isolated membrane, or two neighbours stained
        alike; 0: the stain is the neighbour's. 0 switches the gate off (always 1).
    intensity_quantile : float
        The per-cell membrane OD is this quantile (lower) of the gated peak ODs of the covered rays
        (0.75).
    cytoplasm_weight : float
        The per-cell ``membrane_dab_od`` is the gated membrane OD minus this times the cell's
        cytoplasmic DAB (the mean DAB OD of its territory pixels at least ``cytoplasm_gap_um`` from any
        membrane pixel and off nuclei), at least 0 (1). ASCO/CAP scores membrane staining and
        disregards cytoplasmic staining; without the subtraction the same membrane class read ~1.5x
        higher on phantoms with cytoplasmic blush and submembranous stain, and no single strong band
        suited every preset (docs/scoring.md). 0 switches it off (then use bands 0.05 / 0.23 / 1.20).
    cytoplasm_gap_um : float
        A territory pixel counts as cytoplasm when it lies more than this from every membrane pixel
        (1.5 um; at most ``max_radius_um``).
    rules : ScoringRules
        The OD bands of the intensity classes (:func:`her2fast.scoring.intensity_class_from_od`).
    """

    membrane_threshold: float = 0.5
    max_radius_um: float = 12.0
    n_rays: int = 72
    outside_reach_um: float = 0.5
    cap_reach_um: float = 4.0
    membrane_od_weight: float = 1.0
    max_gap_deg: float = 15.0
    max_run_um: float = 5.0
    min_nucleus_um2: float = 6.0
    min_loop_um2: float = 12.0
    far_side_weight: float = 0.9
    intensity_quantile: float = 0.75
    cytoplasm_weight: float = 1.0
    cytoplasm_gap_um: float = 1.5
    rules: ScoringRules = field(default_factory=lambda: DEFAULT_RULES)

    def __post_init__(self) -> None:
        if not 0.0 < self.membrane_threshold <= 1.0:
            raise InvalidInputError(f"membrane_threshold must be in (0, 1], got {self.membrane_threshold}")
        for name in ("max_radius_um", "max_run_um"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise InvalidInputError(f"{name} must be finite and > 0, got {v}")
        if self.cytoplasm_gap_um > self.max_radius_um:
            raise InvalidInputError(
                f"cytoplasm_gap_um must be <= max_radius_um, got {self.cytoplasm_gap_um} > {self.max_radius_um}"
            )
        if self.cap_reach_um > self.max_radius_um:
            raise InvalidInputError(
                f"cap_reach_um must be <= max_radius_um (the margin holds 2 * max_radius_um), "
                f"got {self.cap_reach_um} > {self.max_radius_um}"
            )
        for name in (
            "outside_reach_um",
            "cap_reach_um",
            "min_nucleus_um2",
            "min_loop_um2",
            "membrane_od_weight",
            "max_gap_deg",
            "cytoplasm_weight",
            "cytoplasm_gap_um",
        ):
            v = getattr(self, name)
            if not (np.isfinite(v) and v >= 0):
                raise InvalidInputError(f"{name} must be finite and >= 0, got {v}")
        if (
            isinstance(self.n_rays, bool)
            or not isinstance(self.n_rays, (int, np.integer))
            or not 4 <= self.n_rays <= 4096
        ):
            raise InvalidInputError(f"n_rays must be an integer in 4..4096, got {self.n_rays!r}")
        if not (np.isfinite(self.far_side_weight) and 0.0 <= self.far_side_weight < 1.0):
            raise InvalidInputError(f"far_side_weight must be in [0, 1), got {self.far_side_weight}")
        if not (np.isfinite(self.intensity_quantile) and 0.0 <= self.intensity_quantile <= 1.0):
            raise InvalidInputError(f"intensity_quantile must be in [0, 1], got {self.intensity_quantile}")
        if not isinstance(self.rules, ScoringRules):
            raise InvalidInputError(f"rules must be a ScoringRules, got {type(self.rules).__name__}")


DEFAULT_CELL_SETTINGS = CellSettings()
