"""``her2fast bench pipeline``: whole-slide throughput against a reference pipeline, in one run.

Ours is :func:`her2fast.score` (the bounded tile stream of :mod:`her2fast.pipeline`). The reference
does the same work on the same slide the obvious way, sequentially, with the libraries such a
pipeline would use:

- epithelium: the slide read at the classifier's resolution, ``skimage.segmentation.slic``,
  ``skimage.feature.local_binary_pattern``, per-superpixel histograms with ``np.bincount`` and the
  RBF-SVM decision with ``sklearn.metrics.pairwise.rbf_kernel``;
- per tile (the same epithelial tiles as ours): OpenSlide read, ``skimage.color.rgb2hed``, the same
  U-Net in PyTorch eager (``training/`` weights; ONNX Runtime when torch or the repository's
  ``training`` package is not available -- said in the output), nuclei with SciPy morphology and
  ``skimage.morphology.h_maxima`` + ``skimage.segmentation.watershed``, cells with
  ``skimage.segmentation.watershed`` + ``skimage.morphology.skeletonize`` + ``np.bincount``.

Ours segments only the window of each tile around its epithelium (``ScoreSettings.crop_to_epithelium``,
the default: the same tumour cells, fewer stromal ones); the reference whole tiles, as a straightforward
pipeline would; with the reference on, ours is also timed on whole tiles after it (the ratio without
the work the windows leave out). ``crop=False`` (``--no-crop``) times ours on whole tiles only.

The reference runs ``reference_tiles`` of the tiles, evenly spaced over them (its per-tile rate is what is compared), and its
slide-level stages once. Printed: seconds per stage, tiles/s (also in 512^2-tile equivalents), the
projected seconds for a 3,000-tile slide, peak RSS, CPU utilisation of the tile phase, and the
ratios ours / reference.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

__all__ = ["main", "reference_epithelium", "ReferenceTiles"]

PROJECT_TILES = 3000


def _rss_mb() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024.0 if sys.platform != "darwin" else r / 2**20


def reference_epithelium(slide, tissue, model) -> tuple[np.ndarray, int]:
    """Epithelium mask at the model's resolution, the obvious way (one image, skimage, sklearn)."""
    from skimage.feature import local_binary_pattern
    from skimage.segmentation import slic
    from sklearn.metrics.pairwise import rbf_kernel

    from ..stages.epithelium.features import _H_NUCLEAR_OD, STAIN_BINS, STAIN_OD_MAX, WHITE_REFERENCE
    from ..stages.stain import StainVectors, deconvolve
    from ..stages.superpixels import COLOUR_BINS
    from .reference import grey_level, superpixel_features_reference

    s = model.settings
    w0, h0 = slide.dimensions
    w, h = int(round(w0 * slide.mpp_x / s.mpp)), int(round(h0 * slide.mpp_y / s.mpp))
    image = slide.read(0, 0, w, h, s.mpp)
    standard = StainVectors.standard()
    stains = StainVectors(standard.hematoxylin, standard.dab, background=tissue.background)
    seen = image
    if s.white_balance:  # each channel scaled so the glass reads WHITE_REFERENCE
        seen = np.clip(np.rint(image * (WHITE_REFERENCE / stains.background)), 0, 255).astype(np.uint8)
    n_segments = max(1, int(w * h * s.mpp**2 / s.superpixel_um**2))
    labels = slic(seen, n_segments=n_segments, compactness=s.compactness, max_num_iter=s.max_num_iter, start_label=0)
    codes = local_binary_pattern(grey_level(seen), s.lbp_points, s.lbp_radius, method="uniform")
    hist = superpixel_features_reference(seen, labels, s.lbp_points, s.lbp_radius, lbp_codes=codes)
    # the classifier's stain columns (numpy; see her2fast.stages.epithelium.superpixel_features)
    conc = deconvolve(image, stains)
    k = hist.shape[0]
    cnt = np.maximum(hist[:, -1], 1)
    hem, dab = conc.hematoxylin.astype(np.float64).ravel(), conc.dab.astype(np.float64).ravel()
    lab = labels.ravel()
    mean_h, mean_d = np.bincount(lab, hem, k) / cnt, np.bincount(lab, dab, k) / cnt
    nuc = np.bincount(lab, (hem > _H_NUCLEAR_OD).astype(np.float64), k) / cnt
    std_h = np.sqrt(np.maximum(np.bincount(lab, hem * hem, k) / cnt - mean_h**2, 0))
    if s.colour_histograms == "rgb":
        colour = [hist[:, :-1]]
    else:
        colour = []
        for od in (hem, dab):
            counts, _, _ = np.histogram2d(
                lab, np.clip(od, 0.0, STAIN_OD_MAX - 1e-9), bins=(k, STAIN_BINS), range=((0, k), (0.0, STAIN_OD_MAX))
            )
            colour.append(counts / cnt[:, None])
        colour.append(hist[:, COLOUR_BINS:-1])
    feats = np.column_stack([*colour, mean_h, mean_d, nuc, std_h])
    z = (feats - model.feature_mean) / model.feature_scale
    decision = rbf_kernel(z, model.support_vectors, gamma=model.gamma) @ model.dual_coef.ravel() + model.intercept
    return (decision > 0)[labels], int(labels.max()) + 1


