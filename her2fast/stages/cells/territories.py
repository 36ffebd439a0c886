"""Cell territories: the nucleus-seeded watershed with a membrane barrier and a radius limit.

Also the territories' pixel counts (with the reference they replaced).
"""

from __future__ import annotations

import numpy as np

from ... import _native
from ...errors import InvalidInputError
from .centres import _split_centres
from .checks import _as_2d, _as_float_map

__all__ = ["seeded_watershed"]


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


def _label_counts(labels: np.ndarray, n_labels: int) -> np.ndarray:
    """Pixels per label 0..n_labels - 1 of an int32 map (C++ label_sums, one pass; int64)."""
    return _native.label_sums(np.ascontiguousarray(labels, dtype=np.int32), int(n_labels))[0]


def _label_counts_reference(labels: np.ndarray, n_labels: int) -> np.ndarray:
    """:func:`_label_counts` with np.bincount (the reference of the tests and benchmarks)."""
    return np.bincount(labels.ravel(), minlength=n_labels)
