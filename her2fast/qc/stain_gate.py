"""The stain gate: refuse to score a slide that is not HER2 membrane IHC (DAB + hematoxylin).

A HER2 score is a statement about DAB on tumour-cell membranes. Put an H&E slide, or a nuclear (Ki-67,
ER, PR) or cytoplasmic IHC marker through the scorer and it will still find "DAB" and "membranes" and
print a category; the gate stops that before the tile stream runs. It decides from what the pipeline has
after its slide-level stain step -- the low-resolution thumbnail and tissue mask, the slide's stain
vectors (:func:`her2fast.stages.stain.slide_stain_vectors`) -- and a few tiles at working resolution
(:func:`sample_tiles`), in this order:

0. **No colour** (``"greyscale_image"``): fewer than ``min_colour_fraction`` of the stained pixels have any
   colour (their red, green and blue differ by at most 2 levels): a greyscale image, or a greyscale copy saved
   as RGB. Stains cannot be told apart without colour. :func:`check_colour` makes this decision on a thumbnail
   alone; :func:`her2fast.pipeline.run_slide` runs it before anything else (also with the stain gate off), so a
   greyscale slide is refused for what it is, not as empty glass.
1. **H&E** (``"not_her2_ihc: looks like H&E"``). Every stained pixel's optical density (OD, relative to
   the slide's glass colour) is split into its part along the standard hematoxylin vector and the rest;
   the rest has a *hue* in the plane orthogonal to hematoxylin, measured from the standard DAB
   direction (0 deg): Ruifrok-Johnston DAB lies at 0 deg, Ruifrok-Johnston eosin at -82 deg, Macenko's
   reference eosin at -31 deg; hematoxylins greyer or bluer than Ruifrok-Johnston's (IHC counterstains)
   lean to positive hues, more purple ones to small negative hues with a small off-axis part. The slide
   looks like H&E when at least ``min_eosin_fraction`` of its stained pixels have an eosin-pink rest
   (hue in ``eosin_hue_deg``, rest at least ``min_off_axis`` of the pixel's OD). The decision does not
   depend on how much DAB there is: a HER2 0 slide (hematoxylin only) has no eosin-pink pixels and
   passes.
2. **No DAB/hematoxylin pair** (``"not_her2_ihc: no DAB/hematoxylin pair"``): more than
   ``max_two_stain_residual`` of the stained pixels' OD lies outside the plane of the slide's two stain
   vectors (a third dye, a chromogen that is neither, a colour cast the vectors cannot explain).
2b. **Red and blue swapped** (``"channels_swapped"``): the slide's stain vectors match the channel-reversed
   (BGR) training pair better than the training pair itself. Hematoxylin absorbs red and green about equally
   and DAB blue most, green about 0.6 as much; read with red and blue exchanged, the stain that absorbs most
   red (taken for hematoxylin) absorbs little green and the other one absorbs green like blue. The figure
   ``channel_order_margin_deg`` is, averaged over the estimated vectors, the angle to the training vector minus
   the angle to the reversed counterpart: about -13 deg on phantoms, -17 to +2 on real HER2 images, +13 on
   swapped phantoms. At or above ``swapped_margin_deg`` the slide is refused; above ``suspect_margin_deg``
   it is flagged ``channel_order_suspect`` (and the confidence capped, as for ``outside_training_range``).
   Colour alone cannot tell a swap on a slide whose stains sit near the middle (margins within a few
   degrees): there the nuclear-pattern check below usually refuses the swapped slide (its "DAB" is the
   nuclei), and its message names the swap as a possible cause.
3. **Nuclear DAB** (``"nuclear_dab_pattern"``): on the sampled tiles, DAB-dominated stained areas are
   mostly compact, hole-free, nucleus-sized blobs (8-200 um^2) of at least moderate DAB
   (``min_positive_nucleus_od``): at least ``min_nuclear_blob_share`` of the DAB-dominated area, in at
   least ``min_nuclear_blobs`` blobs.
4. **Cytoplasmic DAB** (``"cytoplasmic_dab_pattern"``): in the stained cells (stained pixels closed
   over 3 um, hematoxylin nuclei left out) the paler quarter of the pixels still holds at least
   ``min_cytoplasm_od`` DAB OD and at least ``min_pale_ratio`` of the membrane-level (90th percentile)
   DAB: DAB fills the cells instead of outlining them. DAB is measured above the tiles' own baseline
   (10th percentile over tissue), so a uniform colour cast is not taken for staining.

Independently of the decision, the slide's stain vectors, tissue optical density and glass colour are
compared with the ranges the shipped models were trained on (phantoms under the training's stain
augmentation): :attr:`StainGateDecision.training_distance` is the largest of these figures' distances
from the centre of its range in units of the range's half-width, and
:attr:`StainGateDecision.outside_training_range` flags a distance above 1. The flag does not refuse.

Cost: one pass over the thumbnail's tissue pixels (sub-sampled) and deconvolution plus binary
morphology on ``n_tiles`` tiles; under a second on one core for four 704^2 tiles, whatever the
slide's size (``python benchmarks/qc_gate.py --speed`` prints the ratio to a full run).

The thresholds (:class:`StainGateRules`) were chosen on phantoms (:mod:`her2fast.synth`, including
:mod:`her2fast.synth.wrong_stains`), the ``her2-ihc-40x`` patches, the ``real-fields/tune`` images,
scikit-image's IHC sample and the two real H&E slides of ``../shared/data``; the
``real-fields/evaluate`` images are only measured (``python benchmarks/qc_gate.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import ndimage as ndi

from .._validate import as_int, as_positive_float, as_rgb_uint8
from ..errors import InvalidInputError
from ..stages.stain import STANDARD_DAB, STANDARD_HEMATOXYLIN, StainVectors, deconvolve, optical_density

__all__ = [
    "FLAG_CHANNEL_ORDER",
    "REASONS",
    "REASON_CHANNELS_SWAPPED",
    "REASON_CYTOPLASMIC",
    "REASON_GREYSCALE",
    "REASON_HE",
    "REASON_NO_PAIR",
    "REASON_NUCLEAR",
    "StainGateDecision",
    "StainGateRules",
    "check_colour",
    "check_slide_stain",
    "check_stain",
    "sample_tiles",
]

REASON_GREYSCALE = "greyscale_image"
REASON_HE = "not_her2_ihc: looks like H&E"
REASON_NO_PAIR = "not_her2_ihc: no DAB/hematoxylin pair"
REASON_NUCLEAR = "nuclear_dab_pattern"
REASON_CHANNELS_SWAPPED = "channels_swapped"
REASON_CYTOPLASMIC = "cytoplasmic_dab_pattern"
#: Every reason the gate gives, in the order it checks them.
REASONS: tuple[str, ...] = (
    REASON_GREYSCALE,
    REASON_HE,
    REASON_NO_PAIR,
    REASON_CHANNELS_SWAPPED,
    REASON_NUCLEAR,
    REASON_CYTOPLASMIC,
)
#: Flag of a slide whose stain colours lean towards red and blue swapped, short of a refusal.
FLAG_CHANNEL_ORDER = "channel_order_suspect"

#: Ruifrok-Johnston eosin (skimage.color.rgb_from_hed row 1), unit length: only for a reported figure.
_EOSIN = np.array([0.07, 0.99, 0.11]) / np.linalg.norm([0.07, 0.99, 0.11])
# the plane orthogonal to hematoxylin: axis 1 towards DAB, axis 2 completes a right-handed frame
_AXIS1 = STANDARD_DAB - (STANDARD_DAB @ STANDARD_HEMATOXYLIN) * STANDARD_HEMATOXYLIN
_AXIS1 = _AXIS1 / np.linalg.norm(_AXIS1)
_AXIS2 = np.cross(STANDARD_HEMATOXYLIN, _AXIS1)

_MAX_THUMB_PIXELS = 200_000
_MAX_TILE_PIXELS = 50_000
_STAINED_OD = 0.15  # OD norm below which a pixel is glass or too pale to have a colour
_GREY_SPREAD = 2  # a pixel whose R, G, B differ by at most this many levels has no colour

# The training range of the shipped models (phantoms of her2fast.synth under the stain augmentation
# of training/data.py): centre and half-width of each figure. Reproduce with
# `python benchmarks/qc_gate.py --training-range`.
_TRAINING_HEMATOXYLIN = np.array([0.6460, 0.7038, 0.2954])
_TRAINING_DAB = np.array([0.2071, 0.4991, 0.8414])
_TRAINING_RANGES: dict[str, tuple[float, float]] = {
    # figure: (centre, half-width); angles to the training vectors above, 0 at the centre
    "hematoxylin_to_training_deg": (0.0, 16.2),
    "dab_to_training_deg": (0.0, 20.0),
    "tissue_od_median": (0.560, 0.388),
    "background_cast": (0.0, 0.053),
}


@dataclass(frozen=True)
class StainGateRules:
    """Thresholds of the stain gate (see the module docstring for what each decides).

    Attributes
    ----------
    min_eosin_fraction : float
        Share of stained pixels with an eosin-pink off-hematoxylin colour at and above which a slide
        looks like H&E.
    eosin_hue_deg : (float, float)
        Hue range (degrees from the DAB direction, in the plane orthogonal to hematoxylin) counted as
        eosin-pink.
    min_off_axis : float
        A pixel's colour counts only when its off-hematoxylin part is at least this share of its OD.
    max_two_stain_residual : float
        Above this share of OD outside the plane of the slide's two stain vectors: no DAB/hematoxylin
        pair.
    stained_dab_od : float
        DAB OD above the tiles' baseline that counts as stained.
    min_nuclear_blob_share, min_nuclear_blobs : float, int
        Nuclear DAB pattern: share of DAB-dominated area in nucleus-like blobs, and their number on the
        sampled tiles.
    min_positive_nucleus_od : float
        A nucleus-like blob counts only when its mean DAB OD above baseline is at least this: fainter
        DAB-dominated blobs are what hematoxylin nuclei become under an imperfect unmixing or a colour cast.
    min_cytoplasm_od, min_pale_ratio : float
        Cytoplasmic DAB pattern: 25th-percentile DAB OD in stained cells, and its ratio to the
        90th percentile.
    min_stained_fraction : float
        The cytoplasmic test needs at least this share of the tiles' tissue stained.
    min_colour_fraction : float
        Below this share of coloured stained pixels the image is greyscale (real HER2 images: 0.75 or more;
        a greyscale image: 0).
    swapped_margin_deg, suspect_margin_deg : float
        ``channel_order_margin_deg`` at and above which the slide is refused as red/blue swapped, and above
        which it is flagged ``channel_order_suspect``.
    """

    min_eosin_fraction: float = 0.25
    eosin_hue_deg: tuple[float, float] = (-150.0, -20.0)
    min_off_axis: float = 0.25
    max_two_stain_residual: float = 0.12
    stained_dab_od: float = 0.15
    min_nuclear_blob_share: float = 0.5
    min_nuclear_blobs: int = 20
    min_positive_nucleus_od: float = 0.30
    min_cytoplasm_od: float = 0.30
    min_pale_ratio: float = 0.40
    min_stained_fraction: float = 0.05
    min_colour_fraction: float = 0.05
    swapped_margin_deg: float = 8.0
    suspect_margin_deg: float = 3.0

    def __post_init__(self) -> None:
        for name in (
            "min_colour_fraction",
            "min_eosin_fraction",
            "min_off_axis",
            "max_two_stain_residual",
            "min_nuclear_blob_share",
            "min_pale_ratio",
            "min_stained_fraction",
        ):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0.0 <= float(v) <= 1.0):
                raise InvalidInputError(f"StainGateRules.{name} must be a fraction in [0, 1], got {v!r}")
        for name in ("stained_dab_od", "min_cytoplasm_od", "min_positive_nucleus_od"):
            as_positive_float(getattr(self, name), f"StainGateRules.{name}")
        as_int(self.min_nuclear_blobs, "StainGateRules.min_nuclear_blobs", 1)
        for name in ("swapped_margin_deg", "suspect_margin_deg"):
            as_positive_float(getattr(self, name), f"StainGateRules.{name}")
        if self.suspect_margin_deg > self.swapped_margin_deg:
            raise InvalidInputError(
                f"StainGateRules.suspect_margin_deg ({self.suspect_margin_deg}) must not exceed swapped_margin_deg "
                f"({self.swapped_margin_deg})"
            )
        lo, hi = self.eosin_hue_deg
        if not -180.0 <= lo < hi <= 180.0:
            raise InvalidInputError(
                f"StainGateRules.eosin_hue_deg must be (low, high) in [-180, 180], got {self.eosin_hue_deg}"
            )


@dataclass(frozen=True)
class StainGateDecision:
    """What the stain gate decided, and the numbers it decided from.

    Attributes
    ----------
    scorable : bool
        False when the slide must not be scored.
    reason : str or None
        One of :data:`REASONS` when not scorable, else None.
    message : str
        One sentence for a person: what was found and the figures behind it.
    figures : dict of str to float
        Every measured figure (NaN where it could not be measured, e.g. pattern figures without tiles);
        for provenance.
    training_distance : float
        Largest distance of the slide's stain figures from the centre of the models' training range, in
        half-widths of that range (<= 1 inside).
    outside_training_range : bool
        ``training_distance > 1``: the slide's stains are unlike anything the models were trained on. A
        flag, not a refusal.
    flags : tuple of str
        Warnings short of a refusal (:data:`FLAG_CHANNEL_ORDER`).
    """

    scorable: bool
    reason: str | None
    message: str
    figures: dict[str, float] = field(default_factory=dict)
    training_distance: float = 0.0
    outside_training_range: bool = False
    flags: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (figures rounded to 4 decimals, NaN as None)."""
        d = asdict(self)
        d["figures"] = {k: (None if not math.isfinite(v) else round(float(v), 4)) for k, v in self.figures.items()}
        d["training_distance"] = None if not math.isfinite(self.training_distance) else round(self.training_distance, 4)
        d["flags"] = list(self.flags)
        return d


