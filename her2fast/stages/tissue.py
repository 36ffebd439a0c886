"""Tissue detection on a low-resolution thumbnail, and the grid of tiles that hold tissue.

Two steps, both cheap:

1. :func:`detect_tissue` reads the slide at about 8 um/px (a 20 x 15 mm section is 2500 x 1900 px) and
   :func:`segment_tissue` separates tissue from glass there:

   - optical density relative to the glass (the background colour is estimated from the brightest
     pixels, so an off-white scanner background reads as OD 0), taking the strongest channel: hematoxylin
     absorbs red, DAB absorbs blue, so pale counterstained tissue and brown DAB both stand out;
   - pen marks (saturated blue, green or near-black ink) are found by colour *and size* and excluded -- no
     histological stain is green-dominant, ink is more saturated than averaged hematoxylin, and a marker
     stroke is hundreds of micrometres wide: ink-coloured regions narrower than
     :data:`PEN_MIN_WIDTH_UM` (24 um; the darkest blue hematoxylin nuclei are 5-15 um) are not pen;
   - hysteresis thresholding: Otsu's threshold on the OD (clipped to a sensible range) seeds tissue, and a
     low threshold just above the glass noise grows it, so pale counterstain connected to stained tissue
     is kept while faint isolated smudges are not;
   - texture: pale areas touching that tissue whose OD is not flat (fat: adipocyte membranes; loose
     stroma) are tissue, the bar being twice the glass's own spread (see :func:`_textured`);
   - morphology: a closing of :data:`CLOSING_UM` (48 um: gaps, cracks and bays narrower than ~100 um are
     tissue; the image is mirrored at its border, so tissue running off the edge is not eaten), removal of
     objects smaller than ``min_object_um2`` (dust, debris), filling of holes enclosed by tissue smaller
     than ``min_hole_um2`` (default :data:`MAX_HOLE_UM2`, 0.5 mm^2: fat, lumina, small tears).

   What counts as tissue: the specimen as a pathologist outlines it -- fat, lumina, small holes and tears
   inside it are tissue; glass around it, empty areas enclosed by tissue larger than 0.5 mm^2 and gaps
   wider than ~100 um are not. Tissue running edge to edge (a patch with no glass in view) comes out as
   tissue: pale areas in it are either textured, enclosed, or narrower than the closing. See
   ``docs/tissue.md``.

2. :func:`tile_grid` lays tiles of ``tile_size`` px at the working resolution (default 0.5 um/px) over
   the slide and keeps those whose *core* holds at least ``min_tissue`` tissue (area fraction from the
   mask). Only those tiles are ever read at full resolution (:func:`read_tiles`).

Tile geometry
-------------
Working pixels are pixels at the grid's ``mpp``; working pixel ``(0, 0)`` starts at level-0 ``(0, 0)``.
Tile ``(col, row)`` has its core at working ``[col*T, (col+1)*T) x [row*T, (row+1)*T)`` (``T`` =
``tile_size``) and is read with an ``overlap`` margin on every side: padded bounds
``[col*T - overlap, (col+1)*T + overlap)``. Level-0 bounds are the working bounds times
``mpp / slide.mpp_x`` (resp. ``_y``) and may be fractional. Cores partition the plane: every point of the
slide lies in exactly one core, which is what lets later stages count each cell once (the tile whose core
holds its centre owns it). Tiles on the right and bottom edges reach past the slide; reads there are white.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .._validate import as_int, as_positive_float, as_rgb_uint8
from ..errors import InvalidInputError
from ..io.slide import Slide

__all__ = [
    "TissueMask",
    "Tile",
    "TileGrid",
    "read_tile",
    "TileImage",
    "detect_tissue",
    "pen_mask",
    "read_tiles",
    "segment_tissue",
    "tile_grid",
]

#: Default resolution of the tissue mask (um/px).
TISSUE_MPP = 8.0

#: Holes in tissue smaller than this (um^2) are tissue: fat, lumina, small tears (0.5 mm^2).
MAX_HOLE_UM2 = 500_000.0

#: Glass for the texture noise estimate is at least this far (um) from tissue.
TEXTURE_GLASS_UM = 200.0

#: Texture threshold floor (spread of the OD over 3 x 3 px, log10 units; one grey level at glass is 0.0017).
TEXTURE_MIN_OD = 0.0015

#: Texture in this band (um) around tissue is ignored (edge blur, JPEG ringing).
TEXTURE_BAND_UM = 16.0

#: Radius (um) of the closing: glass-like gaps narrower than twice this are tissue.
CLOSING_UM = 48.0


@dataclass
class TissueMask:
    """Tissue vs glass on a low-resolution grid.

    Attributes
    ----------
    mask : (H, W) bool
        True on tissue. Pixel ``(i, j)`` covers level-0 ``[j*sx, (j+1)*sx) x [i*sy, (i+1)*sy)`` with
        ``(sx, sy) = level0_per_pixel``.
    mpp : float
        Micrometres per mask pixel.
    threshold : float
        The high (seed) optical-density threshold used (Otsu, clipped).
    low_threshold : float
        The low (growing) threshold.
    pen : (H, W) bool
        Pixels excluded as pen ink.
    background : (3,) float
        Estimated glass colour (RGB).
    level0_per_pixel : (float, float)
        Level-0 pixels per mask pixel along x and y (1.0, 1.0 for a mask not tied to a slide).
    """

    mask: np.ndarray
    mpp: float
    threshold: float
    low_threshold: float
    pen: np.ndarray
    background: np.ndarray
    level0_per_pixel: tuple[float, float] = (1.0, 1.0)

    @property
    def fraction(self) -> float:
        """Fraction of the mask's pixels that are tissue."""
        return float(self.mask.mean()) if self.mask.size else 0.0

    @property
    def area_mm2(self) -> float:
        """Tissue area in square millimetres."""
        return float(self.mask.sum()) * (self.mpp * 1e-3) ** 2


