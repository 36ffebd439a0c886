"""Rendering a region of a phantom to brightfield RGB with exact ground truth.

Physics (per pixel, then per image):

1. stain concentrations from the layout: hematoxylin ``c_H`` (nuclei with chromatin texture,
   pale cytoplasm, stroma fibres) and DAB ``c_DAB`` (membrane arcs of each tumour cell, cytoplasmic
   blush, non-specific stromal background), plus a small residual;
2. Beer-Lambert: ``OD = c_H v_H + c_DAB v_DAB + c_res v_res`` (per-slide jittered Ruifrok-Johnston
   vectors), transmittance ``T = exp(-OD)``;
3. optics: Gaussian PSF on ``T``; illumination ``I0`` (white balance) with a slow drift;
4. sensor: shot + read noise, 8-bit quantisation; (JPEG: by :func:`make_tile` or by the slide writer).

Everything is a function of global position in micrometres, so a region rendered as one piece or as
several tiles gives the same pixels (up to the per-tile sensor noise) and the same ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.spatial import cKDTree

from .._cells import assign_cells
from .._noise import fbm, grid_fbm, grid_field, grid_value_noise, value_noise
from ..scene import Kind, NucleusKind, Scene, Sites

__all__ = ["RenderedRegion", "render_region"]


@dataclass
class RenderedRegion:
    """RGB and ground-truth maps of one rendered region (all (h, w))."""

    rgb: np.ndarray  # (h, w, 3) uint8
    membrane_mask: np.ndarray  # bool: stained membrane of tumour cells
    membrane_edge: np.ndarray  # bool: 1-px centre line of stained membrane (U-Net edge target)
    nuclei_mask: np.ndarray  # bool
    cell_labels: np.ndarray  # int32 cell_id (0 = no cell)
    epithelium_mask: np.ndarray  # bool: tumour (epithelial) cells
    tissue_mask: np.ndarray  # bool
    dab_od: np.ndarray  # float32 true DAB concentration (before blur)


def _in_arcs(theta: np.ndarray, start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Whether angle theta (n,) lies in any of the arcs (n, 3) (radians)."""
    rel = theta[:, None] - start
    rel %= np.float32(2 * np.pi)
    return (rel < length).any(axis=1)


#: Per-site properties gathered per pixel in one go (columns of :func:`_site_table`).
_P_CYTO_H, _P_BLUSH, _P_SIGMA, _P_MEM_OD, _P_NUC_A, _P_NUC_B, _P_COS, _P_SIN, _P_NUC_DX, _P_NUC_DY, _P_NUC_H = range(11)


def _site_table(sites: Sites) -> np.ndarray:
    th = sites.nuc_theta.astype(np.float64)
    stained = (sites.kind == Kind.TUMOUR) & (sites.intensity > 0)
    return np.column_stack(
        [
            sites.cyto_h,
            sites.blush_od,
            sites.fwhm_um / 2.3548,
            np.where(stained, sites.membrane_od, 0.0),
            sites.nuc_a,
            sites.nuc_b,
            np.cos(th),
            np.sin(th),
            sites.nuc_dx,
            sites.nuc_dy,
            sites.nuc_h,
        ]
    ).astype(np.float32)


_REACH_UM = 3.5  # distances to cell edges are exact up to here; membrane stain fades out before it


def _block_px(mpp: float) -> int:
    """Pixel block of the cell assignment: ~8 um, 4-32 px."""
    return int(np.clip(round(8.0 / mpp), 4, 32))


