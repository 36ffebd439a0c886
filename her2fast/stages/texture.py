"""Texture descriptors: uniform local binary patterns (native kernel).

The epithelium classifier describes each superpixel by a histogram of these codes.
"""

from __future__ import annotations

import numpy as np

from .. import _native
from .._validate import as_int, as_positive_float
from ..errors import InvalidInputError

__all__ = ["local_binary_pattern", "LBP_METHODS", "LBP_MAX_RADIUS"]

#: The LBP variants implemented (scikit-image names).
LBP_METHODS = ("uniform",)

#: Largest LBP radius (pixels) the kernel takes.
LBP_MAX_RADIUS = 1000.0


def _check_radius(R: object, name: str = "R") -> float:
    """``R`` as a float in (0, :data:`LBP_MAX_RADIUS`], or InvalidInputError naming it."""
    r = as_positive_float(R, name)
    if r > LBP_MAX_RADIUS:
        raise InvalidInputError(
            f"{name} must be at most {LBP_MAX_RADIUS:g} pixels (the LBP circle's radius), got {r:g}; LBP "
            "describes texture within a few pixels (1 to 3 is usual)"
        )
    return r


def local_binary_pattern(image: np.ndarray, P: int = 8, R: float = 1.0, method: str = "uniform") -> np.ndarray:
    """Rotation-invariant uniform local binary patterns of a grey image.

    Same arguments and results as ``skimage.feature.local_binary_pattern(image, P, R,
    method="uniform")`` -- equal code for code -- computed by her2fast's C++ kernel with the GIL
    released (so several threads can run it on different tiles at once).

    Parameters
    ----------
    image : (M, N) ndarray
        Grey image. ``uint8`` takes the fast path; any other integer or floating dtype is converted
        to ``float64`` first, as scikit-image does (values must be finite). Non-contiguous arrays
        are copied.
    P : int, optional
        Number of circularly symmetric neighbours, 1..64 (default 8).
    R : float, optional
        Radius of the circle in pixels, in (0, 1000] (:data:`LBP_MAX_RADIUS`; default 1.0).
    method : {'uniform'}, optional
        LBP variant; only the rotation-invariant uniform ("riu2") patterns are implemented.

    Returns
    -------
    codes : (M, N) ndarray of uint8
        Codes 0..P: uniform patterns (at most two 0/1 transitions around the circle), the code
        being the number of neighbours >= the centre; P+1: every non-uniform pattern.
        (scikit-image returns the same values as float64.)

    Raises
    ------
    InvalidInputError
        (a ``ValueError``) for an image that is not 2-D, empty, complex, boolean or non-finite,
        P outside 1..64, R not in (0, 1000], or an unknown method.

    Notes
    -----
    Neighbour i sits at (row, col) offset (-R sin(2 pi i / P), R cos(2 pi i / P)) rounded to 5
    decimals; off-grid neighbours are bilinearly interpolated in double precision; pixels outside
    the image count as 0 (zero padding); bit i is set when ``neighbour - centre >= 0``.

    References
    ----------
    .. [1] T. Ojala, M. Pietikainen, T. Maenpaa, "Multiresolution gray-scale and rotation
           invariant texture classification with local binary patterns", IEEE TPAMI 24(7),
           971-987, 2002. :DOI:`10.1109/TPAMI.2002.1017623`

    Examples
    --------
    >>> import numpy as np
    >>> from her2fast.stages.texture import local_binary_pattern
    >>> flat = np.full((5, 5), 7, dtype=np.uint8)
    >>> int(local_binary_pattern(flat, P=8, R=1)[2, 2])  # all neighbours equal: code P
    8
    """
    if not isinstance(method, str) or method.lower() not in LBP_METHODS:
        raise InvalidInputError(f"method must be one of {LBP_METHODS}, got {method!r}")
    P = as_int(P, "P", 1, int(_native.LBP_MAX_POINTS))
    R = _check_radius(R)
    arr = np.asarray(image)
    if arr.ndim != 2:
        raise InvalidInputError(f"image must be 2-D (H, W), got shape {arr.shape}")
    if arr.size == 0:
        raise InvalidInputError(f"image must not be empty, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return _native.lbp_uniform_u8(np.ascontiguousarray(arr), P, R)
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise InvalidInputError(f"image must have an integer or floating dtype, got {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise InvalidInputError("image must hold finite values (found NaN or infinity)")
    return _native.lbp_uniform_f64(arr, P, R)
