"""The per-slide loop: slide -> tissue -> tiles -> stain -> epithelium -> membrane -> nuclei -> cells.

A plain, sequential path (one tile at a time, in grid order); :func:`her2fast.score` wraps it and
applies the scoring rules. The bounded multi-threaded stream of ``ARCHITECTURE.md`` (reader threads,
batched inference) will replace the loop in :func:`run_slide` without changing what it returns.

Memory: one padded tile (its RGB and a few float maps of ``(tile_size + 2 * overlap)^2`` pixels) at a
time, plus the slide's tables (cells, tiles) and low-resolution masks (tissue at ~8 um/px, epithelium
at 2 um/px). Nothing at full resolution is kept.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from .cells import CellSettings, measure_tile, merge_cell_tables
from .errors import InvalidInputError
from .nuclei import NucleiSettings, segment_nuclei
from .scoring import CellTable, ScoringRules

__all__ = ["ScoreSettings", "SlideMaps", "PipelineOutput", "Progress", "run_slide"]

_METHODS = ("unet", "classical")


@dataclass(frozen=True)
class ScoreSettings:
    """Everything that decides a slide's result besides the slide and the models.

    Parameters
    ----------
    mpp : float
        Working resolution of tiles, membranes, nuclei and cells (0.5 um/px = 20x).
    tile_size : int
        Core side of a tile in working pixels (448: with the 48-px margins a tile is 544 px, which the
        shipped U-Net -- 512-px windows, 32-px margins, one pass up to 640 px -- runs in a single pass;
        512 would need four windows per tile, 1.9x the membrane time for the same cells).
    overlap : int
        Margin read around each core (working pixels). At least ``2 * cells.max_radius_um / mpp``
        (48 px at 0.5 um/px) so that the result does not depend on the tile grid.
    min_tissue : float
        Tiles whose core holds less tissue are not read (0.05).
    min_epithelium : float
        Tiles whose core holds less epithelium (2 um/px map) are not segmented (0.02).
    membrane_method : {"unet", "classical"}
        The shipped U-Net (ONNX Runtime) or the classical ridge-filter baseline
        (:func:`her2fast.membrane.predict_maps`).
    membrane_batch_size : int
        Network tiles per ONNX Runtime call.
    nuclei : NucleiSettings
    cells : CellSettings
        Includes the scoring rules' OD bands (``cells.rules``).
    rules : ScoringRules
        ASCO/CAP thresholds; ``rules.min_tumour_cells`` also decides whether a slide is scorable.
    """

    mpp: float = 0.5
    tile_size: int = 448
    overlap: int = 48
    min_tissue: float = 0.05
    min_epithelium: float = 0.02
    membrane_method: str = "unet"
    membrane_batch_size: int = 4
    nuclei: NucleiSettings = field(default_factory=NucleiSettings)
    cells: CellSettings = field(default_factory=CellSettings)
    rules: ScoringRules = field(default_factory=ScoringRules)

    def __post_init__(self) -> None:
        if self.membrane_method not in _METHODS:
            raise InvalidInputError(f"membrane_method must be one of {_METHODS}, got {self.membrane_method!r}")
        if not (math.isfinite(self.mpp) and self.mpp > 0):
            raise InvalidInputError(f"mpp must be finite and > 0, got {self.mpp}")
        need = math.ceil(2 * self.cells.max_radius_um / self.mpp - 1e-9)
        if self.overlap < need:
            raise InvalidInputError(
                f"overlap must be >= 2 * cells.max_radius_um / mpp = {need} px for a grid-independent cell "
                f"table, got {self.overlap}; pass ScoreSettings(overlap={need})"
            )
        if self.cells.rules != self.rules:
            raise InvalidInputError(
                "cells.rules and rules differ: the intensity bands of measured cells must be the rules the "
                "slide is scored with; pass ScoreSettings(rules=r, cells=CellSettings(rules=r))"
            )

    def to_dict(self) -> dict:
        """JSON-ready dict of every setting."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ScoreSettings:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        rules = ScoringRules(**d.pop("rules", {}))
        cells = dict(d.pop("cells", {}))
        cells.pop("rules", None)
        return cls(nuclei=NucleiSettings(**d.pop("nuclei", {})), cells=CellSettings(rules=rules, **cells),
                   rules=rules, **d)


