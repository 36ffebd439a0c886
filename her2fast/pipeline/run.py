"""The per-slide pipeline: slide -> tissue -> tiles -> stain -> epithelium -> membrane -> nuclei -> cells.

:func:`run_slide` finds the tissue, the tile grid, the stain vectors and the epithelium, then runs the
tiles through a bounded stream (reader threads -> pre-processing -> network lanes -> cells; bounded
queues, one :class:`ThreadPlan` for every thread count); ``ThreadPlan.sequential()`` runs the same
stages on the calling thread and gives the same cell table. :func:`her2fast.score` wraps it and applies
the scoring rules.

Memory: one padded tile (its RGB and a few float maps of ``(tile_size + 2 * overlap)^2`` pixels) at a
time, plus the slide's tables (cells, tiles) and low-resolution masks (tissue at ~8 um/px, epithelium
at 2 um/px). Nothing at full resolution is kept.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import InvalidInputError
from ..io.regions import RegionSelection
from ..scoring import CellTable
from ..stages.cells import merge_cell_tables
from .progress import Progress
from .settings import ScoreSettings, ThreadPlan
from .stream import _TileStream

__all__ = ["SlideMaps", "PipelineOutput", "run_slide", "MAX_SCORING_MPP"]

#: slides coarser than this (um/px at level 0) are not scored: a membrane is a fraction of a micrometre
#: wide, and the coarse images scored today (~1.8 um/px contest patches) are at the edge of resolving it
MAX_SCORING_MPP = 2.0


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
    performance: dict = field(default_factory=dict)
    #: quality-control decisions and the figures behind them (``"stain_gate"``: StainGateDecision.to_dict(),
    #: ``"quality"``: QualityTally.to_dict() with ``settings.quality_map``)
    qc: dict = field(default_factory=dict)


def _kept(tissue: np.ndarray, chosen: np.ndarray) -> float:
    n = int(tissue.sum())
    return round(float((tissue & chosen).sum()) / n, 4) if n else 0.0


def _score_pieces(tissue, cells: CellTable, settings: ScoreSettings, qc: dict, flags: list[str]) -> None:
    """Score every separate tissue piece with enough tumour cells; flag ``tissue_pieces_disagree`` when
    two such pieces differ in category (a control beside the patient's tissue, or heterogeneity).

    ``qc["pieces"]``: per piece its number, level-0 bounding box, area (mm^2), tumour cells and, with at
    least ``rules.min_tumour_cells`` of them, category and % complete.
    """
    from ..scoring import score_cells
    from ..stages.tissue import tissue_pieces

    pieces = tissue_pieces(tissue.mask, mpp=tissue.mpp, level0_per_pixel=tissue.level0_per_pixel)
    if len(pieces) < 2 or not len(cells):
        return
    rules = settings.rules
    of = pieces.piece_of(cells.x, cells.y)
    rows, categories = [], set()
    for k in range(1, len(pieces) + 1):
        sel = cells.select(of == k)
        n = int(sel.is_tumour.sum())
        row: dict[str, object] = {
            "piece": k,
            "bbox_level0": [round(float(v), 1) for v in pieces.bbox[k - 1]],
            "area_mm2": round(float(pieces.area_um2[k - 1]) * 1e-6, 3),
            "tumour_cells": n,
        }
        if n >= rules.min_tumour_cells:
            res = score_cells(sel, rules)
            row["category"] = res.category
            row["percent_complete"] = round(res.summary.percent_complete, 2) if res.summary else None
            categories.add("0" if res.category == "0+" else res.category)
        rows.append(row)
    qc["pieces"] = rows
    if len(categories) > 1 and "tissue_pieces_disagree" not in flags:
        flags.append("tissue_pieces_disagree")


def _membrane_sha(method: str) -> dict[str, str]:
    if method != "unet":
        return {}
    try:
        from ..stages.membrane import load_model_config

        return {"membrane_unet": load_model_config().sha256}
    except Exception:  # noqa: BLE001 - provenance only; predict raises the real error
        return {}


def run_slide(
    slide,
    settings: ScoreSettings,
    *,
    providers="auto",
    progress: bool = True,
    threads: ThreadPlan | None = None,
    regions: RegionSelection | None = None,
) -> PipelineOutput:
    """Run the stages over one open slide: slide-level stages, then the tiles as a bounded stream.

    Parameters
    ----------
    slide : her2fast.io.slide.Slide
    settings : ScoreSettings
    providers : "auto" or list of str
        What runs the membrane U-Net: ONNX Runtime execution providers, or ``["OpenVINO"]`` (see
        :class:`her2fast.stages.membrane.MembraneSession`).
    progress : bool
        Progress line on stderr.
    threads : ThreadPlan, optional
        Threads of the tile stream (default :meth:`ThreadPlan.for_machine`); the result does not
        depend on it (:meth:`ThreadPlan.sequential` runs everything on the calling thread).

    Returns
    -------
    PipelineOutput
        ``not_scorable`` names the reason when the slide cannot be scored (coarser than
        :data:`MAX_SCORING_MPP` on either axis, a greyscale image, no tissue, refused by the stain gate, no
        epithelium: the cell table is then empty; too much of the tumour area unusable under
        ``settings.quality_map``: the usable cells are kept, for review).
    """
    from ..qc import check_colour, check_slide_stain
    from ..stages.epithelium import classify_slide, default_model, select_tiles
    from ..stages.stain import slide_stain_vectors
    from ..stages.tissue import detect_tissue, tile_grid

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

    qc: dict[str, object] = {}

    def out(not_scorable: str | None, cells: CellTable, stains: dict, used: list[str]) -> PipelineOutput:
        return PipelineOutput(cells, maps, timings, counts, flags, not_scorable, stains, used, shas, qc=qc)

    coarse = max(slide.mpp_x, slide.mpp_y)
    if coarse > MAX_SCORING_MPP:
        # membranes are not resolved, and working at s.mpp would multiply the pixels by (mpp / s.mpp)^2
        flags.append("resolution_too_coarse")
        return out(
            f"the slide's resolution, {coarse:.3g} um/px, is coarser than {MAX_SCORING_MPP} um/px: "
            "membrane staining cannot be judged at it (scan at 20x or 40x, or pass the right mpp)",
            CellTable.empty(),
            {},
            [],
        )
    t = time.perf_counter()
    # an image without colour cannot be unmixed: refuse it for that (always, also with the stain gate off),
    # before tissue detection can take it for empty glass
    colour = check_colour(slide.thumbnail(max_size=512))
    qc["colour"] = colour.to_dict()
    if not colour.scorable:
        flags.append(str(colour.reason))
        return out(f"{colour.reason} ({colour.message})", CellTable.empty(), {}, [])
    tissue = detect_tissue(slide)
    if regions is not None and not isinstance(regions, RegionSelection):
        raise InvalidInputError(f"regions must be a her2fast.io.RegionSelection, got {type(regions).__name__}")
    if regions is not None and not regions.empty:
        chosen = regions.mask(tissue.mask.shape, tissue.level0_per_pixel)
        qc["regions"] = {**regions.to_dict(), "tissue_fraction_kept": _kept(tissue.mask, chosen)}
        tissue = replace(tissue, mask=tissue.mask & chosen)
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
        if "regions" in qc:
            return out(
                "no tissue inside the chosen regions (check that the GeoJSON belongs to this slide: level-0 "
                "pixel coordinates)",
                CellTable.empty(),
                {},
                [],
            )
        return out("no tissue found: the slide looks like empty glass", CellTable.empty(), {}, [])
    stains = slide_stain_vectors(slide, grid, background=tissue.background)
    if stains.fallback:
        flags.append("stain_vectors_fallback")
    t = lap("stain", t)
    if s.stain_gate:
        gate = check_slide_stain(slide, tissue, grid, stains)
        qc["stain_gate"] = gate.to_dict()
        t = lap("stain_gate", t)
        if gate.outside_training_range:
            flags.append("outside_training_range")
        flags.extend(f for f in gate.flags if f not in flags)
        if not gate.scorable:
            flags.append(str(gate.reason).split(":")[0])
            return out(f"{gate.reason} ({gate.message})", CellTable.empty(), stains.to_dict(), [])
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

    if threads is not None and not isinstance(threads, ThreadPlan):
        raise InvalidInputError(f"threads must be a her2fast.pipeline.ThreadPlan or None, got {type(threads).__name__}")
    plan = threads
    used: list[str] = []
    probe = None
    if s.membrane_method == "unet":
        from ..stages.membrane import get_session, uses_gpu

        if plan is None:
            plan = ThreadPlan.for_machine(gpu=uses_gpu(providers))
        session = get_session(None, providers, plan.inference_threads)
        used = list(session.providers)
        probe = session.selection  # providers="auto" on a bf16 CPU: OpenVINO vs ONNX Runtime, measured
        shas["membrane_unet"] = session.config.sha256
        if session.fell_back:
            flags.append("gpu_fallback_to_cpu")
    else:
        used = ["classical"]
    plan = plan or ThreadPlan.for_machine()

    prog = Progress(name, len(sub), enabled=progress)
    stream = _TileStream(slide, sub, epi, stains, s, providers, plan, prog)
    tables, n_artefacts, busy, perf = stream.run()
    for key, v in busy.items():
        timings[key] = timings.get(key, 0.0) + v
    timings["tiles_wall"] = perf["wall_s"]
    t = time.perf_counter()
    cells = merge_cell_tables(tables, level0_per_pixel=sub.level0_per_pixel)
    if "regions" in qc and regions is not None:
        keep = regions.keeps(cells.x, cells.y)
        counts["cells_outside_regions"] = int((~keep).sum())
        cells = cells.select(keep)
    lap("merge", t)
    counts["tiles_without_epithelium"] = perf["tiles_without_epithelium"]
    counts["tiles_segmented"] = len(sub) - perf["tiles_without_epithelium"]
    counts["artefact_loops"] = n_artefacts
    not_scorable = None
    if stream.quality is not None:
        from ..qc import REASON_UNUSABLE, QualityRules

        rules = QualityRules()
        q = stream.quality
        qc["quality"] = q.to_dict(s.mpp, rules)
        counts["cells_quality_excluded"] = q.cells_removed
        if q.removed_px.get("any", 0):
            flags.append("quality_excluded")
        if q.unusable_tumour_fraction > rules.max_unusable_tumour:
            flags.append(REASON_UNUSABLE)
            not_scorable = (
                f"{REASON_UNUSABLE}: {100 * q.unusable_tumour_fraction:.0f} % of the tumour area is out of focus or "
                f"under pen ink (more than {100 * rules.max_unusable_tumour:.0f} %); rescan the slide, or clean "
                "the ink off the glass"
            )
    _score_pieces(tissue, cells, s, qc, flags)
    result = out(not_scorable, cells, stains.to_dict(), used)
    if probe is not None:
        perf["membrane_runtime_probe"] = probe
    result.performance = perf
    return result
