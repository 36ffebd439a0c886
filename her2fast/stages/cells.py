"""Cells and membranes: skeletons, closed loops, nucleus-seeded cell territories, per-cell membrane
measurements, and seam-correct tile merging (native kernels, GIL released).

Primitives:

- :func:`membrane_skeleton` -- one-pixel-wide, topology-preserving skeleton of a membrane mask;
- :func:`enclosed_regions` -- the regions of a tile cut out by the skeleton; a region that does not
  reach the tile border is enclosed by a **closed** membrane loop;
- :func:`seeded_watershed` -- nucleus-seeded territories (scikit-image's watershed plus a membrane
  barrier and a per-cell radius limit);
- :func:`membrane_rays` -- the membrane met by rays from each nucleus centre.

Per tile (:func:`measure_tile`) and per slide (:func:`merge_cell_tables`):

1. **Nuclei** (a mask, split into 8-connected components, or a label map) are the cells: one cell per
   nucleus of at least ``min_nucleus_um2``. Its centre is the nucleus centroid, kept exactly as an
   integer pixel plus a fraction (the sums of integer pixel positions), so every tile computes the
   same centre bit for bit.
2. **Territories**: a seeded watershed from the nuclei over the membrane probability (4-connected,
   ties first-in first-out), where a flood that climbed into membrane (probability >=
   ``membrane_threshold``) runs along it but does not come down on the far side, and no cell reaches
   farther than ``max_radius_um`` from its centre. On membrane the landscape is raised by the DAB OD
   and a flood that climbs gently to a ridge takes it from one that merely touched it (``climb``), so
   neighbouring territories split a membrane at its stain ridge and a membrane stained from one side
   only belongs to that side's cell. A cell without membrane ends at the radius limit or at its
   neighbours.
3. **Membrane per cell**, along ``n_rays`` rays from the centre (exact grid traversal, so a ray cannot
   slip through a one-pixel membrane line): a ray is *covered* when it meets membrane inside the
   territory or less than ``outside_reach_um`` (0.5 um) beyond it, or -- when the territory was cut by
   the radius limit -- less than ``cap_reach_um`` (4 um) beyond the cap. ``completeness`` = covered fraction of the rays (the angle-weighted fraction of the
   territory boundary covered by membrane, as the phantom defines it); ``membrane_dab_od`` = the 75th
   percentile (``intensity_quantile``) over covered rays of the peak DAB OD of the membrane run, each
   multiplied by an own-side gate in [0, 1]: the mean OD 0.5-1.5 um inside the membrane ridge against
   ``far_side_weight`` (0.9) times that outside it, so a ray whose stain is a neighbour's membrane seen
   through the blur counts ~0 (``far_side_weight=0, intensity_quantile=0.5`` gives the former median
   of the run peaks), minus the cell's cytoplasmic DAB (``cytoplasm_weight``: the mean DAB OD of its
   territory >= 1.5 um from membrane, off nuclei; ASCO/CAP disregards cytoplasmic staining); ``intensity`` = :func:`her2fast.scoring.intensity_class_from_od` of it; ``membrane_thickness`` =
   median length of the runs (um).
4. **Closed membranes**: the membrane mask's skeleton (:func:`membrane_skeleton`) cuts the tile into
   regions (:func:`enclosed_regions`); a cell is ``closed`` when the region at its centre is enclosed,
   holds no other nucleus centre and lies within ``max_radius_um`` of the centre. Enclosed, cell-sized
   regions without any nucleus are artefacts (stain rings, holes in thick membrane): they make no cell
   and are only counted (``TileCells.n_artefact_loops``).
5. **Ownership**: a tile is measured with its overlap margin, and returns only the cells whose centre
   lies in its core (tested with exact integer arithmetic), so a cell cut by a tile edge is measured
   whole by exactly one tile, and is closed if it is closed. With a margin of at least
   ``2 * max_radius_um`` the result does not depend on where the tile grid lies (tested in
   ``tests/test_cells_seams.py``).

Coordinates: :func:`measure_tile` takes the padded tile's ``origin`` and its ``core`` in *working*
pixels (the :class:`her2fast.stages.tissue.TileGrid`'s, pixel ``(i, j)`` centred at ``x = j, y = i``) and gives
cell centres in working pixels; :func:`merge_cell_tables` scales them to level-0 pixels with the grid's
``level0_per_pixel``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .. import _native
from ..errors import InvalidInputError
from ..scoring import DEFAULT_RULES, CellTable, ScoringRules, intensity_class_from_od

__all__ = [
    "membrane_skeleton",
    "enclosed_regions",
    "RegionTable",
    "seeded_watershed",
    "membrane_rays",
    "CellSettings",
    "TileCells",
    "measure_tile",
    "merge_cell_tables",
]


def _as_mask(mask: object, name: str) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise InvalidInputError(f"{name} must be 2-D (H, W), got shape {arr.shape}")
    if arr.size == 0:
        raise InvalidInputError(f"{name} must not be empty, got shape {arr.shape}")
    if arr.dtype != np.bool_ and not np.issubdtype(arr.dtype, np.integer):
        raise InvalidInputError(f"{name} must be boolean or integer (nonzero = membrane), got dtype {arr.dtype}")
    return np.ascontiguousarray(arr != 0).view(np.uint8)


def membrane_skeleton(membrane_mask: np.ndarray, *, max_iter: int | None = None) -> np.ndarray:
    """One-pixel-wide skeleton of a membrane mask (Guo-Hall thinning, C++, GIL released).

    Equal, pixel for pixel, to ``skimage.morphology.thin(membrane_mask, max_num_iter)``: 8-connected
    lines that keep the mask's topology (a closed membrane stays a closed loop, a gap stays a gap).

    Parameters
    ----------
    membrane_mask : (H, W) ndarray of bool or integers
        Membrane pixels (nonzero).
    max_iter : int, optional
        Stop after this many thinning iterations (default: until nothing changes).

    Returns
    -------
    skeleton : (H, W) ndarray of bool

    Raises
    ------
    InvalidInputError
        (a ``ValueError``) for a mask that is not 2-D, empty, or not boolean/integer, or
        ``max_iter < 1``.

    References
    ----------
    .. [1] Z. Guo, R. W. Hall, "Parallel thinning with two-subiteration algorithms",
           Communications of the ACM 32(3), 359-373, 1989. :DOI:`10.1145/62065.62074`

    Examples
    --------
    >>> import numpy as np
    >>> bar = np.zeros((5, 9), bool); bar[1:4, 1:8] = True
    >>> membrane_skeleton(bar).sum(axis=1).tolist()
    [0, 0, 5, 0, 0]
    """
    m = _as_mask(membrane_mask, "membrane_mask")
    if max_iter is not None and (not isinstance(max_iter, (int, np.integer)) or max_iter < 1):
        raise InvalidInputError(f"max_iter must be a positive integer or None, got {max_iter!r}")
    skeleton, _ = _native.thin(m, -1 if max_iter is None else int(max_iter))
    return skeleton.view(np.bool_)


@dataclass(frozen=True)
class RegionTable:
    """Regions cut out by a membrane skeleton.

    Attributes
    ----------
    labels : (H, W) ndarray of int32
        Region id 0..n-1 per pixel (raster order of first pixel), -1 on the skeleton.
    area : (n,) ndarray of int64
        Pixels per region.
    touches_border : (n,) ndarray of bool
        True where the region reaches the image border; the others are enclosed (closed loops).
    """

    labels: np.ndarray
    area: np.ndarray
    touches_border: np.ndarray

    @property
    def closed(self) -> np.ndarray:
        """Boolean per region: enclosed by the skeleton (does not reach the border)."""
        return ~self.touches_border

    def __len__(self) -> int:
        return int(self.area.shape[0])


def enclosed_regions(skeleton: np.ndarray) -> RegionTable:
    """4-connected regions of the pixels off a skeleton, with area and border contact (C++).

    Parameters
    ----------
    skeleton : (H, W) ndarray of bool or integers
        Skeleton pixels (nonzero), e.g. from :func:`membrane_skeleton`. 8-connected skeleton lines
        separate 4-connected regions, so a closed loop always encloses its own region.

    Returns
    -------
    RegionTable

    Examples
    --------
    >>> import numpy as np
    >>> ring = np.zeros((7, 7), bool); ring[1:6, 1:6] = True; ring[2:5, 2:5] = False
    >>> table = enclosed_regions(ring)
    >>> len(table), table.closed.tolist(), table.area.tolist()
    (2, [False, True], [24, 9])
    """
    s = _as_mask(skeleton, "skeleton")
    labels, area, border = _native.enclosed_regions(s)
    return RegionTable(labels=labels, area=area, touches_border=border.view(np.bool_))


# ----------------------------------------------------------------------------------- territories
def _as_2d(arr: object, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    a = np.asarray(arr)
    if a.ndim != 2:
        raise InvalidInputError(f"{name} must be 2-D (H, W), got shape {a.shape}")
    if a.size == 0:
        raise InvalidInputError(f"{name} must not be empty, got shape {a.shape}")
    if shape is not None and a.shape != shape:
        raise InvalidInputError(f"{name} must have the shape of the membrane map {shape}, got {a.shape}")
    return a


def _as_float_map(arr: object, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    a = _as_2d(arr, name, shape)
    if not (a.dtype == np.bool_ or np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise InvalidInputError(f"{name} must hold real numbers, got dtype {a.dtype}")
    out = np.ascontiguousarray(a, dtype=np.float32)
    if not np.isfinite(out).all():
        raise InvalidInputError(f"{name} must be finite (no NaN or inf)")
    return out


def _split_centres(centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, 2) float centres -> integer base pixel and fraction in [0, 1)."""
    base = np.floor(centres)
    frac = centres - base
    wrap = frac >= 1.0  # e.g. -1e-17 - floor(-1e-17) rounds to 1.0
    base = np.where(wrap, base + 1, base)
    frac = np.where(wrap, 0.0, frac)
    return np.ascontiguousarray(base, dtype=np.int32), np.ascontiguousarray(frac, dtype=np.float64)


