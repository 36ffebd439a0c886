"""Cell centres, exact: the nuclei numbered as cells, their centres as an integer pixel plus a fraction.

A centre kept as the integer sums of its nucleus' pixel positions gives the same base pixel and
fraction in every tile that holds the nucleus, whatever the tile's origin; the kernels take centres in
that split form.
"""

from __future__ import annotations

import numpy as np

from ... import _native
from ...errors import InvalidInputError

__all__ = []


def _split_centres(centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, 2) float centres -> integer base pixel and fraction in [0, 1)."""
    base = np.floor(centres)
    frac = centres - base
    wrap = frac >= 1.0  # e.g. -1e-17 - floor(-1e-17) rounds to 1.0
    base = np.where(wrap, base + 1, base)
    frac = np.where(wrap, 0.0, frac)
    return np.ascontiguousarray(base, dtype=np.int32), np.ascontiguousarray(frac, dtype=np.float64)


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
