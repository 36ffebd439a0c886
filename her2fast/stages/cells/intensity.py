"""A cell's membrane stain: the own-side gate of its rays' peak DAB OD, and its cytoplasmic DAB.

:func:`her2fast.stages.cells.measure_tile` takes a cell's membrane DAB OD as a quantile of the gated
peaks of its covered rays, minus its cytoplasmic DAB (pixels of its territory away from membrane and
nuclei).
"""

from __future__ import annotations

import numpy as np

from ... import _native

__all__ = []


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


def _near_membrane(membrane: np.ndarray, gap_px: float) -> np.ndarray:
    """Pixels within ``gap_px`` of a membrane pixel: ``binary_dilation(membrane, disk(gap_px))``, natively."""
    from ..morphology import disk

    # the disk is symmetric, so the dilation needs no reflection of it (csrc/nuclei.hpp: shift_reduce)
    return _native.binary_morphology(np.ascontiguousarray(membrane).view(np.uint8), disk(gap_px).view(np.uint8), False)


def _near_membrane_reference(membrane: np.ndarray, gap_px: float) -> np.ndarray:
    """:func:`_near_membrane` with the NumPy morphology (the reference of the tests and benchmarks)."""
    from ..morphology import binary_dilation, disk

    return np.ascontiguousarray(binary_dilation(membrane, disk(gap_px)))
