"""One tile's cells: :func:`measure_tile` and its result, :class:`TileCells`.

Nuclei become cells, territories are flooded, rays measure the membrane, closed loops are found, and
the tile keeps the cells whose centre lies in its core (the method: :mod:`her2fast.stages.cells`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ... import _native
from ...errors import InvalidInputError
from ...scoring import CellTable, intensity_class_from_od
from .centres import _exact_centres, _nucleus_labels
from .checks import _as_2d, _as_bounds, _as_float_map
from .intensity import _cytoplasm_od, _gated_membrane_od
from .loops import _region_max_dist2, _region_sums, _skeleton_regions
from .rays import _ray_summary, _rays
from .settings import DEFAULT_CELL_SETTINGS, CellSettings
from .territories import _label_counts

__all__ = ["TileCells", "measure_tile"]


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

    See :mod:`her2fast.stages.cells` for the method (territories, rays, closed loops, ownership).

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
