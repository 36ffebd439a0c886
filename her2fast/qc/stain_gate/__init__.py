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

Modules
-------
- :mod:`~her2fast.qc.stain_gate.rules`: the reasons, :class:`StainGateRules` and :class:`StainGateDecision`.
- :mod:`~her2fast.qc.stain_gate.colour`: the colour figures of stained pixels (eosin-pink share, two-stain
  residual) and :func:`check_colour`.
- :mod:`~her2fast.qc.stain_gate.training_range`: the models' training range, a slide's distance from it and
  the red/blue channel-order margin.
- :mod:`~her2fast.qc.stain_gate.pattern`: the DAB pattern figures of working-resolution tiles (nuclear,
  cytoplasmic) and :func:`sample_tiles`.
- :mod:`~her2fast.qc.stain_gate.gate`: :func:`check_stain` (the decision, in the order above) and
  :func:`check_slide_stain`.

Every public name of these modules is importable from ``her2fast.qc.stain_gate`` (and from
``her2fast.qc``).

Examples
--------
>>> from her2fast.qc.stain_gate import REASONS, StainGateRules
>>> REASONS[:2]
('greyscale_image', 'not_her2_ihc: looks like H&E')
>>> StainGateRules().min_eosin_fraction
0.25
"""

from __future__ import annotations

from .colour import check_colour
from .gate import check_slide_stain, check_stain
from .pattern import sample_tiles
from .rules import (
    FLAG_CHANNEL_ORDER,
    REASON_CHANNELS_SWAPPED,
    REASON_CYTOPLASMIC,
    REASON_GREYSCALE,
    REASON_HE,
    REASON_NO_PAIR,
    REASON_NUCLEAR,
    REASONS,
    StainGateDecision,
    StainGateRules,
)

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