def seeded_watershed(
    elevation: np.ndarray,
    markers: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    barrier: float | None = None,
    max_radius: float | None = None,
    centres: np.ndarray | None = None,
    climb: bool = False,
    connectivity: int = 4,
) -> np.ndarray:
    """Marker-controlled watershed with a membrane barrier and a radius limit (C++, GIL released).

    Without ``barrier``, ``max_radius`` and ``climb`` it equals
    ``skimage.segmentation.watershed(elevation, markers, connectivity=1 (4) or 2 (8), mask=mask)`` on
    inputs without ties (priority flood; a pixel takes the label of the neighbour that reaches it
    first; ties first-in first-out, markers entering in raster order, where scikit-image's order of
    equal-valued markers is its heap's).

    Parameters
    ----------
    elevation : (H, W) array of float
        The landscape, e.g. a membrane probability map (finite).
    markers : (H, W) array of int
        Seeds: labels 1..n (0 = unlabelled), e.g. a nucleus label map.
    mask : (H, W) array of bool, optional
        Only these pixels may be labelled.
    barrier : float, optional
        A flood that reached a non-seed pixel with ``elevation >= barrier`` (membrane) passes its label
        only to pixels that are also ``>= barrier``: territories stop at membranes.
    max_radius : float, optional
        Label k claims only pixels within this distance (pixels) of ``centres[k - 1]``.
    centres : (n, 2) array of float, optional
        ``(x, y)`` centre of each label 1..n (pixel ``(i, j)`` is centred at ``x = j, y = i``); required
        with ``max_radius``.
    climb : bool
        A pixel claimed but still waiting in the queue goes to a later flood that reaches it from
        strictly higher ground while still strictly climbing (never on a plateau). At a cliff (a stained membrane rising gently from
        its own cell and dropping sharply into an unstained neighbour) the ridge then belongs to the
        cell it rises from, not to the neighbour that touched it first.
    connectivity : {4, 8}
        Pixel neighbourhood of the flood.

    Returns
    -------
    labels : (H, W) ndarray of int32
        1..n, or 0 where no flood arrived.

    References
    ----------
    .. [1] S. Beucher, F. Meyer, "The morphological approach to segmentation: the watershed
           transformation", in Mathematical Morphology in Image Processing, 1993, 433-481.

    Examples
    --------
    >>> import numpy as np
    >>> elev = np.array([[0, 0, 1, 0, 0]], np.float32)
    >>> seeded_watershed(elev, np.array([[1, 0, 0, 0, 0]])).tolist()
    [[1, 1, 1, 1, 1]]
    >>> seeded_watershed(elev, np.array([[1, 0, 0, 0, 0]]), barrier=0.5).tolist()
    [[1, 1, 1, 0, 0]]
    """
    elev = _as_float_map(elevation, "elevation")
    mk = _as_2d(markers, "markers", elev.shape)
    if not np.issubdtype(mk.dtype, np.integer):
        raise InvalidInputError(f"markers must be an integer label map, got dtype {mk.dtype}")
    if mk.min() < 0:
        raise InvalidInputError(f"markers must be >= 0, got minimum {mk.min()}")
    n = int(mk.max())
    if n >= 2**30:
        raise InvalidInputError(f"markers must be < 2**30, got maximum {n}")
    mk = np.ascontiguousarray(mk, dtype=np.int32)
    m = None if mask is None else np.ascontiguousarray(_as_2d(mask, "mask", elev.shape) != 0).view(np.uint8)
    bar = np.inf if barrier is None else float(barrier)
    if np.isnan(bar):
        raise InvalidInputError("barrier must be a number, got NaN")
    base = frac = None
    radius = -1.0
    if max_radius is not None:
        radius = float(max_radius)
        if not (np.isfinite(radius) and radius >= 0):
            raise InvalidInputError(f"max_radius must be finite and >= 0, got {max_radius!r}")
        if centres is None:
            raise InvalidInputError("centres are required with max_radius (one (x, y) per label)")
        c = np.asarray(centres, dtype=np.float64)
        if c.shape != (n, 2) or not np.isfinite(c).all():
            raise InvalidInputError(f"centres must be a finite (n_labels, 2) = ({n}, 2) array, got shape {c.shape}")
        base, frac = _split_centres(np.vstack([np.zeros((1, 2)), c]))
    if connectivity not in (4, 8):
        raise InvalidInputError(f"connectivity must be 4 or 8, got {connectivity!r}")
    return _native.seeded_watershed(elev, mk, n, m, bar, radius, base, frac, bool(climb), int(connectivity))


