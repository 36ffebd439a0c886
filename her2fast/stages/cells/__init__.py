"""Cells and membranes: skeletons, closed loops, nucleus-seeded cell territories, per-cell membrane
measurements, and seam-correct tile merging (native kernels, GIL released).

Primitives:

- :func:`membrane_skeleton` -- one-pixel-wide, topology-preserving skeleton of a membrane mask;
- :func:`enclosed_regions` -- the regions of a tile cut out by the skeleton; a region that does not
  reach the tile border is enclosed by a **closed** membrane loop;
- :func:`seeded_watershed` -- nucleus-seeded territories (scikit-image's watershed plus a membrane
  barrier and a per-cell radius limit);
- :func:`membrane_rays` -- the membrane met by rays from each nucleus centre.

Per tile (:func:`measure_tile`) and per slide (:func:`merge_cell_tables`):

1. **Nuclei** (a mask, split into 8-connected components, or a label map) are the cells: one cell per
   nucleus of at least ``min_nucleus_um2``. Its centre is the nucleus centroid, kept exactly as an
   integer pixel plus a fraction (the sums of integer pixel positions), so every tile computes the
   same centre bit for bit.
2. **Territories**: a seeded watershed from the nuclei over the membrane probability (4-connected,
   ties first-in first-out), where a flood that climbed into membrane (probability >=
   ``membrane_threshold``) runs along it but does not come down on the far side, and no cell reaches
   farther than ``max_radius_um`` from its centre. On membrane the landscape is raised by the DAB OD
   and a flood that climbs gently to a ridge takes it from one that merely touched it (``climb``), so
   neighbouring territories split a membrane at its stain ridge and a membrane stained from one side
   only belongs to that side's cell. A cell without membrane ends at the radius limit or at its
   neighbours.
3. **Membrane per cell**, along ``n_rays`` rays from the centre (exact grid traversal, so a ray cannot
   slip through a one-pixel membrane line): a ray is *covered* when it meets membrane inside the
   territory or less than ``outside_reach_um`` (0.5 um) beyond it, or -- when the territory was cut by
   the radius limit -- less than ``cap_reach_um`` (4 um) beyond the cap. ``completeness`` = covered fraction of the rays (the angle-weighted fraction of the
   territory boundary covered by membrane, as the phantom defines it); ``membrane_dab_od`` = the 75th
   percentile (``intensity_quantile``) over covered rays of the peak DAB OD of the membrane run, each
   multiplied by an own-side gate in [0, 1]: the mean OD 0.5-1.5 um inside the membrane ridge against
   ``far_side_weight`` (0.9) times that outside it, so a ray whose stain is a neighbour's membrane seen
   through the blur counts ~0 (``far_side_weight=0, intensity_quantile=0.5`` gives the former median
   of the run peaks), minus the cell's cytoplasmic DAB (``cytoplasm_weight``: the mean DAB OD of its
   territory >= 1.5 um from membrane, off nuclei; ASCO/CAP disregards cytoplasmic staining); ``intensity`` = :func:`her2fast.scoring.intensity_class_from_od` of it; ``membrane_thickness`` =
   median length of the runs (um).
4. **Closed membranes**: the membrane mask's skeleton (:func:`membrane_skeleton`) cuts the tile into
   regions (:func:`enclosed_regions`); a cell is ``closed`` when the region at its centre is enclosed,
   holds no other nucleus centre and lies within ``max_radius_um`` of the centre. Enclosed, cell-sized
   regions without any nucleus are artefacts (stain rings, holes in thick membrane): they make no cell
   and are only counted (``TileCells.n_artefact_loops``).
5. **Ownership**: a tile is measured with its overlap margin, and returns only the cells whose centre
   lies in its core (tested with exact integer arithmetic), so a cell cut by a tile edge is measured
   whole by exactly one tile, and is closed if it is closed. With a margin of at least
   ``2 * max_radius_um`` the result does not depend on where the tile grid lies (tested in
   ``tests/test_cells_seams.py``).

Coordinates: :func:`measure_tile` takes the padded tile's ``origin`` and its ``core`` in *working*
pixels (the :class:`her2fast.stages.tissue.TileGrid`'s, pixel ``(i, j)`` centred at ``x = j, y = i``) and gives
cell centres in working pixels; :func:`merge_cell_tables` scales them to level-0 pixels with the grid's
``level0_per_pixel``.

Modules
-------
- :mod:`~her2fast.stages.cells.loops`: :func:`membrane_skeleton`, :func:`enclosed_regions`,
  :class:`RegionTable` (closed membrane loops).
- :mod:`~her2fast.stages.cells.territories`: :func:`seeded_watershed` (cell territories).
- :mod:`~her2fast.stages.cells.rays`: :func:`membrane_rays` and the per-cell ray summary.
- :mod:`~her2fast.stages.cells.intensity`: the own-side gate of the membrane OD, the cytoplasmic DAB.
- :mod:`~her2fast.stages.cells.centres`: nuclei numbered as cells, exact centres.
- :mod:`~her2fast.stages.cells.settings`: :class:`CellSettings`.
- :mod:`~her2fast.stages.cells.measure`: :func:`measure_tile`, :class:`TileCells`.
- :mod:`~her2fast.stages.cells.merge`: :func:`merge_cell_tables`.
- :mod:`~her2fast.stages.cells.checks`: checks of the arrays the public functions take.

Every public name of these modules is importable from ``her2fast.stages.cells``. A test or benchmark
that swaps a helper of :func:`measure_tile` sets it on the module that looks it up
(:mod:`~her2fast.stages.cells.measure`, or :mod:`~her2fast.stages.cells.intensity` for
``_near_membrane``), not on the package.
"""

from __future__ import annotations

from .centres import _exact_centres as _exact_centres
from .centres import _nucleus_labels as _nucleus_labels
from .centres import _split_centres as _split_centres
from .checks import _as_2d as _as_2d
from .checks import _as_bounds as _as_bounds
from .checks import _as_float_map as _as_float_map
from .checks import _as_mask as _as_mask
from .intensity import _cytoplasm_od as _cytoplasm_od
from .intensity import _gated_membrane_od as _gated_membrane_od
from .intensity import _near_membrane as _near_membrane
from .intensity import _near_membrane_reference as _near_membrane_reference
from .loops import RegionTable, enclosed_regions, membrane_skeleton
from .loops import _region_max_dist2 as _region_max_dist2
from .loops import _region_sums as _region_sums
from .loops import _region_sums_reference as _region_sums_reference
from .loops import _skeleton_regions as _skeleton_regions
from .loops import _skeleton_regions_reference as _skeleton_regions_reference
from .measure import TileCells, measure_tile
from .merge import merge_cell_tables
from .rays import _close_gaps as _close_gaps
from .rays import _ray_summary as _ray_summary
from .rays import _ray_summary_reference as _ray_summary_reference
from .rays import _rays as _rays
from .rays import membrane_rays
from .settings import DEFAULT_CELL_SETTINGS as DEFAULT_CELL_SETTINGS
from .settings import CellSettings
from .territories import _label_counts as _label_counts
from .territories import _label_counts_reference as _label_counts_reference
from .territories import seeded_watershed

__all__ = [
    "membrane_skeleton",
    "enclosed_regions",
    "RegionTable",
    "seeded_watershed",
    "membrane_rays",
    "CellSettings",
    "TileCells",
    "measure_tile",
    "merge_cell_tables",
]