# ------------------------------------------------------------------------------------ helpers
def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    c = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    return math.degrees(math.acos(min(1.0, max(-1.0, c))))


def _subsample(pixels: np.ndarray, n: int, seed: int) -> np.ndarray:
    if pixels.shape[0] <= n:
        return pixels
    return pixels[np.random.default_rng(seed).choice(pixels.shape[0], n, replace=False)]


def _disk(r: float) -> np.ndarray:
    k = int(math.floor(r))
    yy, xx = np.mgrid[-k : k + 1, -k : k + 1]
    return xx * xx + yy * yy <= r * r


def _dilate(mask: np.ndarray, r: float) -> np.ndarray:
    """Binary dilation by a disk of radius ``r`` pixels (a structuring element when small, else exact by
    distance transform)."""
    if not mask.any():
        return mask.copy()
    if r <= 3.0:
        return ndi.binary_dilation(mask, structure=_disk(r))
    return ndi.distance_transform_edt(~mask) <= r


def _erode(mask: np.ndarray, r: float) -> np.ndarray:
    """Binary erosion by a disk of radius ``r`` pixels; the image border does not erode."""
    if mask.all() or not mask.any():
        return mask.copy()
    if r <= 3.0:
        return ndi.binary_erosion(mask, structure=_disk(r), border_value=1)
    return ndi.distance_transform_edt(mask) > r


