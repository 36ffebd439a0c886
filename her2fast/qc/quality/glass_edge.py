"""The ``glass_edge`` detector of the quality map: the edge of the coverslip or of the slide crossing the tissue."""

from __future__ import annotations

import numpy as np

from .rules import QualityRules

#: Angles (degrees) the line search tries; its distance bins are two pixels wide.
_ANGLES = np.deg2rad(np.arange(0.0, 180.0, 1.0))
#: At most this many line candidates vote (more are thinned evenly).
_MAX_VOTERS = 20000
#: At most this many lines are looked at per image.
_MAX_LINES = 4


def _neutral_ridge(od3: np.ndarray, work_mpp: float, rules: QualityRules) -> np.ndarray:
    """Pixels darker than their surroundings by half ``edge_line_od`` in every channel, the channels alike."""
    from scipy import ndimage as ndi

    size = max(3, int(round(rules.edge_line_um / work_mpp)) // 2 * 2 + 1)
    e = [od3[..., c] - ndi.uniform_filter(od3[..., c], size, mode="reflect") for c in range(3)]
    lo = np.minimum(np.minimum(e[0], e[1]), e[2])
    hi = np.maximum(np.maximum(e[0], e[1]), e[2])
    return (lo > 0.5 * rules.edge_line_od) & (hi - lo < rules.rim_max_chroma * hi)


def _line_votes(
    ys: np.ndarray, xs: np.ndarray, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Votes of the points for lines ``x cos(a) + y sin(a) = rho`` (angles :data:`_ANGLES`, 2-px bins of rho).

    Returns the votes (angles x bins), the voters (thinned evenly to :data:`_MAX_VOTERS`) and each voter's
    flat bin per angle (to take its votes back), and the offset of rho (bin ``i`` is ``rho = 2 i - reach``).
    """
    if len(ys) > _MAX_VOTERS:
        keep = np.linspace(0, len(ys) - 1, _MAX_VOTERS).astype(np.int64)
        ys, xs = ys[keep], xs[keep]
    reach = float(np.hypot(*shape))
    n_rho = int(np.ceil(reach)) + 1
    rho = xs[:, None] * np.cos(_ANGLES)[None, :] + ys[:, None] * np.sin(_ANGLES)[None, :]
    index = np.rint((rho + reach) / 2.0).astype(np.int64) + n_rho * np.arange(len(_ANGLES))[None, :]
    acc = np.bincount(index.ravel(), minlength=n_rho * len(_ANGLES)).reshape(len(_ANGLES), n_rho)
    return acc, ys, xs, index, reach


def _fit_curve(
    ys: np.ndarray, xs: np.ndarray, theta: float, rho: float, band: float, tight: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """A curve ``n = c0 + c1 a + c2 a^2`` through the points near the line (``a`` along it, ``n`` across).

    Fitted by least squares to the points within ``band`` px of the line, then twice more to those within
    ``band / 2`` and ``tight`` px of the last fit. Returns the coefficients (lowest order first) and the
    points' ``a``, or None when too few points are near.
    """
    c, s = np.cos(theta), np.sin(theta)
    n = xs * c + ys * s - rho
    a = -xs * s + ys * c
    coef = np.zeros(3)
    near = np.abs(n) <= band
    for width in (band / 2.0, tight):
        if near.sum() < 20:
            return None
        coef = np.polynomial.polynomial.polyfit(a[near], n[near], 2)
        near = np.abs(n - np.polynomial.polynomial.polyval(a, coef)) <= width
    if near.sum() < 20:
        return None
    return coef, a[near]


def _profile(
    od3: np.ndarray, skip: np.ndarray, theta: float, rho: float, coef: np.ndarray, a: np.ndarray, d: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Optical densities across the curve: ``(len(a), len(d), 3)``, NaN outside the image or on ``skip``.

    ``a`` are positions along the line, ``d`` signed distances (px) along the curve's normal there.
    """
    from scipy import ndimage as ndi

    c, s = np.cos(theta), np.sin(theta)
    n0 = np.polynomial.polynomial.polyval(a, coef)
    slope = np.polynomial.polynomial.polyval(a, np.polynomial.polynomial.polyder(coef))
    norm = np.sqrt(1.0 + slope**2)
    # the curve's point and unit normal in image coordinates: along = (-s, c), across = (c, s)
    px, py = (rho + n0) * c - a * s, (rho + n0) * s + a * c
    nx, ny = (c + slope * s) / norm, (s - slope * c) / norm
    x = px[:, None] + d[None, :] * nx[:, None]
    y = py[:, None] + d[None, :] * ny[:, None]
    h, w = skip.shape
    inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    inside &= ~skip[np.clip(np.rint(y), 0, h - 1).astype(np.int64), np.clip(np.rint(x), 0, w - 1).astype(np.int64)]
    out = np.stack([ndi.map_coordinates(od3[..., k], [y, x], order=1, mode="nearest") for k in range(3)], axis=-1)
    out[~inside] = np.nan
    return out, inside


def _nan_median(a: np.ndarray) -> np.ndarray:
    """The median over the first axis, NaN left out (NaN where a column has no number)."""
    srt = np.sort(a, axis=0)  # NaN sorts last
    n = np.sum(~np.isnan(a), axis=0)
    lo = np.take_along_axis(srt, np.maximum((n - 1) // 2, 0)[None], axis=0)[0]
    hi = np.take_along_axis(srt, np.maximum(n // 2, 0)[None], axis=0)[0]
    return np.where(n > 0, 0.5 * (lo + hi), np.nan)


def _grey(v: np.ndarray, max_chroma: float) -> bool:
    """Whether an optical-density excess (3 channels) is positive and grey: every channel within
    ``max_chroma`` of the largest."""
    hi, lo = float(np.max(v)), float(np.min(v))
    return hi > 0.0 and hi - lo < max_chroma * hi


def _continuous(excess: np.ndarray, need: np.ndarray, per_piece: int) -> float | None:
    """The share of the pieces along an edge in which the line shows: ``excess`` (``(len(a), 3)``, the line
    over the clear side beside it at each position along the edge, NaN where not measured) is cut into
    pieces of ``per_piece`` positions, and a piece shows the line when its median is at least half ``need``
    in every channel. Pieces less than half measured are left out; None when none is measured.
    """
    shown, measured = 0, 0
    for i in range(excess.shape[0] // per_piece):
        part = excess[i * per_piece : (i + 1) * per_piece]
        part = part[~np.isnan(part).any(axis=1)]
        if len(part) < 0.5 * per_piece:
            continue
        measured += 1
        shown += bool(np.all(np.median(part, axis=0) >= 0.5 * need))
    return shown / measured if measured else None


def _band_limits(
    m: np.ndarray, d_um: np.ndarray, rules: QualityRules, prof: np.ndarray | None = None, sample_um: float = 2.0
) -> tuple[float, float, float, int] | None:
    """The band's extent ``(lo, hi)`` in um across the edge, the line's centre and the shadow's side (+-1),
    from the median profile ``m`` (``(len(d), 3)``).

    Each side's own level is the median of the profile beyond ``edge_max_um - 24`` um; the shadow lies on
    the side whose mean excess over its level, 6 to 14 um from the line, is the higher. The line lies
    within 3 um of the fitted curve, where the profile peaks most sharply (over +-3 um); it must stand
    above the clear side 6 um away by at least ``edge_line_od`` in every channel, grey (the channels
    within ``edge_max_chroma`` of the largest), and be no lower than the shadow 6 um away (a step, such as
    the edge of ink or of the shadow band itself, is not a line). With ``prof`` (the profiles the median
    was taken over, one per ``sample_um`` along the edge), the line must also show in at least
    ``edge_continuity`` of the pieces of ``edge_piece_um`` along it (:func:`_continuous`): a glass edge adds
    the same line wherever it runs, and stained membranes in a row show it only in places. When the
    shadow's excess is at least ``edge_shadow_od``, the band ends where the excess falls below
    ``edge_band_end`` of it; the line's clear side ends where its excess falls below ``edge_band_end`` of
    the line's. None when there is no line.
    """
    step = float(d_um[1] - d_um[0])
    if np.isnan(m).any():
        return None
    off = int(round(6.0 / step))
    off3 = int(round(3.0 / step))
    core = np.flatnonzero(np.abs(d_um) <= 3.0)
    if core[0] - off < 0 or core[-1] + off >= len(d_um):
        return None
    peak = np.min(m[core] - 0.5 * (m[core - off3] + m[core + off3]), axis=1)
    centre = int(core[np.argmax(peak)])
    far = np.abs(d_um) >= rules.edge_max_um - 24.0
    base = {side: np.median(m[far & (np.sign(d_um) == side)], axis=0) for side in (-1, 1)}
    excess = {side: np.mean(m - base[side][None, :], axis=1) for side in (-1, 1)}
    rel = d_um - d_um[centre]
    near = (np.abs(rel) >= 6.0) & (np.abs(rel) <= 14.0)
    level = {side: float(np.median(excess[side][near & (np.sign(rel) == side)])) for side in (-1, 1)}
    shadow = max((-1, 1), key=lambda sd: level[sd])
    clear = -shadow
    line = m[centre] - m[centre + clear * off]
    if np.min(line) < rules.edge_line_od or not _grey(line, rules.edge_max_chroma):
        return None
    if np.min(m[centre] - m[centre + shadow * off]) < 0.0:
        return None
    per_piece = max(1, int(round(rules.edge_piece_um / sample_um)))
    if prof is not None:
        # a glass edge adds the same grey line wherever it runs, over tissue and glass alike: the line shows
        # in (nearly) every piece along it, not only in the median over its length
        shown = _continuous(prof[:, centre] - prof[:, centre + clear * off], line, per_piece)
        if shown is None or shown < rules.edge_continuity:
            return None

    def reach(side: int, ref: float) -> float:
        """How far from the centre (um) the excess on ``side`` stays at or above ``edge_band_end * ref``."""
        e, i = excess[side], centre
        while 0 <= i + side < len(d_um) and e[i + side] >= rules.edge_band_end * ref:
            i += side
        return abs(float(rel[i])) + step / 2.0

    line_ref = float(excess[clear][centre])
    far_reach = reach(shadow, level[shadow] if level[shadow] >= rules.edge_shadow_od else line_ref)
    near_reach = reach(clear, line_ref)
    lo, hi = sorted((shadow * far_reach, clear * near_reach))
    return float(d_um[centre]) + lo, float(d_um[centre]) + hi, float(d_um[centre]), shadow


def _signed_distance(edge: tuple, gy: np.ndarray, gx: np.ndarray) -> np.ndarray:
    """Signed distance (fine px) of points from an edge's curve, along the curve's normal."""
    theta, rho, coef = edge[0], edge[1], edge[2]
    c, s = np.cos(theta), np.sin(theta)
    n = gx * c + gy * s - rho
    along = -gx * s + gy * c
    slope = np.polynomial.polynomial.polyval(along, np.polynomial.polynomial.polyder(coef))
    return (n - np.polynomial.polynomial.polyval(along, coef)) / np.sqrt(1.0 + slope**2)


def _edge_sides(edges: list[tuple], shape: tuple[int, int], r: float) -> np.ndarray:
    """Which side of each edge's line each pixel of a grid (``r`` fine px per pixel) lies on, as bits."""
    out = np.zeros(shape, np.int64)
    o = (r - 1.0) / 2.0
    gy, gx = np.meshgrid(np.arange(shape[0]) * r + o, np.arange(shape[1]) * r + o, indexing="ij")
    for i, edge in enumerate(edges):
        out |= (_signed_distance(edge, gy, gx) > edge[3]).astype(np.int64) << i
    return out


def _glass_edge(
    od3: np.ndarray,
    work_mpp: float,
    s2: int,
    fine: np.ndarray,
    fine_mpp: float,
    s1: int,
    shape: tuple[int, int],
    rules: QualityRules,
    skip: np.ndarray,
) -> tuple[np.ndarray, list[tuple]]:
    """Map pixels in the band of a glass edge: a long, straight or gently curved, thin dark grey line and the
    shadow band beside it.

    ``od3`` and ``fine`` are the optical density per channel at ``work_mpp`` (about 2 um/px: the search) and
    ``fine_mpp`` (about 1 um/px: the profiles), ``s2`` and ``s1`` of their pixels per map pixel;
    ``skip`` (map pixels: ink, saturated stain) neither votes nor is measured. Candidate pixels are darker
    than their mean over ``edge_line_um`` by half ``edge_line_od`` in every channel, the channels alike
    (grey); they vote for straight lines, and each of the best-supported lines (at most four) is fitted by
    a curve of the second order through its candidates. A line counts when it is at least ``edge_min_um``
    long inside the image, bends to a radius of at least ``edge_min_radius_um``, and the median profile
    across it (over its whole length, so a stretch over dark tissue or glass does not matter) shows a thin
    grey line that also shows in most pieces along it (:func:`_band_limits`); the band is measured on that
    profile and a map pixel at least ``edge_cover`` inside it is marked.

    Also returned, per edge found: ``(theta, rho, coef, centre, side)``, its curve in fine pixel
    coordinates (:func:`_signed_distance`), the line's centre and the shadow's side in that distance.
    """
    h, w = shape
    out = np.zeros(shape, bool)
    edges: list[tuple] = []

    def skip_at(shape_px: tuple[int, int], per_map: int) -> np.ndarray:
        rows = np.minimum(np.arange(shape_px[0]) // per_map, h - 1)
        cols = np.minimum(np.arange(shape_px[1]) // per_map, w - 1)
        return skip[np.ix_(rows, cols)]

    cand = _neutral_ridge(od3, work_mpp, rules) & ~skip_at(od3.shape[:2], s2)
    min_len = rules.edge_min_um / work_mpp
    ys, xs = np.nonzero(cand)
    if len(ys) < 0.5 * min_len:
        return out, edges
    acc, ys, xs, votes, reach = _line_votes(ys.astype(np.float64), xs.astype(np.float64), od3.shape[:2])
    n_rho = acc.shape[1]
    voting = np.ones(len(ys), bool)
    skip_fine = skip_at(fine.shape[:2], s1)
    # the candidates in fine pixel coordinates (an od3 pixel covers scale x scale fine pixels)
    scale = s1 / s2
    o = (scale - 1.0) / 2.0
    ys_f, xs_f = ys * scale + o, xs * scale + o
    d_um = np.arange(-rules.edge_max_um, rules.edge_max_um + 0.5, 1.0)
    # sub-points of the map pixels (4 x 4 each), in fine pixel coordinates
    q = (np.arange(4) + 0.5) / 4.0 * s1 - 0.5
    sub_y = (np.arange(h)[:, None] * s1 + q[None, :]).ravel()
    sub_x = (np.arange(w)[:, None] * s1 + q[None, :]).ravel()
    gy, gx = np.meshgrid(sub_y, sub_x, indexing="ij")
    for _ in range(_MAX_LINES):
        k = int(np.argmax(acc))
        ti, ri = divmod(k, n_rho)
        if acc[ti, ri] < 0.5 * min_len:
            break
        for dt in range(-5, 6):  # this peak's neighbourhood (5 degrees, 8 bins) is not looked at again
            acc[(ti + dt) % len(_ANGLES), max(0, ri - 8) : ri + 9] = 0
        theta = float(_ANGLES[ti])
        rho_f = (ri * 2.0 - reach) * scale + o * (np.cos(theta) + np.sin(theta))
        fit = _fit_curve(
            ys_f[voting], xs_f[voting], theta, rho_f, (8.0 + 2.0 * work_mpp) / fine_mpp, 0.75 * scale + 0.75
        )
        if fit is None:
            continue
        coef, a_pts = fit
        if abs(coef[2]) > 0.5 * fine_mpp / rules.edge_min_radius_um:  # curvature 2 c2 (1/px) above 1 / radius
            continue
        span = float(np.hypot(*fine.shape[:2]))
        a = np.arange(np.floor(a_pts.min()) - span, np.ceil(a_pts.max()) + span, 1.0)
        _, inside = _profile(fine, skip_fine, theta, rho_f, coef, a, np.zeros(1))
        a = a[inside[:, 0]]
        if len(a) * fine_mpp < rules.edge_min_um:
            continue
        prof, _ = _profile(
            fine, skip_fine, theta, rho_f, coef, a[:: max(1, int(round(2.0 / fine_mpp)))], d_um / fine_mpp
        )
        m = _nan_median(prof)
        limits = _band_limits(m, d_um, rules, prof, max(1, int(round(2.0 / fine_mpp))) * fine_mpp)
        if limits is None:
            continue
        lo, hi = limits[0] / fine_mpp, limits[1] / fine_mpp
        edge = (theta, rho_f, coef, limits[2] / fine_mpp, limits[3])
        edges.append(edge)
        dist = _signed_distance(edge, gy, gx)
        out |= ((dist >= lo) & (dist <= hi)).reshape(h, 4, w, 4).mean(axis=(1, 3)) >= rules.edge_cover
        # the edge's own candidates (its line and the far edge of its band) vote no more
        d_v = _signed_distance(edge, ys_f, xs_f)
        taken = voting & (d_v >= lo - 4.0 / fine_mpp) & (d_v <= hi + 4.0 / fine_mpp)
        if taken.any():
            acc -= np.bincount(votes[taken].ravel(), minlength=acc.size).reshape(acc.shape)
            voting &= ~taken
    return out, edges