# ------------------------------------------------------------------------------------ segmentation
def _disk(radius: int) -> np.ndarray:
    r = max(int(radius), 0)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return xx * xx + yy * yy <= r * r + r  # slightly round


def _glass_level(values: np.ndarray) -> float:
    """An optical density just above the glass: the histogram mode plus 4 sigma of its lower half.

    The lower half of the glass peak is free of tissue, so its spread is the glass noise.
    """
    v = values[(values > -0.1) & (values < 0.3)]
    if v.size < 10:
        return 0.01
    hist, edges = np.histogram(v, bins=np.arange(-0.1, 0.3 + 1e-9, 0.002))
    hist = np.convolve(hist, np.ones(3) / 3, mode="same")
    k = int(np.argmax(hist))
    mode = float(edges[k] + 0.001)
    below = v[v <= mode] - mode
    sigma = float(np.sqrt(np.mean(below**2))) if below.size > 5 else 0.003
    return float(np.clip(mode + 4.0 * sigma + 0.004, 0.008, 0.1))


def _remove_small(mask: np.ndarray, min_px: int, keep_border: bool = False) -> np.ndarray:
    """``mask`` without its 8-connected components smaller than ``min_px`` pixels.

    With ``keep_border``, components touching the image border are kept whatever their size (used to fill
    holes: background reaching the border is glass, not a hole).
    """
    from scipy import ndimage as ndi

    if min_px <= 1 or not mask.any():
        return mask.copy()
    labels, n = ndi.label(mask, structure=np.ones((3, 3), bool))
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    keep = sizes >= min_px
    if keep_border:
        border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        keep[border] = True
    keep[0] = False
    return keep[labels]


def _closing(mask: np.ndarray, radius: float) -> np.ndarray:
    """Binary closing by a disk of ``radius`` px (Euclidean, exact, O(pixels) whatever the radius).

    The image is padded by reflection, so the closing neither eats into tissue cut by the image border nor
    invents tissue there: what lies beyond the border is assumed to continue what is inside it.
    """
    from scipy import ndimage as ndi

    if radius < 1 or not mask.any() or mask.all():
        return mask.copy()
    pad = int(math.ceil(radius)) + 1
    padded = np.pad(mask, pad, mode="symmetric")
    dilated = ndi.distance_transform_edt(~padded) <= radius
    if dilated.all():
        return np.ones_like(mask)
    closed = ndi.distance_transform_edt(dilated) > radius
    return closed[pad:-pad, pad:-pad] | mask


