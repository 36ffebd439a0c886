"""Map-grid helpers of the quality map: block means, growing a mask, dropping small specks."""

from __future__ import annotations

import numpy as np


def _block_mean(a: np.ndarray, k: int) -> np.ndarray:
    """Mean over k x k blocks (the image is edge-padded to a multiple of k)."""
    if k == 1:
        return a
    h, w = a.shape[:2]
    ph, pw = -h % k, -w % k
    if ph or pw:
        a = np.pad(a, ((0, ph), (0, pw)) + ((0, 0),) * (a.ndim - 2), mode="edge")
    # a sum of k^2 strided views: numpy's reductions over short inner axes are several times slower
    acc_type = (np.uint16 if k <= 16 else np.int32) if a.dtype == np.uint8 else a.dtype
    acc = np.zeros((a.shape[0] // k, a.shape[1] // k, *a.shape[2:]), acc_type)
    for i in range(k):
        for j in range(k):
            acc += a[i::k, j::k]
    return (acc / np.float32(k * k)).astype(np.float32 if a.dtype == np.uint8 else a.dtype, copy=False)


def _grow(mask: np.ndarray, radius: float) -> np.ndarray:
    from scipy import ndimage as ndi

    if radius <= 0 or not mask.any():
        return mask
    return ndi.distance_transform_edt(~mask) <= radius


def _drop_specks(mask: np.ndarray, min_px: float) -> np.ndarray:
    """``mask`` without its 8-connected components smaller than ``min_px`` pixels."""
    from scipy import ndimage as ndi

    if not mask.any():
        return mask
    labels, n = ndi.label(mask, structure=np.ones((3, 3), bool))
    keep = np.bincount(labels.ravel(), minlength=n + 1) >= min_px
    keep[0] = False
    return keep[labels]
