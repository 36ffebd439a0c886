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

Modules
-------
- :mod:`~her2fast.stages.tissue.mask`: :class:`TissueMask`, :func:`segment_tissue` (an image) and
  :func:`detect_tissue` (a slide).
- :mod:`~her2fast.stages.tissue.pen`: :func:`pen_mask`, ink found by colour and size.
- :mod:`~her2fast.stages.tissue.tiles`: the tile geometry, :class:`Tile`, :class:`TileGrid` and
  :func:`tile_grid`; reading tiles (:class:`TileImage`, :func:`read_tile`, :func:`read_tiles`).

Every public name of these modules is importable from ``her2fast.stages.tissue``.

Examples
--------
>>> import numpy as np
>>> from her2fast.stages.tissue import segment_tissue
>>> rgb = np.full((200, 200, 3), 235, np.uint8); rgb[50:150, 50:150] = (150, 110, 160)
>>> m = segment_tissue(rgb, 8.0)  # a 0.8 mm square of tissue on glass, at 8 um/px
>>> bool(m.mask[100, 100]), bool(m.mask[5, 5])
(True, False)
"""

from __future__ import annotations

from .mask import CLOSING_UM as CLOSING_UM
from .mask import MAX_HOLE_UM2 as MAX_HOLE_UM2
from .mask import PALE_TISSUE_OD as PALE_TISSUE_OD
from .mask import TEXTURE_BAND_UM as TEXTURE_BAND_UM
from .mask import TEXTURE_GLASS_UM as TEXTURE_GLASS_UM
from .mask import TEXTURE_MIN_OD as TEXTURE_MIN_OD
from .mask import TISSUE_MPP as TISSUE_MPP
from .mask import TissueMask, detect_tissue, segment_tissue
from .pen import PEN_MIN_WIDTH_UM as PEN_MIN_WIDTH_UM
from .pen import pen_mask
from .pieces import MIN_PIECE_UM2 as MIN_PIECE_UM2
from .pieces import TissuePieces, tissue_pieces
from .tiles import Tile, TileGrid, TileImage, read_tile, read_tiles, tile_grid

__all__ = [
    "TissueMask",
    "TissuePieces",
    "Tile",
    "TileGrid",
    "read_tile",
    "TileImage",
    "detect_tissue",
    "pen_mask",
    "read_tiles",
    "segment_tissue",
    "tile_grid",
    "tissue_pieces",
]