def _textured(
    od: np.ndarray,
    tissue: np.ndarray,
    glass: np.ndarray,
    excluded: np.ndarray,
    padding: np.ndarray,
    mpp: float,
    min_px: int,
) -> np.ndarray:
    """Pale but textured areas next to ``tissue``: fat (adipocyte membranes) and loose stroma.

    Texture is the spread of ``od`` over 3 x 3 px. Glass is flat: its own spread (90th percentile on
    ``glass`` pixels at least :data:`TEXTURE_GLASS_UM` from tissue, times 2, at least :data:`TEXTURE_MIN_OD`) sets the bar, so noisy
    glass raises it instead of turning into tissue. ``excluded`` pixels (pen) and the step edges around
    ``padding`` (scanner white) never count. Textured
    pixels in a band of :data:`TEXTURE_BAND_UM` around ``tissue`` are ignored (blur and JPEG ringing at the
    tissue edge are textured too); what remains counts if it forms regions of at least ``min_px`` pixels
    that reach the band, i.e. touch tissue. The closing that follows bridges the band and fills the cells.
    """
    from scipy import ndimage as ndi

    if not tissue.any():
        return np.zeros_like(tissue)
    mean = ndi.uniform_filter(od, size=3, mode="nearest")
    spread = np.sqrt(np.maximum(ndi.uniform_filter(od * od, size=3, mode="nearest") - mean * mean, 0.0))
    dist = ndi.distance_transform_edt(~tissue)
    band = max(2.0, TEXTURE_BAND_UM / mpp)
    excluded = excluded | ndi.binary_dilation(padding, iterations=2)
    far = glass & ~excluded & (dist * mpp >= TEXTURE_GLASS_UM)
    glass_spread = float(np.percentile(spread[far], 90)) if far.sum() > 50 else 0.0
    level = max(TEXTURE_MIN_OD, 2.0 * glass_spread)
    candidates = (spread > level) & (dist > band) & ~excluded
    if not candidates.any():
        return np.zeros_like(tissue)
    labels, n = ndi.label(candidates, structure=np.ones((3, 3), bool))
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    touching = np.zeros(n + 1, bool)
    touching[np.unique(labels[candidates & (dist <= band + 1.5)])] = True
    keep = touching & (sizes >= min_px)
    keep[0] = False
    return keep[labels]


def _keep_wide(mask: np.ndarray, min_width_px: float) -> np.ndarray:
    """The 8-connected components of ``mask`` that hold a disk at least ``min_width_px`` across."""
    from scipy import ndimage as ndi

    if not mask.any():
        return mask.copy()
    # distance to the nearest pixel outside the component (the image border counts as inside: a stroke cut
    # by the border is as wide as it looks)
    depth = ndi.distance_transform_edt(np.pad(mask, 1, mode="edge"))[1:-1, 1:-1]
    labels, n = ndi.label(mask, structure=np.ones((3, 3), bool))
    widest = ndi.maximum(depth, labels, index=np.arange(1, n + 1))
    keep = np.concatenate([[False], 2.0 * np.asarray(widest) >= min_width_px])
    return keep[labels]


#: Pen ink must form a region at least this wide (um) -- marker strokes are 0.3-1 mm wide, nuclei 5-15 um.
PEN_MIN_WIDTH_UM = 24.0


