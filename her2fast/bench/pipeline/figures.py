"""The benchmark's figures: the spread of a side's runs, each runtime's entry of the JSON, the projection."""

from __future__ import annotations

from .sides import STAGES

__all__ = ["PROJECT_TILES", "spread"]


PROJECT_TILES = 3000


def spread(values: list[float]) -> dict:
    """Median, min and max of a list of figures (the runs of one side), and the runs themselves.

    Examples
    --------
    >>> spread([3.0, 1.0, 2.0])
    {'median': 2.0, 'min': 1.0, 'max': 3.0, 'runs': [3.0, 1.0, 2.0]}
    """
    import statistics

    return {
        "median": statistics.median(values) if values else 0.0,
        "min": min(values, default=0.0),
        "max": max(values, default=0.0),
        "runs": list(values),
    }


def _r(x: float, nd: int = 3) -> float:
    return round(float(x), nd)


def _projected_ratio(entry: dict, ref_slide_level: float) -> float:
    ours = entry["ours"]["projected_3000_tiles_s"]
    ref_tps512 = entry["reference"]["tiles_per_s"]["median"] * entry["eq512"]
    if ref_tps512 <= 0 or ours <= 0:
        return float("inf")
    entry["reference"]["projected_3000_tiles_s"] = _r(ref_slide_level + PROJECT_TILES / ref_tps512, 1)
    return _r(entry["reference"]["projected_3000_tiles_s"] / ours, 2)


def _runtime_report(
    name: str, text: str, info: dict, ours_runs: list, ref_runs: list, whole: dict | None, settings, eq512: float
) -> dict:
    tps = spread([o["tiles_per_s"] for o in ours_runs])
    slide_level = spread([o["slide_level_s"] for o in ours_runs])["median"]
    tps512 = tps["median"] * eq512
    used = [o["providers"] for o in ours_runs]
    entry: dict = {
        "name": name,
        "providers_requested": text,
        "providers": used[0] if all(u == used[0] for u in used) else used,
        "probe": ours_runs[0]["probe"],
        "eq512": eq512,
        "threads": info["threads"],
        "batch": info["batch"],
        "ours": {
            "pid": ours_runs[0]["pid"],
            "score": ours_runs[0]["score"],
            "tiles": ours_runs[0]["tiles"],
            "tiles_per_s": {k: (_r(v) if k != "runs" else [_r(x) for x in v]) for k, v in tps.items()},
            "tiles_512_per_s": _r(tps512),
            "slide_level_s": _r(slide_level),
            "projected_3000_tiles_s": _r(slide_level + PROJECT_TILES / tps512, 1) if tps512 > 0 else float("inf"),
            "cpu_percent_tiles": {
                k: (_r(v, 1) if k != "runs" else [_r(x, 1) for x in v])
                for k, v in spread([o["cpu_percent_tiles"] for o in ours_runs]).items()
            },
            "peak_rss_mb": _r(max(o["peak_rss_mb"] for o in ours_runs), 1),
            "crop_to_epithelium": settings.crop_to_epithelium,
            "windows": ours_runs[0]["windows"],
            "window_fraction": _r(ours_runs[0]["window_fraction"], 4),
            "windows_per_tile": settings.windows_per_tile,
            "stage_busy_s": {
                k: _r(spread([o["stage_busy_s"][k] for o in ours_runs])["median"]) for k in ours_runs[0]["stage_busy_s"]
            },
            "runs_detail": [
                {k: o[k] for k in ("providers", "probe", "tiles_per_s", "cpu_percent_tiles")} for o in ours_runs
            ],
        },
    }
    if ref_runs:
        rtps = spread([rr["tiles_per_s"] for rr in ref_runs])
        entry["reference"] = {
            "pid": ref_runs[0]["pid"],
            "tiles": ref_runs[0]["tiles"],
            "tiles_per_s": {k: (_r(v) if k != "runs" else [_r(x) for x in v]) for k, v in rtps.items()},
            "cpu_percent_tiles": _r(spread([rr["cpu_percent_tiles"] for rr in ref_runs])["median"], 1),
            "peak_rss_mb": _r(max(rr["peak_rss_mb"] for rr in ref_runs), 1),
            "cells_per_tile": _r(ref_runs[0]["cells_per_tile"], 1),
            "ms_per_tile": {
                k: _r(spread([rr["ms_per_tile"].get(k, 0.0) for rr in ref_runs])["median"], 1) for k in STAGES
            },
            "runs_detail": [
                {"runtime": name, "tiles_per_s": _r(rr["tiles_per_s"]), "tiles_wall_s": _r(rr["tiles_wall_s"])}
                for rr in ref_runs
            ],
        }
        per_run = [o["tiles_per_s"] / rr["tiles_per_s"] for o, rr in zip(ours_runs, ref_runs) if rr["tiles_per_s"] > 0]
        entry["ratio"] = {
            "tile_phase_of_medians": _r(tps["median"] / rtps["median"], 2) if rtps["median"] > 0 else float("inf"),
            "tile_phase_per_run": {
                k: (_r(v, 2) if k != "runs" else [_r(x, 2) for x in v]) for k, v in spread(per_run).items()
            },
        }
        if whole is not None and rtps["median"] > 0:
            entry["ours_whole_tiles"] = {
                "runs": 1,
                "tiles_per_s": _r(whole["tiles_per_s"]),
                "tiles_512_per_s": _r(whole["tiles_per_s"] * eq512),
                "ratio_tile_phase": _r(whole["tiles_per_s"] / rtps["median"], 2),
            }
    return entry
