"""Slide artefacts added to a phantom image, each with its exact mask, to measure the quality map against truth.

Every function takes an RGB image (a phantom tile from :func:`her2fast.synth.make_tile`, or any
brightfield image) and its resolution, draws the artefact's geometry from a seed, and returns the new
image with the mask of the pixels the artefact touched (:class:`Artefact`; for ``"glass_edge"``, the
pixels it makes unreadable). Geometry is in micrometres, so the same seed gives the same artefact, in
tissue terms, at any resolution.

``"blur"``
    An out-of-focus band: a straight band across the image at a random angle and offset, inside which
    the image is replaced by its Gaussian blur (``sigma_um``; a scanner's focus point missing a fold
    or a thick area). The edge is sharp, so the mask is exact.
``"ink"``
    A pen or marker stroke: a smooth curve of constant width (``width_um``) in blue, green or black
    ink, laid over the tissue as an absorbing layer (Beer-Lambert: the ink's optical density adds to the
    tissue's), so tissue under pale ink still shows through.
``"fold"``
    A tissue fold: a band where the section lies on itself, so two layers are stained -- the band's
    optical density is the tissue's own plus a mirrored copy of the tissue beside it (darker, doubly
    stained, with both layers' structure superimposed).
``"saturation"``
    An over-stained patch: a rounded, irregular region where chromogen has pooled so densely that
    every channel is near 0 (optical density ``SATURATION_OD`` times 0.8-1.3 added to the tissue's):
    the intensity there cannot be read.
``"bubble"``
    An air bubble under the coverslip: a disc (radius ``radius_um``) whose content is flattened
    (contrast cut to 25-45 %, slightly paler) inside a thin dark grey rim (3-6 um, neutral optical
    density 0.6-1.0 added). The whole disc lies inside the image.
``"precipitate"``
    DAB precipitate: chromogen that came out of solution and settled on the slide, over tissue and glass
    alike -- rounded clusters (``radius_um``) of small, very dark brown granules (1.5-5 um across, optical
    density :data:`PRECIPITATE_OD` times 0.7-1.2, covering 15-30 % of the cluster) over a faint brown haze
    of finer precipitate (:data:`PRECIPITATE_HAZE_OD` times 0.5-1.5). The mask is the clusters' area.
``"glass_edge"``
    The edge of the coverslip (or of the slide) crossing the image: a gently curved (radius 4 mm or
    more), thin, dark grey line (2-5 um, neutral optical density 0.3-0.7) with a shadow band on one side
    (``width_um`` times 0.7-1.3 wide; a neutral optical density of 0.1-0.3 at the line, half of that at the
    band's far edge) and a brightness step beyond the line (neutral, -0.03 to 0.05). The mask is the
    line and the band; the step leaves the tissue beyond readable and is outside it.

Look-alikes of a glass edge that are tissue, not artefacts (the map must keep them):
:func:`add_stained_lines` (dark stained membranes side by side across the image, brown or the
hematoxylin-DAB mixture nearest grey) and :func:`add_stained_border` (a straight, ragged border of
densely stained tissue), in :mod:`.lookalike`.

The makers live in one module per origin: :mod:`.defocus` (the scanner), :mod:`.marker` (pen ink),
:mod:`.section` (folds), :mod:`.stain` (saturated stain, precipitate) and :mod:`.mounting` (bubbles, glass
edges); :mod:`._base` holds what they share.
:func:`add_artefacts` applies several in turn and returns one mask per kind.

Examples
--------
>>> import numpy as np
>>> img = np.full((64, 64, 3), 200, np.uint8)
>>> a = add_ink(img, 0.5, seed=1, width_um=8.0)
>>> a.mask.shape, bool(a.mask.any()), bool((a.rgb[a.mask] < 200).all())
((64, 64), True, True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..._validate import as_int, as_rgb_uint8
from ...errors import InvalidInputError
from ._base import Artefact, ArtefactImage
from .defocus import add_blur_band
from .lookalike import LOOKALIKE_COLOURS, add_stained_border, add_stained_lines
from .marker import INK_COLOURS, add_ink
from .mounting import add_bubble, add_glass_edge
from .section import add_fold
from .stain import PRECIPITATE_HAZE_OD, PRECIPITATE_OD, SATURATION_OD, add_precipitate, add_saturation

__all__ = [
    "ARTEFACT_KINDS",
    "INK_COLOURS",
    "LOOKALIKE_COLOURS",
    "SATURATION_OD",
    "Artefact",
    "ArtefactImage",
    "add_artefacts",
    "add_blur_band",
    "add_bubble",
    "add_fold",
    "add_glass_edge",
    "add_ink",
    "add_precipitate",
    "add_saturation",
    "add_stained_border",
    "add_stained_lines",
    "PRECIPITATE_HAZE_OD",
    "PRECIPITATE_OD",
]

#: The artefacts :func:`add_artefacts` knows.
ARTEFACT_KINDS: tuple[str, ...] = ("blur", "ink", "fold", "saturation", "bubble", "precipitate", "glass_edge")


_MAKERS: dict[str, Callable[..., Artefact]] = {
    "blur": add_blur_band,
    "ink": add_ink,
    "fold": add_fold,
    "saturation": add_saturation,
    "bubble": add_bubble,
    "precipitate": add_precipitate,
    "glass_edge": add_glass_edge,
}


def add_artefacts(
    rgb: np.ndarray, mpp: float, kinds: Sequence[str], *, seed: int = 0, **options: dict
) -> ArtefactImage:
    """Add several artefacts in turn (later ones drawn over earlier ones).

    Parameters
    ----------
    rgb : (h, w, 3) uint8
    mpp : float
    kinds : sequence of str
        Each one of :data:`ARTEFACT_KINDS`; a kind may repeat (each gets its own seed).
    seed : int
        Artefact ``i`` is drawn with seed ``seed * 1000 + i``.
    **options : dict
        Keyword arguments per kind, e.g. ``blur={"sigma_um": 3.0}``.

    Returns
    -------
    ArtefactImage
        A pixel touched by a later artefact stays in the earlier artefact's mask too.
    """
    arr = as_rgb_uint8(rgb, "rgb")
    seed = as_int(seed, "seed", 0, 2**40)
    if isinstance(kinds, str):
        kinds = [kinds]
    bad = [k for k in kinds if k not in _MAKERS]
    if bad:
        raise InvalidInputError(f"kinds must be among {list(ARTEFACT_KINDS)}, got {bad}")
    unknown = [k for k in options if k not in _MAKERS]
    if unknown:
        raise InvalidInputError(f"options are per artefact kind ({list(ARTEFACT_KINDS)}), got {unknown}")
    masks = {k: np.zeros(arr.shape[:2], bool) for k in kinds}
    params: list[dict] = []
    for i, kind in enumerate(kinds):
        a = _MAKERS[kind](arr, mpp, seed=seed * 1000 + i, **options.get(kind, {}))
        arr = a.rgb
        masks[kind] |= a.mask
        params.append({"kind": kind, **a.params})
    return ArtefactImage(arr, masks, params)