def _colour_figures(od: np.ndarray, stains: StainVectors, rules: StainGateRules) -> dict[str, float]:
    """H&E / H-DAB colour figures of stained pixels' optical densities (n, 3)."""
    nan = float("nan")
    out = {"stained_pixels": float(od.shape[0])}
    if od.shape[0] < 100:
        out.update(eosin_fraction=nan, dab_hue_fraction=nan, off_axis_hue_deg=nan, two_stain_residual=nan)
        return out
    norm = np.linalg.norm(od, axis=1)
    rest = od - (od @ STANDARD_HEMATOXYLIN)[:, None] * STANDARD_HEMATOXYLIN[None, :]
    x, y = rest @ _AXIS1, rest @ _AXIS2
    hue = np.degrees(np.arctan2(y, x))
    coloured = np.hypot(x, y) >= rules.min_off_axis * norm
    lo, hi = rules.eosin_hue_deg
    out["eosin_fraction"] = float((coloured & (hue >= lo) & (hue <= hi)).mean())
    out["dab_hue_fraction"] = float((coloured & (np.abs(hue) <= 20.0)).mean())
    out["off_axis_hue_deg"] = math.degrees(math.atan2(float(y.sum()), float(x.sum())))
    c = od @ stains.unmixing
    out["two_stain_residual"] = float(np.abs(c[:, 2]).sum() / max(float(np.abs(c).sum()), 1e-12))
    return out


