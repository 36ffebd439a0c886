"""The benchmark's driver: :func:`main` makes or takes the slide, starts the sides and alternates their runs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from .figures import _projected_ratio, _r, _runtime_report
from .machine import cpu_info, runtimes
from .processes import _Process
from .sides import _pid
from .tables import _print_runtime, _print_summary

__all__ = ["main"]


def _make_slide(folder: Path, size: int, category: str, seed: int) -> Path:
    from ...synth import is_current_phantom, make_slide

    path = folder / f"bench_{category.replace('+', 'p')}_{size}_{seed}.tiff"
    if not is_current_phantom(path):
        print(f"making a {size}x{size} phantom slide ({category}) ...", flush=True)
        make_slide(path, category=category, width=size, height=size, mpp=0.5, seed=seed)
    return path


def main(
    *,
    slide: str | None = None,
    size: int = 4096,
    category: str = "2+",
    seed: int = 7,
    mpp: float | None = None,
    providers: str = "auto",
    threads: int | None = None,
    batch: int | None = None,
    reference: bool = True,
    reference_tiles: int = 12,
    json_path: str | None = None,
    work_dir: str = "her2fast_bench",
    crop: bool = True,
    windows_per_tile: int | None = None,
    repeats: int = 3,
) -> int:
    """Run the benchmark and print its tables; returns the exit code.

    Each side runs in a process of its own (``python -m her2fast.bench.pipeline --worker``): ours,
    one process per membrane runtime, warmed up once; the reference, one process for all. The
    sides take turns ``repeats`` times (ours first in odd runs, the reference first in even ones),
    so both see the same machine noise; while one side runs the other is idle, and ours closes its
    membrane session after each run (no runtime thread of ours is left). Printed per runtime: the
    median and min-max of tiles/s of each side, the ratio of the medians, CPU % of the tile phase,
    peak RSS of each process and the membrane runtime each run used.
    """
    from ... import __version__
    from ...errors import InvalidInputError
    from ...pipeline import ScoreSettings
    from ...pipeline.settings import _available_cores
    from ...stages.membrane import parse_providers

    if reference and reference_tiles < 1:
        raise InvalidInputError(
            f"reference_tiles must be >= 1, got {reference_tiles}; pass --no-reference to skip the reference pipeline"
        )
    if repeats < 3:
        raise InvalidInputError(
            f"repeats must be >= 3 (a median and a spread need three runs), got {repeats}; pass --repeats 3 or more"
        )
    cpu = cpu_info()
    rts = runtimes(providers, cpu["flags"])
    for _, text in rts:
        if text != "auto":
            parse_providers(text)
    cores = _available_cores() if threads is None else threads
    settings = ScoreSettings(crop_to_epithelium=crop)
    if windows_per_tile is not None:
        settings = replace(settings, windows_per_tile=windows_per_tile)
    eq512 = (settings.tile_size / 512) ** 2  # a 448-px tile core is 0.77 of a 512^2 tile
    folder = Path(work_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = Path(slide) if slide else _make_slide(folder, size, category, seed)
    flags = "  ".join(f"{f} {'?' if v is None else ('yes' if v else 'no')}" for f, v in cpu["flags"].items())
    print(f"her2fast {__version__} bench pipeline: {path} ({cores} cores)", flush=True)
    print(f"cpu: {cpu['model']}, {cpu['cpus']} logical CPUs; {flags}", flush=True)
    print(
        f"runtimes: {', '.join(n for n, _ in rts)}; {repeats} runs of each side, alternated "
        f"(median and min-max printed: a shared machine makes single runs noisy)",
        flush=True,
    )
    out: dict = {
        "her2fast_version": __version__,
        "slide": str(path),
        "cores": cores,
        "cpu": cpu,
        "repeats": repeats,
        "bench_pid": _pid(),
        "runtimes": [],
    }
    base = {"path": str(path), "mpp": mpp, "cores": cores}
    ref_proc = None
    try:
        if reference:
            print(f"reference: starting its process (slide-level stages, {reference_tiles} tiles) ...", flush=True)
            ref_proc = _Process({**base, "side": "reference", "tiles": reference_tiles})
            rinfo = ref_proc.info
            ref_slide = sum(rinfo["slide_level_s"].values())
            out["reference"] = {
                "pid": rinfo["pid"],
                "membrane_runtime": rinfo["membrane_runtime"],
                "slide_level_s": _r(ref_slide),
                "superpixels": rinfo["superpixels"],
                "runs": [],
            }
            print(
                f"reference: pid {rinfo['pid']}, membrane {rinfo['membrane_runtime']}; slide-level stages "
                f"{ref_slide:.2f} s (tissue, scikit-image SLIC + LBP, scikit-learn SVM)",
                flush=True,
            )
        for name, text in rts:
            cfg = {
                **base,
                "side": "ours",
                "providers": text,
                "crop": crop,
                "batch": batch,
                "windows_per_tile": windows_per_tile,
            }
            print(f"\n== runtime {name} (--providers {text}): starting our process, warm-up run ...", flush=True)
            ours_proc = _Process(cfg)
            ours_runs: list[dict] = []
            ref_runs: list[dict] = []
            whole = None
            try:
                for i in range(repeats):
                    order = ("ours", "reference") if i % 2 == 0 else ("reference", "ours")
                    for side in order:
                        if side == "ours":
                            ours_runs.append(ours_proc.run(crop=crop))
                            o = ours_runs[-1]
                            print(
                                f"  run {i + 1}/{repeats} ours: {o['tiles_per_s']:.2f} tiles/s "
                                f"(membrane {o['providers']}, CPU {o['cpu_percent_tiles']:.0f} %)",
                                flush=True,
                            )
                        elif ref_proc is not None:
                            ref_runs.append(ref_proc.run())
                            rr = ref_runs[-1]
                            print(f"  run {i + 1}/{repeats} reference: {rr['tiles_per_s']:.2f} tiles/s", flush=True)
                if crop and ref_proc is not None:
                    whole = ours_proc.run(crop=False)  # what the windows leave out, once
            finally:
                ours_proc.close()
            entry = _runtime_report(name, text, ours_proc.info, ours_runs, ref_runs, whole, settings, eq512)
            if ref_proc is not None:
                entry["ratio"]["projected_3000_tiles"] = _projected_ratio(entry, out["reference"]["slide_level_s"])
                out["reference"]["runs"].extend(entry["reference"]["runs_detail"])
            _print_runtime(entry, settings, cores, eq512, reference=ref_proc is not None)
            out["runtimes"].append(entry)
    finally:
        if ref_proc is not None:
            ref_proc.close()
    if len(out["runtimes"]) > 1:
        _print_summary(out["runtimes"], reference=reference)
    if json_path:
        Path(json_path).write_text(json.dumps(out, indent=1))
        print(f"wrote {json_path}")
    return 0