def membrane_rays(
    territories: np.ndarray,
    membrane_mask: np.ndarray,
    dab_od: np.ndarray,
    centres: np.ndarray,
    *,
    n_rays: int = 72,
    max_length: float = 30.0,
    outside_reach: float = 0.0,
    max_run: float = 10.0,
    cap_radius: float | None = None,
    cap_reach: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """The membrane met by rays from each cell centre (C++, GIL released).

    For cell k (territory label k + 1) and ``n_rays`` directions ``2 pi (r + 1/2) / n_rays``, the ray
    from ``centres[k]`` is walked pixel by pixel (exact grid traversal, Amanatides & Woo 1987). The ray
    is covered at the first membrane pixel inside the territory, or less than ``outside_reach`` pixels
    after it leaves the territory (0: own membrane only); from there the run of membrane pixels of that
    territory is followed for at most ``max_run`` pixels. With ``cap_radius`` (the ``max_radius`` of the
    :func:`seeded_watershed` that made the territories), a ray that leaves its territory at a pixel
    farther than ``cap_radius - 1.5`` from the centre was cut by the radius limit, not by a neighbour or
    by membrane: membrane (of any territory) up to ``cap_radius + cap_reach`` from the centre counts.
    Only geometry decides this, not the label beyond, so the result does not depend on the tile grid.

    Parameters
    ----------
    territories : (H, W) array of int
        Cell territories, labels 1..n (e.g. from :func:`seeded_watershed`).
    membrane_mask : (H, W) array of bool
    dab_od : (H, W) array of float
        DAB optical density.
    centres : (n, 2) array of float
        ``(x, y)`` of each cell (pixel ``(i, j)`` is centred at ``x = j, y = i``).
    n_rays : int
    max_length, outside_reach, max_run : float
        In pixels.
    cap_radius : float, optional
        Radius limit of the territories (pixels); None: no radius-cap rule.
    cap_reach : float
        Reach beyond the radius cap (pixels).

    Returns
    -------
    run_length : (n, n_rays) ndarray of float32
        Length (pixels) of the membrane run along each ray; 0 where the ray is not covered.
    peak_od : (n, n_rays) ndarray of float32
        Largest DAB OD along the run; 0 where the ray is not covered.

    References
    ----------
    .. [1] J. Amanatides, A. Woo, "A fast voxel traversal algorithm for ray tracing", Eurographics 1987.
    """
    lab = _as_2d(territories, "territories")
    if not np.issubdtype(lab.dtype, np.integer):
        raise InvalidInputError(f"territories must be an integer label map, got dtype {lab.dtype}")
    mem = _as_mask(_as_2d(membrane_mask, "membrane_mask", lab.shape), "membrane_mask")
    od = _as_float_map(dab_od, "dab_od", lab.shape)
    c = np.asarray(centres, dtype=np.float64).reshape(-1, 2) if np.size(centres) else np.zeros((0, 2))
    if not np.isfinite(c).all():
        raise InvalidInputError("centres must be finite")
    if isinstance(n_rays, bool) or not isinstance(n_rays, (int, np.integer)) or not 1 <= n_rays <= 4096:
        raise InvalidInputError(f"n_rays must be an integer in 1..4096, got {n_rays!r}")
    for name, v in (("max_length", max_length), ("max_run", max_run)):
        if not (np.isfinite(v) and v > 0):
            raise InvalidInputError(f"{name} must be finite and > 0, got {v!r}")
    for name, v in (("outside_reach", outside_reach), ("cap_reach", cap_reach)):
        if not (np.isfinite(v) and v >= 0):
            raise InvalidInputError(f"{name} must be finite and >= 0, got {v!r}")
    if cap_radius is not None and not (np.isfinite(cap_radius) and cap_radius >= 0):
        raise InvalidInputError(f"cap_radius must be finite and >= 0 or None, got {cap_radius!r}")
    base, frac = _split_centres(c)
    return _rays(
        np.ascontiguousarray(lab, dtype=np.int32),
        mem,
        od,
        base,
        frac,
        int(n_rays),
        float(max_length),
        float(outside_reach),
        float(max_run),
        np.inf if cap_radius is None else float(cap_radius),
        float(cap_reach),
    )


def _rays(
    lab,
    mem,
    od,
    base,
    frac,
    n_rays,
    max_length,
    outside_reach,
    max_run,
    cap_radius=np.inf,
    cap_reach=0.0,
    cell_labels=None,
):
    """Native membrane_rays; ``cell_labels[k]``: the territory label of centre k (default k + 1)."""
    if base.shape[0] == 0:
        z = np.zeros((0, n_rays), np.float32)
        return z, z.copy()
    return _native.membrane_rays(
        lab, mem, od, base, frac, n_rays, max_length, outside_reach, max_run, cap_radius, cap_reach, cell_labels
    )


_STEP_PX = 0.25  # sampling step along a ray (pixels) of the own-side gate


def _gated_membrane_od(od, lab, mem, labels, base, frac, covered, run, n_rays, max_length, mpp, far_weight, quantile):
    """Per cell: the ``quantile`` over its covered rays of the run's peak DAB OD times the own-side gate.

    Along each covered ray (bilinear OD every 0.25 px): the run starts at the first membrane pixel of the
    cell's own territory; the ridge is the OD maximum from 0.5 um before the run to 1.5 um beyond its end
    (past the territory: a neighbour's membrane peaks on its own side); ``inner`` / ``outer`` are the
    mean OD 0.5-1.5 um inside / outside the ridge; gate = clip((inner - w outer) / ((1 - w) inner), 0, 1)
    with ``w = far_weight`` (C++: :func:`her2fast._native.own_side_gate`; a NumPy version of the same
    steps is the reference in tests/test_cells_measure.py). Returns (gated OD per cell, rays used per cell).
    """
    m = base.shape[0]
    if m == 0 or not covered.any():
        return np.zeros(m, np.float64), np.zeros(m, np.int64)
    ang = 2.0 * np.pi * (np.arange(n_rays) + 0.5) / n_rays
    du = _STEP_PX * mpp  # um per sample
    n05, n15 = int(0.5 / du + 1e-9), int(1.5 / du + 1e-9)
    val = _native.own_side_gate(
        np.ascontiguousarray(lab, dtype=np.int32),
        np.ascontiguousarray(mem).view(np.uint8),
        np.ascontiguousarray(od, dtype=np.float32),
        np.ascontiguousarray(labels, dtype=np.int32),
        np.ascontiguousarray(base, dtype=np.int32),
        np.ascontiguousarray(frac, dtype=np.float64),
        np.ascontiguousarray(covered).view(np.uint8),
        np.ascontiguousarray(run, dtype=np.float32),
        np.cos(ang),
        np.sin(ang),
        float(max_length),
        _STEP_PX,
        n05,
        n15,
        int(1.0 / _STEP_PX),
        float(far_weight),
    )
    used = np.isfinite(val).sum(axis=1)
    q = np.floor(quantile * np.maximum(used - 1, 0) + 1e-9).astype(np.int64)  # the lower quantile
    srt = np.sort(val, axis=1)
    out = np.where(used > 0, srt[np.arange(m), np.minimum(q, val.shape[1] - 1)], 0.0)
    return out, used


# ---------------------------------------------------------------------------------- per tile
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


@dataclass
class TileCells:
    """The cells a tile owns, and what was counted on the way.

    Attributes
    ----------
    cells : CellTable
        Cells whose nucleus centre lies in the tile's core; ``x``, ``y`` in working pixels of the slide
        (tile origin + local position); ``cell_id`` is the tile-local nucleus label (renumbered by
        :func:`merge_cell_tables`).
    n_nuclei : int
        Nuclei (cells) found in the whole padded tile, owned or not.
    n_artefact_loops : int
        Owned closed membrane loops without any nucleus (not counted as cells).
    territories : (H, W) ndarray of int32 or None
        With ``return_maps=True``: the territory of each owned cell (its ``cell_id``), 0 elsewhere.
    skeleton : (H, W) ndarray of bool or None
        With ``return_maps=True``: the membrane skeleton of the padded tile.
    """

    cells: CellTable
    n_nuclei: int
    n_artefact_loops: int
    territories: np.ndarray | None = None
    skeleton: np.ndarray | None = None


def _nucleus_labels(nuclei: np.ndarray, min_px: int) -> tuple[np.ndarray, int, np.ndarray, np.ndarray, np.ndarray]:
    """Consecutive labels 1..n of the nuclei (components of a mask, or a label map) with >= min_px pixels.

    Returns labels (int32), n, pixel counts (n,), and the exact integer sums of x and y (n,). Labels keep
    their order (C++ :func:`her2fast._native.label_table`; a NumPy version is the reference in
    tests/test_cells_measure.py).
    """
    from scipy import ndimage as ndi

    if nuclei.dtype == np.bool_:
        lab, _ = ndi.label(nuclei, structure=np.ones((3, 3), bool))
    else:
        if nuclei.min() < 0:
            raise InvalidInputError(f"nuclei labels must be >= 0, got minimum {nuclei.min()}")
        lab = nuclei
        top = int(nuclei.max())
        if top >= 2**31 or top > 8 * nuclei.size + 1_000_000:  # sparse ids: compact
            uniq, inv = np.unique(nuclei, return_inverse=True)
            lab = inv.reshape(nuclei.shape) + (0 if uniq[0] == 0 else 1)  # keep 0 = background
    lab = np.ascontiguousarray(lab, dtype=np.int32)
    out, n, count, sx, sy = _native.label_table(lab, int(max(min_px, 1)), 8 * lab.size + 1_000_000)
    return out, int(n), count, sx, sy


def _exact_centres(count: np.ndarray, sx: np.ndarray, sy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer base pixel and fraction of sums / count, the same whatever the tile origin."""
    bx, rx = np.divmod(sx, count)
    by, ry = np.divmod(sy, count)
    base = np.stack([bx, by], axis=1).astype(np.int32)
    frac = np.stack([rx / count, ry / count], axis=1).astype(np.float64)
    return np.ascontiguousarray(base), np.ascontiguousarray(frac)


def _region_max_dist2(regions: np.ndarray, region_ids: np.ndarray, base: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """Largest squared distance of each listed region's pixels to its own centre (base + frac).

    One native pass over the region map (``cell_stats.hpp``); the reference formulation, in NumPy, is
    ``tests/test_cells_measure.py::_region_max_dist2_numpy``.
    """
    return _native.region_max_dist2(
        np.ascontiguousarray(regions, dtype=np.int32),
        np.ascontiguousarray(region_ids, dtype=np.int32),
        np.ascontiguousarray(base, dtype=np.int32),
        np.ascontiguousarray(frac, dtype=np.float64),
    )


def _cytoplasm_od(
    od: np.ndarray, territories: np.ndarray, markers: np.ndarray, membrane: np.ndarray, n: int, gap_px: float
) -> np.ndarray:
    """(n,) mean DAB OD of each cell's territory pixels more than ``gap_px`` from any membrane pixel, off nuclei.

    0 for a cell without such pixels. Pixels within ``gap_px`` of a membrane pixel (a closed disk: at
    distance <= gap_px) are left out.
    """
    near = _near_membrane(membrane, gap_px)
    # one native pass: sums as double in pixel order, as np.bincount(weights=...) (cell_stats.hpp)
    return _native.label_means(
        np.ascontiguousarray(territories, dtype=np.int32),
        np.ascontiguousarray(od, dtype=np.float32),
        near.view(np.uint8),
        np.ascontiguousarray(markers, dtype=np.int32),
        int(n),
    )


def _skeleton_regions(mem_mask: np.ndarray) -> tuple[np.ndarray, RegionTable]:
    """:func:`membrane_skeleton` and :func:`enclosed_regions` of the landscape's (contiguous bool) membrane
    mask, without the public wrappers' checks and 0/1 copies."""
    skeleton = _native.thin(mem_mask.view(np.uint8), -1)[0].view(np.bool_)
    labels, area, border = _native.enclosed_regions(skeleton.view(np.uint8))
    return skeleton, RegionTable(labels=labels, area=area, touches_border=border.view(np.bool_))


def _skeleton_regions_reference(mem_mask: np.ndarray) -> tuple[np.ndarray, RegionTable]:
    """:func:`_skeleton_regions` through the public wrappers (the reference of the tests and benchmarks)."""
    skeleton = membrane_skeleton(mem_mask)
    return skeleton, enclosed_regions(skeleton)


def _label_counts(labels: np.ndarray, n_labels: int) -> np.ndarray:
    """Pixels per label 0..n_labels - 1 of an int32 map (C++ label_sums, one pass; int64)."""
    return _native.label_sums(np.ascontiguousarray(labels, dtype=np.int32), int(n_labels))[0]


def _label_counts_reference(labels: np.ndarray, n_labels: int) -> np.ndarray:
    """:func:`_label_counts` with np.bincount (the reference of the tests and benchmarks)."""
    return np.bincount(labels.ravel(), minlength=n_labels)


def _region_sums(regions: np.ndarray, n_regions: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact sums of x and y over the pixels of each region ``ids[i]`` of a region map (int64; C++)."""
    _, sx, sy = _native.label_sums(np.ascontiguousarray(regions, dtype=np.int32), int(n_regions))
    return sx[ids], sy[ids]


def _region_sums_reference(regions: np.ndarray, n_regions: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_region_sums` with np.bincount on float weights and np.rint (the same integers)."""
    w = regions.shape[1]
    flat_r = regions.ravel()
    is_listed = np.zeros(n_regions + 1, bool)  # index -1 (skeleton) -> the last entry, False
    is_listed[ids] = True
    pix = np.flatnonzero(is_listed[flat_r])  # pixels of the listed regions only
    ys_e, xs_e = np.divmod(pix, w)
    r_e = flat_r[pix]
    rsx = np.bincount(r_e, weights=xs_e, minlength=n_regions)[ids]
    rsy = np.bincount(r_e, weights=ys_e, minlength=n_regions)[ids]
    return np.rint(rsx).astype(np.int64), np.rint(rsy).astype(np.int64)


def _near_membrane(membrane: np.ndarray, gap_px: float) -> np.ndarray:
    """Pixels within ``gap_px`` of a membrane pixel: ``binary_dilation(membrane, disk(gap_px))``, natively."""
    from .morphology import disk

    # the disk is symmetric, so the dilation needs no reflection of it (csrc/nuclei.hpp: shift_reduce)
    return _native.binary_morphology(np.ascontiguousarray(membrane).view(np.uint8), disk(gap_px).view(np.uint8), False)


def _near_membrane_reference(membrane: np.ndarray, gap_px: float) -> np.ndarray:
    """:func:`_near_membrane` with the NumPy morphology (the reference of the tests and benchmarks)."""
    from .morphology import binary_dilation, disk

    return np.ascontiguousarray(binary_dilation(membrane, disk(gap_px)))


def _ray_summary(
    run: np.ndarray, peak: np.ndarray, run_tol: np.ndarray | None, gap: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per cell: completeness (gaps of at most ``gap`` rays closed), lower medians of the covered rays'
    peak OD and run length, covered rays (C++, csrc/ray_summary.hpp; equal to :func:`_ray_summary_reference`).

    ``run``, ``peak``, ``run_tol``: (m, n_rays) float32 tables of :func:`_rays`; a ray is covered where
    ``run > 0``; ``run_tol`` (or None: ``run``) gives the coverage whose gaps are closed.
    """
    return _native.ray_summary(
        np.ascontiguousarray(run, dtype=np.float32),
        np.ascontiguousarray(peak, dtype=np.float32),
        None if run_tol is None else np.ascontiguousarray(run_tol, dtype=np.float32),
        int(gap),
    )


def _ray_summary_reference(
    run: np.ndarray, peak: np.ndarray, run_tol: np.ndarray | None, gap: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_ray_summary` in NumPy: the steps it replaced (reference of the tests and benchmarks)."""
    covered = run > 0
    n_cov = covered.sum(axis=1)
    cov_tol = covered if run_tol is None else (run_tol > 0) & (n_cov > 0)[:, None]
    completeness = _close_gaps(cov_tol, gap).mean(axis=1)
    mid = np.maximum(n_cov - 1, 0) // 2  # the (lower) median of the covered rays
    rows = np.arange(run.shape[0])
    od_med = np.sort(np.where(covered, peak, np.inf), axis=1)[rows, mid] if rows.size else np.zeros(0, np.float32)
    run_med = np.sort(np.where(covered, run, np.inf), axis=1)[rows, mid] if rows.size else np.zeros(0, np.float32)
    return completeness, np.where(n_cov > 0, od_med, 0.0), np.where(n_cov > 0, run_med, 0.0), n_cov


def _close_gaps(covered: np.ndarray, gap: int) -> np.ndarray:
    """Rays (n, R) with every circular run of at most ``gap`` uncovered rays between covered ones filled."""
    if gap < 1 or covered.size == 0:
        return covered
    big = covered.shape[1] + 1
    prev = np.where(covered, 0, big)
    nxt = np.where(covered, 0, big)
    for k in range(1, gap + 1):
        prev = np.where(~covered & (prev == big) & np.roll(covered, k, axis=1), k, prev)
        nxt = np.where(~covered & (nxt == big) & np.roll(covered, -k, axis=1), k, nxt)
    return covered | (prev + nxt - 1 <= gap)


def _as_bounds(value: object, name: str) -> tuple[int, int, int, int]:
    try:
        b = tuple(int(v) for v in value)  # type: ignore[attr-defined]  # not iterable: TypeError, caught below
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be 4 integers (x0, y0, x1, y1), got {value!r}") from None
    if len(b) != 4 or b[2] <= b[0] or b[3] <= b[1]:
        raise InvalidInputError(f"{name} must be (x0, y0, x1, y1) with x1 > x0 and y1 > y0, got {value!r}")
    return b  # type: ignore[return-value]


def measure_tile(
    membrane: np.ndarray,
    dab_od: np.ndarray,
    nuclei: np.ndarray,
    *,
    mpp: float = 0.5,
    origin: tuple[int, int] = (0, 0),
    core: tuple[int, int, int, int] | None = None,
    epithelium: np.ndarray | None = None,
    settings: CellSettings = DEFAULT_CELL_SETTINGS,
    return_maps: bool = False,
) -> TileCells:
    """Cells of one padded tile and their membrane measurements; only the cells the tile owns.

    See the module docstring for the method (territories, rays, closed loops, ownership).

    Parameters
    ----------
    membrane : (H, W) array of float or bool
        Membrane probability in [0, 1] (a network's output) or a membrane mask, of the padded tile.
    dab_od : (H, W) array of float
        DAB optical density (colour deconvolution) of the padded tile.
    nuclei : (H, W) array of bool or int
        Nucleus mask (8-connected components are nuclei) or nucleus label map (0 = background).
    mpp : float
        Micrometres per pixel of the arrays.
    origin : (x, y)
        Working-pixel position of the padded tile's top-left pixel (``Tile.padded[:2]``).
    core : (x0, y0, x1, y1), optional
        The tile's core in working pixels (``Tile.core``), half-open; the tile owns the cells whose
        nucleus centre lies in it. Default: the whole array (no margin: for a single image). The core
        must lie at least ``settings.max_radius_um`` inside the padded tile.
    epithelium : (H, W) array of bool, optional
        Tumour (epithelium) mask: a cell is a tumour cell when its centre pixel is in it (default: all).
    settings : CellSettings
    return_maps : bool
        Also return the territory map and the skeleton (for overlays and debugging).

    Returns
    -------
    TileCells

    Raises
    ------
    InvalidInputError
        For arrays of the wrong shape or dtype, a non-finite map, or a core outside the padded tile or
        closer than ``max_radius_um`` to its edge.

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.indices((64, 64)); r = np.hypot(yy - 32, xx - 32)
    >>> ring = (r > 9) & (r < 11.5); nucleus = r < 4
    >>> t = measure_tile(ring, 1.5 * ring, nucleus, mpp=0.5)
    >>> len(t.cells), bool(t.cells.closed[0]), float(t.cells.completeness[0]), int(t.cells.intensity[0])
    (1, True, 1.0, 3)
    """
    if not isinstance(settings, CellSettings):
        raise InvalidInputError(f"settings must be a CellSettings, got {type(settings).__name__}")
    try:
        mpp_f = float(mpp)
    except (TypeError, ValueError):
        raise InvalidInputError(f"mpp must be a number, got {mpp!r}") from None
    if not (np.isfinite(mpp_f) and mpp_f > 0):
        raise InvalidInputError(f"mpp must be finite and > 0, got {mpp!r}")
    mem_arr = _as_2d(membrane, "membrane")
    shape = mem_arr.shape
    prob = _as_float_map(mem_arr, "membrane")
    if prob.min() < 0 or prob.max() > 1:
        raise InvalidInputError(
            f"membrane must be a probability in [0, 1] or a mask, got range {prob.min()}..{prob.max()}"
        )
    od = _as_float_map(dab_od, "dab_od", shape)
    nuc = _as_2d(nuclei, "nuclei", shape)
    if nuc.dtype != np.bool_ and not np.issubdtype(nuc.dtype, np.integer):
        raise InvalidInputError(f"nuclei must be a boolean mask or an integer label map, got dtype {nuc.dtype}")
    epi = None
    if epithelium is not None:
        epi = _as_2d(epithelium, "epithelium", shape) != 0
    try:
        ox, oy = (int(v) for v in origin)
    except (TypeError, ValueError):
        raise InvalidInputError(f"origin must be two integers (x, y), got {origin!r}") from None
    h, w = shape
    radius = settings.max_radius_um / mpp_f
    if core is None:
        cx0, cy0, cx1, cy1 = ox, oy, ox + w, oy + h
    else:
        cx0, cy0, cx1, cy1 = _as_bounds(core, "core")
        margin = min(cx0 - ox, cy0 - oy, ox + w - cx1, oy + h - cy1)
        if margin < 0:
            raise InvalidInputError(f"core {core} must lie inside the padded tile {(ox, oy, ox + w, oy + h)}")
        if margin < radius:
            raise InvalidInputError(
                f"the tile margin ({margin} px) must be at least max_radius_um / mpp = {radius:.1f} px "
                f"(use an overlap >= {2 * radius:.0f} px for a grid-independent result)"
            )

    # 1. nuclei = cells, exact centres
    min_px = int(np.ceil(settings.min_nucleus_um2 / mpp_f**2))
    markers, n, count, sx, sy = _nucleus_labels(nuc, min_px)
    base, frac = _exact_centres(count, sx, sy) if n else (np.zeros((0, 2), np.int32), np.zeros((0, 2)))
    # ownership (exact: the centre is sum / count); only the owned cells are measured
    gsx = sx + count * ox
    gsy = sy + count * oy
    owned = (gsx >= count * cx0) & (gsx < count * cx1) & (gsy >= count * cy0) & (gsy < count * cy1)
    idx = np.flatnonzero(owned)

    # 2. territories: flood the membrane probability, raised by the membrane's stain, climbing.
    # With s = OD / (OD + 1) (monotone, in [0, 1)) times membrane_od_weight: on membrane (probability
    # >= threshold) the probability plus s; off membrane below the threshold, rising with the
    # probability and the (submembranous) stain: threshold / 2 * (probability / threshold + min(s, 1 - 1e-6)).
    # One native pass, float32 as NumPy computes it (see cell_stats.hpp).
    thr = np.float32(settings.membrane_threshold)
    land, mem_mask = _native.cell_landscape(
        prob,
        od,
        float(thr),
        float(thr * np.float32(0.5)),
        float(np.float32(settings.membrane_od_weight)),
        float(np.float32(1 - 1e-6)),
    )
    bases = np.ascontiguousarray(np.vstack([np.zeros((1, 2), np.int32), base]))
    fracs = np.ascontiguousarray(np.vstack([np.zeros((1, 2)), frac]))
    territories = _native.seeded_watershed(
        land, markers, n, None, float(np.float32(settings.membrane_threshold)), float(radius), bases, fracs, True
    )

    # 3. rays, of the owned cells
    mem_u8 = mem_mask.view(np.uint8)
    own_labels = (idx + 1).astype(np.int32)
    base_o, frac_o = base[idx], frac[idx]
    # a cell's own membrane (in its territory) decides whether and how intensely it is stained; the
    # tolerance band (outside_reach_um) and the radius-cap reach (cap_reach_um) only widen how much of its
    # outline a stained cell covers, so an unstained cell never becomes stained through a neighbour
    reach_px = max(settings.outside_reach_um, settings.cap_reach_um) / mpp_f
    run, peak = _rays(
        territories,
        mem_u8,
        od,
        base_o,
        frac_o,
        int(settings.n_rays),
        radius + 2.0,
        0.0,
        settings.max_run_um / mpp_f,
        cell_labels=own_labels,
    )
    covered = run > 0
    run_tol = None
    if settings.outside_reach_um > 0 or settings.cap_reach_um > 0:
        run_tol, _ = _rays(
            territories,
            mem_u8,
            od,
            base_o,
            frac_o,
            int(settings.n_rays),
            radius + 2.0 + reach_px,
            settings.outside_reach_um / mpp_f,
            settings.max_run_um / mpp_f,
            radius,
            settings.cap_reach_um / mpp_f,
            cell_labels=own_labels,
        )
    # completeness with narrow gaps closed, lower medians of the covered rays: one native pass over the
    # (cells x rays) tables (csrc/ray_summary.hpp; the NumPy steps are the reference in the tests)
    completeness, od_mean, run_med, n_cov = _ray_summary(
        run, peak, run_tol, int(np.floor(settings.max_gap_deg * settings.n_rays / 360.0 + 1e-9))
    )
    thickness = np.where(n_cov > 0, run_med * mpp_f, 0.0)

    # 4. closed loops
    skeleton, regions = _skeleton_regions(mem_mask)
    centre_px = base + (frac >= 0.5)  # the pixel holding each centre (pixel j spans [j - 1/2, j + 1/2))
    cpx = np.clip(centre_px[:, 0], 0, w - 1)
    cpy = np.clip(centre_px[:, 1], 0, h - 1)
    reg = regions.labels[cpy, cpx] if n else np.zeros(0, np.int32)
    if (reg < 0).any():  # centre on the skeleton: the region of the nucleus' first pixel off it
        flat_m = markers.ravel()
        flat_r = regions.labels.ravel()
        off = np.flatnonzero((flat_m > 0) & (flat_r >= 0))
        first = np.full(n + 1, -1, np.int64)
        first[flat_m[off][::-1]] = flat_r[off][::-1]  # assignment order: the last write (first pixel) wins
        reg = np.where(reg >= 0, reg, first[1:])
    n_regions = len(regions)
    nuclei_in = np.bincount(reg[reg >= 0], minlength=n_regions)
    closed = np.zeros(n, bool)
    cand = idx[reg[idx] >= 0]  # owned cells only: the others are not reported
    cand = cand[regions.closed[reg[cand]] & (nuclei_in[reg[cand]] == 1)]
    if cand.size:
        d2 = _region_max_dist2(regions.labels, reg[cand], base[cand], frac[cand])
        closed[cand[d2 <= radius * radius]] = True

    # artefact loops: enclosed, nucleus-free, cell-sized regions, owned by the core holding their centre
    min_loop_px = settings.min_loop_um2 / mpp_f**2
    empty = np.flatnonzero(
        regions.closed & (nuclei_in == 0) & (regions.area >= min_loop_px) & (regions.area <= np.pi * radius * radius)
    )
    n_artefacts = 0
    if empty.size:
        rsx, rsy = _region_sums(regions.labels, n_regions, empty)
        a = regions.area[empty]
        gx = rsx + a * ox
        gy = rsy + a * oy
        n_artefacts = int(((gx >= a * cx0) & (gx < a * cx1) & (gy >= a * cy0) & (gy < a * cy1)).sum())

    # 5. the owned cells' table
    is_tumour = np.ones(n, bool) if epi is None else epi[cpy, cpx]
    area_px = _label_counts(territories, n + 1)[1:]
    x = (base[:, 0].astype(np.float64) + ox) + frac[:, 0]
    y = (base[:, 1].astype(np.float64) + oy) + frac[:, 1]
    if settings.far_side_weight > 0 or settings.intensity_quantile != 0.5:
        gated, used = _gated_membrane_od(
            od,
            territories,
            mem_mask,
            own_labels,
            base_o,
            frac_o,
            covered,
            run,
            int(settings.n_rays),
            radius + 2.0,
            mpp_f,
            float(settings.far_side_weight),
            float(settings.intensity_quantile),
        )
        od_own = np.where(used > 0, gated, od_mean)
    else:
        od_own = od_mean
    if settings.cytoplasm_weight > 0 and idx.size:
        cyto = _cytoplasm_od(od, territories, markers, mem_mask, n, settings.cytoplasm_gap_um / mpp_f)[idx]
        # a negative mean (deconvolution noise on unstained cytoplasm) must not raise the membrane OD
        od_own = np.maximum(od_own - settings.cytoplasm_weight * np.maximum(cyto, 0.0), 0.0)
    od_own = od_own.astype(np.float32)
    cells = CellTable(
        cell_id=idx + 1,
        x=x[idx],
        y=y[idx],
        is_tumour=is_tumour[idx],
        intensity=intensity_class_from_od(od_own, settings.rules),
        completeness=completeness,
        membrane_dab_od=od_own,
        closed=closed[idx],
        membrane_thickness=thickness,
        area=area_px[idx] * mpp_f * mpp_f,
    )
    terr_map = skel_map = None
    if return_maps:
        keep = np.zeros(n + 1, np.int32)
        keep[idx + 1] = idx + 1
        terr_map = keep[territories]
        skel_map = skeleton
    return TileCells(cells=cells, n_nuclei=n, n_artefact_loops=n_artefacts, territories=terr_map, skeleton=skel_map)


# ---------------------------------------------------------------------------------- per slide
def merge_cell_tables(
    tables: Sequence[CellTable | TileCells], *, level0_per_pixel: tuple[float, float] = (1.0, 1.0)
) -> CellTable:
    """The slide's cell table from the tables of its tiles (each cell owned by exactly one tile).

    Rows are concatenated, centres scaled from working to level-0 pixels, put in a canonical order (by
    ``y``, then ``x``) and numbered 1..n, so the result does not depend on the tile grid or on the order
    in which tiles finished.

    Parameters
    ----------
    tables : sequence of CellTable or TileCells
        The per-tile results of :func:`measure_tile` (owned cells only).
    level0_per_pixel : (float, float)
        Level-0 pixels per working pixel (``TileGrid.level0_per_pixel``); (1, 1) keeps working pixels.

    Raises
    ------
    InvalidInputError
        When two rows have the same centre: tiles overlapped (a tile measured twice, or cores that do
        not partition the plane).

    Notes
    -----
    This is bookkeeping on tables (a concatenation and a sort, O(n log n)); the seam work is done by
    the ownership rule in :func:`measure_tile`, so there is nothing to gain from a native kernel here.
    """
    parts = [t.cells if isinstance(t, TileCells) else t for t in tables]
    for i, t in enumerate(parts):
        if not isinstance(t, CellTable):
            raise InvalidInputError(f"tables[{i}] must be a CellTable or TileCells, got {type(t).__name__}")
    sx, sy = (float(v) for v in level0_per_pixel)
    if not (np.isfinite(sx) and np.isfinite(sy) and sx > 0 and sy > 0):
        raise InvalidInputError(f"level0_per_pixel must be two finite numbers > 0, got {level0_per_pixel!r}")
    merged = CellTable.concatenate(parts)
    x = merged.x.astype(np.float64)
    y = merged.y.astype(np.float64)
    order = np.lexsort((x, y))
    merged = merged.select(order)
    if len(merged) > 1:
        dup = (np.diff(merged.x) == 0) & (np.diff(merged.y) == 0)
        if dup.any():
            k = int(np.flatnonzero(dup)[0])
            raise InvalidInputError(
                f"two cells share the centre ({merged.x[k]}, {merged.y[k]}): the tiles overlap "
                "(a tile merged twice, or cores that do not partition the slide)"
            )
    merged.cell_id = np.arange(1, len(merged) + 1, dtype=np.int64)
    merged.x = (merged.x.astype(np.float64) * sx).astype(np.float32)
    merged.y = (merged.y.astype(np.float64) * sy).astype(np.float32)
    return merged