def _pattern_figures(
    tiles: Sequence[np.ndarray], stains: StainVectors, mpp: float, rules: StainGateRules
) -> dict[str, float]:
    """Nuclear / cytoplasmic / membrane pattern figures of working-resolution tiles."""
    nan = float("nan")
    um = 1.0 / mpp
    dab, hem = [], []
    for t in tiles:
        c = deconvolve(t, stains)
        dab.append(ndi.gaussian_filter(np.clip(c.dab, 0.0, None), 0.35 * um))
        hem.append(ndi.gaussian_filter(np.clip(c.hematoxylin, 0.0, None), 0.35 * um))
    tissue = [(d + h) > 0.08 for d, h in zip(dab, hem)]
    n_tissue = int(sum(int(m.sum()) for m in tissue))
    out: dict[str, float] = {"tiles": float(len(tiles)), "tile_tissue_mm2": n_tissue * mpp * mpp * 1e-6}
    keys = (
        "dab_baseline_od",
        "stained_fraction",
        "cell_dab_q25_od",
        "cell_dab_q90_od",
        "cell_pale_ratio",
        "nuclear_blob_share",
        "nuclear_blobs",
    )
    if n_tissue < 1000:
        out.update({k: nan for k in keys})
        return out
    base = float(np.percentile(np.concatenate([d[m] for d, m in zip(dab, tissue)]), 10))
    n_stained = 0
    dab_dominated = 0
    nucleus_like = 0
    n_blobs = 0
    cell_values = []
    area_lo, area_hi = 8.0 * um * um, 200.0 * um * um
    for d, h in zip(dab, hem):
        dn = d - base
        stained = dn > rules.stained_dab_od
        n_stained += int(stained.sum())
        nuclei = _dilate(_erode((h > 0.15) & (h > d), 1.0 * um), 1.0 * um)
        cells = _erode(_dilate(stained, 3.0 * um), 3.0 * um) & ~_dilate(nuclei, 0.5 * um)
        cell_values.append(dn[cells])
        # DAB-dominated blobs that look like nuclei: compact, hole-free, nucleus-sized
        dom = _dilate(_erode(stained & (d > h), 1.0 * um), 1.0 * um)
        dab_dominated += int(dom.sum())
        lab, n = ndi.label(dom)
        if n == 0:
            continue
        area = np.bincount(lab.ravel())[1:]
        for i, sl in enumerate(ndi.find_objects(lab)):
            a = area[i]
            if not area_lo <= a <= area_hi:
                continue
            m = lab[sl] == i + 1
            if a < 0.5 * m.size:  # extent in its box: an ellipse fills 0.6-0.79, an arc of membrane far less
                continue
            if ndi.binary_fill_holes(m).sum() > 1.1 * a:
                continue
            if float(dn[sl][m].mean()) < rules.min_positive_nucleus_od:  # a faint blob: a counterstained nucleus
                continue
            nucleus_like += int(a)
            n_blobs += 1
    values = np.concatenate(cell_values) if cell_values else np.zeros(0)
    out["dab_baseline_od"] = base
    out["stained_fraction"] = n_stained / n_tissue
    if values.size >= 500:
        q25, q90 = np.percentile(values, [25, 90])
        out["cell_dab_q25_od"], out["cell_dab_q90_od"] = float(q25), float(q90)
        out["cell_pale_ratio"] = float(q25 / q90) if q90 > 0 else nan
    else:
        out["cell_dab_q25_od"] = out["cell_dab_q90_od"] = out["cell_pale_ratio"] = nan
    out["nuclear_blob_share"] = nucleus_like / dab_dominated if dab_dominated else 0.0
    out["nuclear_blobs"] = float(n_blobs)
    return out


