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

Each side runs in a process of its own (``python -m her2fast.bench.pipeline --worker``, started by
:func:`main`): ours one per membrane runtime, the reference one for all, so neither side's threads
compete with the other's, and ours closes its membrane session after every run. The sides take turns
``repeats`` times; printed per runtime are the median and min-max of tiles/s of each side (also in
512^2-tile equivalents) and the ratio of the medians, the membrane runtime every run of ours used
(``provenance["providers"]``, and the ``providers="auto"`` probe's figures where it ran), CPU % of the
tile phase and peak RSS of each process, seconds per stage and the projected seconds for a 3,000-tile
slide; with ``providers="all"`` every runtime available here in turn (:func:`runtimes`), against the
same reference process. The reference runs ``reference_tiles`` of the tiles, evenly spaced over them
(its per-tile rate is what is compared), and its slide-level stages once. The CPU model and the flags
that decide the runtimes' speed (:data:`CPU_FLAGS`) are printed and in the JSON.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

__all__ = ["CPU_FLAGS", "main", "cpu_info", "reference_epithelium", "ReferenceTiles", "runtimes", "spread"]

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


# ------------------------------------------------------------------------------------ the machine
#: CPU features that decide which membrane runtime is fastest here (bf16 / int8 units)
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "avx512_vnni", "avx_vnni")


def cpu_info(cpuinfo: str | None = None) -> dict:
    """The CPU model, logical CPUs and the flags of :data:`CPU_FLAGS` (from ``/proc/cpuinfo`` on Linux).

    Parameters
    ----------
    cpuinfo : str, optional
        The text of ``/proc/cpuinfo``; read from the machine when None.

    Returns
    -------
    dict
        ``model`` (str), ``cpus`` (int), ``flags`` (flag -> bool, None where unknown).

    Examples
    --------
    >>> info = cpu_info("processor : 0\\nmodel name : AMD EPYC\\nflags : fpu sse2 avx2 fma\\n")
    >>> info["model"], info["cpus"], info["flags"]["avx2"], info["flags"]["avx512f"]
    ('AMD EPYC', 1, True, False)
    """
    import os
    import platform

    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            cpuinfo = ""
    model, flags, cpus = "", None, 0
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "processor":
            cpus += 1
        elif key == "model name" and not model:
            model = value.strip()
        elif key == "flags" and flags is None:
            flags = set(value.split())
    return {
        "model": model or platform.processor() or platform.machine(),
        "cpus": cpus or os.cpu_count() or 1,
        "flags": {f: (None if flags is None else f in flags) for f in CPU_FLAGS},
    }


def runtimes(providers: str, flags: dict) -> list[tuple[str, str]]:
    """The membrane runtimes to time, as (name, ``--providers`` text) pairs.

    ``"all"``: ONNX Runtime on the CPU in fp32; its CUDA provider where this onnxruntime has one;
    OpenVINO in fp32 where it is installed, and in bf16 too where ``flags`` show bf16 units
    (``avx512_bf16`` or ``amx_bf16``). Anything else: that one runtime.

    Examples
    --------
    >>> runtimes("auto", {})
    [('auto', 'auto')]
    """
    if providers != "all":
        return [(providers, providers)]
    import importlib.util

    out = [("onnxruntime-cpu-fp32", "CPUExecutionProvider")]
    try:
        import onnxruntime as ort

        if "CUDAExecutionProvider" in ort.get_available_providers():
            out.append(("onnxruntime-cuda", "CUDAExecutionProvider,CPUExecutionProvider"))
    except ImportError:  # pragma: no cover - onnxruntime is a dependency
        pass
    if importlib.util.find_spec("openvino") is not None:
        out.append(("openvino-fp32", "OpenVINO:f32"))
        if flags.get("avx512_bf16") or flags.get("amx_bf16"):
            out.append(("openvino-bf16", "OpenVINO"))
    return out


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


# --------------------------------------------------------------------- the two sides, each a process
class _OursSide:
    """:func:`her2fast.score` on the slide with one membrane runtime, warmed up once."""

    def __init__(self, cfg: dict) -> None:
        from ..api import score
        from ..pipeline import ScoreSettings, ThreadPlan
        from ..stages.membrane import parse_providers, uses_gpu

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
        from ..stages.membrane import get_session, probe_tile

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

        from ..stages.membrane import runtime

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
        from ..io.slide import open_slide
        from ..pipeline import ScoreSettings
        from ..stages.epithelium import classify_slide, default_model, select_tiles
        from ..stages.stain import slide_stain_vectors
        from ..stages.tissue import detect_tissue, read_tile, tile_grid

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


def _worker(argv: list[str]) -> int:
    """A side's process (``python -m her2fast.bench.pipeline --worker CONFIG``): JSON commands in on
    stdin, one JSON line out per command on the process's original stdout (everything else the
    process prints goes to stderr)."""
    import os

    cfg = json.loads(argv[1])
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # prints (Python or native) cannot corrupt the channel
    sys.stdout = sys.stderr

    def send(obj: dict) -> None:
        channel.write(json.dumps(obj) + "\n")
        channel.flush()

    side = _OursSide(cfg) if cfg["side"] == "ours" else _ReferenceSide(cfg)
    send({"pid": os.getpid(), **side.info})
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd.get("cmd") != "run":
            break
        send(side.run(**cmd.get("args", {})))
    return 0


class _Process:
    """One side in a process of its own (spawned with this Python), driven a run at a time."""

    def __init__(self, cfg: dict) -> None:
        import subprocess

        self.side = cfg["side"]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "her2fast.bench.pipeline", "--worker", json.dumps(cfg)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self.info = self._receive()

    def _receive(self) -> dict:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            from ..errors import Her2FastError

            code = self.proc.wait()
            self._close_pipes()
            raise Her2FastError(
                f"the benchmark's {self.side} process stopped (exit code {code}); its error is printed above"
            )
        return json.loads(line)

    def run(self, **args) -> dict:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"cmd": "run", "args": args}) + "\n")
        self.proc.stdin.flush()
        return self._receive()

    def _close_pipes(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None and not pipe.closed:
                try:
                    pipe.close()
                except OSError:
                    pass

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=60)
            except Exception:  # noqa: BLE001 - a process that does not stop is killed
                self.proc.kill()
                self.proc.wait()
        self._close_pipes()


# ------------------------------------------------------------------------------------- the driver
STAGES = ("read", "deconvolve", "membrane", "nuclei", "cells")


def _r(x: float, nd: int = 3) -> float:
    return round(float(x), nd)


def _spread_text(s: dict, nd: int = 2) -> str:
    return f"{s['median']:.{nd}f} ({s['min']:.{nd}f}-{s['max']:.{nd}f})"


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
    from .. import __version__
    from ..errors import InvalidInputError
    from ..pipeline import ScoreSettings
    from ..pipeline.settings import _available_cores
    from ..stages.membrane import parse_providers

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


if __name__ == "__main__":  # the side processes of main()
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        raise SystemExit(_worker(sys.argv[1:]))
    raise SystemExit("usage: python -m her2fast.bench.pipeline --worker CONFIG (started by her2fast bench pipeline)")
