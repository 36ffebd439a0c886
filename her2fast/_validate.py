"""Input checks shared by the public wrappers of native kernels (messages name the parameter)."""

from __future__ import annotations

import numpy as np

from .errors import InvalidInputError


def as_rgb_uint8(image: object, name: str = "image") -> np.ndarray:
    """Return `image` as a C-contiguous (H, W, 3) uint8 array, or raise InvalidInputError."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise InvalidInputError(f"{name} must be an RGB array of shape (H, W, 3), got shape {arr.shape}")
    if arr.dtype != np.uint8:
        raise InvalidInputError(
            f"{name} must have dtype uint8 (8-bit RGB), got {arr.dtype}; convert with "
            f"skimage.util.img_as_ubyte({name}) if it holds floats in [0, 1]"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InvalidInputError(f"{name} must not be empty, got shape {arr.shape}")
    return np.ascontiguousarray(arr)


def as_int(value: object, name: str, minimum: int, maximum: int | None = None) -> int:
    """Return `value` as an int in [minimum, maximum], or raise InvalidInputError naming it."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InvalidInputError(f"{name} must be an integer, got {value!r}")
    v = int(value)
    if v < minimum or (maximum is not None and v > maximum):
        bound = f">= {minimum}" if maximum is None else f"in {minimum}..{maximum}"
        raise InvalidInputError(f"{name} must be {bound}, got {v}")
    return v


def as_positive_float(value: object, name: str) -> float:
    """Return `value` as a finite float > 0, or raise InvalidInputError naming it."""
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(v) or v <= 0:
        raise InvalidInputError(f"{name} must be finite and > 0, got {v}")
    return v


def as_non_negative_float(value: object, name: str) -> float:
    """Return `value` as a finite float >= 0, or raise InvalidInputError naming it."""
    if isinstance(value, (bool, np.bool_)):
        raise InvalidInputError(f"{name} must be a number, got {value!r}")
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(v) or v < 0:
        raise InvalidInputError(f"{name} must be finite and >= 0, got {v}")
    return v
