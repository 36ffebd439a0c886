"""Epithelium maps of one image and of a whole slide, and the tiles that go on to membrane segmentation."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from ..._validate import as_int
from ...errors import InvalidInputError
from ..stain import StainVectors
from .features import EpitheliumSettings, superpixel_features
from .model import EpitheliumModel, default_model

if TYPE_CHECKING:
    from ..tissue import TileGrid


# ------------------------------------------------------------------------------------------ one image
@dataclass
class SuperpixelClassification:
    """Epithelium classification of one image.

    Attributes
    ----------
    labels : (H, W) int32
        Superpixels (-1 outside the mask).
    decision : (K,) float64
        SVM decision value per superpixel (> 0 epithelium).
    epithelium_mask : (H, W) bool
    """

    labels: np.ndarray
    decision: np.ndarray
    epithelium_mask: np.ndarray

    @property
    def is_epithelium(self) -> np.ndarray:
        """(K,) bool per superpixel."""
        return self.decision > 0


def classify_image(
    image: np.ndarray,
    model: EpitheliumModel | None = None,
    *,
    mask: np.ndarray | None = None,
    stains: StainVectors | None = None,
) -> SuperpixelClassification:
    """Epithelium mask of an RGB image already at ``model.settings.mpp``.

    Parameters
    ----------
    image : (H, W, 3) uint8
    model : EpitheliumModel, optional
        Default :func:`default_model`.
    mask : (H, W) bool, optional
        Tissue (default everywhere).
    stains : StainVectors, optional
        The slide's vectors and glass colour (default: standard vectors, glass at 255; see
        :func:`superpixel_features`).
    """
    model = model or default_model()
    sf = superpixel_features(image, mask=mask, settings=model.settings, stains=stains)
    decision = model.decision_function(sf.features) if len(sf) else np.zeros(0)
    return SuperpixelClassification(sf.labels, decision, epithelium_from_decisions(sf.labels, decision, model.settings))


def epithelium_from_decisions(labels: np.ndarray, decision: np.ndarray, settings: EpitheliumSettings) -> np.ndarray:
    """The epithelium mask of an image from its superpixels' SVM decision values.

    With ``settings.decision_smoothing_um`` = 0 a pixel is epithelium where its superpixel's decision is
    > 0. Otherwise each pixel takes the sign of the Gaussian-weighted mean decision of the superpixel pixels
    around it (standard deviation ``decision_smoothing_um`` at ``settings.mpp``; pixels outside the
    superpixels, label -1, carry no weight and stay stroma).

    Parameters
    ----------
    labels : (H, W) int32
        Superpixels 0..K-1, -1 outside.
    decision : (K,) float
    settings : EpitheliumSettings

    Returns
    -------
    (H, W) bool

    Examples
    --------
    >>> labels = np.array([[0, 0, 1, 1, 2, 2]], np.int32)
    >>> s = EpitheliumSettings()
    >>> epithelium_from_decisions(labels, np.array([1.0, -0.1, 1.0]), s).astype(int).tolist()
    [[1, 1, 0, 0, 1, 1]]
    >>> from dataclasses import replace
    >>> epithelium_from_decisions(labels, np.array([1.0, -0.1, 1.0]), replace(s, decision_smoothing_um=8.0)).astype(int).tolist()
    [[1, 1, 1, 1, 1, 1]]
    """
    labels = np.asarray(labels)
    decision = np.asarray(decision, np.float64).reshape(-1)
    if labels.size and int(labels.max(initial=-1)) >= decision.size:
        raise InvalidInputError(
            f"labels go up to {int(labels.max())} but only {decision.size} decision values were given"
        )
    sigma = settings.decision_smoothing_um / settings.mpp
    inside = labels >= 0
    if sigma <= 0 or not decision.size:
        return np.concatenate([[False], decision > 0])[labels + 1]
    from scipy.ndimage import gaussian_filter

    per_pixel = np.concatenate([[0.0], decision]).astype(np.float32)[labels + 1]
    return (gaussian_filter(per_pixel, sigma, mode="constant") > 0) & inside


# ------------------------------------------------------------------------------------------ slides
@dataclass
class EpitheliumMap:
    """Epithelium and tissue masks of a whole slide at the classification resolution.

    Attributes
    ----------
    epithelium_mask : (H, W) bool
        Pixel ``(i, j)`` covers level-0 ``[j*sx, (j+1)*sx) x [i*sy, (i+1)*sy)``, ``(sx, sy) = level0_per_pixel``.
    tissue_mask : (H, W) bool
        The tissue the superpixels were made in (the :class:`~her2fast.stages.tissue.TissueMask` at this grid).
    mpp : float
    level0_per_pixel : (float, float)
    n_superpixels : int
    stains : StainVectors
    model_sha256 : str
    seconds : float
        Wall time of :func:`classify_slide`.
    """

    epithelium_mask: np.ndarray
    tissue_mask: np.ndarray
    mpp: float
    level0_per_pixel: tuple[float, float]
    n_superpixels: int
    stains: StainVectors
    model_sha256: str
    seconds: float = 0.0

    @property
    def epithelium_fraction(self) -> float:
        """Epithelium share of the tissue."""
        t = int(self.tissue_mask.sum())
        return float((self.epithelium_mask & self.tissue_mask).sum()) / t if t else 0.0


def _chunks(width: int, height: int, size: int) -> list[tuple[int, int, int, int]]:
    return [
        (x, y, min(size, width - x), min(size, height - y))
        for y in range(0, height, size)
        for x in range(0, width, size)
    ]


def _tissue_on_grid(
    tissue: object, shape: tuple[int, int], level0_per_pixel: tuple[float, float], x0: int = 0, y0: int = 0
) -> np.ndarray:
    """The tissue mask sampled (nearest) at the centres of a block of the medium grid."""
    tm = tissue.mask  # type: ignore[attr-defined]
    tsx, tsy = tissue.level0_per_pixel  # type: ignore[attr-defined]
    sx, sy = level0_per_pixel
    h, w = shape
    cols = np.floor((x0 + np.arange(w) + 0.5) * sx / tsx).astype(np.int64)
    rows = np.floor((y0 + np.arange(h) + 0.5) * sy / tsy).astype(np.int64)
    okc = (cols >= 0) & (cols < tm.shape[1])
    okr = (rows >= 0) & (rows < tm.shape[0])
    out = tm[np.clip(rows, 0, tm.shape[0] - 1)][:, np.clip(cols, 0, tm.shape[1] - 1)]
    return out & okr[:, None] & okc[None, :]


def _slide_blocks(
    slide: object,
    tissue: object,
    settings: EpitheliumSettings,
    stains: StainVectors | None,
    workers: int,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[tuple[int, int], tuple[float, float], Iterator]:
    """Superpixel features of every block of the medium grid that holds tissue (thread pool, in order);
    ``transform`` (training augmentation) is applied to each block's RGB pixels before the features."""
    from ...io.slide import Slide
    from ..tissue import TissueMask

    if not isinstance(slide, Slide):
        raise InvalidInputError(
            f"slide must be a her2fast.io.slide.Slide (from open_slide), got {type(slide).__name__}"
        )
    if not isinstance(tissue, TissueMask):
        raise InvalidInputError(f"tissue must be a TissueMask (from detect_tissue), got {type(tissue).__name__}")
    mpp = settings.mpp
    width, height = slide.size_at(mpp)
    l0 = (mpp / slide.mpp_x, mpp / slide.mpp_y)
    blocks = []
    for x, y, w, h in _chunks(width, height, settings.chunk_size):
        m = _tissue_on_grid(tissue, (h, w), l0, x, y)
        if m.any():
            blocks.append((x, y, w, h, m))

    def work(b: tuple) -> tuple:
        x, y, w, h, m = b
        rgb = slide.read(x * l0[0], y * l0[1], w, h, mpp)
        if transform is not None:
            rgb = transform(rgb)
        return x, y, m, superpixel_features(rgb, mask=m, settings=settings, stains=stains)

    def run() -> Iterator:
        if workers <= 1:
            yield from map(work, blocks)
            return
        with ThreadPoolExecutor(max_workers=workers) as pool:
            yield from pool.map(work, blocks)

    return (width, height), l0, run()


