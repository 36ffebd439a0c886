"""Tile latency of ``her2fast view`` on a large slide's store: deep-zoom tiles and overlay tiles, p50 / p95.

    python benchmarks/view_latency.py [--size 40000] [--requests 500] [--keep DIR]

Builds the store first (reused from ``--keep DIR`` when it is there): a ``--base``-px 2+ phantom at 0.25 um/px
is rendered and scored with her2fast, then repeated into a ``--size``² pyramidal JPEG TIFF (OpenSlide's
generic-tiff) with its cell table, epithelium and result repeated alike, and recorded as an ``ok`` run. The
slide's content therefore repeats every ``--base`` pixels; the viewer's work per tile does not depend on that.

Then the viewer is started on 127.0.0.1 (waitress, 8 threads, its tile cache off) and a scripted client
sends ``--requests`` random requests one after another for each kind: a slide tile (OpenSlide's
DeepZoomGenerator, JPEG) and an overlay tile (cells by class, PNG; then the epithelium and heat-map
overlays), at a Deep Zoom level drawn uniformly from
the levels a viewer browses (one tile across up to full resolution) and a random tile of it. Reference, in
the same run: the same slide tiles made by DeepZoomGenerator + JPEG encoding in-process (no server), so the
ratio is the server's overhead. Targets: slide-tile p95 <= 100 ms, overlay p95 <= 150 ms.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shutil
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def build_store(folder: Path, size: int, base: int, seed: int) -> tuple[Path, int]:
    """A store with one ok run of a ``size``² slide made of a scored ``base``² phantom; (store folder, run id)."""
    import tifffile

    from her2fast.io.store import ResultsStore, RunRecord, slide_identity
    from her2fast.scoring import CellTable
    from her2fast.service.batch import score_to_store
    from her2fast.service.view.catalog import read_epithelium_rings
    from her2fast.synth import make_slide
    from her2fast.synth.slide import _downsample2

    out = folder / "out"
    if (out / "results.db").is_file():
        with ResultsStore(out) as store:
            rows = [r for r in store.rows() if r["status"] == "ok" and Path(r["slide_path"]).name == f"big_{size}.tiff"]
        if rows:
            return out, rows[-1]["id"]
    mpp = 0.25
    small = folder / "small"
    small.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    ph = make_slide(small / "base.tiff", category="2+", width=base, height=base, mpp=mpp, seed=seed)
    with ResultsStore(small / "out") as store:
        row = score_to_store(ph.path, small / "out", store=store, pictures=False, geojson=True)
    if row["status"] != "ok":
        raise SystemExit(f"scoring the base phantom failed: {row['error']}")
    print(f"base phantom {base}^2 rendered and scored in {time.perf_counter() - t0:.1f} s", flush=True)
    with tifffile.TiffFile(ph.path) as tf:
        pixels = tf.pages[0].asarray()[:base, :base, :3]

    # the big slide: the base repeated, a pyramid of halvings (the base is a power of two, so each level repeats)
    t0 = time.perf_counter()
    big = folder / f"big_{size}.tiff"
    tile = 512
    levels, w = [], size
    period = pixels
    while True:
        levels.append((math.ceil(size / 2 ** len(levels)), period))
        if levels[-1][0] <= tile:
            break
        period = _downsample2(period)
    with tifffile.TiffWriter(big, bigtiff=True) as tif:
        for k, (w, per) in enumerate(levels):
            p = per.shape[0]

            def tiles(w=w, per=per, p=p):
                for ty in range(0, w, tile):
                    rows = np.arange(ty, ty + tile) % p
                    band = per[rows]
                    for tx in range(0, w, tile):
                        yield np.ascontiguousarray(band[:, np.arange(tx, tx + tile) % p])

            px_per_cm = 1e4 / (mpp * size / w)
            tif.write(
                data=tiles(),
                shape=(w, w, 3),
                dtype=np.uint8,
                tile=(tile, tile),
                photometric="rgb",
                compression="jpeg",
                compressionargs={"level": 85},
                subfiletype=0 if k == 0 else 1,
                resolution=(px_per_cm, px_per_cm),
                resolutionunit="CENTIMETER",
                software=False,
                metadata=None,
            )
    print(
        f"{size}^2 slide written in {time.perf_counter() - t0:.1f} s ({big.stat().st_size / 2**20:.0f} MB)", flush=True
    )

    # its results: the base's cells, epithelium and result, repeated
    out.mkdir(parents=True, exist_ok=True)
    base_out = {k: Path(v) for k, v in row["outputs"].items()}
    cells = CellTable.load_npz(base_out["cells"])
    reps = [(i * base, j * base) for j in range(math.ceil(size / base)) for i in range(math.ceil(size / base))]
    n = len(cells)
    tiled = CellTable.concatenate([cells] * len(reps))
    tiled.x = tiled.x + np.repeat(np.array([r[0] for r in reps], np.float32), n)
    tiled.y = tiled.y + np.repeat(np.array([r[1] for r in reps], np.float32), n)
    tiled.cell_id = np.arange(len(tiled), dtype=np.int64)
    big_cells = tiled.select((tiled.x < size) & (tiled.y < size))
    big_cells.save_npz(out / "big.cells.npz")
    rings = read_epithelium_rings(base_out["geojson"])
    with open(out / "big.geojson", "w", encoding="utf-8") as fh:
        fh.write('{"type":"FeatureCollection","features":[')
        k = 0
        for ox, oy in reps:
            for ring in rings:
                coords = (ring + np.array([ox, oy], np.float32)).round(2).tolist()
                props = {"objectType": "annotation", "name": f"epithelium {k + 1}"}
                feature = {
                    "type": "Feature",
                    "geometry": {"type": "Polygon", "coordinates": [coords]},
                    "properties": props,
                }
                fh.write(("," if k else "") + json.dumps(feature, separators=(",", ":")))
                k += 1
        fh.write("]}")
    result = json.loads(base_out["json"].read_text(encoding="utf-8"))
    result["path"] = str(big)
    result["provenance"]["slide"].update(width=size, height=size, path=str(big))
    result["counts"]["tumour_cells"] = int(big_cells.is_tumour.sum())
    (out / "big.her2fast.json").write_text(json.dumps(result), encoding="utf-8")
    outputs = {
        "json": str(out / "big.her2fast.json"),
        "cells": str(out / "big.cells.npz"),
        "geojson": str(out / "big.geojson"),
    }
    keys = ("score", "stratum", "category", "confidence", "percent_complete", "percentages", "flags")
    with ResultsStore(out) as store:
        _, big_row = store.insert(
            RunRecord(
                slide=slide_identity(big),
                status="ok",
                package_version=row["package_version"],
                model_versions=row["model_versions"],
                outputs=outputs,
                **{k: row[k] for k in keys},
            )
        )
    return out, big_row["id"]


def _browsed_levels(geometry) -> list[int]:
    return [lv for lv, (w, h) in enumerate(geometry.level_dimensions) if max(w, h) >= geometry.tile_size]


def _requests(geometry, n: int, rng: random.Random) -> list[tuple[int, int, int]]:
    levels = _browsed_levels(geometry)
    out = []
    for _ in range(n):
        lv = rng.choice(levels)
        cols, rows = geometry.level_tiles[lv]
        out.append((lv, rng.randrange(cols), rng.randrange(rows)))
    return out


def _stats(ms: list[float]) -> str:
    a = np.asarray(ms)
    return (
        f"p50 {np.percentile(a, 50):6.1f} ms  p95 {np.percentile(a, 95):6.1f} ms  max {a.max():6.1f} ms  (n={len(a)})"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=40000, help="slide side in pixels (default: %(default)s)")
    ap.add_argument("--base", type=int, default=2048, help="side of the scored phantom that is repeated (power of 2)")
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", default=None, help="folder to build the store in and reuse (default: a temporary one)")
    args = ap.parse_args()
    if args.base & (args.base - 1):
        raise SystemExit("--base must be a power of two")

    import openslide
    from openslide.deepzoom import DeepZoomGenerator

    from her2fast.service.view import ServerThread, create_app
    from her2fast.service.view.tiles import DeepZoomGeometry, encode

    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="her2fast-view-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        out, run_id = build_store(folder, args.size, args.base, args.seed)
        app = create_app(out, tile_cache_bytes=0)
        cat = app.extensions["her2fast_catalog"]
        row = cat.run(run_id)
        t0 = time.perf_counter()
        data = cat.data(run_id, row)
        load_s = time.perf_counter() - t0
        n_tumour = len(data.tumour)
        print(f"CPU: {_cpu()}, {os.cpu_count()} logical cores; load average {os.getloadavg()[0]:.1f}")
        print(
            f"slide {args.size}x{args.size} px, {n_tumour:,} tumour cells ({len(data.cells):,} cells); "
            f"cell table + epithelium loaded in {load_s:.2f} s (once per slide)"
        )
        rng = random.Random(args.seed)
        with ServerThread(app, threads=8) as server:
            base_url = f"{server.url}slide/{run_id}"
            with urllib.request.urlopen(f"{base_url}/slide.dzi") as r:  # opens the slide
                r.read()
            geometry = DeepZoomGeometry(args.size, args.size)
            dz = DeepZoomGenerator(openslide.OpenSlide(row["slide_path"]), tile_size=254, overlap=1, limit_bounds=False)
            results = {}
            kinds = [("slide tile", "slide", "jpeg"), ("overlay tile (cells)", "cells", "png")]
            kinds += [("overlay (epithelium)", "epithelium", "png"), ("overlay (heat map)", "heatmap", "png")]
            for kind, layer, ext in kinds:
                ms = []
                for lv, c, r_ in _requests(geometry, args.requests, rng):
                    t = time.perf_counter()
                    with urllib.request.urlopen(f"{base_url}/{layer}_files/{lv}/{c}_{r_}.{ext}") as resp:
                        resp.read()
                    ms.append((time.perf_counter() - t) * 1000)
                results[kind] = ms
            ref = []
            for lv, c, r_ in _requests(geometry, args.requests, rng):
                t = time.perf_counter()
                encode(dz.get_tile(lv, (c, r_)), "jpeg")
                ref.append((time.perf_counter() - t) * 1000)
            worst = []
            top = _browsed_levels(geometry)[0]
            for _ in range(20):
                t = time.perf_counter()
                with urllib.request.urlopen(f"{base_url}/cells_files/{top}/0_0.png") as resp:
                    resp.read()
                worst.append((time.perf_counter() - t) * 1000)
        print(
            f"levels browsed: {_browsed_levels(geometry)}; requests one at a time over HTTP (127.0.0.1), no tile cache"
        )
        for kind, ms in results.items():
            print(f"{kind:24s} {_stats(ms)}")
        print(f"{'reference (in-process)':24s} {_stats(ref)}  DeepZoomGenerator.get_tile + JPEG, no server")
        print(f"{'overlay, whole slide':24s} {_stats(worst)}  level {top}: one tile holds every cell")
        p95 = {k: float(np.percentile(v, 95)) for k, v in results.items()}
        print(f"ratio slide-tile p95 / reference p95: {p95['slide tile'] / float(np.percentile(ref, 95)):.2f}x")
        print(
            f"targets: slide tile p95 {p95['slide tile']:.1f} <= 100 ms: {'yes' if p95['slide tile'] <= 100 else 'NO'}; "
            f"overlay p95 {p95['overlay tile (cells)']:.1f} <= 150 ms: {'yes' if p95['overlay tile (cells)'] <= 150 else 'NO'}"
        )
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