def pen_mask(rgb: np.ndarray, mpp: float | None = None, *, min_width_um: float = PEN_MIN_WIDTH_UM) -> np.ndarray:
    """Pixels that look like pen ink (blue, green or black marker) on a low-resolution RGB image.

    Parameters
    ----------
    rgb : (H, W, 3) uint8
    mpp : float, optional
        Micrometres per pixel of ``rgb``. When given, ink must also be *large*: only connected regions of
        ink-coloured pixels that hold a disk ``min_width_um`` across (and at least 3 px) are kept. Without it
        the test is per pixel, by colour alone.
    min_width_um : float
        Narrowest pen region kept (default :data:`PEN_MIN_WIDTH_UM`, 24 um: a nucleus never is that wide,
        a marker stroke always is).

    Returns
    -------
    (H, W) bool

    Notes
    -----
    Colour:

    - green ink: green clearly the brightest channel (no histological stain is green-dominant);
    - blue ink: blue or cyan hue (green >= red) with saturation > 0.55 and blue well above red;
      hematoxylin is violet (red > green) and, averaged at thumbnail scale, much less saturated;
    - black ink: all channels below 60 and unsaturated (the darkest stained tissue, dense hematoxylin or
      3+ DAB, keeps its hue; at 8 um/px it is rarely that dark at all).

    Colour alone does not separate blue ink from the darkest hematoxylin nuclei of a blue-toned
    counterstain (hue 225-235 deg, saturation up to 0.65, measured on the her2-ihc-40x 1+ patch), hence the
    size rule when ``mpp`` is known: a nucleus is 5-15 um across and never reaches ``min_width_um``, while
    a marker stroke is hundreds of micrometres wide.
    """
    arr = as_rgb_uint8(rgb, "rgb").astype(np.int16)
    r, g, b = arr[..., 0], arr[..., 1], arr[..., 2]
    mx = arr.max(axis=2)
    mn = arr.min(axis=2)
    sat = (mx - mn) / np.maximum(mx, 1)
    green = (g - np.maximum(r, b) > 12) & (sat > 0.2)
    blue = (b == mx) & (sat > 0.55) & (b - r > 60) & (b - g > 20) & (g >= r - 5)
    black = (mx < 60) & (sat < 0.4)
    ink = green | blue | black
    if mpp is None:
        return ink
    mpp = as_positive_float(mpp, "mpp")
    min_width_um = as_positive_float(min_width_um, "min_width_um")
    return _keep_wide(ink, max(3.0, min_width_um / mpp))


#: Mean optical density above which a large connected piece with no pixel above the seed threshold is
#: tissue (the seed threshold's lower clip): pale, unstained tissue beside much darker tissue.
PALE_TISSUE_OD = 0.03