def _training_figures(od: np.ndarray, stains: StainVectors) -> dict[str, float]:
    bg = stains.background
    return {
        "hematoxylin_to_training_deg": _angle_deg(stains.hematoxylin, _TRAINING_HEMATOXYLIN),
        "dab_to_training_deg": _angle_deg(stains.dab, _TRAINING_DAB) if stains.dab_estimated else float("nan"),
        "tissue_od_median": float(np.median(np.linalg.norm(od, axis=1))) if od.shape[0] else float("nan"),
        "background_cast": float((bg.max() - bg.min()) / bg.max()),
    }


def _colour_fraction(pixels: np.ndarray, background: np.ndarray | None) -> tuple[float, int]:
    """Share of the stained pixels (OD norm above 0.15 against ``background``) that have any colour, and their number."""
    od = optical_density(pixels, background)
    stained = pixels[np.linalg.norm(od, axis=-1) > _STAINED_OD].astype(np.int16)
    if stained.shape[0] == 0:
        return float("nan"), 0
    spread = stained.max(axis=1) - stained.min(axis=1)
    return float((spread > _GREY_SPREAD).mean()), int(stained.shape[0])


def _channel_order_margin(stains: StainVectors) -> float:
    """Mean over the estimated stain vectors of (angle to its training vector) - (angle to the channel-reversed
    training vector a red/blue swap would give it); positive leans to swapped, NaN without an estimate."""
    margins = []
    if stains.hematoxylin_estimated:  # swapped, the stain absorbing most red is DAB read backwards
        margins.append(
            _angle_deg(stains.hematoxylin, _TRAINING_HEMATOXYLIN) - _angle_deg(stains.hematoxylin, _TRAINING_DAB[::-1])
        )
    if stains.dab_estimated:
        margins.append(_angle_deg(stains.dab, _TRAINING_DAB) - _angle_deg(stains.dab, _TRAINING_HEMATOXYLIN[::-1]))
    return float(np.mean(margins)) if margins else float("nan")


def _greyscale_message(fraction: float, n: int, rules: StainGateRules) -> str:
    return (
        f"the image has no colour: {100 * fraction:.1f} % of its {n} stained pixels differ between red, green and "
        f"blue by more than {_GREY_SPREAD} levels (at least {100 * rules.min_colour_fraction:.0f} % are needed); a "
        "greyscale image cannot show DAB apart from hematoxylin. Score the scanner's colour (RGB) image"
    )