@dataclass
class SlideMaps:
    """Low-resolution maps of a slide, for overlays and heat maps (not serialised).

    Attributes
    ----------
    tissue_mask : (h, w) bool or None
        At ``tissue_level0_per_pixel`` level-0 pixels per pixel.
    epithelium_mask : (h, w) bool or None
        At ``epithelium_level0_per_pixel``.
    tile_level0 : (float, float)
        Level-0 size (x, y) of a tile core.
    n_cols, n_rows : int
        The tile grid over the whole slide.
    tile_cols, tile_rows : (N,) int32
        Tiles that were segmented.
    """

    tissue_mask: np.ndarray | None = None
    tissue_level0_per_pixel: tuple[float, float] = (1.0, 1.0)
    epithelium_mask: np.ndarray | None = None
    epithelium_level0_per_pixel: tuple[float, float] = (1.0, 1.0)
    tile_level0: tuple[float, float] = (1.0, 1.0)
    n_cols: int = 0
    n_rows: int = 0
    tile_cols: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    tile_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))


@dataclass
class PipelineOutput:
    """What :func:`run_slide` measured, before scoring."""

    cells: CellTable
    maps: SlideMaps
    timings: dict[str, float]
    counts: dict[str, int]
    flags: list[str]
    not_scorable: str | None
    stains: dict
    providers: list[str]
    model_sha256: dict[str, str]


class Progress:
    """A one-line progress report on stderr: tiles done / total, elapsed, ETA.

    Prints every ``every`` tiles (and at the end); on a terminal the line is rewritten in place.
    """

    def __init__(self, name: str, total: int, *, enabled: bool = True, every: int = 10, stream=None) -> None:
        self.name, self.total, self.enabled, self.every = name, total, enabled, max(1, every)
        self.stream = stream if stream is not None else sys.stderr
        self.t0 = time.perf_counter()
        self.done = 0
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.enabled and (self.done % self.every == 0 or self.done == self.total):
            self._print()

    def _print(self) -> None:
        el = time.perf_counter() - self.t0
        rate = self.done / el if el > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        pct = 100.0 * self.done / self.total if self.total else 100.0
        line = f"{self.name}: {self.done}/{self.total} tiles ({pct:.0f} %), {el:.1f} s, ETA {eta:.0f} s"
        end = "" if self._tty and self.done < self.total else "\n"
        self.stream.write(("\r" if self._tty else "") + line + end)
        self.stream.flush()

    def message(self, text: str) -> None:
        if self.enabled:
            self.stream.write(f"{self.name}: {text}\n")
            self.stream.flush()


def _sample_mask(mask: np.ndarray, mask_l0: tuple[float, float], bounds: tuple[int, int, int, int],
                 work_l0: tuple[float, float]) -> np.ndarray:
    """A low-resolution mask sampled (nearest) at the centres of the working pixels of ``bounds``."""
    x0, y0, x1, y1 = bounds
    cols = np.floor((np.arange(x0, x1) + 0.5) * work_l0[0] / mask_l0[0]).astype(np.int64)
    rows = np.floor((np.arange(y0, y1) + 0.5) * work_l0[1] / mask_l0[1]).astype(np.int64)
    h, w = mask.shape
    okc = (cols >= 0) & (cols < w)
    okr = (rows >= 0) & (rows < h)
    out = mask[np.clip(rows, 0, h - 1)][:, np.clip(cols, 0, w - 1)]
    return out & okr[:, None] & okc[None, :]


def _membrane_sha(method: str) -> dict[str, str]:
    if method != "unet":
        return {}
    try:
        from .membrane import load_model_config

        return {"membrane_unet": load_model_config().sha256}
    except Exception:  # noqa: BLE001 - provenance only; predict raises the real error
        return {}


