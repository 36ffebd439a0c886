"""A quality map: where on a brightfield image the tissue cannot be read, and why.

:func:`quality_map` takes an RGB image (a tile, or a region of a slide) at a known resolution and returns
a low-resolution map (one pixel per :attr:`QualityRules.step_um`, 4 um by default) of the tissue that is
*unusable*, with one boolean map per reason:

``out_of_focus``
    Focus is the share of the image's detail energy that lies at the finest scale. On the optical
    density ``od`` (of the weakest channel, i.e. the brightest, relative to white, averaged to about 1 um/px):
    ``fine = od - G(od, 0.7 um)`` and ``detail = G(od, 0.7 um) - G(od, 8 um)``; each is squared and
    averaged over a window of :attr:`QualityRules.window_um`, and ``focus = E[fine^2] / E[detail^2]``.
    A ratio rather than an energy, so that the amount of stain and the density of the tissue cancel
    out: a pale stroma and a 3+ tumour in focus give similar ratios, and defocus lowers it wherever it
    acts (it removes the finest scale first). A window with ``focus < focus_min`` is out of focus.
    Out-of-focus areas smaller than one window (``window_um^2``) are dropped (a single low window is
    chance: a patch of pale, fibre-poor stroma); as any window that reaches into a blurred area holds
    sharp tissue too, the rest is then grown by half a window, so the map covers the blurred area up to
    its edge.
``pen_ink``
    Pen and marker ink, with the colour-and-size rule of :func:`her2fast.stages.tissue.pen_mask` (the one
    that keeps ink out of the tissue mask), applied at :attr:`QualityRules.ink_mpp`; a map pixel at least
    20 % ink is ink, and gaps and holes in an ink region (tissue whose own colour shows through pale ink)
    are closed.
    Windows that reach into ink (or lie within two detail sigmas of it) are not judged for focus.
``fold``
    A tissue fold: two layers of section, so the optical density is roughly doubled in both stains.
    The *floor* of the red channel's optical density (at about 2 um/px; hematoxylin absorbs red most and
    DAB least, so a 3+ tumour nest's brown raises it little while a fold doubles it) -- its lowest value within
    :attr:`QualityRules.fold_floor_um`, averaged over a window -- is compared with the median floor of the
    image's tissue: clean tissue has pale gaps (stroma, cytoplasm) near any point, a fold's second layer
    covers them. A fold is a connected region above ``fold_grow_ratio`` (1.3) times the median that holds
    a core of at least ``fold_min_um`` squared above ``fold_ratio`` (2) times it. Tissue out of focus, or
    within a window of ink or saturated stain, is not judged for folds.
``saturated``
    Stain so dense that intensity cannot be read: a map pixel at least ``saturated_share`` of whose image
    pixels are below ``saturated_level`` in every channel; gaps and holes closed. Saturated areas and their
    surroundings are not judged for focus (they are flat).
``bubble``
    An air bubble under the coverslip: a rounded region enclosed by a thin, dark, grey rim (darker than
    its surroundings by ``rim_min_od`` in every channel, the channels alike), with flattened content. The
    rim's map pixels are closed and their holes filled; a filled region counts when its inside (without
    rim, ink or saturated stain) is at least ``bubble_min_um`` across and at most ``bubble_inner_rim`` of
    its rim lies deeper than 8 um inside (a network of dark membranes encloses tissue too, but is dark
    throughout). The bubble's content is judged tissue even where it is paler than glass's threshold.
    A bubble cut by the image's edge is not closed and is not found.

Windows with too little tissue (mean optical density below :attr:`QualityRules.min_tissue_od`, i.e.
glass) are not judged: they are neither usable tissue nor unusable.

The thresholds and how they were calibrated are in ``docs/qc.md`` (phantoms from
:mod:`her2fast.synth` with the artefacts of :mod:`her2fast.synth.artefacts`; ``benchmarks/quality_map.py``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .._validate import as_positive_float, as_rgb_uint8
from ..errors import InvalidInputError
from ..stages.tissue import pen_mask

__all__ = ["QUALITY_REASONS", "QualityMap", "QualityRules", "QualityTally", "quality_map", "REASON_UNUSABLE"]

#: The reasons a quality map gives, in the order they are reported.
QUALITY_REASONS: tuple[str, ...] = ("out_of_focus", "pen_ink", "fold", "saturated", "bubble")

#: Code of the not-scorable reason (and flag) when too much of the tumour area is unusable.
REASON_UNUSABLE = "unusable_tumour_area"


@dataclass(frozen=True)
class QualityRules:
    """Thresholds and scales of :func:`quality_map` (see the module docstring).

    Attributes
    ----------
    step_um : float
        Size of a map pixel.
    window_um : float
        Side of the window over which focus is measured.
    focus_min : float
        Windows whose focus ratio is lower are out of focus.
    fine_um, detail_um : float
        Gaussian scales (sigma) separating the finest detail from the cell-scale detail.
    min_tissue_od : float
        Windows whose mean optical density is lower are glass and not judged.
    ink_mpp : float
        Resolution at which ink is looked for.
    fold_ratio, fold_grow_ratio : float
        A fold is a connected region whose optical-density floor is above ``fold_grow_ratio`` times the
        window's median tissue floor and that holds at least ``fold_min_um^2`` above ``fold_ratio`` times it.
    fold_min_od : float
        ... and whose floor (optical density of the red channel) is above this there.
    fold_floor_um : float
        Side of the square within which the floor (the lowest optical density) is taken.
    fold_min_um : float
        Side of the smallest area of a fold's core (above ``fold_ratio``).
    saturated_level : int
        A pixel whose every channel is below this level (0-255) is saturated (optical density above 0.8
        in all three: the intensity cannot be read).
    saturated_share : float
        A map pixel at least this share saturated is ``saturated``.
    rim_um : float
        A bubble's rim is measured against the mean optical density over this square.
    rim_min_od, rim_max_chroma : float
        A rim pixel is darker than that mean by more than ``rim_min_od`` in every channel, the channels'
        excess within ``rim_max_chroma`` of the largest (grey).
    bubble_min_um : float
        Diameter of the smallest bubble (of its inside, without the rim).
    bubble_inner_rim : float
        Largest share of a bubble's rim pixels deeper than 8 um inside it (more: a network of dark lines).
    max_unusable_tumour : float
        A slide whose tumour area (epithelium in the segmented tiles) is unusable for more than this
        fraction is not scorable (:data:`REASON_UNUSABLE`): the rest is too small a sample of the tumour.
    look_for : tuple of str
        The reasons looked for (the others' maps stay empty), by default all of :data:`QUALITY_REASONS`.
    """

    step_um: float = 4.0
    window_um: float = 32.0
    focus_min: float = 0.012
    fine_um: float = 0.7
    detail_um: float = 8.0
    min_tissue_od: float = 0.04
    ink_mpp: float = 4.0
    fold_ratio: float = 2.0
    fold_grow_ratio: float = 1.3
    fold_min_od: float = 0.05
    fold_floor_um: float = 16.0
    fold_min_um: float = 32.0
    saturated_level: int = 40
    saturated_share: float = 0.5
    rim_um: float = 12.0
    rim_min_od: float = 0.1
    rim_max_chroma: float = 0.5
    bubble_min_um: float = 40.0
    bubble_inner_rim: float = 0.1
    max_unusable_tumour: float = 0.5
    look_for: tuple[str, ...] = QUALITY_REASONS

    def __post_init__(self) -> None:
        bad = [r for r in self.look_for if r not in QUALITY_REASONS]
        if bad or isinstance(self.look_for, str):
            raise InvalidInputError(
                f"look_for must be a tuple of reasons among {list(QUALITY_REASONS)}, got {self.look_for!r}"
            )
        for name in (
            "step_um",
            "window_um",
            "focus_min",
            "fine_um",
            "detail_um",
            "min_tissue_od",
            "ink_mpp",
            "fold_ratio",
            "fold_grow_ratio",
            "fold_min_od",
            "fold_floor_um",
            "fold_min_um",
            "rim_um",
            "rim_min_od",
            "bubble_min_um",
        ):
            as_positive_float(getattr(self, name), name)
        if not (0.0 < float(self.max_unusable_tumour) <= 1.0):
            raise InvalidInputError(f"max_unusable_tumour must be in (0, 1], got {self.max_unusable_tumour!r}")
        for name in ("saturated_share", "rim_max_chroma", "bubble_inner_rim"):
            if not (0.0 < float(getattr(self, name)) <= 1.0):
                raise InvalidInputError(f"{name} must be in (0, 1], got {getattr(self, name)!r}")
        if not (0 < int(self.saturated_level) < 255):
            raise InvalidInputError(f"saturated_level must be in 1..254, got {self.saturated_level!r}")
        if self.detail_um <= self.fine_um:
            raise InvalidInputError(f"detail_um ({self.detail_um}) must be larger than fine_um ({self.fine_um})")


@dataclass
class QualityMap:
    """Per-pixel quality of an image, at ``step_um`` micrometres per map pixel.

    Map pixel ``(i, j)`` covers image pixels ``[i*step_px, (i+1)*step_px) x [j*step_px, (j+1)*step_px)``;
    the last row and column may reach past the image.

    Attributes
    ----------
    step_um : float
    step_px : int
        Image pixels per map pixel.
    tissue : (h, w) bool
        Map pixels that were judged (not glass).
    reasons : dict of str to (h, w) bool
        Unusable tissue per reason (:data:`QUALITY_REASONS`); a pixel may have several.
    focus : (h, w) float32
        The focus ratio (NaN where not judged).
    rules : QualityRules
    """

    step_um: float
    step_px: int
    tissue: np.ndarray
    reasons: dict[str, np.ndarray]
    focus: np.ndarray
    rules: QualityRules = field(default_factory=QualityRules)

    @property
    def unusable(self) -> np.ndarray:
        """Tissue left out for any reason."""
        out = np.zeros_like(self.tissue)
        for m in self.reasons.values():
            out |= m
        return out & self.tissue

    def removed_fraction(self) -> dict[str, float]:
        """Fraction of the judged tissue each reason removes, and ``"any"`` for all of them together."""
        n = max(int(self.tissue.sum()), 1)
        out = {r: float((m & self.tissue).sum()) / n for r, m in self.reasons.items()}
        out["any"] = float(self.unusable.sum()) / n
        return out

    def upsample(self, shape: tuple[int, int], which: str | None = None) -> np.ndarray:
        """A reason's map (or :attr:`unusable` for None) at image resolution, cropped to ``shape``."""
        if which is None:
            m = self.unusable
        elif which in self.reasons:
            m = self.reasons[which] & self.tissue
        else:
            raise InvalidInputError(f"which must be None or one of {list(self.reasons)}, got {which!r}")
        k = self.step_px
        big = np.repeat(np.repeat(m, k, axis=0), k, axis=1)
        h, w = shape
        if big.shape[0] < h or big.shape[1] < w:
            raise InvalidInputError(f"shape {shape} is larger than the image this map was made from")
        return big[:h, :w]

    def to_dict(self) -> dict:
        """The removed fractions and the rules (for provenance)."""
        return {"removed_fraction": self.removed_fraction(), "rules": asdict(self.rules)}

    def _full(self, m: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        k = self.step_px
        return np.repeat(np.repeat(m, k, axis=0), k, axis=1)[: shape[0], : shape[1]]

    def unusable_at(self, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
        """Whether image points lie in unusable tissue, per reason and ``"any"``.

        ``x``, ``y`` are positions in image pixels, pixel ``(i, j)`` centred at ``x = j, y = i``;
        points outside the map take the nearest map pixel.
        """
        h, w = self.tissue.shape
        k = self.step_px
        j = np.clip(np.floor(np.asarray(x, np.float64) + 0.5).astype(np.int64) // k, 0, w - 1)
        i = np.clip(np.floor(np.asarray(y, np.float64) + 0.5).astype(np.int64) // k, 0, h - 1)
        out = {r: (m & self.tissue)[i, j] for r, m in self.reasons.items()}
        out["any"] = self.unusable[i, j]
        return out

    def tally(self, core: tuple[int, int, int, int], tumour: np.ndarray | None = None) -> QualityTally:
        """The image pixels of tissue (and of ``tumour``) inside ``core`` that each reason removes.

        Parameters
        ----------
        core : (x0, y0, x1, y1)
            Half-open image-pixel box (the part of the image a tile owns).
        tumour : (H, W) bool, optional
            The tumour (epithelium) mask of the whole image.
        """
        x0, y0, x1, y1 = (int(v) for v in core)
        shape = (y1, x1)
        sl = (slice(y0, y1), slice(x0, x1))
        t = QualityTally()
        t.tissue_px = int(self._full(self.tissue, shape)[sl].sum())
        unusable = self._full(self.unusable, shape)[sl]
        epi = None if tumour is None else np.asarray(tumour, bool)[sl]
        if epi is not None:
            t.tumour_px = int(epi.sum())
        for r, m in [*self.reasons.items(), ("any", None)]:
            full = unusable if m is None else self._full(m & self.tissue, shape)[sl]
            t.removed_px[r] = int(full.sum())
            if epi is not None:
                t.tumour_removed_px[r] = int((full & epi).sum())
        return t


@dataclass
class QualityTally:
    """What quality maps removed from a run, summed over its tiles (:meth:`QualityMap.tally`).

    Attributes
    ----------
    tissue_px, tumour_px : int
        Image pixels of judged tissue and of tumour (epithelium) looked at.
    removed_px, tumour_removed_px : dict of str to int
        Of those, the pixels each reason (and ``"any"``) removed.
    cells_removed, tumour_cells_removed : int
        Cells (and tumour cells) left out of the cell table because their centre lay in unusable tissue.
    """

    tissue_px: int = 0
    tumour_px: int = 0
    removed_px: dict[str, int] = field(default_factory=dict)
    tumour_removed_px: dict[str, int] = field(default_factory=dict)
    cells_removed: int = 0
    tumour_cells_removed: int = 0

    def add(self, other: QualityTally) -> None:
        """Add another tally to this one."""
        self.tissue_px += other.tissue_px
        self.tumour_px += other.tumour_px
        for mine, theirs in ((self.removed_px, other.removed_px), (self.tumour_removed_px, other.tumour_removed_px)):
            for r, v in theirs.items():
                mine[r] = mine.get(r, 0) + v
        self.cells_removed += other.cells_removed
        self.tumour_cells_removed += other.tumour_cells_removed

    @property
    def unusable_tumour_fraction(self) -> float:
        """Fraction of the tumour area removed for any reason (0 when no tumour was looked at)."""
        return self.tumour_removed_px.get("any", 0) / self.tumour_px if self.tumour_px else 0.0

    def to_dict(self, mpp: float, rules: QualityRules) -> dict:
        """Areas in um^2 and % of the tissue / tumour looked at, cells removed, and the decision (provenance)."""
        a = float(mpp) ** 2
        reasons = [*QUALITY_REASONS, "any"]

        def pct(n: int, d: int) -> float:
            return round(100.0 * n / d, 3) if d else 0.0

        frac = self.unusable_tumour_fraction
        return {
            "tissue_um2": round(self.tissue_px * a, 1),
            "tumour_um2": round(self.tumour_px * a, 1),
            "removed_um2": {r: round(self.removed_px.get(r, 0) * a, 1) for r in reasons},
            "removed_percent_of_tissue": {r: pct(self.removed_px.get(r, 0), self.tissue_px) for r in reasons},
            "removed_percent_of_tumour": {r: pct(self.tumour_removed_px.get(r, 0), self.tumour_px) for r in reasons},
            "cells_removed": int(self.cells_removed),
            "tumour_cells_removed": int(self.tumour_cells_removed),
            "max_unusable_tumour": float(rules.max_unusable_tumour),
            "scorable": bool(frac <= rules.max_unusable_tumour),
            "rules": asdict(rules),
        }


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


def _saturated(od: np.ndarray, s: int, shape: tuple[int, int], rules: QualityRules) -> np.ndarray:
    """Map pixels at least ``saturated_share`` dark in every channel, gaps closed.

    ``od`` is the optical density of the brightest channel at ``s`` pixels per map pixel; a pixel is dark
    when even that channel is below ``saturated_level``.
    """
    from scipy import ndimage as ndi

    dark = od > np.float32(-np.log10(int(rules.saturated_level) / 255.0))
    if not dark.any():
        return np.zeros(shape, bool)
    share = _block_mean(dark.view(np.uint8), s)[: shape[0], : shape[1]]
    out = np.zeros(shape, bool)
    out[: share.shape[0], : share.shape[1]] = share >= rules.saturated_share
    if out.any():
        out = ndi.binary_fill_holes(ndi.binary_closing(np.pad(out, 2), iterations=1))[2:-2, 2:-2]
    return out


def _fold(od3: np.ndarray, work_mpp: float, ix: tuple, tissue: np.ndarray, rules: QualityRules) -> np.ndarray:
    """Map pixels in a fold: where the optical-density floor is far above the window's typical tissue floor.

    The floor is the lowest red-channel optical density (at about 2 um/px) within ``fold_floor_um``, averaged
    over ``window_um``: clean tissue has pale gaps (stroma, cytoplasm) near any point, while in a fold the
    second layer covers them. Relative to ``ref``, the median floor of the window's tissue, a fold is a
    connected region above ``fold_grow_ratio * ref`` that holds at least ``fold_min_um^2`` above
    ``fold_ratio * ref`` (hysteresis: a dense tumour nest rarely reaches twice the median over that area).
    """
    from scipy import ndimage as ndi

    if tissue.sum() < 4:
        return np.zeros_like(tissue)
    red = od3[..., 0]  # hematoxylin absorbs red most, DAB least
    floor = ndi.minimum_filter(red, max(2, int(round(rules.fold_floor_um / work_mpp))), mode="reflect")
    floor = ndi.uniform_filter(floor, max(3, int(round(rules.window_um / work_mpp))), mode="reflect")[ix]
    # the reference: tissue at least a floor square and a quarter window from glass (nearer, the floor
    # takes in the glass and reads low)
    inner = ndi.distance_transform_edt(tissue) > (rules.fold_floor_um + rules.window_um / 4) / rules.step_um
    if inner.sum() < (rules.fold_min_um / rules.step_um) ** 2:
        return np.zeros_like(tissue)
    ref = float(np.median(floor[inner]))
    high = tissue & (floor > rules.fold_ratio * ref) & (floor > rules.fold_min_od)
    if not high.any():
        return np.zeros_like(tissue)
    low = tissue & (floor > rules.fold_grow_ratio * ref)
    labels, n = ndi.label(low, structure=np.ones((3, 3), bool))
    keep = np.bincount(labels[high], minlength=n + 1) >= (rules.fold_min_um / rules.step_um) ** 2
    keep[0] = False
    return keep[labels]


def _bubble(
    od3: np.ndarray, work_mpp: float, s: int, shape: tuple[int, int], rules: QualityRules, dark: np.ndarray
) -> np.ndarray:
    """Rounded regions enclosed by a thin, dark, neutral (grey) rim, with the rim.

    ``od3`` is at ``s`` pixels per map pixel. A rim pixel is darker than its surroundings (the optical
    density minus its mean over ``rim_um``) by more than ``rim_min_od`` in every channel, with channels
    within ``rim_max_chroma`` of the largest: an added grey line, unlike either stain. The inside must be
    readable: ``dark`` (saturated or ink) map pixels do not count towards it (the edge of a dark patch is
    not a rim).
    """
    from scipy import ndimage as ndi

    size = max(3, int(round(rules.rim_um / work_mpp)))
    e = [od3[..., c] - ndi.uniform_filter(od3[..., c], size, mode="reflect") for c in range(3)]
    lo = np.minimum(np.minimum(e[0], e[1]), e[2])
    hi = np.maximum(np.maximum(e[0], e[1]), e[2])
    rim = (lo > rules.rim_min_od) & (hi - lo < rules.rim_max_chroma * hi)
    if not rim.any():
        return np.zeros(shape, bool)
    rim_map = _block_mean(rim.view(np.uint8), s)[: shape[0], : shape[1]] > 0.05
    rim_map = np.pad(rim_map, ((0, shape[0] - rim_map.shape[0]), (0, shape[1] - rim_map.shape[1])))
    closed = ndi.binary_closing(np.pad(rim_map, 3), iterations=2)[3:-3, 3:-3]
    filled = ndi.binary_fill_holes(closed)
    inner = filled & ~closed & ~dark
    if not inner.any():
        return np.zeros(shape, bool)
    labels, n = ndi.label(filled)
    min_px = (rules.bubble_min_um / rules.step_um) ** 2 * np.pi / 4.0
    area_inner = np.bincount(labels[inner], minlength=n + 1)
    # a bubble's rim is its edge: rim pixels deeper than 8 um inside mean a network of dark lines
    # (membranes, fibres) enclosing tissue, not a bubble
    deep = rim_map & (ndi.distance_transform_edt(filled) > 2.0)
    rim_total = np.bincount(labels[rim_map & filled], minlength=n + 1)
    rim_deep = np.bincount(labels[deep], minlength=n + 1)
    keep = (area_inner >= min_px) & (rim_deep <= rules.bubble_inner_rim * np.maximum(rim_total, 1))
    keep[0] = False
    return keep[labels]


def quality_map(rgb: np.ndarray, mpp: float, *, rules: QualityRules | None = None) -> QualityMap:
    """The quality map of a brightfield RGB image (see the module docstring).

    Parameters
    ----------
    rgb : (H, W, 3) uint8
        Brightfield image, glass near white.
    mpp : float
        Micrometres per pixel of ``rgb``; at most 2 (focus is measured on micrometre-scale detail).
    rules : QualityRules, optional

    Returns
    -------
    QualityMap
    """
    from scipy import ndimage as ndi

    arr = as_rgb_uint8(rgb, "rgb")
    mpp = as_positive_float(mpp, "mpp")
    rules = QualityRules() if rules is None else rules
    if not isinstance(rules, QualityRules):
        raise InvalidInputError(f"rules must be a her2fast.qc.QualityRules, got {type(rules).__name__}")
    if mpp > 2.0:
        raise InvalidInputError(f"mpp is {mpp:g} um/px: the quality map needs an image at 2 um/px or finer")
    step_px = max(1, int(round(rules.step_um / mpp)))
    k = max(1, int(round(1.0 / mpp)))  # averaging factor to about 1 um/px
    while step_px % k:
        k -= 1
    work_mpp = mpp * k
    # the optical density of the weakest channel (that of the brightest channel, as -log10 decreases)
    brightest = np.maximum(np.maximum(arr[..., 0], arr[..., 1]), arr[..., 2])
    od = -np.log10(np.maximum(brightest.astype(np.float32), 1.0) / 255.0)
    od = _block_mean(od, k)
    s1 = ndi.gaussian_filter(od, rules.fine_um / work_mpp, mode="reflect")
    s2 = ndi.gaussian_filter(od, rules.detail_um / work_mpp, mode="reflect")
    win = max(3, int(round(rules.window_um / work_mpp)))
    e_fine = ndi.uniform_filter((od - s1) ** 2, win, mode="reflect")
    e_detail = ndi.uniform_filter((s1 - s2) ** 2, win, mode="reflect")
    level = ndi.uniform_filter(od, win, mode="reflect")
    # sample at the centres of the map pixels
    s = step_px // k
    h, w = -(-arr.shape[0] // step_px), -(-arr.shape[1] // step_px)
    ci = np.minimum(np.arange(h) * s + s // 2, od.shape[0] - 1)
    cj = np.minimum(np.arange(w) * s + s // 2, od.shape[1] - 1)
    ix = np.ix_(ci, cj)
    tissue = level[ix] >= rules.min_tissue_od
    focus = (e_fine[ix] / np.maximum(e_detail[ix], 1e-9)).astype(np.float32)

    # ink, on a coarse copy of the image
    ki = max(1, int(round(rules.ink_mpp / mpp)))
    small = np.clip(np.rint(_block_mean(arr, ki)), 0, 255).astype(np.uint8)
    ink_small = pen_mask(small, mpp * ki)
    if ki == step_px:  # one ink pixel per map pixel (the default rules): the map is the ink mask
        ink = ink_small[:h, :w]
    else:
        ink_full = np.repeat(np.repeat(ink_small, ki, axis=0), ki, axis=1)
        pad_h, pad_w = h * step_px - ink_full.shape[0], w * step_px - ink_full.shape[1]
        ink_full = np.pad(ink_full, ((0, max(pad_h, 0)), (0, max(pad_w, 0))), mode="edge")
        ink_full = ink_full[: h * step_px, : w * step_px]
        ink = ink_full.reshape(h, step_px, w, step_px).mean(axis=(1, 3)) > 0.2
    if ink.any():  # tissue under the ink that keeps its own colour (brown under blue) is still under the ink
        ink = ndi.binary_fill_holes(ndi.binary_closing(np.pad(ink, 3, mode="edge"), iterations=3))[3:-3, 3:-3]

    # saturated: every channel near 0
    look = set(rules.look_for)
    dark = _saturated(od, step_px // k, (h, w), rules) & tissue if "saturated" in look else np.zeros_like(tissue)

    # out of focus: windows reaching into ink or saturated stain are not judged (both are flat and would
    # read as blurred, and their edges inflate the cell-scale detail up to two detail sigmas away)
    half = 0.5 * rules.window_um / rules.step_um
    blurred = tissue & (focus < rules.focus_min) & ~_grow(ink | dark, half + 2.0 * rules.detail_um / rules.step_um)
    blurred = _drop_specks(blurred, (rules.window_um / rules.step_um) ** 2)
    blurred = _grow(blurred, half) & tissue & ~ink

    if "out_of_focus" not in look:
        blurred[:] = False
    if "pen_ink" not in look:
        ink[:] = False
    # the optical density per channel at about 2 um/px (of the mean colour), for folds and bubbles
    k2 = max(1, int(round(2.0 / mpp)))
    while step_px % k2:
        k2 -= 1
    coarse_mpp = mpp * k2
    if look & {"fold", "bubble"}:
        mean_rgb = _block_mean(arr, k2)
        od3 = -np.log10(np.maximum(mean_rgb, np.float32(1.0)) * np.float32(1.0 / 255.0))
    else:
        od3 = np.zeros((1, 1, 3), np.float32)
    s2 = step_px // k2
    ix2 = np.ix_(
        np.minimum(np.arange(h) * s2 + s2 // 2, od3.shape[0] - 1),
        np.minimum(np.arange(w) * s2 + s2 // 2, od3.shape[1] - 1),
    )
    none = np.zeros((h, w), bool)
    saturated = dark if "saturated" in look else none
    near_dark = _grow(dark | ink, rules.window_um / rules.step_um)
    fold = _fold(od3, coarse_mpp, ix2, tissue & ~blurred & ~near_dark, rules) if "fold" in look else none
    bubble = _bubble(od3, coarse_mpp, s2, (h, w), rules, dark | ink) & ~ink & ~dark if "bubble" in look else none
    tissue = tissue | bubble  # a bubble lies over the section: its flattened, paler content is judged too
    focus[~tissue] = np.nan
    return QualityMap(
        step_um=step_px * mpp,
        step_px=step_px,
        tissue=tissue,
        reasons={"out_of_focus": blurred, "pen_ink": ink, "fold": fold, "saturated": saturated, "bubble": bubble},
        focus=focus,
        rules=rules,
    )