def check_colour(
    thumbnail: np.ndarray,
    tissue_mask: np.ndarray | None = None,
    *,
    background: np.ndarray | tuple[float, float, float] | None = None,
    rules: StainGateRules | None = None,
) -> StainGateDecision:
    """Refuse an image without colour (greyscale, or a greyscale copy saved as RGB).

    The first check of :func:`check_stain`; :func:`her2fast.pipeline.run_slide` also runs it on its own,
    before tissue detection (which a greyscale image may fool into "empty glass").

    Parameters
    ----------
    thumbnail : (H, W, 3) uint8
        The slide at low resolution.
    tissue_mask : (H, W) bool, optional
        Pixels to look at (default: all; glass is left out by its optical density anyway).
    background : (3,) float, optional
        Glass colour (default: the 99th percentile of each channel of the thumbnail).
    rules : StainGateRules, optional

    Returns
    -------
    StainGateDecision
        Not scorable with reason :data:`REASON_GREYSCALE` when fewer than ``rules.min_colour_fraction`` of at
        least 100 stained pixels have colour; ``figures`` holds ``colour_fraction`` and ``stained_pixels``.

    Examples
    --------
    >>> import numpy as np
    >>> grey = np.full((32, 32, 3), 240, np.uint8); grey[8:24, 8:24] = 120
    >>> check_colour(grey).reason
    'greyscale_image'
    >>> brown = grey.copy(); brown[8:24, 8:24] = (150, 110, 80)
    >>> check_colour(brown).scorable
    True
    """
    thumb = as_rgb_uint8(thumbnail, "thumbnail")
    rules = StainGateRules() if rules is None else rules
    if not isinstance(rules, StainGateRules):
        raise InvalidInputError(f"rules must be a StainGateRules, got {type(rules).__name__}")
    if tissue_mask is None:
        pixels = thumb.reshape(-1, 3)
    else:
        mask = np.asarray(tissue_mask)
        if mask.shape != thumb.shape[:2] or mask.dtype != np.bool_:
            raise InvalidInputError(
                f"tissue_mask must be a boolean array of the thumbnail's shape {thumb.shape[:2]}, got {mask.shape} "
                f"{mask.dtype}"
            )
        pixels = thumb[mask]
    if background is None:
        flat = thumb.reshape(-1, 3)
        bg = np.clip(np.percentile(flat, 99, axis=0), 2.0, 255.0) if flat.shape[0] else None
    else:
        bg = background
    fraction, n = _colour_fraction(_subsample(pixels, _MAX_THUMB_PIXELS, 0), bg)
    figures = {"colour_fraction": fraction, "stained_pixels": float(n)}
    if n >= 100 and fraction < rules.min_colour_fraction:
        return StainGateDecision(False, REASON_GREYSCALE, _greyscale_message(fraction, n, rules), figures)
    return StainGateDecision(True, None, "the image has colour", figures)


def _training_distance(figures: dict[str, float]) -> float:
    worst = 0.0
    for key, (centre, half) in _TRAINING_RANGES.items():
        v = figures.get(key, float("nan"))
        if math.isfinite(v):
            worst = max(worst, abs(v - centre) / half)
    return worst


def _fmt(v: float, nd: int = 2) -> str:
    return "n/a" if not math.isfinite(v) else f"{v:.{nd}f}"