def run_slide(slide, settings: ScoreSettings, *, providers="auto", progress: bool = True) -> PipelineOutput:
    """Run the stages over one open slide, tile by tile.

    Parameters
    ----------
    slide : her2fast.slide.Slide
    settings : ScoreSettings
    providers : "auto" or list of str
        ONNX Runtime execution providers for the membrane U-Net.
    progress : bool
        Progress line on stderr.

    Returns
    -------
    PipelineOutput
        ``not_scorable`` names the reason when the slide cannot be scored (no tissue, no epithelium);
        the cell table is then empty.
    """
    from .epithelium import classify_slide, default_model, select_tiles
    from .stain import StainVectors, deconvolve, slide_stain_vectors
    from .tissue import detect_tissue, read_tiles, tile_grid

    timings: dict[str, float] = {}
    counts: dict[str, int] = {}
    flags: list[str] = []
    maps = SlideMaps()
    name = slide.path.name
    s = settings
    shas: dict[str, str] = {}

    def lap(key: str, t0: float) -> float:
        t1 = time.perf_counter()
        timings[key] = timings.get(key, 0.0) + (t1 - t0)
        return t1

    def out(not_scorable: str | None, cells: CellTable, stains: dict, used: list[str]) -> PipelineOutput:
        return PipelineOutput(cells, maps, timings, counts, flags, not_scorable, stains, used, shas)

    t = time.perf_counter()
    tissue = detect_tissue(slide)
    maps.tissue_mask, maps.tissue_level0_per_pixel = tissue.mask, tissue.level0_per_pixel
    t = lap("tissue", t)
    grid = tile_grid(slide, tissue, tile_size=s.tile_size, overlap=s.overlap, mpp=s.mpp, min_tissue=s.min_tissue)
    maps.n_cols, maps.n_rows = grid.n_cols, grid.n_rows
    maps.tile_level0 = (s.tile_size * grid.level0_per_pixel[0], s.tile_size * grid.level0_per_pixel[1])
    counts["tiles_total"] = grid.n_total
    counts["tiles_tissue"] = len(grid)
    t = lap("grid", t)
    if len(grid) == 0:
        flags.append("no_tissue")
        return out("no tissue found: the slide looks like empty glass", CellTable.empty(), {}, [])
    stains = slide_stain_vectors(slide, grid, background=tissue.background)
    if stains.fallback:
        flags.append("stain_vectors_fallback")
    t = lap("stain", t)
    model = default_model()
    shas["epithelium_svm"] = model.sha256
    epi = classify_slide(slide, tissue, model, stains=stains)
    maps.epithelium_mask, maps.epithelium_level0_per_pixel = epi.epithelium_mask, epi.level0_per_pixel
    sel = select_tiles(grid, epi, min_epithelium=s.min_epithelium)
    counts["tiles_epithelium"] = len(sel)
    t = lap("epithelium", t)
    if len(sel) == 0:
        flags.append("no_epithelium")
        return out("no epithelium (tumour) found in the tissue", CellTable.empty(), stains.to_dict(), [])
    sub = sel.grid
    maps.tile_cols, maps.tile_rows = sub.cols.copy(), sub.rows.copy()

    used: list[str] = []
    if s.membrane_method == "unet":
        from .membrane import get_session

        session = get_session(None, providers)
        used = list(session.providers)
        shas["membrane_unet"] = session.config.sha256
        if session.fell_back:
            flags.append("gpu_fallback_to_cpu")
    else:
        used = ["classical"]
    from .membrane import predict_maps

    prog = Progress(name, len(sub), enabled=progress)
    tables = []
    n_artefacts = 0
    work_l0 = sub.level0_per_pixel
    t = time.perf_counter()
    for tile_image in read_tiles(slide, sub):
        t = lap("read", t)
        tile = tile_image.tile
        conc = deconvolve(tile_image.image, stains)
        t = lap("deconvolve", t)
        mem = predict_maps(tile_image.image, s.mpp, method=s.membrane_method, providers=providers,
                           batch_size=s.membrane_batch_size).membrane
        t = lap("membrane", t)
        nuc = segment_nuclei(conc.hematoxylin, s.mpp, settings=s.nuclei)
        t = lap("nuclei", t)
        epi_patch = _sample_mask(epi.epithelium_mask, epi.level0_per_pixel, tile.padded, work_l0)
        tc = measure_tile(mem, conc.dab, nuc, mpp=s.mpp, origin=tile.padded[:2], core=tile.core,
                          epithelium=epi_patch, settings=s.cells)
        tables.append(tc.cells)
        n_artefacts += tc.n_artefact_loops
        t = lap("cells", t)
        prog.update()
    cells = merge_cell_tables(tables, level0_per_pixel=work_l0)
    lap("merge", t)
    counts["tiles_segmented"] = len(sub)
    counts["artefact_loops"] = n_artefacts
    return out(None, cells, stains.to_dict(), used)
