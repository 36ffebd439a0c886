"""The native seeded watershed (her2fast._native.seeded_watershed) against a plain Python priority flood.

The reference is the flood as csrc/watershed.hpp documents it, written with :mod:`heapq`: one heap of
(elevation, age, pixel), markers entering in raster order, a pixel claimed by the first flood that
reaches it, the membrane barrier, the radius limit and the climb rule. Labels must be identical, on
random inputs (with and without ties) and on landscapes from the real HER2 patches (8-bit stain:
many equal elevations, so the order of equal elevations is exercised too).
"""

from __future__ import annotations

import heapq

import numpy as np
import pytest

from her2fast.stages.cells import seeded_watershed

from _helpers import assert_same_in_two_threads

NEIGHBOURS = ((-1, 0), (0, -1), (0, 1), (1, 0), (-1, -1), (-1, 1), (1, -1), (1, 1))


def split_centres(centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) centres -> integer base pixel and fraction in [0, 1), as the wrapper passes them on."""
    base = np.floor(centres)
    frac = centres - base
    wrap = frac >= 1.0
    return np.where(wrap, base + 1, base).astype(np.int64), np.where(wrap, 0.0, frac)


def reference_flood(
    elevation: np.ndarray,
    markers: np.ndarray,
    mask: np.ndarray | None = None,
    barrier: float = np.inf,
    max_radius: float | None = None,
    centres: np.ndarray | None = None,
    climb: bool = False,
    connectivity: int = 4,
) -> np.ndarray:
    """The documented flood, pixel by pixel (float32 elevations compared exactly, as the kernel does)."""
    h, w = elevation.shape
    barrier = float(np.float32(barrier))  # the kernel compares float32 elevations with a float32 barrier
    elev = elevation.astype(np.float32).astype(np.float64).ravel().tolist()
    label = markers.astype(np.int64).ravel().tolist()
    allowed = None if mask is None else (np.asarray(mask) != 0).ravel().tolist()
    seed = [v > 0 for v in label]
    done = [False] * (h * w)
    came_from = [0.0] * (h * w)
    if max_radius is not None:
        base, frac = split_centres(np.asarray(centres, np.float64))
        base, frac = base.tolist(), frac.tolist()
        r2 = float(max_radius) ** 2
    heap = []
    age = 0
    for p in range(h * w):
        if label[p] > 0:
            heapq.heappush(heap, (elev[p], age, p))
            age += 1
    while heap:
        e, _, p = heapq.heappop(heap)
        lab = label[p]
        on_barrier = not seed[p] and e >= barrier
        done[p] = True
        py, px = divmod(p, w)
        for dy, dx in NEIGHBOURS[:connectivity]:
            qy, qx = py + dy, px + dx
            if not (0 <= qy < h and 0 <= qx < w):
                continue
            q = qy * w + qx
            steal = False
            if label[q] != 0:
                if not climb or label[q] == lab or seed[q] or done[q] or not e > came_from[q] or not e < elev[q]:
                    continue
                steal = True
            if allowed is not None and not allowed[q]:
                continue
            if on_barrier and not elev[q] >= barrier:
                continue
            if max_radius is not None:
                ddx = float(qx - base[lab - 1][0]) - frac[lab - 1][0]
                ddy = float(qy - base[lab - 1][1]) - frac[lab - 1][1]
                if ddx * ddx + ddy * ddy > r2:
                    continue
            label[q] = lab
            came_from[q] = e
            if not steal:
                heapq.heappush(heap, (elev[q], age, q))
                age += 1
    return np.array(label, np.int32).reshape(h, w)


def check_equal(elev, markers, **kw) -> np.ndarray:
    ours = seeded_watershed(elev, markers, **kw)
    ref_kw = dict(kw)
    if ref_kw.get("barrier") is None:
        ref_kw.pop("barrier", None)
    np.testing.assert_array_equal(ours, reference_flood(elev, markers, **ref_kw))
    return ours


@pytest.mark.parametrize("seed", range(24))
def test_equals_the_reference_flood_on_random_inputs(seed):
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(2, 60, 2))
    u = rng.random((h, w))
    kind = seed % 4
    elev = [u, np.floor(u * 5) / 5, (u - 0.5) * 1e6, np.floor(u * 3) - 1.0][kind].astype(np.float32)
    n = int(rng.integers(1, 12))
    markers = np.zeros((h, w), np.int32)
    markers.flat[rng.choice(h * w, n, replace=False)] = np.arange(1, n + 1)
    kw: dict = {"climb": bool(seed % 2), "connectivity": 8 if seed % 3 == 0 else 4}
    if seed % 5 != 0:
        kw["barrier"] = float(np.quantile(elev, 0.7))
    if seed % 4 in (1, 2):
        kw["mask"] = rng.random((h, w)) < 0.85
    if seed % 3 != 1:
        kw["max_radius"] = float(rng.uniform(2, 15))
        kw["centres"] = rng.uniform(0, [w, h], (n, 2))
    check_equal(elev, markers, **kw)


def real_landscape(patch: np.ndarray, size: int = 160) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DAB as elevation (8-bit colours: many ties), whole hematoxylin blobs as markers, their centres."""
    from scipy import ndimage as ndi
    from skimage.color import rgb2hed

    hed = rgb2hed(patch[:size, :size])
    dab = hed[..., 2]
    elev = ((dab - dab.min()) / max(float(np.ptp(dab)), 1e-6)).astype(np.float32)
    hema = ndi.gaussian_filter(hed[..., 0], 1.5)
    markers, n = ndi.label(hema > np.percentile(hema, 93))
    centres = np.array(ndi.center_of_mass(markers > 0, markers, range(1, n + 1)))[:, ::-1]
    return elev, markers.astype(np.int32), centres


@pytest.mark.parametrize("climb", [False, True])
def test_equals_the_reference_flood_on_real_her2_patches(her2_patch, climb):
    elev, markers, centres = real_landscape(her2_patch)
    assert len(np.unique(elev)) < 0.8 * elev.size  # the real landscape has many ties
    barrier = float(np.percentile(elev, 85))
    out = check_equal(elev, markers, barrier=barrier, max_radius=18.0, centres=centres, climb=climb)
    assert (out > 0).mean() > 0.2  # the floods went somewhere
    check_equal(elev, markers, climb=climb, connectivity=8)


def test_same_labels_in_two_threads_on_real_patches(her2_patch):
    elev, markers, centres = real_landscape(her2_patch, 256)
    barrier = float(np.percentile(elev, 85))
    items = [(elev, markers), (elev[::-1].copy(), markers[::-1].copy()), (elev.T.copy(), markers.T.copy())]
    assert_same_in_two_threads(lambda em: seeded_watershed(em[0], em[1], barrier=barrier, climb=True), items)