def classify_slide(
    slide: object,
    tissue: object,
    model: EpitheliumModel | None = None,
    *,
    stains: StainVectors | None = None,
    workers: int | None = None,
) -> EpitheliumMap:
    """Classify the tissue of a slide into epithelium and stroma at ``model.settings.mpp``.

    The slide is read at the model's resolution in square blocks (``settings.chunk_size``) that hold
    tissue; each block gets its own superpixels (inside the tissue mask), features and SVM decisions, on a
    thread pool (the native kernels release the GIL).

    Parameters
    ----------
    slide : her2fast.io.slide.Slide
    tissue : her2fast.stages.tissue.TissueMask
        From :func:`her2fast.stages.tissue.detect_tissue` on the same slide.
    model : EpitheliumModel, optional
        Default :func:`default_model`.
    stains : StainVectors, optional
        The slide's vectors (:func:`her2fast.stages.stain.slide_stain_vectors`); default standard.
    workers : int, optional
        Threads (default: the CPU count, at most 4).

    Returns
    -------
    EpitheliumMap
    """
    t0 = time.perf_counter()
    model = model or default_model()
    if not isinstance(model, EpitheliumModel):
        raise InvalidInputError(f"model must be an EpitheliumModel, got {type(model).__name__}")
    workers = min(4, os.cpu_count() or 1) if workers is None else as_int(workers, "workers", 1, 64)
    stains = stains or StainVectors.standard(getattr(tissue, "background", None))
    (width, height), l0, results = _slide_blocks(slide, tissue, model.settings, stains, workers)
    epi = np.zeros((height, width), bool)
    tis = np.zeros((height, width), bool)
    n_sp = 0
    for x, y, m, sf in results:
        h, w = m.shape
        tis[y : y + h, x : x + w] = m
        if len(sf):
            decision = model.decision_function(sf.features)
            epi[y : y + h, x : x + w] = epithelium_from_decisions(sf.labels, decision, model.settings)
            n_sp += len(sf)
    return EpitheliumMap(epi, tis, model.settings.mpp, l0, n_sp, stains, model.sha256, time.perf_counter() - t0)


