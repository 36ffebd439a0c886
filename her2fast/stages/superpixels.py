"""Superpixels (SLIC) and the per-superpixel features of the epithelium classifier (native kernels)."""

from __future__ import annotations

import numpy as np

from .. import _native
from .._validate import as_int, as_positive_float, as_rgb_uint8
from ..errors import InvalidInputError
from .texture import _check_radius

__all__ = [
    "slic",
    "superpixel_features",
    "feature_names",
    "COLOUR_CHANNELS",
    "COLOUR_BINS",
    "MAX_SLIC_ITER",
    "MAX_FEATURE_LABELS",
]

#: The seven 32-bin colour marginals of the colour histogram, in order.
COLOUR_CHANNELS = ("red", "green", "blue", "hue", "saturation", "value", "grey")
#: Number of colour-histogram bins (7 channels x 32).
COLOUR_BINS = 224
#: Most k-means iterations :func:`slic` runs (it usually stops at a fixed point within 10).
MAX_SLIC_ITER = 1000
#: Most rows :func:`superpixel_features` returns (2**18; about 3 kB of memory each, 0.8 GB in all).
MAX_FEATURE_LABELS = 1 << 18


def slic(
    image: np.ndarray,
    n_segments: int = 100,
    compactness: float = 10.0,
    max_num_iter: int = 10,
    *,
    mask: np.ndarray | None = None,
    enforce_connectivity: bool = True,
    min_size_factor: float = 0.5,
    max_iter: int | None = None,
) -> np.ndarray:
    """SLIC superpixels of an RGB image (C++ kernel, GIL released).

    Arguments mean what they mean in ``skimage.segmentation.slic`` (RGB input, CIELAB
    clustering, the same min-max rescaling, so the same ``compactness`` gives the same look);
    differences are listed in Notes.

    Parameters
    ----------
    image : (H, W, 3) ndarray of uint8
        RGB image. Non-contiguous arrays are copied.
    n_segments : int, optional
        Approximate number of superpixels, 1 to 2**31 - 1 (more than the pixels gives one seed per pixel, so
        the cost stays bounded by the image). Seeds lie on a grid of step
        ``sqrt(area / n_segments)``; the result has about that many labels.
    compactness : float, optional
        Balance of colour and space (> 0); higher is more square. As in scikit-image.
    max_num_iter : int, optional
        Maximum number of k-means iterations, 1 to :data:`MAX_SLIC_ITER`; stops earlier when no pixel changes.
    mask : (H, W) ndarray of bool, optional
        Superpixels only where True (e.g. the tissue); other pixels get label -1.
    enforce_connectivity : bool, optional
        Make every label one 4-connected region (default True).
    min_size_factor : float, optional
        Connected fragments smaller than ``min_size_factor * area / n_seeds`` pixels join a
        neighbouring superpixel (0..1, default 0.5).
    max_iter : int, optional
        Alias of ``max_num_iter`` (the name used in the SLIC paper); wins when given.

    Returns
    -------
    labels : (H, W) ndarray of int32
        Superpixel labels 0..K-1 (K = ``labels.max() + 1``), numbered in raster order of their
        first pixel when connectivity is enforced; -1 outside ``mask``.

    Raises
    ------
    InvalidInputError
        (a ``ValueError``) for a non-RGB, non-uint8 or empty image, a mask of another shape,
        ``n_segments < 1``, ``compactness <= 0``, ``max_num_iter < 1`` or ``min_size_factor``
        outside 0..1; ``n_segments`` over 2**31 - 1, ``max_num_iter`` above :data:`MAX_SLIC_ITER`.

    Notes
    -----
    Achanta et al.'s algorithm: seeds moved to the lowest CIELAB gradient in their 3x3
    neighbourhood, each centre searching a 2S x 2S window (1.5 S for S < 10), early stop at a fixed
    point. scikit-image instead keeps the grid seeds, searches 4S x 4S and always runs
    ``max_num_iter`` iterations; the two agree closely (boundary recall and adapted Rand error
    are checked in the tests) but not pixel for pixel. ``max_size_factor`` of scikit-image is not
    implemented (large regions are not split).

    References
    ----------
    .. [1] R. Achanta, A. Shaji, K. Smith, A. Lucchi, P. Fua, S. Susstrunk, "SLIC superpixels
           compared to state-of-the-art superpixel methods", IEEE TPAMI 34(11), 2274-2282,
           2012. :DOI:`10.1109/TPAMI.2012.120`

    Examples
    --------
    >>> import numpy as np
    >>> from her2fast.stages.superpixels import slic
    >>> img = np.zeros((64, 64, 3), np.uint8); img[:, 32:] = 255
    >>> labels = slic(img, n_segments=4, compactness=10)
    >>> int(labels.max()) + 1
    4
    """
    img = as_rgb_uint8(image)
    n_segments = as_int(n_segments, "n_segments", 1, np.iinfo(np.int32).max)
    compactness = as_positive_float(compactness, "compactness")
    iters = as_int(
        max_num_iter if max_iter is None else max_iter,
        "max_iter" if max_iter is not None else "max_num_iter",
        1,
        MAX_SLIC_ITER,
    )
    try:
        msf = float(min_size_factor)
    except (TypeError, ValueError):
        raise InvalidInputError(f"min_size_factor must be a number in 0..1, got {min_size_factor!r}") from None
    if not 0.0 <= msf <= 1.0:
        raise InvalidInputError(f"min_size_factor must be in 0..1, got {msf}")
    mask_u8 = None
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != img.shape[:2]:
            raise InvalidInputError(f"mask must have the image's shape {img.shape[:2]}, got {m.shape}")
        if m.dtype != np.bool_:
            raise InvalidInputError(f"mask must be a boolean array, got dtype {m.dtype}")
        mask_u8 = np.ascontiguousarray(m).view(np.uint8)
    labels, _ = _native.slic(img, n_segments, compactness, iters, mask_u8, bool(enforce_connectivity), msf)
    return labels