def segment_tissue(
    rgb: np.ndarray,
    mpp: float,
    *,
    min_object_um2: float = 10_000.0,
    min_hole_um2: float = MAX_HOLE_UM2,
    threshold: float | None = None,
    closing_um: float = CLOSING_UM,
) -> TissueMask:
    """Tissue mask of a low-resolution brightfield RGB image.

    Parameters
    ----------
    rgb : (H, W, 3) uint8
        The slide (or a part of it) at low resolution, brightfield (see
        :func:`her2fast.io.slide.brightfield_evidence`).
    mpp : float
        Micrometres per pixel of ``rgb`` (4-16 is the intended range for slides; finer works for patches).
    min_object_um2 : float
        Smaller connected tissue pieces are removed (dust, debris); 10 000 um^2 is a 100 x 100 um speck.
    min_hole_um2 : float
        Holes inside tissue (glass-like areas enclosed by tissue: fat, lumina, tears) smaller than this are
        filled (default :data:`MAX_HOLE_UM2`, 0.5 mm^2); larger empty areas stay out.
    threshold : float, optional
        Fixed seed threshold on the optical density (default: Otsu's, clipped to [0.03, 0.15]).
    closing_um : float
        Radius of the morphological closing (default :data:`CLOSING_UM`): glass-like gaps, bays and
        cracks narrower than twice this are tissue.

    Returns
    -------
    TissueMask
    """
    from scipy import ndimage as ndi
    from skimage.filters import threshold_otsu

    arr = as_rgb_uint8(rgb, "rgb")
    mpp = as_positive_float(mpp, "mpp")
    min_obj_px = max(1, int(round(as_positive_float(min_object_um2 + 1e-12, "min_object_um2") / mpp**2)))
    min_hole_px = max(1, int(round(as_positive_float(min_hole_um2 + 1e-12, "min_hole_um2") / mpp**2)))
    closing_px = as_positive_float(closing_um + 1e-12, "closing_um") / mpp

    pen = pen_mask(arr, mpp)
    # Glass colour: the 99th percentile per channel, trusted only if it is light (a slide without glass
    # falls back to white). Pure white (>= 254) is left out: scanners pad unscanned areas with it, and
    # the glass inside the scanned area is darker.
    f = arr.astype(np.float32)
    usable = ~pen & ~(arr >= 254).all(axis=2)
    if usable.sum() < 0.01 * usable.size:
        usable = ~pen
    pool = f[usable] if usable.any() else f.reshape(-1, 3)
    background = np.percentile(pool, 99, axis=0)
    if background.min() < 180:
        background = np.full(3, 255.0, np.float32)
    od = (-np.log10(np.maximum(f, 1.0) / background)).max(axis=2)
    od[pen] = 0.0  # ink must not leak into its neighbours through the smoothing
    odmax = ndi.uniform_filter(
        od, size=3, mode="nearest"
    )  # 3x3 mean: noise down (sparse nuclei in pale stroma survive)
    near_pen = ndi.binary_dilation(pen, structure=_disk(max(1, int(round(16.0 / mpp))))) if pen.any() else pen
    odmax[near_pen] = 0.0

    stats = usable & ~near_pen
    values = odmax[stats] if stats.sum() > 10 else odmax.ravel()
    if threshold is None:
        if values.size > 1 and float(values.max()) > float(values.min()):
            high = float(threshold_otsu(values))
        else:
            high = 0.03
        high = float(np.clip(high, 0.03, 0.15))
    else:
        high = float(threshold)
    low = min(_glass_level(values), 0.5 * high)

    strong = odmax > high
    weak = odmax > low
    labels, n = ndi.label(weak)
    if n:
        keep = np.zeros(n + 1, bool)
        keep[np.unique(labels[strong])] = True
        # a pale piece with no pixel above a threshold set by darker tissue elsewhere (a HER2-0 patient
        # tissue beside a strongly stained control): kept when it is large and its mean OD is that of tissue
        area = np.bincount(labels.ravel(), minlength=n + 1)
        mean_od = np.bincount(labels.ravel(), odmax.ravel(), minlength=n + 1) / np.maximum(area, 1)
        keep |= (area >= min_obj_px) & (mean_od > PALE_TISSUE_OD)
        keep[0] = False
        tissue = keep[labels]
    else:
        tissue = np.zeros_like(weak)
    padding = np.asarray((arr >= 254).all(axis=2))  # an array (numpy types .all(axis=...) as scalar or array)
    tissue |= _textured(od, tissue, stats & (odmax <= low), near_pen, padding, mpp, min_obj_px)
    tissue = _closing(tissue, closing_px)
    tissue = _remove_small(tissue, min_obj_px)
    tissue = ~_remove_small(~tissue, min_hole_px, keep_border=True)
    tissue &= ~near_pen  # after hole filling, which would otherwise fill ink drawn on tissue back in
    return TissueMask(
        mask=np.ascontiguousarray(tissue, dtype=bool),
        mpp=mpp,
        threshold=high,
        low_threshold=low,
        pen=pen,
        background=np.asarray(background, np.float64),
    )


def detect_tissue(slide: Slide, *, mpp: float = TISSUE_MPP, **options: float) -> TissueMask:
    """Tissue mask of a slide, computed on its thumbnail at ``mpp`` um/px.

    Parameters
    ----------
    slide : Slide
    mpp : float
        Resolution of the mask (default 8 um/px).
    **options
        Passed to :func:`segment_tissue` (``min_object_um2``, ``min_hole_um2``, ``threshold``, ``closing_um``).

    Returns
    -------
    TissueMask
        With ``level0_per_pixel`` set for this slide.

    Raises
    ------
    NotBrightfieldError
        For a fluorescence (dark-background) slide.
    """
    if not isinstance(slide, Slide):
        raise InvalidInputError(
            f"slide must be a her2fast.io.slide.Slide (from open_slide), got {type(slide).__name__}"
        )
    mpp = as_positive_float(mpp, "mpp")
    slide.require_brightfield()
    thumb = slide.thumbnail(mpp)
    result = segment_tissue(thumb, mpp, **options)
    result.level0_per_pixel = (mpp / slide.mpp_x, mpp / slide.mpp_y)
    return result


