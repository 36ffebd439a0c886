"""Membrane rays: the membrane met by rays from each cell centre, and their per-cell summary.

The summary is a cell's completeness (narrow gaps closed) and the medians of its covered rays, with
the NumPy steps the native summary replaced.
"""

from __future__ import annotations

import numpy as np

from ... import _native
from ...errors import InvalidInputError
from .centres import _split_centres
from .checks import _as_2d, _as_float_map, _as_mask

__all__ = ["membrane_rays"]


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
