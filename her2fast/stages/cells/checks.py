"""Checks of the arrays the cell stage is given.

Each helper takes an argument of a public function of :mod:`her2fast.stages.cells` and returns it as
the native kernels take it, or raises :class:`~her2fast.errors.InvalidInputError` naming the argument:
a 2-D map of a given shape, a membrane mask as contiguous 0/1 bytes, a finite float32 map, a
rectangle ``(x0, y0, x1, y1)``.
"""

from __future__ import annotations

import numpy as np

from ...errors import InvalidInputError

__all__ = []


def _as_mask(mask: object, name: str) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise InvalidInputError(f"{name} must be 2-D (H, W), got shape {arr.shape}")
    if arr.size == 0:
        raise InvalidInputError(f"{name} must not be empty, got shape {arr.shape}")
    if arr.dtype != np.bool_ and not np.issubdtype(arr.dtype, np.integer):
        raise InvalidInputError(f"{name} must be boolean or integer (nonzero = membrane), got dtype {arr.dtype}")
    return np.ascontiguousarray(arr != 0).view(np.uint8)


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


def _as_bounds(value: object, name: str) -> tuple[int, int, int, int]:
    try:
        b = tuple(int(v) for v in value)  # type: ignore[attr-defined]  # not iterable: TypeError, caught below
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be 4 integers (x0, y0, x1, y1), got {value!r}") from None
    if len(b) != 4 or b[2] <= b[0] or b[3] <= b[1]:
        raise InvalidInputError(f"{name} must be (x0, y0, x1, y1) with x1 > x0 and y1 > y0, got {value!r}")
    return b  # type: ignore[return-value]