def render_region(
    scene: Scene, x0: int, y0: int, width: int, height: int, mpp: float, noise_seed: int, truth: bool = True
) -> RenderedRegion:
    """Render pixels [x0, x0 + width) x [y0, y0 + height) of the phantom `scene` at `mpp` um/px.

    Pixel (i, j) covers the square whose centre is at ((x0 + j + 0.5) mpp, (y0 + i + 0.5) mpp) um.
    `noise_seed` seeds the sensor noise only. With ``truth=False`` the ground-truth maps are empty
    (0 x 0) except ``epithelium_mask`` and ``tissue_mask`` (used by the slide writer).

    The region is grown by the blur margin and to the global block lattice of the cell assignment
    (:func:`her2fast.synth._cells.assign_cells`), so every pixel is computed the same way whichever
    region it is rendered in; all per-pixel work is float32 and vectorised (no per-cell loops).
    """
    f32 = np.float32
    st = scene.stain
    pset = scene.preset
    seed = scene.seed
    sigma_px = st.psf_sigma_um / mpp
    pad = int(np.ceil(3.0 * sigma_px)) + 1
    B = _block_px(mpp)
    gx0 = ((x0 - pad) // B) * B
    gy0 = ((y0 - pad) // B) * B
    W = -(-(x0 + width + pad - gx0) // B) * B
    H = -(-(y0 + height + pad - gy0) // B) * B
    cx, cy = x0 - gx0, y0 - gy0  # crop offsets of the requested region
    xs = (gx0 + np.arange(W) + 0.5) * mpp
    ys = (gy0 + np.arange(H) + 0.5) * mpp
    halo = 3.5 * scene.spacing_um + scene.warp_um
    sites = scene.sites_in(xs[0] - halo, ys[0] - halo, xs[-1] + halo, ys[-1] + halo)

    # --- cells: power diagram of the sites on warped positions (wavy edges), exact per pixel
    amp = scene.warp_um
    wx = grid_fbm(xs, ys, 7.0, seed + 101, octaves=2)
    wy = grid_fbm(xs, ys, 7.0, seed + 103, octaves=2)
    wx -= f32(0.5)
    wx *= f32(2.6 * amp)
    wy -= f32(0.5)
    wy *= f32(2.6 * amp)
    np.clip(wx, -amp, amp, out=wx)
    np.clip(wy, -amp, amp, out=wy)
    # the sites move with the warp, so each site stays inside its own (warped) cell
    swx = np.clip(2.6 * amp * (fbm(sites.x, sites.y, 7.0, seed + 101, octaves=2) - 0.5), -amp, amp)
    swy = np.clip(2.6 * amp * (fbm(sites.x, sites.y, 7.0, seed + 103, octaves=2) - 0.5), -amp, amp)
    # power weights 0.8 grow nn^2 (nn: distance to the nearest other moved site) vary the cell sizes but
    # never empty a cell: w_b - w_a <= 0.8 |s_a - s_b|^2 for every pair, so each site stays in its cell
    moved = np.column_stack([sites.x + swx, sites.y + swy])
    nn = cKDTree(moved).query(moved, k=2)[0][:, 1]
    weight = 0.8 * sites.grow * nn * nn
    asg = assign_cells(
        moved[:, 0],
        moved[:, 1],
        weight,
        xs,
        ys,
        B,
        warp=(wx, wy),
        warp_amp=amp,
        reach=_REACH_UM,
        with_neighbour=truth,
        need_edge=sites.kind == Kind.TUMOUR,
    )
    a = asg.site.ravel()
    d_b = asg.d_edge.ravel()
    n_px = a.size

    kind = sites.kind[a]
    if scene.with_glass:
        kind[grid_field(scene.tissue_field, xs, ys, 4.0).ravel() <= 0] = Kind.GLASS
    tissue = kind != Kind.GLASS
    tumour = kind == Kind.TUMOUR
    stroma = kind == Kind.STROMA
    fat = kind == Kind.FAT
    table = _site_table(sites)

    c_h = np.zeros(n_px, f32)
    c_dab = np.zeros(n_px, f32)
    c_res = np.where(tissue, f32(0.008), f32(0.0))

    # --- stroma: near-white collagen with wavy fibres (contour lines of a smooth field), faint
    # non-specific DAB, holes (tears, lumina)
    si = np.flatnonzero(stroma)
    if si.size:
        flow = grid_fbm(xs, ys, 90.0, seed + 61, octaves=3).ravel()[si]
        fib = np.cos(f32(2 * np.pi * 38.0) * flow)
        fib += f32(1.0)
        fib *= f32(0.5)
        fib **= 6
        dens = grid_field(lambda x, y: value_noise(x, y, 40.0, seed + 69), xs, ys, 4.0).ravel()[si]
        c_h[si] = f32(0.02) + f32(0.05) * fib * dens
        c_dab[si] = f32(pset.stroma_dab_od) * (f32(0.4) + f32(1.2) * fib) * dens
        hole = grid_field(scene.hole_field, xs, ys, 2.0).ravel()[si] > scene.hole_threshold
        for arr in (c_h, c_dab, c_res):
            arr[si[hole]] = 0.0
        tissue[si[hole]] = False

    # --- fat: adipocyte outlines from a coarse hashed lattice
    fi = np.flatnonzero(fat)
    if fi.size:
        fsites = scene.fat_sites(xs[0], ys[0], xs[-1], ys[-1])
        fx, fy = xs[fi % W], ys[fi // W]
        fd, fidx = cKDTree(fsites).query(np.column_stack([fx, fy]), k=2)
        sep = np.linalg.norm(fsites[fidx[:, 1]] - fsites[fidx[:, 0]], axis=1)
        fdb = (fd[:, 1] ** 2 - fd[:, 0] ** 2) / (2.0 * sep)
        line = np.exp(-0.5 * (fdb / 0.6) ** 2).astype(f32)
        c_h[fi] = 0.08 * line
        c_dab[fi] = 0.012 * line
        c_res[fi] = 0.006 * line

    # --- tumour cells: cytoplasm, membrane (per-cell arcs, wavy, uneven), submembranous DAB, blush
    ti = np.flatnonzero(tumour)
    mem_mask_t = np.zeros(0, bool)
    if ti.size:
        at = a[ti]
        pt = table[at]
        tdx = (xs[ti % W] - sites.x[at]).astype(f32)
        tdy = (ys[ti // W] - sites.y[at]).astype(f32)
        tex = grid_value_noise(xs, ys, 2.0, seed + 81).ravel()[ti]
        c_h[ti] = pt[:, _P_CYTO_H] * (f32(0.8) + f32(0.4) * tex)
        blotch = grid_value_noise(xs, ys, 4.0, seed + 83).ravel()[ti]
        c_dab[ti] = pt[:, _P_BLUSH] * (f32(0.5) + blotch)
        even = grid_value_noise(xs, ys, 2.5, seed + 87).ravel()[ti]
        sigma = pt[:, _P_SIGMA] * (f32(0.7) + f32(0.6) * even)
        sig_eff = np.sqrt(sigma * sigma + f32(mpp * mpp / 12.0))
        db = d_b[ti]
        z = db / sig_eff
        prof = (sigma / sig_eff) * np.exp(f32(-0.5) * z * z)
        theta = np.arctan2(tdy, tdx)
        stained = _in_arcs(theta, sites.arc_start[at], sites.arc_length[at]) & (pt[:, _P_MEM_OD] > 0)
        gran = f32(0.7) + f32(0.6) * grid_value_noise(xs, ys, 0.8, seed + 85).ravel()[ti]
        diffuse = f32(scene.submembrane) * np.exp(-db / f32(1.6))
        fade = np.clip(f32(_REACH_UM) - db, 0.0, 1.0)  # 0 at the reach of the exact edge distance
        c_dab[ti] += stained * pt[:, _P_MEM_OD] * fade * (prof * gran + diffuse)
        c_h[ti] += f32(0.04) * prof
        half = np.maximum(pt[:, _P_SIGMA] * f32(1.1774), f32(0.75 * mpp))
        mem_mask_t = stained & (db <= half)

    # --- nuclei (tumour, fibroblasts, lymphocytes), clipped to their own cell, irregular outlines
    nuc_kind = sites.nucleus[a]
    ni = np.flatnonzero((nuc_kind != NucleusKind.NONE) & tissue)
    nuc_inside = np.zeros(0, bool)
    if ni.size:
        an = a[ni]
        pn = table[an]
        ddx = (xs[ni % W] - sites.x[an]).astype(f32) - pn[:, _P_NUC_DX]
        ddy = (ys[ni // W] - sites.y[an]).astype(f32) - pn[:, _P_NUC_DY]
        u = (ddx * pn[:, _P_COS] + ddy * pn[:, _P_SIN]) / pn[:, _P_NUC_A]
        v = (ddy * pn[:, _P_COS] - ddx * pn[:, _P_SIN]) / pn[:, _P_NUC_B]
        r = np.sqrt(u * u + v * v)
        bumpy = grid_value_noise(xs, ys, 1.8, seed + 89).ravel()[ni]
        r *= f32(0.9) + f32(0.2) * bumpy
        alpha = np.clip((f32(1.0) - r) * pn[:, _P_NUC_B] / f32(max(mpp, 0.35)) + f32(0.5), 0.0, 1.0)
        keep = alpha > 0
        ni, r, alpha, pn = ni[keep], r[keep], alpha[keep], pn[keep]
        chrom = (
            f32(0.65) * grid_value_noise(xs, ys, 1.3, seed + 91).ravel()[ni]
            + f32(0.35) * grid_value_noise(xs, ys, 0.6, seed + 92).ravel()[ni]
        )
        h_nuc = f32(scene.counterstain) * pn[:, _P_NUC_H] * (f32(0.55) + f32(0.8) * chrom)
        h_nuc *= f32(1.0) + f32(0.25) * (r > 0.8)
        c_h[ni] = c_h[ni] * (1 - alpha) + h_nuc * alpha
        c_dab[ni] *= f32(1.0) - f32(0.8) * alpha
        nuc_inside = r <= 1.0

    # --- tissue background tint (not fat vacuoles, holes or glass), slowly varying
    tint_h, tint_dab = st.tissue_tint
    if tint_h > 0 or tint_dab > 0:
        gi = np.flatnonzero(tissue & ~fat)
        if gi.size:
            mod = grid_field(lambda x, y: value_noise(x, y, 30.0, seed + 109), xs, ys, 4.0).ravel()[gi]
            mod *= f32(0.6)
            mod += f32(0.7)
            c_h[gi] += f32(tint_h) * mod
            c_dab[gi] += f32(tint_dab) * mod

    # --- lab / section variation (stain amounts, thickness): scales the concentrations
    var = scene.variation
    if var is not None:
        c_h *= f32(var.hematoxylin * var.thickness)
        c_dab *= f32(var.dab * var.thickness)
        c_res *= f32(var.thickness)

    # --- Beer-Lambert, optics, sensor
    vec = st.vectors.astype(f32)
    c_h2, c_dab2, c_res2 = c_h.reshape(H, W), c_dab.reshape(H, W), c_res.reshape(H, W)
    trans = np.empty((height, width, 3), f32)
    for ch in range(3):
        od = c_h2 * vec[0, ch]
        od += c_dab2 * vec[1, ch]
        od += c_res2 * vec[2, ch]
        np.negative(od, out=od)
        np.exp(od, out=od)
        blurred = gaussian_filter(od, sigma_px, mode="nearest", truncate=3.0)
        trans[..., ch] = blurred[cy : cy + height, cx : cx + width]
    xc, yc = xs[cx : cx + width], ys[cy : cy + height]
    drift = grid_field(lambda x, y: fbm(x, y, 2500.0, seed + 97, octaves=2), xc, yc, 64.0)
    drift -= f32(0.5)
    drift *= f32(0.03)
    drift += f32(1.0)
    trans *= drift[..., None]
    trans *= st.white.astype(f32)[None, None, :]
    rng = np.random.default_rng([seed, 0x5E15, noise_seed & 0xFFFFFFFF, noise_seed >> 32])
    noise = rng.standard_normal(trans.shape, dtype=f32)
    noise *= np.sqrt(np.maximum(trans, f32(1.0)) * f32(1.0 / 255.0))
    noise *= f32(st.noise_sigma)
    trans += noise
    np.rint(trans, out=trans)
    rgb = np.clip(trans, 0, 255).astype(np.uint8)

    def crop(flat: np.ndarray) -> np.ndarray:
        return flat.reshape(H, W)[cy : cy + height, cx : cx + width]

    epithelium = crop(tumour & tissue)
    tissue_mask = crop(tissue)
    if not truth:
        empty = np.zeros((0, 0), bool)
        return RenderedRegion(
            rgb, empty, empty, empty, np.zeros((0, 0), np.int32), epithelium, tissue_mask, np.zeros((0, 0), np.float32)
        )

    membrane = np.zeros(n_px, bool)
    membrane[ti] = mem_mask_t
    # edge target: the band within half a pixel of a cell edge where either side's membrane is stained
    band = np.flatnonzero(tissue & (d_b < 0.5 * mpp))
    edge = np.zeros(n_px, bool)
    if band.size:
        nbr = asg.neighbour.ravel()  # type: ignore[union-attr]  # assigned with_neighbour=truth, and truth holds here
        bx_, by_ = xs[band % W], ys[band // W]

        def stained_at(site: np.ndarray) -> np.ndarray:
            th = np.arctan2(by_ - sites.y[site], bx_ - sites.x[site]).astype(f32)
            return (
                (sites.kind[site] == Kind.TUMOUR)
                & (sites.intensity[site] > 0)
                & _in_arcs(th, sites.arc_start[site], sites.arc_length[site])
            )

        edge[band] = stained_at(a[band]) | stained_at(nbr[band])
    nuclei = np.zeros(n_px, bool)
    labels = np.zeros(n_px, np.int64)
    tt = tumour & tissue
    labels[tt] = sites.cell_id[a[tt]]
    if ni.size:
        nuclei[ni[nuc_inside]] = True
        stromal_nuc = ni[nuc_inside & (sites.kind[a[ni]] != Kind.TUMOUR)]
        labels[stromal_nuc] = sites.cell_id[a[stromal_nuc]]
    return RenderedRegion(
        rgb=rgb,
        membrane_mask=crop(membrane).copy(),
        membrane_edge=crop(edge).copy(),
        nuclei_mask=crop(nuclei).copy(),
        cell_labels=crop(labels).astype(np.int32),
        epithelium_mask=epithelium.copy(),
        tissue_mask=tissue_mask.copy(),
        dab_od=crop(c_dab).copy(),
    )
