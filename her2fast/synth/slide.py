"""Writing a phantom whole slide: a pyramidal, JPEG-tiled BigTIFF plus a ground-truth sidecar.

Memory stays bounded: level 0 is rendered one tile at a time and streamed to tifffile (a generator of
tiles); each tile is also 2x-downsampled into a row buffer appended to a raw temporary file that feeds
the next level, and so on. The largest arrays held are one tile row of level 1 (read back as a strip)
and the cell table.

File layout follows ../shared/FACTS.md: one top-level IFD per level (``subfiletype=1`` for reduced
levels; OpenSlide's generic-tiff reader then sees every level), resolution tags in centimetres so that
OpenSlide reports ``openslide.mpp-x/-y``.

Sidecar files next to ``slide.tiff``:

- ``slide.truth.json`` -- category, preset, per-class percentages, mpp, seed, generator version, sizes;
- ``slide.cells.npz`` -- the per-cell table (:class:`her2fast.scoring.CellTable`, level-0 pixels);
- ``slide.epithelium.png`` -- epithelium fraction (0-255) at ``epithelium_mask_mpp`` um/px.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from .._validate import as_int, as_positive_float
from ..errors import InvalidInputError
from ..scoring import CellTable, ClassFractions, score_cells
from .presets import get_preset
from .scene import GENERATOR_VERSION, Scene, StainVariation
from .tile import cell_table_of, render_region

__all__ = [
    "SlideGroundTruth",
    "make_slide",
    "load_ground_truth",
    "phantom_cells",
    "sidecar_paths",
    "is_current_phantom",
]


@dataclass
class SlideGroundTruth:
    """What :func:`make_slide` wrote and the truth about it.

    Attributes
    ----------
    path : Path
        The slide (pyramidal BigTIFF).
    category : str
        ASCO/CAP category of the slide's tumour cells ("0", "0+", "1+", "2+", "3+").
    preset : str
    fractions : ClassFractions
        Per-class fractions of tumour cells.
    cells : CellTable
        All cells (x, y in level-0 pixels).
    epithelium_mask : (h, w) uint8
        Epithelium fraction (0-255) at ``epithelium_mask_mpp``.
    epithelium_mask_mpp : float
    width, height : int
        Level-0 size in pixels.
    mpp : float
    seed : int
    level_dimensions : list of (width, height)
    sidecar : dict of str to Path
        ``{"json", "cells", "epithelium"}`` file paths.
    """

    path: Path
    category: str
    preset: str
    fractions: ClassFractions
    cells: CellTable
    epithelium_mask: np.ndarray
    epithelium_mask_mpp: float
    width: int
    height: int
    mpp: float
    seed: int
    level_dimensions: list[tuple[int, int]]
    sidecar: dict[str, Path]


def sidecar_paths(path: str | Path) -> dict[str, Path]:
    """The sidecar file paths of a slide path (``x.tiff`` -> ``x.truth.json``, ``x.cells.npz``, ...)."""
    p = Path(path)
    stem = p.with_suffix("") if p.suffix else p
    return {
        "json": stem.with_name(stem.name + ".truth.json"),
        "cells": stem.with_name(stem.name + ".cells.npz"),
        "epithelium": stem.with_name(stem.name + ".epithelium.png"),
    }


def is_current_phantom(path: str | Path) -> bool:
    """Whether ``path`` is a phantom slide with its sidecar, made by this generator version.

    Scripts that reuse phantoms already on disk use it to re-render slides from an older generator
    (a version-1 slide would otherwise silently train or evaluate against version-2 code).
    """
    sidecar = sidecar_paths(path)["json"]
    if not Path(path).is_file() or not sidecar.is_file():
        return False
    try:
        return json.loads(sidecar.read_text()).get("generator_version") == GENERATOR_VERSION
    except (OSError, ValueError):
        return False


def _downsample2(strip: np.ndarray) -> np.ndarray:
    """2x2 box downsampling of an (h, w, 3) uint8 strip (edges replicated for odd sizes)."""
    h, w = strip.shape[:2]
    if h % 2 or w % 2:
        strip = np.pad(strip, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    s = strip.astype(np.uint16)
    out = (s[0::2, 0::2] + s[1::2, 0::2] + s[0::2, 1::2] + s[1::2, 1::2] + 2) // 4
    return out.astype(np.uint8)


def _level_sizes(width: int, height: int, tile: int, n_levels: int | None) -> list[tuple[int, int]]:
    sizes = [(width, height)]
    while (n_levels is None and max(sizes[-1]) > tile) or (n_levels is not None and len(sizes) < n_levels):
        w, h = sizes[-1]
        if w == 1 and h == 1:
            break
        sizes.append(((w + 1) // 2, (h + 1) // 2))
    return sizes


def _layout_cells(scene: Scene, width: int, height: int, mpp: float) -> CellTable:
    """Every cell of a slide, straight from the layout (no rendering), one block row at a time."""
    parts = []
    b = scene.block_um
    for by in range(int(np.floor(height * mpp / b)) + 1):
        row = scene.sites_in(0.0, by * b, width * mpp, by * b + b / 2)
        parts.append(cell_table_of(scene, row, 0.0, by * b, width * mpp, min((by + 1) * b, height * mpp), mpp))
    return CellTable.concatenate(parts)


def phantom_cells(
    *, category: str, width: int, height: int, mpp: float = 0.5, seed: int = 0, variant: str = "typical"
) -> CellTable:
    """The cell table :func:`make_slide` would write for these arguments, without rendering anything."""
    width = as_int(width, "width", 1, 1 << 20)
    height = as_int(height, "height", 1, 1 << 20)
    mpp = as_positive_float(mpp, "mpp")
    scene = Scene(
        get_preset(category, variant), as_int(seed, "seed", 0, 2**63 - 1), width * mpp, height * mpp, with_glass=True
    )
    return _layout_cells(scene, width, height, mpp)


def make_slide(
    path: str | Path,
    *,
    category: str,
    width: int,
    height: int,
    mpp: float = 0.5,
    seed: int = 0,
    variant: str = "typical",
    tile_size: int = 512,
    jpeg_quality: int = 85,
    n_levels: int | None = None,
    workers: int | None = None,
    variation: StainVariation | None = None,
) -> SlideGroundTruth:
    """Write a phantom whole slide (pyramidal BigTIFF) and its ground-truth sidecar; return the truth.

    Parameters
    ----------
    path : str or Path
        Output ``.tiff`` path; the sidecar files go next to it (see :func:`sidecar_paths`).
    category : {"0", "0+", "1+", "2+", "3+"}
        Category of the composition preset (the returned ``category`` is computed from the cells).
    width, height : int
        Level-0 size in pixels (>= 256).
    mpp : float
        Micrometres per pixel at level 0 (0.5 = 20x, 0.25 = 40x).
    seed : int
        Same seed and arguments => same bytes (slide and sidecar).
    variant : str
        Preset variant (``"typical"``, ``"near-threshold"``, ``"unusual"``, ``"heterogeneous"``);
        see :data:`her2fast.synth.PRESETS`.
    tile_size : int
        Render and TIFF tile size (multiple of 16).
    jpeg_quality : int
        JPEG quality of the tiles (scanners use about 70-90).
    n_levels : int, optional
        Number of pyramid levels (default: halve until the level fits in one tile).
    workers : int, optional
        Threads rendering tiles (default: up to 4, at most the CPU count). The output does not depend
        on it; memory grows by a few tens of MB per worker.
    variation : StainVariation, optional
        Stain amounts, chromogen hue and section thickness at render time (lab and section variation,
        :mod:`her2fast.synth.perturb`); the cells and the true category stay the preset's. Recorded in
        the sidecar when given.

    Returns
    -------
    SlideGroundTruth

    Raises
    ------
    InvalidInputError
        For an unknown category/variant, bad sizes, or a slide too small to hold tumour cells.
    """
    import tifffile

    width = as_int(width, "width", 256, 1 << 20)
    height = as_int(height, "height", 256, 1 << 20)
    mpp = as_positive_float(mpp, "mpp")
    seed = as_int(seed, "seed", 0, 2**63 - 1)
    tile = as_int(tile_size, "tile_size", 64, 4096)
    if tile % 16:
        raise InvalidInputError(f"tile_size must be a multiple of 16 (TIFF tiles), got {tile}")
    quality = as_int(jpeg_quality, "jpeg_quality", 1, 100)
    if n_levels is not None:
        n_levels = as_int(n_levels, "n_levels", 1, 32)
    n_workers = min(4, os.cpu_count() or 1) if workers is None else as_int(workers, "workers", 1, 64)
    preset = get_preset(category, variant)
    path = Path(path)
    if not path.parent.exists():
        raise InvalidInputError(f"output folder {path.parent} does not exist; create it first")

    if variation is not None and not isinstance(variation, StainVariation):
        raise InvalidInputError(
            f"variation must be a her2fast.synth.StainVariation or None, got {type(variation).__name__}"
        )
    scene = Scene(preset, seed, width * mpp, height * mpp, with_glass=True, variation=variation)

    cells = _layout_cells(scene, width, height, mpp)
    if not cells.is_tumour.any():
        raise InvalidInputError(
            f"a {width}x{height} slide at {mpp} um/px holds no tumour cells; make it larger (>= 1024 px)"
        )
    result = score_cells(cells)

    sizes = _level_sizes(width, height, tile, n_levels)
    ep_factor = int(2 ** np.clip(np.round(np.log2(8.0 / mpp)), 0, np.log2(tile)))
    ep_w, ep_h = -(-width // ep_factor), -(-height // ep_factor)
    epithelium = np.zeros((ep_h, ep_w), np.uint8)

    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".synth-") as tmp:
        raw = [Path(tmp) / f"level{k}.raw" for k in range(len(sizes))]

        # Tiles are yielded one by one; each is also 2x-downsampled into a half-height row buffer that
        # is appended to the next level's raw file when its tile row is done. tifffile stops pulling
        # after the last tile, so the file is closed *before* the last tile is yielded.
        def level0_tiles() -> Iterator[tuple[np.ndarray, int, int]]:
            # Tiles are rendered by a small thread pool (numpy and scipy release the GIL) a few tiles
            # ahead, and consumed in order: the bytes do not depend on the number of workers.
            origins = [(x, y) for y in range(0, height, tile) for x in range(0, width, tile)]

            def render(xy: tuple[int, int]):
                x, y = xy
                return render_region(
                    scene, x, y, min(tile, width - x), min(tile, height - y), mpp, noise_seed=(y << 24) ^ x, truth=False
                )

            def rendered() -> Iterator:
                if n_workers == 1:
                    yield from map(render, origins)
                    return
                with ThreadPoolExecutor(max_workers=n_workers) as pool:
                    ahead: deque = deque()
                    for xy in origins:
                        ahead.append(pool.submit(render, xy))
                        if len(ahead) > 2 * n_workers:
                            yield ahead.popleft().result()
                    while ahead:
                        yield ahead.popleft().result()

            for (x, y), reg in zip(origins, rendered()):
                th, tw = reg.rgb.shape[:2]
                eh, ew = -(-th // ep_factor), -(-tw // ep_factor)
                ep = np.pad(reg.epithelium_mask, ((0, eh * ep_factor - th), (0, ew * ep_factor - tw)))
                frac = ep.reshape(eh, ep_factor, ew, ep_factor).mean(axis=(1, 3))
                e0, e1 = y // ep_factor, x // ep_factor
                epithelium[e0 : e0 + eh, e1 : e1 + ew] = np.rint(frac * 255).astype(np.uint8)
                yield reg.rgb, x, y

        def stored_tiles(k: int) -> Iterator[tuple[np.ndarray, int, int]]:
            w, h = sizes[k]
            with open(raw[k], "rb") as f:
                for y in range(0, h, tile):
                    th = min(tile, h - y)
                    strip = np.fromfile(f, dtype=np.uint8, count=th * w * 3).reshape(th, w, 3)
                    for x in range(0, w, tile):
                        yield strip[:, x : x + tile], x, y
            os.remove(raw[k])

        def level_tiles(k: int) -> Iterator[np.ndarray]:
            w, h = sizes[k]
            source = level0_tiles() if k == 0 else stored_tiles(k)
            has_next = k + 1 < len(sizes)
            out = open(raw[k + 1], "wb") if has_next else None
            half = np.zeros((tile // 2, sizes[k + 1][0], 3), np.uint8) if has_next else None
            for t, x, y in source:
                th, tw = t.shape[:2]
                if out is not None and half is not None:
                    small = _downsample2(t)
                    half[: small.shape[0], x // 2 : x // 2 + small.shape[1]] = small
                    if x + tw >= w:  # tile row complete
                        out.write(half[: (th + 1) // 2].tobytes())
                        if y + th >= h:
                            out.close()
                full = np.zeros((tile, tile, 3), np.uint8)
                full[:th, :tw] = t
                yield full

        with tifffile.TiffWriter(path, bigtiff=True) as tif:
            for k, (w, h) in enumerate(sizes):
                level_mpp = mpp * width / w
                px_per_cm = 1e4 / level_mpp
                tif.write(
                    data=level_tiles(k),
                    shape=(h, w, 3),
                    dtype=np.uint8,
                    tile=(tile, tile),
                    photometric="rgb",
                    compression="jpeg",
                    compressionargs={"level": quality},
                    subfiletype=0 if k == 0 else 1,
                    resolution=(px_per_cm, px_per_cm),
                    resolutionunit="CENTIMETER",
                    description=f"her2fast.synth phantom {preset.name} seed={seed}" if k == 0 else None,
                    software=False,
                    metadata=None,
                )

    files = sidecar_paths(path)
    cells.save_npz(files["cells"])
    from PIL import Image

    Image.fromarray(epithelium).save(files["epithelium"], optimize=False)
    info = {
        "generator": "her2fast.synth",
        "generator_version": GENERATOR_VERSION,
        "her2fast_version": __version__,
        "slide": path.name,
        "category": result.category,
        "preset": preset.name,
        "preset_category": preset.category,
        "seed": seed,
        "mpp": mpp,
        "width": width,
        "height": height,
        "level_dimensions": [list(s) for s in sizes],
        "n_cells": len(cells),
        "n_tumour_cells": result.fractions.n_tumour_cells,
        "tumour_cell_percentages": result.fractions.as_percentages(),
        "criteria_percentages": {
            "intense_complete": round(100 * result.fractions.intense_complete, 4),
            "at_least_weak_complete": round(100 * result.fractions.at_least_weak_complete, 4),
            "at_least_faint": round(100 * result.fractions.at_least_faint, 4),
        },
        "stain_vectors_rgb": {
            "hematoxylin": [round(float(v), 6) for v in scene.stain.vectors[0]],
            "dab": [round(float(v), 6) for v in scene.stain.vectors[1]],
        },
        **({"stain_variation": scene.variation.to_dict()} if scene.variation is not None else {}),
        "epithelium_mask_mpp": mpp * ep_factor,
        "cells_file": files["cells"].name,
        "epithelium_file": files["epithelium"].name,
        "cell_coordinates": "level-0 pixels; cell centre = generating site",
    }
    files["json"].write_text(json.dumps(info, indent=2) + "\n")
    return SlideGroundTruth(
        path=path,
        category=result.category,
        preset=preset.name,
        fractions=result.fractions,
        cells=cells,
        epithelium_mask=epithelium,
        epithelium_mask_mpp=mpp * ep_factor,
        width=width,
        height=height,
        mpp=mpp,
        seed=seed,
        level_dimensions=sizes,
        sidecar=files,
    )


def load_ground_truth(path: str | Path) -> SlideGroundTruth:
    """Read the sidecar of a slide written by :func:`make_slide`."""
    path = Path(path)
    files = sidecar_paths(path)
    if not files["json"].exists():
        raise InvalidInputError(f"no ground truth for {path}: {files['json']} is missing (write it with make_slide)")
    info = json.loads(files["json"].read_text())
    cells = CellTable.load_npz(files["cells"])
    from PIL import Image

    with Image.open(files["epithelium"]) as im:
        ep = np.asarray(im)
    return SlideGroundTruth(
        path=path,
        category=info["category"],
        preset=info["preset"],
        fractions=score_cells(cells).fractions,
        cells=cells,
        epithelium_mask=ep,
        epithelium_mask_mpp=float(info["epithelium_mask_mpp"]),
        width=int(info["width"]),
        height=int(info["height"]),
        mpp=float(info["mpp"]),
        seed=int(info["seed"]),
        level_dimensions=[tuple(s) for s in info["level_dimensions"]],
        sidecar=files,
    )
