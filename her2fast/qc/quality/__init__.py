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
    chance: a patch of pale, fibre-poor stroma), areas less than ``focus_bridge_um`` apart counting as
    one (pale, patchy tissue out of focus is split by glass) and smaller areas within ``focus_near_um`` of
    a larger one kept. A window reads low only when most of it is blurred, and windows reaching from a
    blurred area into smooth, pale tissue read low too, so the window places the area's edge only to
    within about half a window: map pixels within ``focus_edge_reach_um`` of the edge (either side) are
    decided again by the votes of ``focus_edge_um`` windows -- each votes by its focus ratio against
    ``focus_edge``, weighted by its detail energy ``D`` as ``D / (D + focus_detail_min)`` (flat glass and
    smooth stroma say little), the votes averaged with a Gaussian of ``focus_vote_um`` with one more vote
    of "out of focus" of weight ``focus_edge_prior`` (no evidence sides with the area) -- what stays
    connected to the area is kept, holes are filled, and the area is grown by one map pixel (a small
    window straddling the edge still reads in focus). Inside the area, windows down to
    ``focus_tissue_od`` are tissue (blur lowers the mean optical density of pale tissue).
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
    image's tissue away from glass: clean tissue has pale gaps (stroma, cytoplasm) near any point, a
    fold's second layer covers them. A fold is a connected region above ``fold_grow_ratio`` (1.3) times
    the median that holds a core of at least ``fold_min_um`` squared above ``fold_ratio`` (1.7) times it.
    The minimum and the average blur the fold's edge; it is placed again where the floor's opening
    (which keeps the fold's extent), smoothed over ``fold_edge_um``, has risen ``fold_edge`` (half) of
    the way from the tissue beside it to the fold. Tissue out of focus, or within
    a window of ink or saturated stain, is not judged for folds. A fold over pale tissue that covers most
    of the image's tissue raises the median itself and is not found.
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
``precipitate``
    DAB precipitate: chromogen come out of solution and settled on tissue and glass as clusters of small,
    very dark brown granules. On the optical density per channel at about 1 um/px, a granule is a patch
    of very dark brown (red above ``precipitate_min_od``, blue above red) at most ``precipitate_max_um``
    across, darker than the pixels around it by ``precipitate_contrast`` (it lies on top), and not the
    darkest stretch of a line (its dark brown down to ``precipitate_line_od`` ends within twice
    ``precipitate_max_um``: a stained membrane continues). Map pixels holding such dark brown less than
    ``precipitate_gap_um`` apart are one cluster; a cluster of at least ``precipitate_min_granules``
    granules is precipitate, grown by ``precipitate_grow_um`` (its edge lies beyond its outer granules).
``glass_edge``
    The edge of the coverslip or of the slide crossing the tissue: a long, straight or gently curved,
    thin, dark grey line, often with a shadow band (the mountant's meniscus) on one side and a brightness
    step across it. At about 2 um/px, pixels darker than their mean over ``edge_line_um`` by half
    ``edge_line_od`` in every channel, the channels alike, vote for straight lines; each of the
    best-supported lines is fitted by a curve of the second order through its pixels and kept when it is
    at least ``edge_min_um`` long, bends to a radius of at least ``edge_min_radius_um``, and the median
    profile across it (at about 1 um/px, over its whole length) shows a line standing ``edge_line_od``
    above the clear side in every channel, grey (within ``edge_max_chroma``: a stain is not) and no lower
    than the other side (a step is not a line), and the line shows in at least ``edge_continuity`` of the
    pieces of ``edge_piece_um`` along it (stained membranes side by side show it in places only). The
    band is read off that profile: on the side standing higher above its own far level (the shadow, when
    at least ``edge_shadow_od``) it ends where the excess falls below ``edge_band_end`` of the shadow's;
    on the other side where it falls below that share of the line's. A map pixel at least
    ``edge_cover`` inside the band is ``glass_edge``. The band is not judged for focus, folds (nor the
    tissue within ``fold_floor_um`` of it) or bubble rims, and folds are judged on each side of an edge
    against that side's own tissue (the brightness may step across it).

Windows with too little tissue (mean optical density below :attr:`QualityRules.min_tissue_od`, i.e.
glass) are not judged: they are neither usable tissue nor unusable.

The package's modules: :mod:`.rules` (the reasons and :class:`QualityRules`), :mod:`.result`
(:class:`QualityMap`, :class:`QualityTally`), :mod:`.grid` (block means, growing, dropping specks),
one module per detector (:mod:`.focus`, :mod:`.ink`, :mod:`.saturated`, :mod:`.fold`, :mod:`.bubble`,
:mod:`.precipitate`, :mod:`.glass_edge`) and
:mod:`.assemble` (:func:`quality_map`: the detectors run in turn and the map put together).

The thresholds and how they were calibrated are in ``docs/qc.md`` (phantoms from
:mod:`her2fast.synth` with the artefacts of :mod:`her2fast.synth.artefacts`; ``benchmarks/quality_map.py``).
"""

from __future__ import annotations

from .assemble import quality_map
from .result import QualityMap, QualityTally
from .rules import QUALITY_REASONS, REASON_UNUSABLE, QualityRules

__all__ = ["QUALITY_REASONS", "QualityMap", "QualityRules", "QualityTally", "quality_map", "REASON_UNUSABLE"]
