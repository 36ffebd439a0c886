"""Stateless, position-hashed noise: the same (seed, position) gives the same value in every tile.

Everything spatial in a phantom (tissue outline, tumour nests, fibres, chromatin, illumination drift)
is a function of the *global* position in micrometres, evaluated through an integer hash of lattice
coordinates, so neighbouring render tiles agree exactly and no full-slide array is ever built.
"""

from __future__ import annotations

import numpy as np

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_PX = np.uint64(0x9E3779B97F4A7C15)
_PY = np.uint64(0xC2B2AE3D27D4EB4F)
_PS = np.uint64(0x165667B19E3779F9)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_OFF = 1 << 40  # keeps lattice indices non-negative before the cast to uint64


def hash_uniform(ix: np.ndarray, iy: np.ndarray, seed: int) -> np.ndarray:
    """Uniform [0, 1) float64 from integer lattice coordinates and a seed (splitmix64 finaliser)."""
    bx, by = np.broadcast_arrays(np.asarray(ix, dtype=np.int64), np.asarray(iy, dtype=np.int64))
    x = (bx + _OFF).astype(np.uint64)
    y = (by + _OFF).astype(np.uint64)
    s = np.full(x.shape, seed & 0xFFFFFFFFFFFF, dtype=np.uint64)
    h = x * _PX
    h ^= y * _PY
    h ^= s * _PS
    h ^= h >> _S30
    h *= _M1
    h ^= h >> _S27
    h *= _M2
    h ^= h >> _S31
    return (h >> _S11).astype(np.float64) * (1.0 / (1 << 53))


def value_noise(x: np.ndarray, y: np.ndarray, scale: float, seed: int) -> np.ndarray:
    """Smooth value noise in [0, 1] with feature size `scale` (same units as x, y)."""
    u = np.asarray(x, dtype=np.float64) / scale
    v = np.asarray(y, dtype=np.float64) / scale
    iu = np.floor(u)
    iv = np.floor(v)
    fu = u - iu
    fv = v - iv
    fu = fu * fu * (3.0 - 2.0 * fu)
    fv = fv * fv * (3.0 - 2.0 * fv)
    iu = iu.astype(np.int64)
    iv = iv.astype(np.int64)
    if iu.size == 0:
        return np.zeros(np.broadcast(u, v).shape)
    # hash the lattice window once, then gather the four corners (much cheaper than 4 hashes per pixel)
    iu0, iv0 = int(iu.min()), int(iv.min())
    tw = int(iu.max()) - iu0 + 2
    th = int(iv.max()) - iv0 + 2
    table = hash_uniform(np.arange(iu0, iu0 + tw)[None, :], np.arange(iv0, iv0 + th)[:, None], seed).ravel()
    k = (iv - iv0) * tw + (iu - iu0)
    a = table[k]
    b = table[k + 1]
    c = table[k + tw]
    d = table[k + tw + 1]
    top = a + (b - a) * fu
    bot = c + (d - c) * fu
    return top + (bot - top) * fv


def fbm(x: np.ndarray, y: np.ndarray, scale: float, seed: int, octaves: int = 4, gain: float = 0.5) -> np.ndarray:
    """Fractal sum of `octaves` value-noise layers, normalised to [0, 1] (mean 0.5)."""
    total = np.zeros(np.broadcast(np.asarray(x), np.asarray(y)).shape, np.float64)
    amp = 1.0
    norm = 0.0
    s = scale
    for o in range(octaves):
        total += amp * value_noise(x, y, s, seed * 131 + o * 7919 + 17)
        norm += amp
        amp *= gain
        s *= 0.5
    return total / norm


def coarse_grid_field(func, xs: np.ndarray, ys: np.ndarray, step: float) -> np.ndarray:
    """``func(x, y)`` on the grid ``xs`` x ``ys``, evaluated at global nodes every `step` and interpolated.

    The nodes are multiples of `step` (global), so any two regions get the same values where they
    overlap. For slowly varying fields only (feature size >> step).
    """
    gx = np.arange(np.floor(xs[0] / step), np.floor(xs[-1] / step) + 2) * step
    gy = np.arange(np.floor(ys[0] / step), np.floor(ys[-1] / step) + 2) * step
    grid = func(gx[None, :], gy[:, None])
    fx = (xs - gx[0]) / step
    fy = (ys - gy[0]) / step
    ix = np.minimum(np.floor(fx).astype(np.int64), gx.size - 2)
    iy = np.minimum(np.floor(fy).astype(np.int64), gy.size - 2)
    wx = (fx - ix)[None, :]
    wy = (fy - iy)[:, None]
    g00 = grid[np.ix_(iy, ix)]
    g01 = grid[np.ix_(iy, ix + 1)]
    g10 = grid[np.ix_(iy + 1, ix)]
    g11 = grid[np.ix_(iy + 1, ix + 1)]
    return (1 - wy) * ((1 - wx) * g00 + wx * g01) + wy * ((1 - wx) * g10 + wx * g11)


