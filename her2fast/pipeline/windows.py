"""Window geometry: the part of a padded tile that holds its tumour cells, cut into at most a few windows
when that saves pixels; each window owns the cells whose centres lie in its core."""

from __future__ import annotations

import numpy as np

from .._validate import as_int
from ..errors import InvalidInputError

__all__ = ["tile_window", "tile_windows"]


def _window_px(ra, rb, ca, cb, ov: int, m: int, h: int, w: int):
    """The window (x0, y0, x1, y1; padded-tile pixels, h x w tile) of the candidate-owner pixels in index
    rows ``ra..rb`` and columns ``ca..cb`` (index ``i`` is the padded tile's pixel ``ov + i``): their box
    with one pixel more on the low sides, widened by ``ov``, rounded out to the ``m`` grid and clipped
    (:func:`tile_window`); works elementwise on arrays."""
    return (
        np.maximum(0, (ca - 1) // m * m),
        np.maximum(0, (ra - 1) // m * m),
        np.minimum(w, -(-(cb + 1 + 2 * ov) // m) * m),
        np.minimum(h, -(-(rb + 1 + 2 * ov) // m) * m),
    )


def tile_window(
    epithelium: np.ndarray, padded: tuple[int, int, int, int], overlap: int, multiple: int = 16
) -> tuple[int, int, int, int] | None:
    """The part of a padded tile that holds the tumour cells its core owns (``crop_to_epithelium``).

    A cell is a tumour cell when the pixel holding its centre is epithelium, and the tile owns it when
    the centre itself lies in the core; so the window is the bounding box of the epithelium pixels
    that can hold an owned centre (the core and the first pixel row/column after it), one pixel
    more on the low sides (a centre up to half a pixel before its pixel), widened by ``overlap``,
    rounded out to the ``multiple`` grid and clipped to the padded tile.

    Parameters
    ----------
    epithelium : (H, W) array of bool
        Epithelium sampled over the padded tile (``H, W`` = the padded tile's size).
    padded : (x0, y0, x1, y1)
        The padded tile in working pixels (``Tile.padded``); its core is ``overlap`` inside.
    overlap : int
        The tile margin (``ScoreSettings.overlap``).
    multiple : int
        The window's corners are rounded outwards to this grid, counted from the padded tile's
        corner (16: the network's pooling grid stays the whole tile's).

    Returns
    -------
    (x0, y0, x1, y1) or None
        Working pixels, half-open, inside ``padded``. Its own core (``overlap`` inside it) lies in the
        tile's core and holds every centre the tile owns whose pixel is epithelium. None when no such
        pixel exists.

    Raises
    ------
    InvalidInputError
        For a mask of another shape than the padded tile, or a bad ``overlap`` / ``multiple``.

    Examples
    --------
    >>> import numpy as np
    >>> epi = np.zeros((800, 800), bool); epi[300:340, 100:120] = True
    >>> tile_window(epi, (1000, 2000, 1800, 2800), 48)
    (1048, 2240, 1176, 2400)
    """
    try:
        px0, py0, px1, py1 = (int(v) for v in padded)
    except (TypeError, ValueError):
        raise InvalidInputError(f"padded must be 4 integers (x0, y0, x1, y1), got {padded!r}") from None
    h, w = py1 - py0, px1 - px0
    ov = as_int(overlap, "overlap", 0)
    m = as_int(multiple, "multiple", 1)
    if min(h, w) <= 2 * ov:
        raise InvalidInputError(f"padded tile {padded} has no core inside an overlap of {ov} px")
    epi = np.asarray(epithelium, dtype=bool)
    if epi.shape != (h, w):
        raise InvalidInputError(
            f"epithelium must have the padded tile's shape {(h, w)}, got {epi.shape}: "
            "sample the epithelium map over Tile.padded"
        )
    # the pixels that can hold an owned centre: the core [ov, P - ov) and pixel P - ov (a centre in
    # [P - ov - 1/2, P - ov) rounds up to it)
    owned = epi[ov : h - ov + 1, ov : w - ov + 1]
    rows = np.flatnonzero(owned.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(owned.any(axis=0))
    # in padded-tile pixels the first such pixel is ov + cols[0]; its centres reach half a pixel
    # before it, so the window's core starts one pixel earlier; the window is that core widened by ov
    x0, y0, x1, y1 = (int(v) for v in _window_px(int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1]), ov, m, h, w))
    return (px0 + x0, py0 + y0, px0 + x1, py0 + y1)


#: a part of a tile is cut in two only when the halves' windows have at most this fraction of its
#: window's pixels (a window costs ~2 ms of fixed work, under 1 % of an 800^2 window's)
_SPLIT_MAX_FRACTION = 0.95
_FAR = np.iinfo(np.int64).max // 4


def _part_window(owned: np.ndarray, part: tuple[int, int, int, int], ov: int, m: int, h: int, w: int):
    """The window of the candidate-owner pixels of ``part`` (index rows r0..r1, columns c0..c1, inclusive),
    or None when it has none."""
    r0, r1, c0, c1 = part
    sub = owned[r0 : r1 + 1, c0 : c1 + 1]
    rows = np.flatnonzero(sub.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(sub.any(axis=0))
    return tuple(int(v) for v in _window_px(r0 + rows[0], r0 + rows[-1], c0 + cols[0], c0 + cols[-1], ov, m, h, w))


def _best_row_cut(owned: np.ndarray, part: tuple[int, int, int, int], ov: int, m: int, h: int, w: int):
    """The row cut of ``part`` whose halves' windows have the fewest pixels: ``(pixels, k)``, the halves
    holding index rows r0..k and k..r1 (row k: its pixels' centres lie on both sides of the cut), or
    None for a part of fewer than 3 rows. Every cut at once, with running minima and maxima."""
    r0, r1, c0, c1 = part
    sub = owned[r0 : r1 + 1, c0 : c1 + 1]
    n = sub.shape[0]
    if n < 3:
        return None
    any_r = sub.any(axis=1)
    idx = np.arange(n, dtype=np.int64)
    first = np.where(any_r, sub.argmax(axis=1), _FAR).astype(np.int64)
    last = np.where(any_r, sub.shape[1] - 1 - sub[:, ::-1].argmax(axis=1), -1).astype(np.int64)
    rev = slice(None, None, -1)
    k = idx[1:-1]
    # rows 0..k: first and last rows with epithelium, leftmost and rightmost columns
    top = (
        np.minimum.accumulate(np.where(any_r, idx, _FAR)),
        np.maximum.accumulate(np.where(any_r, idx, -1)),
        np.minimum.accumulate(first),
        np.maximum.accumulate(last),
    )
    # rows k..n-1
    bottom = (
        np.minimum.accumulate(np.where(any_r, idx, _FAR)[rev])[rev],
        np.maximum.accumulate(np.where(any_r, idx, -1)[rev])[rev],
        np.minimum.accumulate(first[rev])[rev],
        np.maximum.accumulate(last[rev])[rev],
    )
    total = np.zeros(k.shape, np.int64)
    for ra, rb, ca, cb in (tuple(a[k] for a in top), tuple(a[k] for a in bottom)):
        has = rb >= 0
        x0, y0, x1, y1 = _window_px(r0 + np.where(has, ra, 0), r0 + rb, c0 + np.where(has, ca, 0), c0 + cb, ov, m, h, w)
        total += np.where(has, (x1 - x0) * (y1 - y0), 0)
    j = int(np.argmin(total))
    return int(total[j]), r0 + int(k[j])


def tile_windows(
    epithelium: np.ndarray, padded: tuple[int, int, int, int], overlap: int, multiple: int = 16, max_windows: int = 4
) -> list[tuple[tuple[int, int, int, int], tuple[int, int, int, int]]]:
    """Up to ``max_windows`` windows of a padded tile that together hold the tumour cells its core owns.

    :func:`tile_window`'s one window, cut in two by a straight cut across the tile core (each half
    owning the cells on its side) while the halves' windows have at most 95 % of the pixels of the
    part's window, the best cut first: epithelium in two corners of a tile no longer makes the whole
    tile a window. Each window owns the cells whose centres lie in its core (the cores do not overlap,
    and hold every centre the tile owns whose pixel is epithelium) and has ``overlap`` of context
    around that core, as a tile has: the cells are those of the one window up to the network's far
    context.

    Parameters
    ----------
    epithelium, padded, overlap, multiple
        As :func:`tile_window`.
    max_windows : int
        At most this many windows; 1 gives :func:`tile_window`'s.

    Returns
    -------
    list of (window, core)
        Working pixels, half-open: the window (inside ``padded``) and the core whose cells it owns
        (inside the window by ``overlap``, and inside the tile's core). Empty when no pixel can hold
        an owned tumour centre.

    Raises
    ------
    InvalidInputError
        As :func:`tile_window`; or ``max_windows`` < 1.

    Examples
    --------
    >>> import numpy as np
    >>> epi = np.zeros((800, 800), bool); epi[60:120, 60:120] = True; epi[690:740, 680:740] = True
    >>> tile_windows(epi, (0, 0, 800, 800), 48)  # two corners: two windows, 9 % of the tile's pixels
    [((0, 0, 176, 176), (48, 48, 128, 120)), ((624, 640, 800, 800), (672, 688, 752, 752))]
    >>> tile_windows(epi, (0, 0, 800, 800), 48, max_windows=1)  # tile_window's: the whole tile
    [((0, 0, 800, 800), (48, 48, 752, 752))]
    """
    n_max = as_int(max_windows, "max_windows", 1)
    one = tile_window(epithelium, padded, overlap, multiple)  # validates everything else
    if one is None:
        return []
    ov, m = int(overlap), int(multiple)
    px0, py0, px1, py1 = (int(v) for v in padded)
    h, w = py1 - py0, px1 - px0
    owned = np.asarray(epithelium, dtype=bool)[ov : h - ov + 1, ov : w - ov + 1]
    owned_t = owned.T

    def area(win) -> int:
        return 0 if win is None else (win[2] - win[0]) * (win[3] - win[1])

    # a part: candidate-owner index rows r0..r1 and columns c0..c1, the core it owns (padded pixels,
    # half-open), its window
    whole = (0, owned.shape[0] - 1, 0, owned.shape[1] - 1)
    parts = [(whole, (ov, ov, w - ov, h - ov), _part_window(owned, whole, ov, m, h, w))]
    while len(parts) < n_max:
        best = None  # (saving, part index, axis, k)
        for i, ((r0, r1, c0, c1), _, win) in enumerate(parts):
            if win is None:
                continue
            for axis, cut in (
                (0, _best_row_cut(owned, (r0, r1, c0, c1), ov, m, h, w)),
                (1, _best_row_cut(owned_t, (c0, c1, r0, r1), ov, m, w, h)),
            ):
                if cut is not None and cut[0] <= _SPLIT_MAX_FRACTION * area(win):
                    saving = area(win) - cut[0]
                    if best is None or saving > best[0]:
                        best = (saving, i, axis, cut[1])
        if best is None:
            break
        _, i, axis, k = best
        (r0, r1, c0, c1), (x0, y0, x1, y1), _ = parts.pop(i)
        if axis == 0:
            halves = [((r0, k, c0, c1), (x0, y0, x1, ov + k)), ((k, r1, c0, c1), (x0, ov + k, x1, y1))]
        else:
            halves = [((r0, r1, c0, k), (x0, y0, ov + k, y1)), ((r0, r1, k, c1), (ov + k, y0, x1, y1))]
        parts[i:i] = [(p, core, _part_window(owned, p, ov, m, h, w)) for p, core in halves]
    out = []
    for _, (cx0, cy0, cx1, cy1), win in parts:
        if win is None:
            continue
        wx0, wy0, wx1, wy1 = win
        core = (max(cx0, wx0 + ov), max(cy0, wy0 + ov), min(cx1, wx1 - ov), min(cy1, wy1 - ov))
        if core[0] >= core[2] or core[1] >= core[3]:
            continue
        out.append(
            ((px0 + wx0, py0 + wy0, px0 + wx1, py0 + wy1), (px0 + core[0], py0 + core[1], px0 + core[2], py0 + core[3]))
        )
    return out
