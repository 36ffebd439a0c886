"""Fast, exact cell assignment on a pixel grid: the power diagram (weighted Voronoi) of the cell sites.

For every pixel this finds the site of its cell and the distance to its cell's boundary (and the site
across that boundary), which is what the membrane profile and the ground truth need.

How: the grid is cut into square pixel blocks aligned to a *global* block lattice. Per block, a short
candidate list of sites is pruned exactly (a site stays if its smallest possible power over the block,
grown by the warp amplitude and `reach`, is not larger than the smallest largest power of any site), so
the nearest site of every pixel and the neighbour across every cell edge within `reach` are in the list.
Then all (pixel, candidate) powers of a block are computed by broadcasting, without per-pixel gathers.
Because blocks and the arithmetic per pixel depend only on global positions, two tiles that overlap give
identical labels where they overlap.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["CellAssignment", "assign_cells"]

_FAR = np.float32(1.0e4)  # relative position (um) of padding candidates: never the nearest


class CellAssignment:
    """Per-pixel result of :func:`assign_cells` (all (H, W))."""

    __slots__ = ("site", "d_edge", "neighbour")

    def __init__(self, site: np.ndarray, d_edge: np.ndarray, neighbour: np.ndarray | None) -> None:
        self.site = site  # int32 index into the site arrays
        self.d_edge = d_edge  # float32 um from the pixel to its cell's boundary, clipped at `reach`
        self.neighbour = neighbour  # int32 site across the nearest edge (None unless asked for)


def _to_blocks(a: np.ndarray, B: int) -> np.ndarray:
    H, W = a.shape
    return a.reshape(H // B, B, W // B, B).transpose(0, 2, 1, 3).reshape((H // B) * (W // B), B * B)


def _from_blocks(a: np.ndarray, H: int, W: int, B: int) -> np.ndarray:
    return a.reshape(H // B, W // B, B, B).transpose(0, 2, 1, 3).reshape(H, W)


def assign_cells(
    sx: np.ndarray,
    sy: np.ndarray,
    weight: np.ndarray,
    xs: np.ndarray,
    ys: np.ndarray,
    block: int,
    warp: tuple[np.ndarray, np.ndarray] | None = None,
    warp_amp: float = 0.0,
    reach: float = 4.0,
    with_neighbour: bool = False,
    need_edge: np.ndarray | None = None,
) -> CellAssignment:
    """Power-diagram cell of every pixel of the grid ``ys[:, None], xs[None, :]``.

    Parameters
    ----------
    sx, sy, weight : (n,) float arrays
        Site positions (um) and power weights (um^2): a point p belongs to the site minimising
        ``|p - s|^2 - weight``.
    xs, ys : 1-D float arrays
        Pixel-centre coordinates (um), evenly spaced; their lengths are multiples of `block` and their
        first pixel starts a block of the global block lattice.
    block : int
        Block size in pixels.
    warp : (wx, wy) of (H, W) float32, optional
        Displacement (um) added to each pixel position before the assignment (wavy cell edges).
    warp_amp : float
        Bound on ``|wx|`` and ``|wy|``.
    reach : float
        Distances to the cell edge are exact up to `reach` um and clipped there.
    with_neighbour : bool
        Also return the site across the nearest edge.
    need_edge : (n,) bool array, optional
        Sites whose edge distances matter; blocks none of whose candidates (within `reach`) is such a
        site get only their labels (``d_edge = reach`` there, ``neighbour`` = own site). Default: all.

    Returns
    -------
    CellAssignment
    """
    H, W = len(ys), len(xs)
    B = int(block)
    if H % B or W % B:
        raise ValueError(f"grid size ({H}, {W}) must be a multiple of block={B}")
    nby, nbx = H // B, W // B
    nb = nby * nbx
    step_x = float(xs[1] - xs[0]) if W > 1 else 1.0
    step_y = float(ys[1] - ys[0]) if H > 1 else 1.0
    # block origins (first pixel centre) and centres, um
    ox = np.asarray(xs[::B], dtype=np.float64)
    oy = np.asarray(ys[::B], dtype=np.float64)
    OX = np.broadcast_to(ox[None, :], (nby, nbx)).ravel()
    OY = np.broadcast_to(oy[:, None], (nby, nbx)).ravel()
    hx = 0.5 * (B - 1) * step_x
    hy = 0.5 * (B - 1) * step_y
    CX, CY = OX + hx, OY + hy
    grow0 = warp_amp + 0.5 * max(step_x, step_y)
    grow = grow0 + reach
    ex, ey = hx + grow, hy + grow

    sites = np.column_stack([sx, sy])
    w64 = np.asarray(weight, dtype=np.float64)
    tree = cKDTree(sites)
    n = len(sx)
    kq = min(24, n)
    while True:
        dist, cand = tree.query(np.column_stack([CX, CY]), k=kq)
        dist = dist.reshape(nb, kq)
        cand = cand.reshape(nb, kq)
        dx = np.abs(sx[cand] - CX[:, None])
        dy = np.abs(sy[cand] - CY[:, None])
        wc = w64[cand]
        minpow = np.maximum(dx - ex, 0) ** 2 + np.maximum(dy - ey, 0) ** 2 - wc
        maxpow = (dx + ex) ** 2 + (dy + ey) ** 2 - wc
        T = maxpow.min(axis=1)
        # any site beyond the list is at least dist[:, -1] from the centre: is it provably out?
        lower = np.maximum(dist[:, -1] - np.hypot(ex, ey), 0.0) ** 2 - w64.max()
        if kq >= n or (lower > T).all():
            break
        kq = min(2 * kq, n)
    keep = minpow <= T[:, None]  # candidates for labels and edges within `reach`
    if need_edge is None:
        edges = np.ones(nb, bool)
    else:
        edges = (keep & np.asarray(need_edge, bool)[cand]).any(axis=1)
    if not edges.all():  # label-only blocks: prune with the block grown by the warp alone
        ax_, ay_ = hx + grow0, hy + grow0
        minpow0 = np.maximum(dx - ax_, 0) ** 2 + np.maximum(dy - ay_, 0) ** 2 - wc
        maxpow0 = (dx + ax_) ** 2 + (dy + ay_) ** 2 - wc
        keep0 = minpow0 <= maxpow0.min(axis=1)[:, None]
        keep = np.where(edges[:, None], keep, keep0)
    order = np.argsort(~keep, axis=1, kind="stable")
    cand = np.take_along_axis(cand, order, axis=1)
    count = keep.sum(axis=1)

    # pixel positions relative to their block origin, in block layout (nb, P)
    lx = (np.arange(B) * step_x).astype(np.float32)
    ly = (np.arange(B) * step_y).astype(np.float32)
    px = np.broadcast_to(lx[None, :], (B, B)).ravel()
    py = np.broadcast_to(ly[:, None], (B, B)).ravel()
    if warp is not None:
        PX = px[None, :] + _to_blocks(warp[0], B)
        PY = py[None, :] + _to_blocks(warp[1], B)
    else:
        PX = np.broadcast_to(px[None, :], (nb, B * B))
        PY = np.broadcast_to(py[None, :], (nb, B * B))

    site_b = np.empty((nb, B * B), np.int32)
    edge_b = np.empty((nb, B * B), np.float32)
    nbr_b = np.empty((nb, B * B), np.int32) if with_neighbour else None
    # blocks grouped by their number of candidates: the work is the sum, not the max, of the counts
    key = count * 2 + edges
    for kk in np.unique(key):
        K, want = int(kk) // 2, bool(kk % 2)
        sel = np.flatnonzero(key == kk)
        c = cand[sel, :K]
        rx = (sx[c] - OX[sel, None]).astype(np.float32)
        ry = (sy[c] - OY[sel, None]).astype(np.float32)
        rw = w64[c].astype(np.float32)
        px_, py_ = PX[sel], PY[sel]
        m = sel.size
        # powers of every candidate, one candidate at a time on contiguous (m, P) arrays
        power = np.empty((K, m, B * B), np.float32)
        best = np.zeros((m, B * B), np.intp)
        for k in range(K):
            pk = power[k]
            np.subtract(px_, rx[:, k : k + 1], out=pk)
            pk *= pk
            t = py_ - ry[:, k : k + 1]
            t *= t
            pk += t
            pk -= rw[:, k : k + 1]
            if k == 0:
                pbest = pk.copy()
            else:
                np.copyto(best, k, where=pk < pbest)
                np.minimum(pbest, pk, out=pbest)
        site_b[sel] = np.take_along_axis(c, best, axis=1)
        if K == 1 or not want:
            edge_b[sel] = reach
            if nbr_b is not None:
                nbr_b[sel] = site_b[sel]
            continue
        # distance to the power bisector with candidate k: (power_k - power_best) / (2 |s_k - s_best|)
        sep = np.hypot(rx[:, :, None] - rx[:, None, :], ry[:, :, None] - ry[:, None, :])
        inv = np.float32(0.5) / np.maximum(sep, np.float32(1e-6))
        inv[:, np.arange(K), np.arange(K)] = np.inf  # the own site: never the nearest edge
        dmin = np.full((m, B * B), np.inf, np.float32)
        jmin = np.zeros((m, B * B), np.intp) if nbr_b is not None else None
        rows = np.arange(m)[:, None] * K + best  # row of inv for each pixel
        for k in range(K):
            d = power[k]
            d -= pbest
            with np.errstate(invalid="ignore"):  # 0 * inf at the own site -> nan, ignored by fmin
                d *= np.take(inv[:, :, k].ravel(), rows)
            if jmin is not None:
                np.copyto(jmin, k, where=d < dmin)
            np.fmin(dmin, d, out=dmin)
        edge_b[sel] = dmin
        if nbr_b is not None:
            nbr_b[sel] = np.take_along_axis(c, jmin, axis=1)  # type: ignore[arg-type]  # jmin is set with nbr_b
    np.minimum(edge_b, np.float32(reach), out=edge_b)
    site = _from_blocks(site_b, H, W, B)
    neighbour = _from_blocks(nbr_b, H, W, B) if nbr_b is not None else None
    return CellAssignment(site, _from_blocks(edge_b, H, W, B), neighbour)