# ------------------------------------------------------------------------------------ tile grid
@dataclass(frozen=True)
class Tile:
    """One tile of a :class:`TileGrid`.

    Bounds are ``(x0, y0, x1, y1)``, half-open, in working pixels (ints) or level-0 pixels (floats).

    Attributes
    ----------
    index : int
        Position in the grid's tile table.
    col, row : int
    core : (int, int, int, int)
        Core bounds in working pixels.
    padded : (int, int, int, int)
        Core plus the overlap margin, in working pixels (what is read).
    core_level0, padded_level0 : (float, float, float, float)
        The same bounds in level-0 pixels.
    tissue_fraction : float
        Fraction of the core that is tissue.
    """

    index: int
    col: int
    row: int
    core: tuple[int, int, int, int]
    padded: tuple[int, int, int, int]
    core_level0: tuple[float, float, float, float]
    padded_level0: tuple[float, float, float, float]
    tissue_fraction: float


@dataclass
class TileGrid:
    """The tiles that hold tissue, at the working resolution (a table: one entry per kept tile).

    Attributes
    ----------
    mpp : float
        Working resolution (um/px).
    tile_size : int
        Core size in working pixels.
    overlap : int
        Margin on each side, in working pixels (a tile is read as ``tile_size + 2*overlap`` square).
    level0_per_pixel : (float, float)
        Level-0 pixels per working pixel along x and y.
    n_cols, n_rows : int
        Size of the full grid covering the slide.
    cols, rows : (N,) int32
        Grid position of each kept tile (row-major order).
    tissue_fraction : (N,) float32
        Tissue fraction of each kept tile's core.
    min_tissue : float
        The threshold used to keep tiles.
    occupancy : (n_rows, n_cols) float32
        Tissue fraction of every tile of the full grid (kept or not), for overviews.
    """

    mpp: float
    tile_size: int
    overlap: int
    level0_per_pixel: tuple[float, float]
    n_cols: int
    n_rows: int
    cols: np.ndarray
    rows: np.ndarray
    tissue_fraction: np.ndarray
    min_tissue: float
    occupancy: np.ndarray

    def __len__(self) -> int:
        return int(self.cols.size)

    @property
    def n_total(self) -> int:
        """Tiles in the full grid."""
        return self.n_cols * self.n_rows

    @property
    def n_empty(self) -> int:
        """Tiles of the full grid that were dropped (too little tissue)."""
        return self.n_total - len(self)

    @property
    def padded_size(self) -> int:
        """Side of a tile as read, ``tile_size + 2 * overlap``."""
        return self.tile_size + 2 * self.overlap

    @property
    def cores(self) -> np.ndarray:
        """(N, 4) int64 core bounds ``x0, y0, x1, y1`` in working pixels."""
        t = self.tile_size
        x0 = self.cols.astype(np.int64) * t
        y0 = self.rows.astype(np.int64) * t
        return np.stack([x0, y0, x0 + t, y0 + t], axis=1)

    @property
    def padded(self) -> np.ndarray:
        """(N, 4) int64 padded bounds in working pixels (may be negative on the first row/column)."""
        o = self.overlap
        return self.cores + np.array([-o, -o, o, o], np.int64)

    def to_level0(self, bounds: np.ndarray) -> np.ndarray:
        """Working-pixel bounds ``(..., 4)`` to level-0 pixels (float64)."""
        sx, sy = self.level0_per_pixel
        return np.asarray(bounds, np.float64) * np.array([sx, sy, sx, sy])

    def tile(self, index: int) -> Tile:
        """The :class:`Tile` at ``index``."""
        n = len(self)
        index = as_int(index, "index", -n if n else 0, n - 1)
        index %= n
        core = tuple(int(v) for v in self.cores[index])
        padded = tuple(int(v) for v in self.padded[index])
        return Tile(
            index=index,
            col=int(self.cols[index]),
            row=int(self.rows[index]),
            core=core,  # type: ignore[arg-type]
            padded=padded,  # type: ignore[arg-type]
            core_level0=tuple(float(v) for v in self.to_level0(np.array(core))),  # type: ignore[arg-type]
            padded_level0=tuple(float(v) for v in self.to_level0(np.array(padded))),  # type: ignore[arg-type]
            tissue_fraction=float(self.tissue_fraction[index]),
        )

    def __iter__(self) -> Iterator[Tile]:
        for i in range(len(self)):
            yield self.tile(i)

    def owner(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Grid ``(col, row)`` whose core holds each level-0 point (the tile that owns a cell there)."""
        sx, sy = self.level0_per_pixel
        col = np.floor(np.asarray(x, np.float64) / sx / self.tile_size).astype(np.int64)
        row = np.floor(np.asarray(y, np.float64) / sy / self.tile_size).astype(np.int64)
        return col, row


def _area_fractions(mask: np.ndarray, x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray) -> np.ndarray:
    """Exact area-weighted mean of a piecewise-constant mask over rectangles in (fractional) mask pixels.

    The integral of the mask is piecewise bilinear in the rectangle's corners, so bilinear interpolation
    of the summed-area table gives it exactly. Outside the mask counts as 0 (glass).
    """
    h, w = mask.shape
    sat = np.zeros((h + 1, w + 1), np.float64)
    sat[1:, 1:] = np.cumsum(np.cumsum(mask, axis=0, dtype=np.float64), axis=1)

    def integral(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        x = np.clip(x, 0, w)
        y = np.clip(y, 0, h)
        xi = np.minimum(np.floor(x).astype(np.int64), w - 1) if w else np.zeros_like(x, np.int64)
        yi = np.minimum(np.floor(y).astype(np.int64), h - 1) if h else np.zeros_like(y, np.int64)
        fx, fy = x - xi, y - yi
        a = sat[yi, xi]
        b = sat[yi, xi + 1]
        c = sat[yi + 1, xi]
        d = sat[yi + 1, xi + 1]
        return a * (1 - fx) * (1 - fy) + b * fx * (1 - fy) + c * (1 - fx) * fy + d * fx * fy

    total = integral(x1, y1) - integral(x0, y1) - integral(x1, y0) + integral(x0, y0)
    area = (x1 - x0) * (y1 - y0)
    return np.where(area > 0, total / np.maximum(area, 1e-12), 0.0)


def tile_grid(
    slide: Slide,
    tissue: TissueMask,
    *,
    tile_size: int = 512,
    overlap: int = 32,
    mpp: float = 0.5,
    min_tissue: float = 0.05,
) -> TileGrid:
    """The tiles of ``slide`` at ``mpp`` whose core holds at least ``min_tissue`` tissue.

    Parameters
    ----------
    slide : Slide
    tissue : TissueMask
        From :func:`detect_tissue` on the same slide.
    tile_size : int
        Core size in working pixels (default 512, i.e. 256 um at 0.5 um/px).
    overlap : int
        Margin read on each side, in working pixels; make it wider than a cell so that a cell cut by the
        core's edge is whole in the padded tile (default 32 px = 16 um at 0.5 um/px).
    mpp : float
        Working resolution (default 0.5 um/px).
    min_tissue : float
        Keep tiles whose core is at least this fraction tissue (0 keeps tiles with any tissue; 0 < x <= 1).

    Returns
    -------
    TileGrid
    """
    if not isinstance(slide, Slide):
        raise InvalidInputError(
            f"slide must be a her2fast.io.slide.Slide (from open_slide), got {type(slide).__name__}"
        )
    if not isinstance(tissue, TissueMask):
        raise InvalidInputError(f"tissue must be a TissueMask (from detect_tissue), got {type(tissue).__name__}")
    tile_size = as_int(tile_size, "tile_size", 16, 1 << 14)
    overlap = as_int(overlap, "overlap", 0, tile_size)
    mpp = as_positive_float(mpp, "mpp")
    try:
        min_tissue = float(min_tissue)
    except (TypeError, ValueError):
        raise InvalidInputError(f"min_tissue must be a number in [0, 1], got {min_tissue!r}") from None
    if not 0.0 <= min_tissue <= 1.0:
        raise InvalidInputError(f"min_tissue must be in [0, 1], got {min_tissue}")

    wum, hum = slide.size_um
    n_cols = max(1, int(math.ceil(wum / (tile_size * mpp) - 1e-9)))
    n_rows = max(1, int(math.ceil(hum / (tile_size * mpp) - 1e-9)))
    # Core bounds in mask pixels (both grids start at the slide's level-0 origin).
    k = tile_size * mpp / tissue.mpp
    edges_x = np.arange(n_cols + 1) * k
    edges_y = np.arange(n_rows + 1) * k
    gx0, gy0 = np.meshgrid(edges_x[:-1], edges_y[:-1])
    gx1, gy1 = np.meshgrid(edges_x[1:], edges_y[1:])
    occupancy = _area_fractions(tissue.mask, gx0, gy0, gx1, gy1).astype(np.float32)
    keep = occupancy > 0 if min_tissue == 0 else occupancy >= min_tissue - 1e-6
    rows, cols = np.nonzero(keep)
    return TileGrid(
        mpp=mpp,
        tile_size=tile_size,
        overlap=overlap,
        level0_per_pixel=(mpp / slide.mpp_x, mpp / slide.mpp_y),
        n_cols=n_cols,
        n_rows=n_rows,
        cols=cols.astype(np.int32),
        rows=rows.astype(np.int32),
        tissue_fraction=occupancy[rows, cols],
        min_tissue=min_tissue,
        occupancy=occupancy,
    )


@dataclass
class TileImage:
    """A tile read from the slide: its geometry and its pixels (core plus overlap margin).

    Attributes
    ----------
    tile : Tile
    image : (P, P, 3) uint8
        ``P = tile_size + 2 * overlap``; the core is ``image[overlap:-overlap, overlap:-overlap]``.
        Areas beyond the slide edge are white.
    """

    tile: Tile
    image: np.ndarray


def read_tiles(slide: Slide, grid: TileGrid) -> Iterator[TileImage]:
    """Read the grid's tiles (with their overlap margins) at the grid's resolution, one at a time.

    Parameters
    ----------
    slide : Slide
        The slide the grid was made for.
    grid : TileGrid

    Yields
    ------
    TileImage
        In grid order (row-major); only kept tiles are read.
    """
    if not isinstance(grid, TileGrid):
        raise InvalidInputError(f"grid must be a TileGrid (from tile_grid), got {type(grid).__name__}")
    sx, sy = grid.level0_per_pixel
    if not (
        math.isclose(sx, grid.mpp / slide.mpp_x, rel_tol=1e-9)
        and math.isclose(sy, grid.mpp / slide.mpp_y, rel_tol=1e-9)
    ):
        raise InvalidInputError(f"this TileGrid was made for a slide with another resolution than {slide.path}")
    for tile in grid:
        yield read_tile(slide, grid, tile)


def read_tile(slide: Slide, grid: TileGrid, tile: Tile, window: tuple[int, int, int, int] | None = None) -> TileImage:
    """Read one tile of ``grid`` (core plus overlap margin) at the grid's resolution.

    ``window`` (x0, y0, x1, y1), in working pixels inside ``tile.padded``, reads only that part (the
    tile stream reads the window around a tile's epithelium; decoding costs per pixel); the image is
    then the window's. Thread-safe (OpenSlide handles may be shared by reader threads). See
    :func:`read_tiles`.
    """
    if window is None:
        p = grid.padded_size
        x0, y0 = tile.padded_level0[:2]
        return TileImage(tile=tile, image=slide.read(x0, y0, p, p, grid.mpp))
    wx0, wy0, wx1, wy1 = window
    px0, py0, px1, py1 = tile.padded
    if not (px0 <= wx0 < wx1 <= px1 and py0 <= wy0 < wy1 <= py1):
        raise InvalidInputError(f"window {window} must be a non-empty box inside the tile's padded box {tile.padded}")
    sx, sy = grid.level0_per_pixel  # Tile.padded_level0 = Tile.padded * these
    return TileImage(tile=tile, image=slide.read(wx0 * sx, wy0 * sy, wx1 - wx0, wy1 - wy0, grid.mpp))
