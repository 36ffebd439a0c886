"""The two sides of the benchmark, each run in a process of its own: ours and the reference.

Ours is :func:`her2fast.score` with one membrane runtime; the reference runs its slide-level stages
once and times its tile phase on each run. A run returns the side's figures as a dict.
"""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from .reference_pipeline import ReferenceTiles, reference_epithelium

__all__ = ["STAGES"]


def _rss_mb() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024.0 if sys.platform != "darwin" else r / 2**20


class _OursSide:
    """:func:`her2fast.score` on the slide with one membrane runtime, warmed up once."""

    def __init__(self, cfg: dict) -> None:
        from ...api import score
        from ...pipeline import ScoreSettings, ThreadPlan
        from ...stages.membrane import parse_providers, uses_gpu

        self.cfg = cfg
        self.score = score
        self.prov = parse_providers(cfg["providers"])
        self.plan = ThreadPlan.for_machine(cfg["cores"], gpu=uses_gpu(self.prov))
        settings = ScoreSettings(crop_to_epithelium=cfg["crop"])
        if cfg["windows_per_tile"] is not None:
            settings = replace(settings, windows_per_tile=cfg["windows_per_tile"])
        if cfg["batch"] is not None:
            settings = replace(settings, membrane_batch_size=cfg["batch"])
        self.settings = settings
        self._score(settings)  # warm-up: sessions, caches
        self._teardown()
        self.info = {"threads": self.plan.to_dict(), "batch": settings.membrane_batch_size}

    def _score(self, settings):
        return self.score(
            Path(self.cfg["path"]),
            mpp=self.cfg["mpp"],
            providers=self.prov,
            settings=settings,
            progress=False,
            threads=self.plan,
        )

    def _warm_session(self) -> None:
        """Build the membrane session and run it once on the probe tile (not timed)."""
        from ...stages.membrane import get_session, probe_tile

        if self.settings.membrane_method != "unet":
            return
        session = get_session(None, self.prov, self.plan.inference_threads)
        m = session.config.multiple
        tile = probe_tile()
        h, w = tile.shape[0] // m * m, tile.shape[1] // m * m
        session.run(np.ascontiguousarray((tile[:h, :w].astype(np.float32) / 255.0).transpose(2, 0, 1)[None]))

    @staticmethod
    def _teardown() -> None:
        """Close the membrane sessions, so that no runtime thread of ours is left while the reference runs."""
        import gc

        from ...stages.membrane import runtime

        with runtime._SESSIONS_LOCK:
            runtime._SESSIONS.clear()
        gc.collect()

    def run(self, crop: bool = True) -> dict:
        settings = replace(self.settings, crop_to_epithelium=crop)
        self._warm_session()
        t0 = time.perf_counter()
        r = self._score(settings)
        wall = time.perf_counter() - t0
        self._teardown()
        perf = r.provenance["pipeline"]
        tiles_wall = r.timings["tiles_wall"]
        stages = ("tissue", "stain", "epithelium", *STAGES)
        return {
            "pid": _pid(),
            "providers": list(r.provenance["providers"]),
            "probe": perf.get("membrane_runtime_probe"),
            "score": r.score,
            "tiles": perf["tiles"],
            "tiles_wall_s": tiles_wall,
            "tiles_per_s": perf["tiles"] / tiles_wall if tiles_wall > 0 else 0.0,
            "end_to_end_s": wall,
            "slide_level_s": r.timings["total"] - tiles_wall,
            "cpu_percent_tiles": perf["cpu_percent"],
            "windows": perf.get("windows", perf["tiles"]),
            "window_fraction": perf.get("window_fraction", 1.0),
            "stage_busy_s": {k: r.timings.get(k, 0.0) for k in stages},
            "peak_rss_mb": _rss_mb(),
        }


class _ReferenceSide:
    """The reference pipeline: its slide-level stages once, then its tile phase on each ``run``."""

    def __init__(self, cfg: dict) -> None:
        from ...io.slide import open_slide
        from ...pipeline import ScoreSettings
        from ...stages.epithelium import classify_slide, default_model, select_tiles
        from ...stages.stain import slide_stain_vectors
        from ...stages.tissue import detect_tissue, read_tile, tile_grid

        self.read_tile = read_tile
        settings = ScoreSettings()
        self.slide = open_slide(Path(cfg["path"]), mpp=cfg["mpp"])
        slide = self.slide
        t0 = time.perf_counter()
        tissue = detect_tissue(slide)
        grid = tile_grid(
            slide,
            tissue,
            tile_size=settings.tile_size,
            overlap=settings.overlap,
            mpp=settings.mpp,
            min_tissue=settings.min_tissue,
        )
        t_tissue = time.perf_counter() - t0
        t0 = time.perf_counter()
        model = default_model()
        _, n_sp = reference_epithelium(slide, tissue, model)
        t_epi = time.perf_counter() - t0
        # the same tiles as ours (our selection; the reference's mask differs only by SLIC's details)
        stains = slide_stain_vectors(slide, grid, background=tissue.background)
        self.sub = select_tiles(
            grid, classify_slide(slide, tissue, model, stains=stains), min_epithelium=settings.min_epithelium
        ).grid
        # evenly spaced over the selection, so the sample is the slide's mix of tiles (the first ones
        # in grid order are edge tiles of the top rows: fewer cells, cheaper than the slide's average)
        all_tiles = list(self.sub)
        n = min(cfg["tiles"], len(all_tiles))
        pick = ((np.arange(n) + 0.5) * len(all_tiles) / max(n, 1)).astype(int)  # midpoints of n equal runs
        self.tiles = [all_tiles[i] for i in pick] if all_tiles else []
        self.ref = ReferenceTiles(settings.mpp, cfg["cores"])
        if self.tiles:  # warm-up (first calls into torch, scikit-image): not timed
            self.ref.tile(self.read_tile(slide, self.sub, self.tiles[0]).image, {})
        self.info = {
            "slide_level_s": {"tissue": t_tissue, "epithelium": t_epi},
            "superpixels": n_sp,
            "membrane_runtime": self.ref.membrane_runtime,
        }

    def run(self) -> dict:
        timings: dict[str, float] = {}
        n_cells = 0
        t_tiles, c0 = time.perf_counter(), time.process_time()
        for tile in self.tiles:
            t0 = time.perf_counter()
            image = self.read_tile(self.slide, self.sub, tile).image
            timings["read"] = timings.get("read", 0.0) + time.perf_counter() - t0
            n_cells += self.ref.tile(image, timings)
        wall, cpu = time.perf_counter() - t_tiles, time.process_time() - c0
        return {
            "pid": _pid(),
            "tiles": len(self.tiles),
            "tiles_wall_s": wall,
            "tiles_per_s": len(self.tiles) / wall if wall > 0 else 0.0,
            "cells_per_tile": n_cells / max(1, len(self.tiles)),
            "cpu_percent_tiles": 100.0 * cpu / wall if wall > 0 else 0.0,
            "ms_per_tile": {k: 1e3 * v / max(1, len(self.tiles)) for k, v in timings.items()},
            "peak_rss_mb": _rss_mb(),
        }


def _pid() -> int:
    import os

    return os.getpid()


STAGES = ("read", "deconvolve", "membrane", "nuclei", "cells")