@dataclass
class EpitheliumTiles:
    """The tiles that go on to membrane segmentation.

    Attributes
    ----------
    grid : her2fast.stages.tissue.TileGrid
        The input grid restricted to tiles with enough epithelium (same geometry; ``occupancy`` unchanged).
    epithelium_fraction : (N,) float32
        Epithelium fraction of each kept tile's core.
    all_epithelium_fraction : (M,) float32
        Epithelium fraction of every tile of the input grid.
    min_epithelium : float
    """

    grid: TileGrid
    epithelium_fraction: np.ndarray
    all_epithelium_fraction: np.ndarray
    min_epithelium: float

    def __len__(self) -> int:
        return int(self.epithelium_fraction.size)


def select_tiles(grid: object, epithelium: EpitheliumMap, *, min_epithelium: float = 0.05) -> EpitheliumTiles:
    """Keep the tiles of ``grid`` whose core is at least ``min_epithelium`` epithelium.

    Parameters
    ----------
    grid : her2fast.stages.tissue.TileGrid
    epithelium : EpitheliumMap
        Of the same slide.
    min_epithelium : float
        In [0, 1]; 0 keeps tiles with any epithelium.
    """
    from ..tissue import TileGrid
    from ..tissue.tiles import _area_fractions

    if not isinstance(grid, TileGrid):
        raise InvalidInputError(f"grid must be a TileGrid (from tile_grid), got {type(grid).__name__}")
    if not isinstance(epithelium, EpitheliumMap):
        raise InvalidInputError(
            f"epithelium must be an EpitheliumMap (from classify_slide), got {type(epithelium).__name__}"
        )
    try:
        min_epithelium = float(min_epithelium)
    except (TypeError, ValueError):
        raise InvalidInputError(f"min_epithelium must be a number in [0, 1], got {min_epithelium!r}") from None
    if not 0.0 <= min_epithelium <= 1.0:
        raise InvalidInputError(f"min_epithelium must be in [0, 1], got {min_epithelium}")
    # core bounds: working px -> level 0 -> epithelium px
    b = grid.to_level0(grid.cores)
    sx, sy = epithelium.level0_per_pixel
    frac = _area_fractions(epithelium.epithelium_mask, b[:, 0] / sx, b[:, 1] / sy, b[:, 2] / sx, b[:, 3] / sy)
    frac = frac.astype(np.float32)
    keep = frac > 0 if min_epithelium == 0 else frac >= min_epithelium - 1e-6
    sub = replace(grid, cols=grid.cols[keep], rows=grid.rows[keep], tissue_fraction=grid.tissue_fraction[keep])
    return EpitheliumTiles(sub, frac[keep], frac, min_epithelium)
