"""The benchmark's printed tables: one per membrane runtime, and one across the runtimes."""

from __future__ import annotations

from .sides import STAGES

__all__: list[str] = []


def _spread_text(s: dict, nd: int = 2) -> str:
    return f"{s['median']:.{nd}f} ({s['min']:.{nd}f}-{s['max']:.{nd}f})"


def _print_runtime(entry: dict, settings, cores: int, eq512: float, *, reference: bool) -> None:
    o = entry["ours"]
    tps = o["tiles_per_s"]
    probe = entry["probe"]
    probe_text = (
        "none (the runtime was asked for, not chosen)"
        if probe is None
        else ", ".join(f"{k} {v}" for k, v in probe.items())
    )
    print(
        f"runtime {entry['name']}: membrane ran on {entry['providers']} in every run; probe: {probe_text}; "
        f"threads {entry['threads']}, batch {entry['batch']}"
    )
    head = f"{'side':10s} {'pid':>7s} {'runs':>4s} {'tiles/s median (min-max)':>25s} {'of 512^2':>9s} {'CPU %':>6s} {'peak RSS MB':>11s}"
    print(head)
    print("-" * len(head))
    print(
        f"{'ours':10s} {o['pid']:>7d} {len(tps['runs']):>4d} {_spread_text(tps):>25s} "
        f"{tps['median'] * eq512:9.2f} {o['cpu_percent_tiles']['median']:6.0f} {o['peak_rss_mb']:11.0f}"
    )
    if reference and "reference" in entry:
        rf = entry["reference"]
        rt = rf["tiles_per_s"]
        print(
            f"{'reference':10s} {rf['pid']:>7d} {len(rt['runs']):>4d} {_spread_text(rt):>25s} "
            f"{rt['median'] * eq512:9.2f} {rf['cpu_percent_tiles']:6.0f} {rf['peak_rss_mb']:11.0f}"
        )
    print(
        f"ours: {o['tiles']} epithelial tiles of {settings.tile_size}^2 (+{settings.overlap} px margins); "
        f"{tps['median']:.2f} tiles/s = {tps['median'] * eq512:.2f} tiles/s of 512^2 (median); CPU "
        f"{o['cpu_percent_tiles']['median']:.0f} % of one core during the tile phase ({cores} cores), "
        f"peak RSS {o['peak_rss_mb']:.0f} MB, projected 3,000-tile (512^2) slide {o['projected_3000_tiles_s']:.0f} s "
        f"(slide-level {o['slide_level_s']:.2f} s)"
    )
    busy = "  ".join(f"{k} {o['stage_busy_s'].get(k, 0.0) / max(o['tiles'], 1) * 1e3:.0f}" for k in STAGES)
    print(f"ours: busy ms per tile (summed over threads, median run): {busy}")
    if settings.crop_to_epithelium:
        print(
            f"ours: {o['windows']} windows around the epithelium (up to {settings.windows_per_tile} per tile): "
            f"{100 * o['window_fraction']:.0f} % of the tiles' pixels segmented (--no-crop: whole tiles)"
        )
    if reference and "reference" in entry:
        rf = entry["reference"]
        ref_busy = "  ".join(f"{k} {rf['ms_per_tile'].get(k, 0.0):.0f}" for k in STAGES)
        print(
            f"reference: {rf['tiles']} tiles, {rf['cells_per_tile']:.0f} cells/tile; ms per tile (median run): {ref_busy}; "
            f"projected 3,000-tile slide {rf.get('projected_3000_tiles_s', float('inf')):.0f} s"
        )
        ratio = entry["ratio"]
        pr = ratio["tile_phase_per_run"]
        print(
            f"ratio ours/reference: tile phase {ratio['tile_phase_of_medians']:.2f}x (ratio of medians; "
            f"run by run {pr['min']:.2f}-{pr['max']:.2f}x), projected 3,000-tile slide "
            f"{ratio.get('projected_3000_tiles', float('inf')):.2f}x"
        )
        if "ours_whole_tiles" in entry:
            w = entry["ours_whole_tiles"]
            print(
                f"ours, whole tiles (--no-crop, one run): {w['tiles_per_s']:.2f} tiles/s = "
                f"{w['tiles_512_per_s']:.2f} tiles/s of 512^2; ratio to the reference's median, tile phase "
                f"{w['ratio_tile_phase']:.2f}x"
            )


def _print_summary(entries: list[dict], *, reference: bool) -> None:
    print("\n== all runtimes (tiles/s: median (min-max) of the alternated runs)")
    head = f"{'runtime':22s} {'membrane ran on':28s} {'ours tiles/s':>20s} {'reference':>20s} {'ratio':>7s} {'CPU %':>6s} {'RSS MB':>7s}"
    print(head)
    print("-" * len(head))
    for e in entries:
        ref = _spread_text(e["reference"]["tiles_per_s"]) if reference and "reference" in e else "-"
        ratio = f"{e['ratio']['tile_phase_of_medians']:.2f}x" if reference and "ratio" in e else "-"
        print(
            f"{e['name']:22s} {str(e['providers']):28s} {_spread_text(e['ours']['tiles_per_s']):>20s} {ref:>20s} "
            f"{ratio:>7s} {e['ours']['cpu_percent_tiles']['median']:6.0f} {e['ours']['peak_rss_mb']:7.0f}"
        )
