"""The ground-truth cell table of a phantom region: :func:`cell_table_of`."""

from __future__ import annotations

import numpy as np

from ...scoring import CellTable
from ..scene import Kind, NucleusKind, Scene, Sites

__all__ = ["cell_table_of"]


def cell_table_of(
    scene: Scene,
    sites: Sites,
    x0_um: float,
    y0_um: float,
    x1_um: float,
    y1_um: float,
    mpp: float,
    origin_px: tuple[int, int] = (0, 0),
) -> CellTable:
    """The cells of `sites` whose centre lies in [x0, x1) x [y0, y1) um and in tissue, as a CellTable.

    Cells are tumour cells and nucleated stromal cells (fibroblasts, lymphocytes). Centres are given in
    pixels at `mpp`, relative to `origin_px`.
    """
    inside = (sites.x >= x0_um) & (sites.x < x1_um) & (sites.y >= y0_um) & (sites.y < y1_um)
    keep = inside & ((sites.kind == Kind.TUMOUR) | ((sites.kind == Kind.STROMA) & (sites.nucleus != NucleusKind.NONE)))
    if scene.with_glass and keep.any():
        k = np.flatnonzero(keep)
        keep[k[scene.tissue_field(sites.x[k], sites.y[k]) <= 0]] = False
    s = np.flatnonzero(keep)
    tum = sites.kind[s] == Kind.TUMOUR
    return CellTable(
        cell_id=sites.cell_id[s],
        x=sites.x[s] / mpp - 0.5 - origin_px[0],
        y=sites.y[s] / mpp - 0.5 - origin_px[1],
        is_tumour=tum,
        intensity=np.where(tum, sites.intensity[s], 0),
        completeness=np.where(tum, sites.completeness[s], 0),
        membrane_dab_od=np.where(tum & (sites.intensity[s] > 0), sites.membrane_od[s], 0),
        region=sites.region[s],
    )