# ------------------------------------------------------------------------------------ the gate
def check_stain(
    thumbnail: np.ndarray,
    tissue_mask: np.ndarray,
    stains: StainVectors,
    tiles: Sequence[np.ndarray],
    *,
    mpp: float = 0.5,
    rules: StainGateRules | None = None,
) -> StainGateDecision:
    """Decide whether a slide is HER2 membrane IHC that may be scored.

    Parameters
    ----------
    thumbnail : (H, W, 3) uint8
        The slide at low resolution (the image :func:`her2fast.stages.tissue.detect_tissue` segmented).
    tissue_mask : (H, W) bool
        Tissue pixels of ``thumbnail`` (:attr:`her2fast.stages.tissue.TissueMask.mask`).
    stains : StainVectors
        The slide's stain vectors (:func:`her2fast.stages.stain.slide_stain_vectors`); their ``background`` is
        the glass colour optical densities are taken against.
    tiles : sequence of (h, w, 3) uint8
        A few tissue tiles at working resolution (:func:`sample_tiles`); may be empty (then only the
        colour checks run).
    mpp : float
        Micrometres per pixel of ``tiles``.
    rules : StainGateRules, optional
        Thresholds (default :class:`StainGateRules`).

    Returns
    -------
    StainGateDecision

    Examples
    --------
    >>> import numpy as np
    >>> from her2fast.stages.stain import StainVectors
    >>> s = StainVectors.standard()
    >>> pink = np.round(255 * np.exp(-0.8 * np.array([0.07, 0.99, 0.11]))).astype(np.uint8)
    >>> thumb = np.broadcast_to(pink, (64, 64, 3)).copy()
    >>> check_stain(thumb, np.ones((64, 64), bool), s, []).reason
    'not_her2_ihc: looks like H&E'
    """
    thumb = as_rgb_uint8(thumbnail, "thumbnail")
    mask = np.asarray(tissue_mask)
    if mask.shape != thumb.shape[:2] or mask.dtype != np.bool_:
        raise InvalidInputError(
            f"tissue_mask must be a boolean array of the thumbnail's shape {thumb.shape[:2]}, got {mask.shape} "
            f"{mask.dtype} (pass TissueMask.mask with the thumbnail read at TissueMask.mpp)"
        )
    if not isinstance(stains, StainVectors):
        raise InvalidInputError(f"stains must be a her2fast.stages.stain.StainVectors, got {type(stains).__name__}")
    mpp = as_positive_float(mpp, "mpp")
    rules = StainGateRules() if rules is None else rules
    if not isinstance(rules, StainGateRules):
        raise InvalidInputError(f"rules must be a StainGateRules, got {type(rules).__name__}")
    tile_list = [as_rgb_uint8(t, f"tiles[{i}]") for i, t in enumerate(tiles)]

    bg = stains.background
    colour_fraction, n_colour = _colour_fraction(_subsample(thumb[mask], _MAX_THUMB_PIXELS, 0), bg)
    parts = [optical_density(_subsample(thumb[mask], _MAX_THUMB_PIXELS, 0), bg)]
    for i, t in enumerate(tile_list):
        parts.append(optical_density(_subsample(t.reshape(-1, 3), _MAX_TILE_PIXELS, i + 1), bg))
    od = np.concatenate(parts).astype(np.float64)
    od = od[np.linalg.norm(od, axis=1) > _STAINED_OD]

    figures = _colour_figures(od, stains, rules)
    figures["dab_vector_to_reference_deg"] = _angle_deg(stains.dab, STANDARD_DAB)
    figures["dab_vector_to_eosin_deg"] = _angle_deg(stains.dab, _EOSIN)
    figures["dab_estimated"] = float(stains.dab_estimated)
    figures["colour_fraction"] = colour_fraction
    figures["channel_order_margin_deg"] = _channel_order_margin(stains)
    nan = float("nan")
    if tile_list:
        figures.update(_pattern_figures(tile_list, stains, mpp, rules))
    else:
        for k in (
            "tiles",
            "tile_tissue_mm2",
            "dab_baseline_od",
            "stained_fraction",
            "cell_dab_q25_od",
            "cell_dab_q90_od",
            "cell_pale_ratio",
            "nuclear_blob_share",
            "nuclear_blobs",
        ):
            figures[k] = 0.0 if k in ("tiles", "tile_tissue_mm2") else nan
    figures.update(_training_figures(od, stains))
    distance = _training_distance(figures)

    f = figures
    margin = f["channel_order_margin_deg"]
    flags = (FLAG_CHANNEL_ORDER,) if math.isfinite(margin) and margin > rules.suspect_margin_deg else ()

    def decision(reason: str | None, message: str) -> StainGateDecision:
        own = () if reason == REASON_CHANNELS_SWAPPED else flags  # the refusal says it all
        return StainGateDecision(reason is None, reason, message, figures, distance, distance > 1.0, own)

    if n_colour >= 100 and colour_fraction < rules.min_colour_fraction:
        return decision(REASON_GREYSCALE, _greyscale_message(colour_fraction, n_colour, rules))
    if math.isfinite(f["eosin_fraction"]) and f["eosin_fraction"] >= rules.min_eosin_fraction:
        return decision(
            REASON_HE,
            (
                f"the slide looks like H&E, not HER2 IHC: {100 * f['eosin_fraction']:.0f} % of its stained pixels are "
                f"eosin-pink (at least {100 * rules.min_eosin_fraction:.0f} % refuses; mean off-hematoxylin hue "
                f"{_fmt(f['off_axis_hue_deg'], 0)} deg, DAB is 0, eosin -30 to -85)"
            ),
        )
    if math.isfinite(f["two_stain_residual"]) and f["two_stain_residual"] > rules.max_two_stain_residual:
        return decision(
            REASON_NO_PAIR,
            (
                f"the slide's colours are not a DAB + hematoxylin pair: {100 * f['two_stain_residual']:.0f} % of the "
                f"stained optical density lies outside the plane of its two stain vectors (at most "
                f"{100 * rules.max_two_stain_residual:.0f} % is accepted)"
            ),
        )
    if math.isfinite(margin) and margin >= rules.swapped_margin_deg:
        return decision(
            REASON_CHANNELS_SWAPPED,
            (
                f"the image's red and blue channels look swapped (BGR read as RGB): its stain vectors are "
                f"{margin:.1f} deg closer to the channel-reversed hematoxylin/DAB pair than to the pair itself (at "
                f"least {rules.swapped_margin_deg:g} deg refuses). Re-export the image in RGB order, or fix the "
                "software that wrote it"
            ),
        )
    share, blobs = f["nuclear_blob_share"], f["nuclear_blobs"]
    if math.isfinite(share) and share >= rules.min_nuclear_blob_share and blobs >= rules.min_nuclear_blobs:
        swap = (
            "; or the image's red and blue channels are swapped (its stain colours lean that way by "
            f"{margin:.1f} deg), which turns hematoxylin nuclei brown"
            if math.isfinite(margin) and margin > 0
            else ""
        )
        return decision(
            REASON_NUCLEAR,
            (
                f"DAB stains nuclei, not membranes: {100 * share:.0f} % of the DAB-dominated area on the sampled "
                f"tiles is {blobs:.0f} compact nucleus-sized blobs (a nuclear marker such as Ki-67, ER or PR; "
                f"HER2 is scored on membranes{swap})"
            ),
        )
    q25, ratio, stained = f["cell_dab_q25_od"], f["cell_pale_ratio"], f["stained_fraction"]
    if (
        math.isfinite(q25)
        and math.isfinite(ratio)
        and stained >= rules.min_stained_fraction
        and q25 >= rules.min_cytoplasm_od
        and ratio >= rules.min_pale_ratio
    ):
        return decision(
            REASON_CYTOPLASMIC,
            (
                f"DAB fills the cytoplasm instead of outlining the cells: the paler quarter of the stained cells' "
                f"pixels holds {q25:.2f} OD DAB, {100 * ratio:.0f} % of the membrane level (a cytoplasmic marker; "
                f"HER2 is scored on membranes)"
            ),
        )
    where = "outside" if distance > 1.0 else "inside"
    eosin = 100 * f["eosin_fraction"] if math.isfinite(f["eosin_fraction"]) else 0.0
    lean = (
        f"; its stain colours lean towards red and blue swapped by {margin:.1f} deg ({FLAG_CHANNEL_ORDER})"
        if flags
        else ""
    )
    return decision(
        None,
        (
            f"DAB + hematoxylin IHC without a nuclear or cytoplasmic DAB pattern ({eosin:.0f} % eosin-pink pixels; "
            f"stains {where} the models' training range, distance {distance:.2f}{lean})"
        ),
    )


