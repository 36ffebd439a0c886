"""The stain gate's decision: :func:`check_stain` runs the checks in order; :func:`check_slide_stain` on an open slide.

The checks, their order and thresholds are described in :mod:`her2fast.qc.stain_gate`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..._validate import as_positive_float, as_rgb_uint8
from ...errors import InvalidInputError
from ...stages.stain import STANDARD_DAB, StainVectors, optical_density
from .colour import (
    _EOSIN,
    _MAX_THUMB_PIXELS,
    _MAX_TILE_PIXELS,
    _STAINED_OD,
    _angle_deg,
    _colour_figures,
    _colour_fraction,
    _greyscale_message,
    _subsample,
)
from .pattern import _pattern_figures, sample_tiles
from .rules import (
    FLAG_CHANNEL_ORDER,
    REASON_CHANNELS_SWAPPED,
    REASON_CYTOPLASMIC,
    REASON_GREYSCALE,
    REASON_HE,
    REASON_NO_PAIR,
    REASON_NUCLEAR,
    StainGateDecision,
    StainGateRules,
)
from .training_range import _channel_order_margin, _training_distance, _training_figures

__all__ = ["check_slide_stain", "check_stain"]


def _fmt(v: float, nd: int = 2) -> str:
    return "n/a" if not math.isfinite(v) else f"{v:.{nd}f}"


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
    from ...stages.tissue import TissueMask

    if not isinstance(tissue, TissueMask):
        raise InvalidInputError(f"tissue must be a her2fast.stages.tissue.TissueMask, got {type(tissue).__name__}")
    thumb = slide.thumbnail(tissue.mpp)  # type: ignore[attr-defined]
    h, w = tissue.mask.shape
    thumb = np.ascontiguousarray(thumb[:h, :w])
    tiles = sample_tiles(slide, grid, n_tiles)
    return check_stain(thumb, tissue.mask, stains, tiles, mpp=grid.mpp, rules=rules)  # type: ignore[attr-defined]
