"""Grey-level and binary morphology used by the nuclei stage, on the native core where it pays.

- :func:`reconstruct_dilation` -- grey reconstruction by dilation (C++, Vincent's hybrid algorithm),
  equal to ``skimage.morphology.reconstruction(marker, mask, method="dilation")`` bit for bit and
  ~20-50x faster on nucleus distance maps;
- :func:`h_maxima` -- ``skimage.morphology.h_maxima`` for float images on top of it (the same
  arithmetic, so the same result);
- :func:`fill_holes` -- ``scipy.ndimage.binary_fill_holes`` with one connected-component labelling
  instead of an iterated propagation (same result, several times faster on tiles).
"""

from __future__ import annotations

import numpy as np

from . import _native
from .errors import InvalidInputError

__all__ = ["reconstruct_dilation", "h_maxima", "fill_holes"]


def _float_map(a: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 2 or arr.size == 0 or not np.issubdtype(arr.dtype, np.number):
        raise InvalidInputError(f"{name} must be a non-empty 2-D numeric array, got {arr.dtype} {arr.shape}")
    out = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.all(np.isfinite(out)):
        raise InvalidInputError(f"{name} holds NaN or infinite values")
    return out


def reconstruct_dilation(marker: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Grey reconstruction by dilation of ``marker`` under ``mask`` (8-connected), float32.

    Parameters
    ----------
    marker, mask : (H, W) numeric
        Same shape, ``marker <= mask`` everywhere (both are converted to float32).

    Returns
    -------
    (H, W) float32
        Equal to ``skimage.morphology.reconstruction(marker, mask, method="dilation")`` (which returns
        float64 of the same values).

    Raises
    ------
    InvalidInputError
        For arrays that are not 2-D, of different shapes, non-finite, or a marker above the mask.

    Examples
    --------
    >>> import numpy as np
    >>> reconstruct_dilation(np.array([[0, 2, 0, 0, 0]]), np.array([[1, 3, 1, 0, 4]])).tolist()
    [[1.0, 2.0, 1.0, 0.0, 0.0]]
    """
    mk = _float_map(marker, "marker")
    ms = _float_map(mask, "mask")
    if mk.shape != ms.shape:
        raise InvalidInputError(f"marker and mask must have the same shape, got {mk.shape} and {ms.shape}")
    if np.any(mk > ms):
        raise InvalidInputError("marker must be <= mask everywhere for a reconstruction by dilation")
    return _native.reconstruct_dilation(mk, ms)


def h_maxima(image: np.ndarray, h: float) -> np.ndarray:
    """Maxima of height at least ``h`` (uint8 0/1), as ``skimage.morphology.h_maxima`` on a float32 image.

    Parameters
    ----------
    image : (H, W) float
        Converted to float32.
    h : float
        > 0.

    Examples
    --------
    >>> import numpy as np
    >>> h_maxima(np.array([[0, 3, 0, 1, 0]], np.float32), 2.0).tolist()
    [[0, 1, 0, 0, 0]]
    """
    img = _float_map(image, "image")
    h = float(h)
    if not (np.isfinite(h) and h > 0):
        raise InvalidInputError(f"h must be finite and > 0, got {h}")
    if h > float(np.ptp(img)):
        return np.zeros(img.shape, np.uint8)
    # scikit-image's float path: shift down by h and by a relative resolution, reconstruct, compare
    resolution = 2 * np.finfo(img.dtype).resolution * np.abs(img)
    shifted = img - h - resolution
    rec = _native.reconstruct_dilation(np.ascontiguousarray(shifted, dtype=np.float32), img)
    residue = img - rec.astype(np.float64)
    return (residue >= h).astype(np.uint8)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill the holes of a binary mask: ``scipy.ndimage.binary_fill_holes`` (default structure).

    A hole is a 4-connected background component that does not touch the image border.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((5, 5), bool); m[1:4, 1:4] = True; m[2, 2] = False
    >>> bool(fill_holes(m)[2, 2])
    True
    """
    from scipy import ndimage as ndi

    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2:
        raise InvalidInputError(f"mask must be 2-D, got shape {m.shape}")
    background, n = ndi.label(~m)
    if n == 0:
        return m.copy()
    outside = np.zeros(n + 1, bool)
    for edge in (background[0], background[-1], background[:, 0], background[:, -1]):
        outside[edge] = True
    outside[0] = True  # foreground stays foreground
    return m | ~outside[background]