def sample_tiles(slide: object, grid: object, n_tiles: int = 4) -> list[np.ndarray]:
    """Read the cores of up to ``n_tiles`` tissue tiles at the grid's resolution for :func:`check_stain`.

    The tiles are a subset of the ones :func:`her2fast.stages.stain.slide_stain_vectors` reads (spread evenly
    over the fuller half of the grid), so they may still be in the slide reader's cache.

    Parameters
    ----------
    slide : her2fast.io.slide.Slide
    grid : her2fast.stages.tissue.TileGrid
    n_tiles : int

    Returns
    -------
    list of (tile_size, tile_size, 3) uint8
    """
    from ..io.slide import Slide
    from ..stages.tissue import TileGrid

    if not isinstance(slide, Slide):
        raise InvalidInputError(f"slide must be a her2fast.io.slide.Slide, got {type(slide).__name__}")
    if not isinstance(grid, TileGrid):
        raise InvalidInputError(f"grid must be a her2fast.stages.tissue.TileGrid, got {type(grid).__name__}")
    n_tiles = as_int(n_tiles, "n_tiles", 0)
    if len(grid) == 0 or n_tiles == 0:
        return []
    order = np.argsort(-grid.tissue_fraction, kind="stable")
    n_stain = 12  # slide_stain_vectors' default n_tiles
    best = order[: max(n_stain, len(order) // 2)]
    stain_picks = np.unique(best[np.linspace(0, best.size - 1, min(n_stain, best.size)).round().astype(int)])
    every = np.linspace(0, stain_picks.size - 1, min(n_tiles, stain_picks.size)).round().astype(int)
    picks = np.unique(stain_picks[every])
    tiles = []
    for i in picks:
        x0, y0 = grid.tile(int(i)).core_level0[:2]
        tiles.append(slide.read(x0, y0, grid.tile_size, grid.tile_size, grid.mpp))
    return tiles


def check_slide_stain(
    slide: object,
    tissue: object,
    grid: object,
    stains: StainVectors,
    *,
    n_tiles: int = 4,
    rules: StainGateRules | None = None,
) -> StainGateDecision:
    """:func:`check_stain` on an open slide, with what :func:`her2fast.pipeline.run_slide` has after its stain step.

    Parameters
    ----------
    slide : her2fast.io.slide.Slide
    tissue : her2fast.stages.tissue.TissueMask
        From :func:`her2fast.stages.tissue.detect_tissue` (the thumbnail is read again at its ``mpp``).
    grid : her2fast.stages.tissue.TileGrid
        From :func:`her2fast.stages.tissue.tile_grid`.
    stains : StainVectors
        From :func:`her2fast.stages.stain.slide_stain_vectors`.
    n_tiles : int
        Tiles to sample (:func:`sample_tiles`).
    rules : StainGateRules, optional

    Returns
    -------
    StainGateDecision
    """
    from ..stages.tissue import TissueMask

    if not isinstance(tissue, TissueMask):
        raise InvalidInputError(f"tissue must be a her2fast.stages.tissue.TissueMask, got {type(tissue).__name__}")
    thumb = slide.thumbnail(tissue.mpp)  # type: ignore[attr-defined]
    h, w = tissue.mask.shape
    thumb = np.ascontiguousarray(thumb[:h, :w])
    tiles = sample_tiles(slide, grid, n_tiles)
    return check_stain(thumb, tissue.mask, stains, tiles, mpp=grid.mpp, rules=rules)  # type: ignore[attr-defined]