class ReferenceTiles:
    """The per-tile stages the obvious way (see the module docstring)."""

    def __init__(self, mpp: float, threads: int) -> None:
        from ..stages.cells import CellSettings

        self.mpp = mpp
        self.radius = CellSettings().max_radius_um / mpp
        self.net = None
        self.membrane_runtime = "onnxruntime (torch or training/ not available)"
        try:
            import torch

            root = Path(__file__).resolve().parents[2]
            if str(root) not in sys.path:
                sys.path.insert(0, str(root))
            from training.export_membrane import CalibratedWrapper, build_model

            from ..stages.membrane import load_model_config

            weights = root / "training" / "weights" / "membrane_unet_w8.npz"
            bias = load_model_config().raw["calibration"]["logit_bias"]
            torch.set_num_threads(threads)
            self.net = CalibratedWrapper(build_model(weights)[0], bias).eval()
            self.torch = torch
            self.membrane_runtime = f"torch {torch.__version__} eager, {threads} threads"
        except Exception:  # noqa: BLE001 - any missing piece: fall back to ONNX Runtime and say so
            self.threads = threads

    def membrane(self, image: np.ndarray) -> np.ndarray:
        if self.net is None:
            from ..stages.membrane import predict

            return predict(image, self.mpp, threads=self.threads) >= 0.5
        o = 32
        h, w = image.shape[:2]
        ph, pw = -(-(h + 2 * o) // 16) * 16, -(-(w + 2 * o) // 16) * 16
        padded = np.pad(image, ((o, ph - h - o), (o, pw - w - o), (0, 0)), mode="symmetric")
        x = self.torch.from_numpy(np.ascontiguousarray(padded.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0)
        with self.torch.inference_mode():
            mem = self.net(x)[0]
        return mem[0, 0, o : o + h, o : o + w].numpy() >= 0.5

    def nuclei(self, hema: np.ndarray) -> np.ndarray:
        from scipy import ndimage as ndi
        from skimage.morphology import disk, h_maxima
        from skimage.segmentation import watershed

        # rgb2hed's unit is log(I)/log(1e-6): the pipeline's 0.27 natural-log OD is 0.27 / 13.8 here
        fg = ndi.gaussian_filter(hema.astype(np.float32), 0.5 / self.mpp) >= 0.27 / (6 * np.log(10))
        fg = ndi.binary_opening(fg, structure=disk(round(1.0 / self.mpp)))
        fg = ndi.binary_fill_holes(fg)
        comp, n = ndi.label(fg, structure=np.ones((3, 3)))
        if n == 0:
            return comp
        areas = np.bincount(comp.ravel())
        fg = (areas >= 8 / self.mpp**2)[comp] & fg
        dist = ndi.distance_transform_edt(fg)
        peaks = h_maxima(dist, 0.25 / self.mpp) if dist.max() > 0.5 else fg.astype(np.uint8)
        markers, _ = ndi.label(peaks & fg, structure=np.ones((3, 3)))
        return watershed(-dist, markers, mask=fg, connectivity=2)

    def cells(self, mem: np.ndarray, od: np.ndarray, nuc: np.ndarray) -> int:
        from scipy import ndimage as ndi
        from skimage.morphology import skeletonize
        from skimage.segmentation import watershed

        markers, n = ndi.label(nuc > 0, structure=np.ones((3, 3)))
        near = ndi.distance_transform_edt(markers == 0) <= self.radius
        terr = watershed(mem.astype(np.float32), markers, connectivity=1, mask=near)
        skeletonize(mem)
        ndi.label(~mem)
        inner = ndi.binary_erosion(terr > 0, structure=np.ones((3, 3)))
        boundary = ((terr > 0) & ~inner) | (terr != np.roll(terr, 1, 0)) | (terr != np.roll(terr, 1, 1))
        lab_b = terr[boundary & (terr > 0)]
        np.bincount(lab_b, weights=mem[boundary & (terr > 0)], minlength=n + 1)
        on = mem & (terr > 0)
        np.bincount(terr[on], weights=od[on], minlength=n + 1)
        return n

    def tile(self, image: np.ndarray, timings: dict[str, float]) -> int:
        from skimage.color import rgb2hed

        t0 = time.perf_counter()
        hed = rgb2hed(image)
        t1 = time.perf_counter()
        mem = self.membrane(image)
        t2 = time.perf_counter()
        nuc = self.nuclei(hed[..., 0])
        t3 = time.perf_counter()
        n = self.cells(mem, hed[..., 2], nuc)
        t4 = time.perf_counter()
        for k, v in (("deconvolve", t1 - t0), ("membrane", t2 - t1), ("nuclei", t3 - t2), ("cells", t4 - t3)):
            timings[k] = timings.get(k, 0.0) + v
        return n


def _make_slide(folder: Path, size: int, category: str, seed: int) -> Path:
    from ..synth import is_current_phantom, make_slide

    path = folder / f"bench_{category.replace('+', 'p')}_{size}_{seed}.tiff"
    if not is_current_phantom(path):
        print(f"making a {size}x{size} phantom slide ({category}) ...", flush=True)
        make_slide(path, category=category, width=size, height=size, mpp=0.5, seed=seed)
    return path


def run_reference(path: Path, mpp: float | None, settings, threads: int, n_tiles: int) -> dict:
    """Time the reference pipeline on ``n_tiles`` of the slide's epithelial tiles, evenly spaced over them."""
    from ..io.slide import open_slide
    from ..stages.epithelium import classify_slide, default_model, select_tiles
    from ..stages.stain import slide_stain_vectors
    from ..stages.tissue import detect_tissue, read_tile, tile_grid

    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    with open_slide(path, mpp=mpp) as slide:
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
        timings["tissue"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        model = default_model()
        _, n_sp = reference_epithelium(slide, tissue, model)
        timings["epithelium"] = time.perf_counter() - t0
        # the same tiles as ours (our selection; the reference's mask differs only by SLIC's details)
        stains = slide_stain_vectors(slide, grid, background=tissue.background)
        sub = select_tiles(
            grid, classify_slide(slide, tissue, model, stains=stains), min_epithelium=settings.min_epithelium
        ).grid
        # evenly spaced over the selection, so the sample is the slide's mix of tiles (the first ones
        # in grid order are edge tiles of the top rows: fewer cells, cheaper than the slide's average)
        all_tiles = list(sub)
        n = min(n_tiles, len(all_tiles))
        pick = ((np.arange(n) + 0.5) * len(all_tiles) / max(n, 1)).astype(int)  # midpoints of n equal runs
        tiles = [all_tiles[i] for i in pick] if all_tiles else []
        ref = ReferenceTiles(settings.mpp, threads)
        n_cells = 0
        t_tiles = time.perf_counter()
        for tile in tiles:
            t0 = time.perf_counter()
            image = read_tile(slide, sub, tile).image
            timings["read"] = timings.get("read", 0.0) + time.perf_counter() - t0
            n_cells += ref.tile(image, timings)
        tiles_wall = time.perf_counter() - t_tiles
    return {
        "timings": timings,
        "tiles": len(tiles),
        "tiles_wall": tiles_wall,
        "superpixels": n_sp,
        "cells_per_tile": n_cells / max(1, len(tiles)),
        "membrane_runtime": ref.membrane_runtime,
        "total_wall": time.perf_counter() - t_all,
    }


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
) -> int:
    """Run the benchmark and print its table; returns the exit code."""
    from .. import __version__
    from ..api import score
    from ..pipeline import ScoreSettings, ThreadPlan
    from ..pipeline.settings import _available_cores
    from ..stages.membrane import parse_providers, uses_gpu

    if reference and reference_tiles < 1:
        from ..errors import InvalidInputError

        raise InvalidInputError(
            f"reference_tiles must be >= 1, got {reference_tiles}; pass --no-reference to skip the reference pipeline"
        )
    prov = parse_providers(providers)
    cores = _available_cores() if threads is None else threads
    plan = ThreadPlan.for_machine(cores, gpu=uses_gpu(prov))
    settings = ScoreSettings(crop_to_epithelium=crop)
    if windows_per_tile is not None:
        settings = replace(settings, windows_per_tile=windows_per_tile)
    if batch is not None:
        settings = replace(settings, membrane_batch_size=batch)
    batch = settings.membrane_batch_size
    folder = Path(work_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = Path(slide) if slide else _make_slide(folder, size, category, seed)

    print(
        f"her2fast {__version__} bench pipeline: {path} ({cores} cores, threads {plan.to_dict()}, batch {batch})",
        flush=True,
    )
    score(path, mpp=mpp, providers=prov, settings=settings, progress=False, threads=plan)  # warm-up: sessions, caches
    t0 = time.perf_counter()
    r = score(path, mpp=mpp, providers=prov, settings=settings, progress=False, threads=plan)
    wall = time.perf_counter() - t0
    rss = _rss_mb()
    perf = r.provenance["pipeline"]
    n = perf["tiles"]
    eq512 = (settings.tile_size / 512) ** 2  # a 448-px tile core is 0.77 of a 512^2 tile
    tiles_wall = r.timings["tiles_wall"]
    slide_level = r.timings["total"] - tiles_wall
    tps = n / tiles_wall if tiles_wall > 0 else 0.0
    tps512 = tps * eq512
    projected = slide_level + PROJECT_TILES / tps512 if tps512 > 0 else float("inf")
    stages = ("read", "deconvolve", "membrane", "nuclei", "cells")
    out = {
        "her2fast_version": __version__,
        "slide": str(path),
        "cores": cores,
        "threads": plan.to_dict(),
        "batch": batch,
        "providers": r.provenance["providers"],
        "score": r.score,
        "ours": {
            "end_to_end_s": round(wall, 3),
            "slide_level_s": round(slide_level, 3),
            "tiles": n,
            "tiles_wall_s": round(tiles_wall, 3),
            "tiles_per_s": round(tps, 3),
            "tiles_512_per_s": round(tps512, 3),
            "projected_3000_tiles_s": round(projected, 1),
            "cpu_percent_tiles": round(perf["cpu_percent"], 1),
            "crop_to_epithelium": settings.crop_to_epithelium,
            "window_fraction": round(perf.get("window_fraction", 1.0), 4),
            "windows_per_tile": settings.windows_per_tile,
            "windows": perf.get("windows", n),
            "peak_rss_mb": round(rss, 1),
            "stage_busy_s": {k: round(r.timings.get(k, 0.0), 3) for k in ("tissue", "stain", "epithelium", *stages)},
        },
    }
    print(
        f"ours: {n} epithelial tiles of {settings.tile_size}^2 (+{settings.overlap} px margins) in {tiles_wall:.2f} s "
        f"= {tps:.2f} tiles/s = {tps512:.2f} tiles/s of 512^2; end to end {wall:.2f} s (slide-level {slide_level:.2f} s)"
    )
    print(
        f"ours: CPU {perf['cpu_percent']:.0f} % of one core during the tile phase ({cores} cores), "
        f"peak RSS {rss:.0f} MB, projected 3,000-tile (512^2) slide {projected:.0f} s"
    )
    busy = "  ".join(f"{k} {r.timings.get(k, 0.0) / max(n, 1) * 1e3:.0f}" for k in stages)
    print(f"ours: busy ms per tile (summed over threads): {busy}")
    if settings.crop_to_epithelium:
        share = 100 * perf.get("window_fraction", 1.0)
        print(
            f"ours: {perf.get('windows', n)} windows around the epithelium (up to {settings.windows_per_tile} per "
            f"tile): {share:.0f} % of the tiles' pixels segmented (--no-crop: whole tiles)"
        )
    if reference:
        ref = run_reference(path, mpp, settings, cores, reference_tiles)
        rt = ref["timings"]
        ref_tps = ref["tiles"] / ref["tiles_wall"] if ref["tiles_wall"] > 0 else 0.0
        ref_slide = rt.get("tissue", 0.0) + rt.get("epithelium", 0.0)
        ref_projected = ref_slide + PROJECT_TILES / (ref_tps * eq512) if ref_tps > 0 else float("inf")
        ref_busy = "  ".join(f"{k} {rt.get(k, 0.0) / max(ref['tiles'], 1) * 1e3:.0f}" for k in stages)
        print(
            f"reference: {ref['tiles']} tiles in {ref['tiles_wall']:.2f} s = {ref_tps:.2f} tiles/s "
            f"({ref['cells_per_tile']:.0f} cells/tile; membrane: {ref['membrane_runtime']}); "
            f"slide-level {ref_slide:.2f} s; projected 3,000-tile slide {ref_projected:.0f} s"
        )
        print(f"reference: ms per tile: {ref_busy}")
        ratio_tiles = tps / ref_tps if ref_tps > 0 else float("inf")
        ratio_e2e = ref_projected / projected if projected > 0 else float("inf")
        print(
            f"ratio ours/reference: tile phase {ratio_tiles:.2f}x, projected 3,000-tile slide {ratio_e2e:.2f}x, "
            f"slide-level stages {ref_slide / max(slide_level, 1e-9):.2f}x"
        )
        out["reference"] = {
            "tiles": ref["tiles"],
            "tiles_wall_s": round(ref["tiles_wall"], 3),
            "tiles_per_s": round(ref_tps, 3),
            "slide_level_s": round(ref_slide, 3),
            "projected_3000_tiles_s": round(ref_projected, 1),
            "membrane_runtime": ref["membrane_runtime"],
            "ms_per_tile": {k: round(rt.get(k, 0.0) / max(ref["tiles"], 1) * 1e3, 1) for k in stages},
        }
        out["ratio"] = {"tile_phase": round(ratio_tiles, 2), "projected_3000_tiles": round(ratio_e2e, 2)}
        if settings.crop_to_epithelium and ref_tps > 0:
            # the windows leave stroma out that the reference segments: say what whole tiles give too
            whole = score(
                path,
                mpp=mpp,
                providers=prov,
                settings=replace(settings, crop_to_epithelium=False),
                progress=False,
                threads=plan,
            )
            w_tps = whole.provenance["pipeline"]["tiles_per_s"]
            print(
                f"ours, whole tiles (--no-crop): {w_tps:.2f} tiles/s = {w_tps * eq512:.2f} tiles/s of 512^2; "
                f"ratio to the reference, tile phase {w_tps / ref_tps:.2f}x"
            )
            out["ours_whole_tiles"] = {
                "tiles_per_s": round(w_tps, 3),
                "tiles_512_per_s": round(w_tps * eq512, 3),
                "ratio_tile_phase": round(w_tps / ref_tps, 2),
            }
    if json_path:
        Path(json_path).write_text(json.dumps(out, indent=1))
        print(f"wrote {json_path}")
    return 0
