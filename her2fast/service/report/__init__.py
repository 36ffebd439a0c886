"""Reports of a scored slide: result JSON, QuPath GeoJSON, overlay pictures, heat map.

:func:`write_report` writes, for a :class:`her2fast.SlideResult` (``<name>`` = the slide's file name
without its suffix):

- ``<name>.her2fast.json`` -- :meth:`SlideResult.to_json` without the cell table;
- ``<name>.cells.npz`` -- the cell table (:meth:`her2fast.scoring.CellTable.save_npz`, level-0 pixels);
- ``<name>.geojson`` -- QuPath-importable GeoJSON (:func:`to_geojson`);
- ``<name>.overlay.png`` -- a thumbnail with the epithelium outline and the cells coloured by class;
- ``<name>.zoom.png`` -- a region at the working resolution (the tile with the most tumour cells),
  cell centres coloured by class;
- ``<name>.heatmap.png`` -- % of tumour cells with complete membranes per tile over the thumbnail.

QuPath's GeoJSON conventions (QuPath 0.3+, ``File > Import objects from file``): a ``FeatureCollection``
of ``Feature`` objects whose ``properties`` hold ``objectType`` (``"annotation"`` or ``"detection"``),
``classification`` ``{"name", "color": [r, g, b]}`` and ``measurements`` (a name -> number mapping);
coordinates are level-0 pixels, y down, polygons as closed rings.

Modules
-------
- :mod:`~her2fast.service.report.writer`: :func:`write_report`, :func:`report_paths`.
- :mod:`~her2fast.service.report.geojson`: :func:`to_geojson`, :func:`iter_geojson_features`,
  :func:`write_geojson`, :func:`epithelium_polygons`.
- :mod:`~her2fast.service.report.pictures`: :func:`overlay_image`, :func:`zoom_image`,
  :func:`heatmap_image`, :func:`tile_percent_complete`.
- :mod:`~her2fast.service.report.colours`: :data:`CLASS_NAMES`, :data:`CLASS_COLOURS`, :data:`NON_TUMOUR`.

Every public name of these modules is importable from ``her2fast.service.report``.
"""

from __future__ import annotations

from .colours import CLASS_COLOURS, CLASS_NAMES, NON_TUMOUR
from .geojson import epithelium_polygons, iter_geojson_features, to_geojson, write_geojson
from .pictures import _ramp as _ramp
from .pictures import heatmap_image, overlay_image, tile_percent_complete, zoom_image
from .writer import report_paths, write_report

__all__ = [
    "CLASS_COLOURS",
    "CLASS_NAMES",
    "NON_TUMOUR",
    "to_geojson",
    "iter_geojson_features",
    "write_geojson",
    "epithelium_polygons",
    "tile_percent_complete",
    "overlay_image",
    "zoom_image",
    "heatmap_image",
    "write_report",
    "report_paths",
]
