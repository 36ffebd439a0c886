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

from .._validate import as_int, as_positive_float
from ..errors import InvalidInputError
from ..scoring import CellTable
from ._noise import coarse_grid_field, fbm, value_noise
from .presets import Preset, get_preset
from .scene import Kind, NucleusKind, Scene, Sites

__all__ = ["RenderedRegion", "TileGroundTruth", "render_region", "make_tile", "cell_table_of"]


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


@dataclass
class TileGroundTruth:
    """A phantom tile and its exact ground truth (see :func:`make_tile`).

    Attributes
    ----------
    rgb : (h, w, 3) uint8
    membrane_mask, membrane_edge, nuclei_mask, epithelium_mask : (h, w) bool
    cell_labels : (h, w) int32
        ``cell_id`` of each pixel (tumour cells: the whole cell; other cells: the nucleus), 0 elsewhere.
    dab_od : (h, w) float32
        True DAB optical density per pixel (before blur and noise).
    cells : CellTable
        Cells whose centre lies in the tile (x, y in tile pixels).
    mpp : float
    preset : str
    seed : int
    category : str or None
        ASCO/CAP category of the tile's tumour cells (None when it holds none).
    """

    rgb: np.ndarray
    membrane_mask: np.ndarray
    membrane_edge: np.ndarray
    nuclei_mask: np.ndarray
    cell_labels: np.ndarray
    epithelium_mask: np.ndarray
    dab_od: np.ndarray
    cells: CellTable
    mpp: float
    preset: str
    seed: int
    category: str | None


