"""Reference implementations written the obvious way (numpy / scikit-image).

They define what the native kernels must compute: the tests compare against them and the
benchmarks time against them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["grey_level", "colour_bins", "superpixel_features_reference", "real_ihc_mosaic", "membrane_like_mask"]


def grey_level(image: np.ndarray) -> np.ndarray:
    """(54 R + 183 G + 19 B + 128) >> 8 as uint8 (Rec. 709 luma in integers)."""
    rgb = image.astype(np.int32)
    return ((54 * rgb[..., 0] + 183 * rgb[..., 1] + 19 * rgb[..., 2] + 128) >> 8).astype(np.uint8)


def colour_bins(image: np.ndarray) -> np.ndarray:
    """(H, W, 7) bins 0..31 of R, G, B, hue, saturation, value, grey (see her2fast.stages.superpixels)."""
    rgb = image.astype(np.int64)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    mx, mn = rgb.max(axis=-1), rgb.min(axis=-1)
    d = mx - mn
    h6 = np.where(mx == r, np.mod(g - b, np.maximum(6 * d, 1)), np.where(mx == g, 2 * d + b - r, 4 * d + r - g))
    hue = np.where(d > 0, (32 * h6) // np.maximum(6 * d, 1), 0)
    sat = (32 * d) // (mx + 1)
    grey = grey_level(image).astype(np.int64)
    return np.stack([r >> 3, g >> 3, b >> 3, hue, sat, mx >> 3, grey >> 3], axis=-1)


def superpixel_features_reference(
    image: np.ndarray,
    labels: np.ndarray,
    P: int = 8,
    R: float = 1.0,
    n_labels: int | None = None,
    lbp_codes: np.ndarray | None = None,
) -> np.ndarray:
    """The features of :func:`her2fast.stages.superpixels.superpixel_features`, with np.bincount.

    LBP codes come from ``skimage.feature.local_binary_pattern`` on the grey image unless
    ``lbp_codes`` is given.
    """
    from skimage.feature import local_binary_pattern

    labels = np.asarray(labels)
    if n_labels is None:
        n_labels = int(labels.max()) + 1
    keep = labels.ravel() >= 0
    lab = labels.ravel()[keep].astype(np.int64)
    bins = colour_bins(image).reshape(-1, 7)[keep]
    if lbp_codes is None:
        lbp_codes = local_binary_pattern(grey_level(image), P, R, method="uniform")
    codes = np.asarray(lbp_codes).astype(np.int64).ravel()[keep]
    counts = np.bincount(lab, minlength=n_labels).astype(np.float64)
    denom = np.where(counts > 0, counts, 1.0)[:, None]
    blocks = []
    for ch in range(7):
        hist = np.bincount(lab * 32 + bins[:, ch], minlength=n_labels * 32).reshape(n_labels, 32)
        blocks.append(hist / denom)
    lbp_hist = np.bincount(lab * (P + 2) + codes, minlength=n_labels * (P + 2)).reshape(n_labels, P + 2)
    blocks.append(lbp_hist / denom)
    blocks.append(counts[:, None])
    return np.concatenate(blocks, axis=1)


def real_ihc_mosaic(size: int) -> np.ndarray:
    """A size x size RGB mosaic of scikit-image's real IHC image (flipped / rotated copies)."""
    from skimage import data

    base = data.immunohistochemistry()  # 512 x 512 x 3, DAB + hematoxylin
    n = -(-size // base.shape[0])
    rows = []
    for i in range(n):
        row = []
        for j in range(n):
            t = np.rot90(base, k=(i + 2 * j) % 4)
            row.append(t[:, ::-1] if (i + j) % 2 else t)
        rows.append(np.concatenate(row, axis=1))
    return np.ascontiguousarray(np.concatenate(rows, axis=0)[:size, :size])


def membrane_like_mask(size: int, seed: int = 0) -> np.ndarray:
    """A size x size boolean mask of thick, partly broken cell outlines (membrane-segmentation-like)."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    cells = ndi.binary_dilation(rng.random((size, size)) < 0.0015, iterations=7)
    outline = cells ^ ndi.binary_erosion(cells, iterations=2)
    cuts = ndi.binary_dilation(rng.random((size, size)) < 0.0005, iterations=2)
    return outline & ~cuts
