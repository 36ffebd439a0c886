"""One phantom tile and its exact ground truth: :func:`make_tile`, :class:`TileGroundTruth`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..._validate import as_int, as_positive_float
from ...errors import InvalidInputError
from ...scoring import CellTable
from ..presets import Preset, get_preset
from ..scene import Scene, StainVariation
from .render import render_region
from .truth import cell_table_of

__all__ = ["TileGroundTruth", "make_tile"]


@dataclass
class TileGroundTruth:
    """A phantom tile and its exact ground truth (see :func:`make_tile`).

    Attributes
    ----------
    rgb : (h, w, 3) uint8
    membrane_mask, membrane_edge, nuclei_mask, epithelium_mask : (h, w) bool
    cell_labels : (h, w) int32
        ``cell_id`` of each pixel (tumour cells: the whole cell; other cells: the nucleus), 0 elsewhere.
    dab_od : (h, w) float32
        True DAB optical density per pixel (before blur and noise).
    cells : CellTable
        Cells whose centre lies in the tile (x, y in tile pixels).
    mpp : float
    preset : str
    seed : int
    category : str or None
        ASCO/CAP category of the tile's tumour cells (None when it holds none).
    """

    rgb: np.ndarray
    membrane_mask: np.ndarray
    membrane_edge: np.ndarray
    nuclei_mask: np.ndarray
    cell_labels: np.ndarray
    epithelium_mask: np.ndarray
    dab_od: np.ndarray
    cells: CellTable
    mpp: float
    preset: str
    seed: int
    category: str | None


def _resolve_preset(category: str, variant: str) -> Preset:
    if not isinstance(category, str):
        raise InvalidInputError(f"category must be a string such as '2+', got {category!r}")
    return get_preset(category, variant)


def make_tile(
    size: int | tuple[int, int] = 512,
    *,
    category: str = "2+",
    variant: str = "typical",
    mpp: float = 0.5,
    seed: int = 0,
    origin: tuple[int, int] = (0, 0),
    jpeg_quality: int | None = 90,
    variation: StainVariation | None = None,
) -> TileGroundTruth:
    """Render one phantom tile (all tissue, no glass) and its exact ground truth.

    Parameters
    ----------
    size : int or (height, width)
        Tile size in pixels.
    category : {"0", "0+", "1+", "2+", "3+"}
        Category of the composition preset (see :mod:`her2fast.synth.presets`).
    variant : str
        Preset variant: ``"typical"``, ``"near-threshold"``, ``"unusual"`` (2+), ``"heterogeneous"``.
    mpp : float
        Micrometres per pixel (0.25 = 40x, 0.5 = 20x).
    seed : int
        Same seed, same arguments => same bytes.
    origin : (x, y)
        Pixel offset of the tile in the phantom's plane (a different part of the same tissue).
    jpeg_quality : int or None
        Round-trip the RGB through JPEG at this quality, as a scanner does; None for none.
    variation : StainVariation, optional
        Stain amounts, chromogen hue and section thickness at render time (``dab_od`` is then the
        varied DAB concentration); the cells and the category stay the preset's.

    Returns
    -------
    TileGroundTruth
        ``category`` is the ASCO/CAP category of the tumour cells centred in the tile; on a
        512-px tile it may differ from the preset's for near-threshold presets (few cells).

    Examples
    --------
    >>> t = make_tile(128, category="3+", seed=1)
    >>> t.rgb.shape, t.rgb.dtype
    ((128, 128, 3), dtype('uint8'))
    """
    if isinstance(size, tuple):
        h = as_int(size[0], "size[0]", 1, 16384)
        w = as_int(size[1], "size[1]", 1, 16384)
    else:
        h = w = as_int(size, "size", 1, 16384)
    mpp = as_positive_float(mpp, "mpp")
    seed = as_int(seed, "seed", 0, 2**63 - 1)
    ox = as_int(origin[0], "origin[0]", 0)
    oy = as_int(origin[1], "origin[1]", 0)
    preset = _resolve_preset(category, variant)
    if variation is not None and not isinstance(variation, StainVariation):
        raise InvalidInputError(
            f"variation must be a her2fast.synth.StainVariation or None, got {type(variation).__name__}"
        )
    scene = Scene(preset, seed, w * mpp, h * mpp, with_glass=False, x0_um=ox * mpp, y0_um=oy * mpp, variation=variation)
    region = render_region(scene, ox, oy, w, h, mpp, noise_seed=(oy << 24) ^ ox)
    rgb = region.rgb
    if jpeg_quality is not None:
        import imagecodecs

        q = as_int(jpeg_quality, "jpeg_quality", 1, 100)
        rgb = imagecodecs.jpeg_decode(imagecodecs.jpeg_encode(rgb, level=q))
    x0u, y0u = ox * mpp, oy * mpp
    sites = scene.sites_in(x0u, y0u, x0u + w * mpp, y0u + h * mpp)
    cells = cell_table_of(scene, sites, x0u, y0u, x0u + w * mpp, y0u + h * mpp, mpp, origin_px=(ox, oy))
    from ...scoring import score_cells

    category_true = score_cells(cells).category if cells.is_tumour.any() else None
    return TileGroundTruth(
        rgb=np.ascontiguousarray(rgb),
        membrane_mask=region.membrane_mask,
        membrane_edge=region.membrane_edge,
        nuclei_mask=region.nuclei_mask,
        cell_labels=region.cell_labels,
        epithelium_mask=region.epithelium_mask,
        dab_od=region.dab_od,
        cells=cells,
        mpp=mpp,
        preset=preset.name,
        seed=seed,
        category=category_true,
    )