def _in_arcs(theta: np.ndarray, start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Whether angle theta (n,) lies in any of the arcs (n, 3)."""
    rel = np.mod(theta[:, None] - start, 2 * np.pi)
    return (rel < length).any(axis=1)


def _ellipse_radius(dx: np.ndarray, dy: np.ndarray, a: np.ndarray, b: np.ndarray, theta: np.ndarray) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    u = dx * c + dy * s
    v = -dx * s + dy * c
    return np.sqrt((u / a) ** 2 + (v / b) ** 2)


def render_region(
    scene: Scene, x0: int, y0: int, width: int, height: int, mpp: float, noise_seed: int, truth: bool = True
) -> RenderedRegion:
    """Render pixels [x0, x0 + width) x [y0, y0 + height) of the phantom `scene` at `mpp` um/px.

    Pixel (i, j) covers the square whose centre is at ((x0 + j + 0.5) mpp, (y0 + i + 0.5) mpp) um.
    `noise_seed` seeds the sensor noise only. With ``truth=False`` the ground-truth maps are empty
    (0 x 0) except ``epithelium_mask`` and ``tissue_mask`` (used by the slide writer).
    """
    st = scene.stain
    pset = scene.preset
    sigma_px = st.psf_sigma_um / mpp
    pad = int(np.ceil(3.0 * sigma_px)) + 1
    W, H = width + 2 * pad, height + 2 * pad
    xs = (x0 - pad + np.arange(W) + 0.5) * mpp
    ys = (y0 - pad + np.arange(H) + 0.5) * mpp
    X = np.broadcast_to(xs[None, :], (H, W)).ravel()
    Y = np.broadcast_to(ys[:, None], (H, W)).ravel()
    n_px = X.size
    halo = 3.5 * scene.spacing_um
    sites = scene.sites_in(xs[0] - halo, ys[0] - halo, xs[-1] + halo, ys[-1] + halo)

    tree = cKDTree(np.column_stack([sites.x, sites.y]))
    dist, idx = tree.query(np.column_stack([X, Y]), k=3)
    a = idx[:, 0]
    ax, ay = sites.x[a], sites.y[a]
    d0 = dist[:, 0] ** 2
    bis = np.empty((n_px, 2))
    for j in (1, 2):
        bj = idx[:, j]
        sep = np.hypot(sites.x[bj] - ax, sites.y[bj] - ay)
        bis[:, j - 1] = (dist[:, j] ** 2 - d0) / (2.0 * np.maximum(sep, 1e-6))
    jmin = np.argmin(bis, axis=1)
    rows = np.arange(n_px)
    d_b = bis[rows, jmin]  # distance (um) from the pixel centre to its cell's nearest edge
    nb = idx[rows, 1 + jmin]  # the neighbouring site across that edge

    kind = sites.kind[a].copy()
    if scene.with_glass:
        kind[coarse_grid_field(scene.tissue_field, xs, ys, 4.0).ravel() <= 0] = Kind.GLASS
    tissue = kind != Kind.GLASS
    tumour = kind == Kind.TUMOUR
    stroma = kind == Kind.STROMA
    fat = kind == Kind.FAT

    c_h = np.zeros(n_px)
    c_dab = np.zeros(n_px)
    c_res = np.where(tissue, 0.02, 0.0)

    # --- stroma: oriented fibres, sparse non-specific DAB, holes (tears, lumina)
    si = np.flatnonzero(stroma)
    if si.size:
        sx, sy = X[si], Y[si]
        phi_grid = coarse_grid_field(lambda x, y: fbm(x, y, 300.0, scene.seed + 61, octaves=2), xs, ys, 8.0)
        phi = np.pi * 2.0 * phi_grid.ravel()[si]
        u = sx * np.cos(phi) + sy * np.sin(phi)
        v = -sx * np.sin(phi) + sy * np.cos(phi)
        fib = value_noise(u, v * 8.0, 24.0, scene.seed + 67) * 0.7 + 0.3 * value_noise(u, v * 6.0, 9.0, scene.seed + 68)
        c_h[si] = 0.025 + 0.09 * fib**2
        patch = coarse_grid_field(lambda x, y: value_noise(x, y, 50.0, scene.seed + 69), xs, ys, 4.0).ravel()[si]
        c_dab[si] = pset.stroma_dab_od * 2.0 * fib * patch
        hole = coarse_grid_field(scene.hole_field, xs, ys, 2.0).ravel()[si] > scene.hole_threshold
        c_h[si[hole]] = 0.0
        c_dab[si[hole]] = 0.0
        c_res[si[hole]] = 0.0
        tissue[si[hole]] = False

    # --- fat: adipocyte outlines from a coarse hashed lattice
    fi = np.flatnonzero(fat)
    if fi.size:
        fsites = scene.fat_sites(xs[0], ys[0], xs[-1], ys[-1])
        fd, fidx = cKDTree(fsites).query(np.column_stack([X[fi], Y[fi]]), k=2)
        sep = np.linalg.norm(fsites[fidx[:, 1]] - fsites[fidx[:, 0]], axis=1)
        fdb = (fd[:, 1] ** 2 - fd[:, 0] ** 2) / (2.0 * sep)
        line = np.exp(-0.5 * (fdb / 0.6) ** 2)
        c_h[fi] = 0.10 * line
        c_dab[fi] = 0.015 * line
        c_res[fi] = 0.01 * line

    # --- tumour cells: cytoplasm, membrane (per-cell arcs), blush
    ti = np.flatnonzero(tumour)
    mem_mask_t = np.zeros(0, bool)
    if ti.size:
        at = a[ti]
        tx, ty = X[ti], Y[ti]
        tex = value_noise(tx, ty, 2.0, scene.seed + 81)
        c_h[ti] = sites.cyto_h[at] * (0.8 + 0.4 * tex)
        blotch = coarse_grid_field(lambda x, y: value_noise(x, y, 4.0, scene.seed + 83), xs, ys, 1.0).ravel()[ti]
        c_dab[ti] = sites.blush_od[at] * (0.6 + 0.8 * blotch)
        sigma = sites.fwhm_um[at] / 2.3548
        sig_eff = np.sqrt(sigma**2 + mpp**2 / 12.0)
        prof = (sigma / sig_eff) * np.exp(-0.5 * (d_b[ti] / sig_eff) ** 2)
        theta = np.arctan2(ty - ay[ti], tx - ax[ti])
        stained = _in_arcs(theta, sites.arc_start[at], sites.arc_length[at]) & (sites.intensity[at] > 0)
        gran = 0.8 + 0.4 * value_noise(tx, ty, 0.8, scene.seed + 85)
        c_dab[ti] += stained * sites.membrane_od[at] * prof * gran
        c_h[ti] += 0.05 * prof
        half = np.maximum(sites.fwhm_um[at] / 2.0, 0.75 * mpp)
        mem_mask_t = stained & (d_b[ti] <= half)

    # --- nuclei (tumour, fibroblasts, lymphocytes), clipped to their own cell
    nuc_kind = sites.nucleus[a]
    ni = np.flatnonzero((nuc_kind != NucleusKind.NONE) & tissue)
    nuc_inside = np.zeros(0, bool)
    if ni.size:
        an = a[ni]
        ddx = X[ni] - (ax[ni] + sites.nuc_dx[an])
        ddy = Y[ni] - (ay[ni] + sites.nuc_dy[an])
        nb_ = sites.nuc_b[an]
        r = _ellipse_radius(ddx, ddy, sites.nuc_a[an], nb_, sites.nuc_theta[an])
        alpha = np.clip((1.0 - r) * nb_ / max(mpp, 0.35) + 0.5, 0.0, 1.0)
        keep = alpha > 0
        ni, an, r, alpha = ni[keep], an[keep], r[keep], alpha[keep]
        chrom = 0.65 * value_noise(X[ni], Y[ni], 1.3, scene.seed + 91) + 0.35 * value_noise(X[ni], Y[ni], 0.6, scene.seed + 92)
        h_nuc = sites.nuc_h[an] * (0.55 + 0.8 * chrom) * (1.0 + 0.25 * (r > 0.8))
        c_h[ni] = c_h[ni] * (1 - alpha) + h_nuc * alpha
        c_dab[ni] *= 1.0 - 0.8 * alpha
        nuc_inside = r <= 1.0

    # --- Beer-Lambert, optics, sensor
    vec = st.vectors
    od = c_h[:, None] * vec[0] + c_dab[:, None] * vec[1] + c_res[:, None] * vec[2]
    trans = np.exp(-od).reshape(H, W, 3)
    for ch in range(3):
        trans[..., ch] = gaussian_filter(trans[..., ch], sigma_px, mode="nearest", truncate=3.0)
    trans = trans[pad : pad + height, pad : pad + width]
    xc, yc = xs[pad : pad + width], ys[pad : pad + height]
    drift = 1.0 + 0.03 * (coarse_grid_field(lambda x, y: fbm(x, y, 2500.0, scene.seed + 97, octaves=2), xc, yc, 64.0) - 0.5)
    signal = trans * (st.white[None, None, :] * drift[..., None])
    rng = np.random.default_rng([scene.seed, 0x5E15, noise_seed & 0xFFFFFFFF, noise_seed >> 32])
    noisy = signal + rng.standard_normal(signal.shape) * st.noise_sigma * np.sqrt(np.maximum(signal, 1.0) / 255.0)
    rgb = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)

    def crop(flat: np.ndarray) -> np.ndarray:
        return flat.reshape(H, W)[pad : pad + height, pad : pad + width]

    epithelium = crop(tumour & tissue)
    tissue_mask = crop(tissue)
    if not truth:
        empty = np.zeros((0, 0), bool)
        return RenderedRegion(rgb, empty, empty, empty, np.zeros((0, 0), np.int32), epithelium, tissue_mask,
                              np.zeros((0, 0), np.float32))

    membrane = np.zeros(n_px, bool)
    membrane[ti] = mem_mask_t
    # edge target: the band within half a pixel of a cell edge where either side's membrane is stained
    band = np.flatnonzero(tissue & (d_b < 0.5 * mpp))
    edge = np.zeros(n_px, bool)
    if band.size:
        own = a[band]
        other = nb[band]
        th_own = np.arctan2(Y[band] - sites.y[own], X[band] - sites.x[own])
        th_oth = np.arctan2(Y[band] - sites.y[other], X[band] - sites.x[other])
        own_st = (sites.kind[own] == Kind.TUMOUR) & (sites.intensity[own] > 0) & _in_arcs(th_own, sites.arc_start[own], sites.arc_length[own])
        oth_st = (sites.kind[other] == Kind.TUMOUR) & (sites.intensity[other] > 0) & _in_arcs(th_oth, sites.arc_start[other], sites.arc_length[other])
        edge[band] = own_st | oth_st
    nuclei = np.zeros(n_px, bool)
    labels = np.zeros(n_px, np.int64)
    labels[tumour & tissue] = sites.cell_id[a[tumour & tissue]]
    if ni.size:
        nuclei[ni[nuc_inside]] = True
        stromal_nuc = ni[nuc_inside & (sites.kind[a[ni]] != Kind.TUMOUR)]
        labels[stromal_nuc] = sites.cell_id[a[stromal_nuc]]
    return RenderedRegion(
        rgb=rgb,
        membrane_mask=crop(membrane),
        membrane_edge=crop(edge),
        nuclei_mask=crop(nuclei),
        cell_labels=crop(labels).astype(np.int32),
        epithelium_mask=epithelium,
        tissue_mask=tissue_mask,
        dab_od=crop(c_dab).astype(np.float32),
    )


def cell_table_of(scene: Scene, sites: Sites, x0_um: float, y0_um: float, x1_um: float, y1_um: float, mpp: float,
                  origin_px: tuple[int, int] = (0, 0)) -> CellTable:
    """The cells of `sites` whose centre lies in [x0, x1) x [y0, y1) um and in tissue, as a CellTable.

    Cells are tumour cells and nucleated stromal cells (fibroblasts, lymphocytes). Centres are given in
    pixels at `mpp`, relative to `origin_px`.
    """
    inside = (sites.x >= x0_um) & (sites.x < x1_um) & (sites.y >= y0_um) & (sites.y < y1_um)
    keep = inside & ((sites.kind == Kind.TUMOUR) | ((sites.kind == Kind.STROMA) & (sites.nucleus != NucleusKind.NONE)))
    if scene.with_glass and keep.any():
        k = np.flatnonzero(keep)
        keep[k[scene.tissue_field(sites.x[k], sites.y[k]) <= 0]] = False
    s = np.flatnonzero(keep)
    tum = sites.kind[s] == Kind.TUMOUR
    return CellTable(
        cell_id=sites.cell_id[s],
        x=sites.x[s] / mpp - 0.5 - origin_px[0],
        y=sites.y[s] / mpp - 0.5 - origin_px[1],
        is_tumour=tum,
        intensity=np.where(tum, sites.intensity[s], 0),
        completeness=np.where(tum, sites.completeness[s], 0),
        membrane_dab_od=np.where(tum & (sites.intensity[s] > 0), sites.membrane_od[s], 0),
        region=sites.region[s],
    )


def _resolve_preset(category: str, variant: str) -> Preset:
    if not isinstance(category, str):
        raise InvalidInputError(f"category must be a string such as '2+', got {category!r}")
    return get_preset(category, variant)


def make_tile(
    size: int | tuple[int, int] = 512,
    *,
    category: str = "2+",
    variant: str = "typical",
    mpp: float = 0.5,
    seed: int = 0,
    origin: tuple[int, int] = (0, 0),
    jpeg_quality: int | None = 90,
) -> TileGroundTruth:
    """Render one phantom tile (all tissue, no glass) and its exact ground truth.

    Parameters
    ----------
    size : int or (height, width)
        Tile size in pixels.
    category : {"0", "0+", "1+", "2+", "3+"}
        Category of the composition preset (see :mod:`her2fast.synth.presets`).
    variant : str
        Preset variant: ``"typical"``, ``"near-threshold"``, ``"unusual"`` (2+), ``"heterogeneous"``.
    mpp : float
        Micrometres per pixel (0.25 = 40x, 0.5 = 20x).
    seed : int
        Same seed, same arguments => same bytes.
    origin : (x, y)
        Pixel offset of the tile in the phantom's plane (a different part of the same tissue).
    jpeg_quality : int or None
        Round-trip the RGB through JPEG at this quality, as a scanner does; None for none.

    Returns
    -------
    TileGroundTruth
        ``category`` is the ASCO/CAP category of the tumour cells centred in the tile; on a
        512-px tile it may differ from the preset's for near-threshold presets (few cells).

    Examples
    --------
    >>> t = make_tile(128, category="3+", seed=1)
    >>> t.rgb.shape, t.rgb.dtype
    ((128, 128, 3), dtype('uint8'))
    """
    if isinstance(size, tuple):
        h = as_int(size[0], "size[0]", 1, 16384)
        w = as_int(size[1], "size[1]", 1, 16384)
    else:
        h = w = as_int(size, "size", 1, 16384)
    mpp = as_positive_float(mpp, "mpp")
    seed = as_int(seed, "seed", 0, 2**63 - 1)
    ox = as_int(origin[0], "origin[0]", 0)
    oy = as_int(origin[1], "origin[1]", 0)
    preset = _resolve_preset(category, variant)
    scene = Scene(preset, seed, w * mpp, h * mpp, with_glass=False, x0_um=ox * mpp, y0_um=oy * mpp)
    region = render_region(scene, ox, oy, w, h, mpp, noise_seed=(oy << 24) ^ ox)
    rgb = region.rgb
    if jpeg_quality is not None:
        import imagecodecs

        q = as_int(jpeg_quality, "jpeg_quality", 1, 100)
        rgb = imagecodecs.jpeg_decode(imagecodecs.jpeg_encode(rgb, level=q))
    x0u, y0u = ox * mpp, oy * mpp
    sites = scene.sites_in(x0u, y0u, x0u + w * mpp, y0u + h * mpp)
    cells = cell_table_of(scene, sites, x0u, y0u, x0u + w * mpp, y0u + h * mpp, mpp, origin_px=(ox, oy))
    from ..scoring import score_cells

    category_true = score_cells(cells).category if cells.is_tumour.any() else None
    return TileGroundTruth(
        rgb=np.ascontiguousarray(rgb),
        membrane_mask=region.membrane_mask,
        membrane_edge=region.membrane_edge,
        nuclei_mask=region.nuclei_mask,
        cell_labels=region.cell_labels,
        epithelium_mask=region.epithelium_mask,
        dab_od=region.dab_od,
        cells=cells,
        mpp=mpp,
        preset=preset.name,
        seed=seed,
        category=category_true,
    )
