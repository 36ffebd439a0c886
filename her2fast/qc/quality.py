"""A quality map: where on a brightfield image the tissue cannot be read, and why.

:func:`quality_map` takes an RGB image (a tile, or a region of a slide) at a known resolution and returns
a low-resolution map (one pixel per :attr:`QualityRules.step_um`, 4 um by default) of the tissue that is
*unusable*, with one boolean map per reason:

``out_of_focus``
    Focus is the share of the image's detail energy that lies at the finest scale. On the optical
    density ``od`` (strongest channel, relative to white, averaged to about 1 um/px):
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

__all__ = ["QUALITY_REASONS", "QualityMap", "QualityRules", "quality_map"]

#: The reasons a quality map gives, in the order they are reported.
QUALITY_REASONS: tuple[str, ...] = ("out_of_focus", "pen_ink")


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
    """

    step_um: float = 4.0
    window_um: float = 32.0
    focus_min: float = 0.012
    fine_um: float = 0.7
    detail_um: float = 8.0
    min_tissue_od: float = 0.04
    ink_mpp: float = 4.0

    def __post_init__(self) -> None:
        for name in ("step_um", "window_um", "focus_min", "fine_um", "detail_um", "min_tissue_od", "ink_mpp"):
            as_positive_float(getattr(self, name), name)
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


def _block_mean(a: np.ndarray, k: int) -> np.ndarray:
    """Mean over k x k blocks (the image is edge-padded to a multiple of k)."""
    if k == 1:
        return a
    h, w = a.shape[:2]
    ph, pw = -h % k, -w % k
    if ph or pw:
        a = np.pad(a, ((0, ph), (0, pw)) + ((0, 0),) * (a.ndim - 2), mode="edge")
    H, W = a.shape[0] // k, a.shape[1] // k
    return a.reshape(H, k, W, k, *a.shape[2:]).mean(axis=(1, 3))


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
    od = -np.log10(np.maximum(arr.astype(np.float32), 1.0) / 255.0).max(axis=2)
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
    small = np.clip(np.rint(_block_mean(arr.astype(np.float32), ki)), 0, 255).astype(np.uint8)
    ink_small = pen_mask(small, mpp * ki)
    ink_full = np.repeat(np.repeat(ink_small, ki, axis=0), ki, axis=1)
    pad_h, pad_w = h * step_px - ink_full.shape[0], w * step_px - ink_full.shape[1]
    ink_full = np.pad(ink_full, ((0, max(pad_h, 0)), (0, max(pad_w, 0))), mode="edge")[: h * step_px, : w * step_px]
    ink = ink_full.reshape(h, step_px, w, step_px).mean(axis=(1, 3)) > 0.2
    if ink.any():  # tissue under the ink that keeps its own colour (brown under blue) is still under the ink
        ink = ndi.binary_fill_holes(ndi.binary_closing(np.pad(ink, 3, mode="edge"), iterations=3))[3:-3, 3:-3]

    # out of focus: windows reaching into ink are not judged (ink is flat and would read as blurred, and
    # its edge inflates the cell-scale detail up to two detail sigmas away)
    half = 0.5 * rules.window_um / rules.step_um
    blurred = tissue & (focus < rules.focus_min) & ~_grow(ink, half + 2.0 * rules.detail_um / rules.step_um)
    blurred = _drop_specks(blurred, (rules.window_um / rules.step_um) ** 2)
    blurred = _grow(blurred, half) & tissue & ~ink
    focus[~tissue] = np.nan
    return QualityMap(
        step_um=step_px * mpp,
        step_px=step_px,
        tissue=tissue,
        reasons={"out_of_focus": blurred, "pen_ink": ink},
        focus=focus,
        rules=rules,
    )