def superpixel_features(
    image: np.ndarray, labels: np.ndarray, *, P: int = 8, R: float = 1.0, n_labels: int | None = None
) -> np.ndarray:
    """Per-superpixel colour + texture features, in one pass over the tile (C++ kernel, GIL released).

    Parameters
    ----------
    image : (H, W, 3) ndarray of uint8
        RGB tile (stain-normalised, at the epithelium working resolution).
    labels : (H, W) ndarray of integers
        Superpixel labels 0..K-1; -1 marks pixels to ignore (outside the tissue).
    P, R : int, float, optional
        Uniform-LBP neighbours and radius (default 8, 1.0), as :func:`her2fast.stages.texture.local_binary_pattern`.
    n_labels : int, optional
        K, the number of rows to return (default ``labels.max() + 1``), at most :data:`MAX_FEATURE_LABELS`;
        superpixels without pixels get rows of zeros.

    Returns
    -------
    features : (K, 224 + P + 2 + 1) ndarray of float64
        Row k: seven 32-bin colour histograms, each normalised to sum 1 over superpixel k (red,
        green, blue, hue, saturation, value, grey: see Notes), the normalised (P+2)-bin histogram
        of uniform LBP codes of the grey image, and the pixel count. :func:`feature_names` names
        the columns.

    Raises
    ------
    InvalidInputError
        (a ``ValueError``) for a non-RGB or non-uint8 image, labels of another shape or
        non-integer dtype, labels below -1 or >= n_labels, more than :data:`MAX_FEATURE_LABELS` labels
        (checked before anything is allocated), or P/R out of range.

    Notes
    -----
    Quantisation (integers only, so it is exact and reproducible): R, G, B, value = max(R,G,B)
    and grey = (54 R + 183 G + 19 B + 128) >> 8 (Rec. 709 luma) use ``v >> 3``; with
    mx, mn = max, min of R, G, B and d = mx - mn, saturation uses ``32 d // (mx + 1)`` and hue
    ``32 h6 // (6 d)`` (0 when d = 0), where h6 in [0, 6d) is the usual hexcone hue scaled by 6d.
    LBP codes are computed on the grey image with zero padding at the tile edge.

    Examples
    --------
    >>> import numpy as np
    >>> from her2fast.stages.superpixels import superpixel_features
    >>> img = np.zeros((4, 4, 3), np.uint8); labels = np.zeros((4, 4), np.int32); labels[:, 2:] = 1
    >>> superpixel_features(img, labels).shape
    (2, 235)
    """
    img = as_rgb_uint8(image)
    P = as_int(P, "P", 1, int(_native.LBP_MAX_POINTS))
    R = _check_radius(R)
    lab = np.asarray(labels)
    if lab.shape != img.shape[:2]:
        raise InvalidInputError(f"labels must have the image's shape {img.shape[:2]}, got {lab.shape}")
    if not np.issubdtype(lab.dtype, np.integer):
        raise InvalidInputError(f"labels must have an integer dtype, got {lab.dtype}")
    lo, hi = int(lab.min()), int(lab.max())
    if lo < -1:
        raise InvalidInputError(f"labels must be >= -1 (-1 = ignore), got minimum {lo}")
    relabel = "number the labels 0..K-1 first (skimage.segmentation.relabel_sequential)"
    if n_labels is None:
        if hi >= MAX_FEATURE_LABELS:
            raise InvalidInputError(
                f"labels go up to {hi}, so the feature table would have {hi + 1} rows, more than "
                f"MAX_FEATURE_LABELS={MAX_FEATURE_LABELS} (about 3 kB each); {relabel}"
            )
        n_labels = hi + 1
    if not isinstance(n_labels, (bool, np.bool_)) and isinstance(n_labels, (int, np.integer)):
        if n_labels > MAX_FEATURE_LABELS:
            raise InvalidInputError(
                f"n_labels must be at most MAX_FEATURE_LABELS={MAX_FEATURE_LABELS} rows (about 3 kB of memory "
                f"each), got {int(n_labels)}; {relabel}"
            )
    n_labels = as_int(n_labels, "n_labels", 0, MAX_FEATURE_LABELS)
    if hi >= n_labels:
        raise InvalidInputError(f"labels must be < n_labels={n_labels}, got maximum {hi}")
    lab32 = np.ascontiguousarray(lab, dtype=np.int32)
    return _native.superpixel_features(img, lab32, n_labels, P, R)


def feature_names(P: int = 8) -> list[str]:
    """Column names of :func:`superpixel_features` for ``P`` LBP neighbours.

    Examples
    --------
    >>> names = feature_names(8)
    >>> names[0], names[224], names[-1]
    ('red_00', 'lbp_0', 'pixel_count')
    """
    P = as_int(P, "P", 1, int(_native.LBP_MAX_POINTS))
    names = [f"{ch}_{b:02d}" for ch in COLOUR_CHANNELS for b in range(32)]
    names += [f"lbp_{c}" for c in range(P + 2)]
    names.append("pixel_count")
    return names