# ---------------------------------------------------------------------------------------------------------
# Separable evaluation on a regular pixel grid: the renderer's fast path.
#
# On a grid ``xs`` x ``ys`` (1-D, increasing), value noise is separable: interpolate the hashed lattice
# table along x for every lattice row, then along y. That is two gathers + lerps over the output instead
# of four per pixel, and everything is float32. The values are those of :func:`value_noise` at the same
# positions (up to float32 rounding) and depend only on the global position, never on the grid's extent.


def _lerp_weights(coords: np.ndarray, step: float, smooth: bool) -> tuple[np.ndarray, np.ndarray, int]:
    u = np.asarray(coords, dtype=np.float64) / step
    iu = np.floor(u)
    f = u - iu
    if smooth:
        f = f * f * (3.0 - 2.0 * f)
    iu = iu.astype(np.int64)
    i0 = int(iu[0]) if iu.size else 0
    return iu - i0, f.astype(np.float32), i0


def _separable_interp(table: np.ndarray, ix: np.ndarray, fx: np.ndarray, iy: np.ndarray, fy: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of `table` (ny, nx) at column indices ix (+fx) and row indices iy (+fy)."""
    t0 = np.take(table, ix, axis=1)
    t1 = np.take(table, ix + 1, axis=1)
    cols = t0 + (t1 - t0) * fx[None, :]  # (ny, W)
    r0 = np.take(cols, iy, axis=0)
    r1 = np.take(cols, iy + 1, axis=0)
    r1 -= r0
    r1 *= fy[:, None]
    r0 += r1
    return r0


def grid_value_noise(xs: np.ndarray, ys: np.ndarray, scale: float, seed: int) -> np.ndarray:
    """:func:`value_noise` on the grid ``ys[:, None], xs[None, :]`` as float32 (len(ys), len(xs))."""
    ix, fx, ix0 = _lerp_weights(xs, scale, True)
    iy, fy, iy0 = _lerp_weights(ys, scale, True)
    nx = int(ix[-1]) + 2 if ix.size else 2
    ny = int(iy[-1]) + 2 if iy.size else 2
    table = hash_uniform(np.arange(ix0, ix0 + nx)[None, :], np.arange(iy0, iy0 + ny)[:, None], seed).astype(np.float32)
    return _separable_interp(table, ix, fx, iy, fy)


def grid_fbm(
    xs: np.ndarray, ys: np.ndarray, scale: float, seed: int, octaves: int = 4, gain: float = 0.5
) -> np.ndarray:
    """:func:`fbm` on a grid (float32), same octave seeds and normalisation."""
    total = np.zeros((len(ys), len(xs)), np.float32)
    amp, norm, s = 1.0, 0.0, scale
    for o in range(octaves):
        total += np.float32(amp) * grid_value_noise(xs, ys, s, seed * 131 + o * 7919 + 17)
        norm += amp
        amp *= gain
        s *= 0.5
    total *= np.float32(1.0 / norm)
    return total


def grid_field(func, xs: np.ndarray, ys: np.ndarray, step: float) -> np.ndarray:
    """Separable, float32 version of :func:`coarse_grid_field` (same global nodes every `step`)."""
    ix, fx, ix0 = _lerp_weights(xs, step, False)
    iy, fy, iy0 = _lerp_weights(ys, step, False)
    gx = np.arange(ix0, ix0 + int(ix[-1]) + 2) * step
    gy = np.arange(iy0, iy0 + int(iy[-1]) + 2) * step
    nodes = np.asarray(func(gx[None, :], gy[:, None]), dtype=np.float32)
    nodes = np.broadcast_to(nodes, (gy.size, gx.size))
    return _separable_interp(np.ascontiguousarray(nodes), ix, fx, iy, fy)
