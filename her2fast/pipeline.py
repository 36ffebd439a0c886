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

import contextlib
import math
import os
import queue
import sys
import threading
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field

import numpy as np

from ._validate import as_int
from .cells import CellSettings, measure_tile, merge_cell_tables
from .errors import InvalidInputError
from .nuclei import NucleiSettings, segment_nuclei
from .scoring import CellTable, ScoringRules

__all__ = ["ScoreSettings", "SlideMaps", "PipelineOutput", "Progress", "ThreadPlan", "run_slide", "tile_window",
           "tile_windows"]

_METHODS = ("unet", "classical")


@dataclass(frozen=True)
class ScoreSettings:
    """Everything that decides a slide's result besides the slide and the models.

    Parameters
    ----------
    mpp : float
        Working resolution of tiles, membranes, nuclei and cells (0.5 um/px = 20x).
    tile_size : int
        Core side of a tile in working pixels (704: with the 48-px margins the network sees 800 px in
        one pass. The network's cost is proportional to the pixels it sees, so larger tiles waste
        less on margins: per 512^2 of core, 448-px tiles with the network's own 32-px mirrored
        margin cost 1.37x this default, 448 without it 1.14x, 960 0.95x -- measured with
        ONNX Runtime on one core; larger tiles also process more stroma on sparse slides).
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
        Network tiles per ONNX Runtime call (1: with several inference lanes a batch of 2 was no
        faster on 2 cores and took 420 MB more memory for the lanes' ONNX Runtime buffers; a GPU
        wants larger batches: ``her2fast bench pipeline --batch``).
    membrane_margin : int
        Mirrored margin the network adds around a tile (0: the tile's ``overlap`` is real context
        already; the model's own 32 px changed 0.3 % of cell classes on a 3+ phantom and costs 28 %
        more network time at 704 px).
    crop_to_epithelium : bool
        Segment only the window of each tile that holds its tumour cells (:func:`tile_window`): the
        bounding box of the core's epithelium, rounded out to the network's 16-px grid, owns the
        cells, and ``overlap`` around it is context (what a core cell has at a tile edge). Tumour
        cells keep their full context, so their measurements are those of the whole tile up to the
        network's far context; cells whose centre lies outside that box (stroma away from the tumour)
        are not in the cell table. On the 4096^2 2+ bench phantom the windows are 81 % of the tiles'
        pixels (the network, nuclei and cells stages cost in proportion). The windows' shapes vary:
        on a GPU with large batches (images of one shape share a call; TensorRT builds an engine per
        shape) use False there. False: whole tiles.
    windows_per_tile : int
        With ``crop_to_epithelium``, a tile's window is cut into up to this many windows where that
        saves at least 5 % of its pixels (:func:`tile_windows`: epithelium in two corners of a tile
        is two small windows, not the whole tile). 1: one window per tile.
    nuclei : NucleiSettings
    cells : CellSettings
        Includes the scoring rules' OD bands (``cells.rules``).
    rules : ScoringRules
        ASCO/CAP thresholds; ``rules.min_tumour_cells`` also decides whether a slide is scorable.
    """

    mpp: float = 0.5
    tile_size: int = 704
    overlap: int = 48
    min_tissue: float = 0.05
    min_epithelium: float = 0.02
    membrane_method: str = "unet"
    membrane_batch_size: int = 1
    membrane_margin: int = 0
    crop_to_epithelium: bool = True
    windows_per_tile: int = 4
    nuclei: NucleiSettings = field(default_factory=NucleiSettings)
    cells: CellSettings = field(default_factory=CellSettings)
    rules: ScoringRules = field(default_factory=ScoringRules)

    def __post_init__(self) -> None:
        if self.membrane_method not in _METHODS:
            raise InvalidInputError(f"membrane_method must be one of {_METHODS}, got {self.membrane_method!r}")
        if not (math.isfinite(self.mpp) and self.mpp > 0):
            raise InvalidInputError(f"mpp must be finite and > 0, got {self.mpp}")
        for name, lo in (("tile_size", 16), ("membrane_batch_size", 1), ("membrane_margin", 0), ("windows_per_tile", 1)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise InvalidInputError(f"ScoreSettings.{name} must be an int >= {lo}, got {v!r}")
        if not isinstance(self.crop_to_epithelium, (bool, np.bool_)):
            raise InvalidInputError(
                f"ScoreSettings.crop_to_epithelium must be True or False, got {self.crop_to_epithelium!r}")
        object.__setattr__(self, "crop_to_epithelium", bool(self.crop_to_epithelium))
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
        """Inverse of :meth:`to_dict`.

        Settings saved before ``crop_to_epithelium`` existed load with it False, and before
        ``windows_per_tile`` with 1: what they ran with.
        """
        d = dict(d)
        d.setdefault("crop_to_epithelium", False)
        d.setdefault("windows_per_tile", 1)
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
    performance: dict = field(default_factory=dict)


class Progress:
    """A one-line progress report on stderr: tiles done / total, elapsed, ETA.

    Prints every ``every`` tiles (and at the end); on a terminal the line is rewritten in place.
    """

    def __init__(self, name: str, total: int, *, enabled: bool = True, every: int = 10, stream=None) -> None:
        self._lock = threading.Lock()
        self.name, self.total, self.enabled, self.every = name, total, enabled, max(1, every)
        self.stream = stream if stream is not None else sys.stderr
        self.t0 = time.perf_counter()
        self.done = 0
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def update(self, n: int = 1) -> None:
        with self._lock:  # tiles finish on several threads
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


def _available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ThreadPlan:
    """How the tile stream uses the machine: the one place that sets thread counts.

    The tile phase is a bounded stream: ``readers`` threads read tiles (OpenSlide and JPEG decoding
    release the GIL) into a queue; ``inference_lanes`` threads (the calling thread and
    ``inference_lanes - 1`` more) batch them through the membrane network (ONNX Runtime, GIL released,
    ``inference_threads`` intra-op threads per call); ``post_workers`` threads deconvolve, find nuclei
    and measure cells (native kernels and NumPy, mostly without the GIL). At most ``queue_tiles``
    tiles wait between two stages, so memory stays bounded whatever the slide. The result does not
    depend on the plan (each tile's network pass is its own, whatever batch it shares).

    Parameters
    ----------
    readers : int
        Reader threads (0: read on the calling thread).
    inference_threads : int
        ONNX Runtime intra-op threads per network call.
    post_workers : int
        Post-processing threads (0: on the calling thread, after each batch).
    queue_tiles : int
        Capacity of each queue between stages.
    inference_lanes : int
        Threads running the network at the same time, each on its own batch (1: the calling thread
        only). Concurrent single-threaded calls use cores better than one call with several intra-op
        threads on a small network (no synchronisation inside each layer). Needs ``readers >= 1``
        when > 1.
    """

    readers: int = 1
    inference_threads: int = 1
    post_workers: int = 1
    queue_tiles: int = 8
    inference_lanes: int = 1

    def __post_init__(self) -> None:
        for name, lo in (("readers", 0), ("inference_threads", 1), ("post_workers", 0), ("queue_tiles", 1),
                         ("inference_lanes", 1)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < lo or v > 256:
                raise InvalidInputError(f"ThreadPlan.{name} must be an int in {lo}..256, got {v!r}")
        if self.inference_lanes > 1 and self.readers == 0:
            raise InvalidInputError("ThreadPlan.inference_lanes > 1 needs readers >= 1 (the lanes share the read queue)")

    @classmethod
    def sequential(cls) -> ThreadPlan:
        """Everything on the calling thread, one inference thread (the reference the stream must equal)."""
        return cls(readers=0, inference_threads=1, post_workers=0)

    @classmethod
    def for_machine(cls, cores: int | None = None, *, gpu: bool = False) -> ThreadPlan:
        """The default for ``cores`` CPU cores (default: those this process may run on).

        CPU inference: the network costs about twice the post-processing per tile. Up to four
        inference lanes run the network concurrently (one intra-op thread each, more on large
        machines: half the cores for the network in all), and a post worker per core; the threads
        outnumber the cores and the bounded queues let the OS balance them (measured on 2 cores:
        2 lanes + 2 post workers 5.90 tiles/s of 512^2, against 5.65 for one lane of 2 intra-op threads
        and 4.56 for one lane of one thread with one post worker). One reader (two from 8 cores)
        keeps them fed (a tile reads in ~15 ms).
        GPU inference (``gpu=True``): the network is cheap and the CPU feeds it, so one thread drives
        the GPU and every other core reads (a quarter, at least two) or post-processes.
        """
        n = _available_cores() if cores is None else int(cores)
        if n < 1:
            raise InvalidInputError(f"cores must be >= 1, got {cores!r}")
        if gpu:
            readers = max(2, n // 4)
            return cls(readers=readers, inference_threads=1, post_workers=max(1, n - readers - 1),
                       queue_tiles=max(8, 2 * n))
        if n == 1:
            return cls(readers=1, inference_threads=1, post_workers=1)
        lanes = min(n, 4)
        return cls(readers=1 if n < 8 else 2, inference_threads=max(1, n // (2 * lanes)), post_workers=n,
                   inference_lanes=lanes)

    def to_dict(self) -> dict:
        return asdict(self)


_END = object()

# The stream's threads are the parallelism: a BLAS call inside a stage (the deconvolution's 3x3
# unmixing) must not start a thread pool of its own. OpenBLAS would put a thread on every core and keep
# it spinning after each call, taking CPU from the network: on 2 cores that cost 13 % of the tile
# throughput (docs/throughput.md). Same numbers with one BLAS thread. The BLAS thread count is
# process-wide, so streams running at once in one process share one limit: the first sets it, the
# last restores it.
_BLAS_LOCK = threading.Lock()
_blas_state: dict = {"users": 0, "limiter": None, "threads": 0}


@contextlib.contextmanager
def _one_blas_thread():
    """Limit BLAS to one thread while any tile stream of this process runs; yields the count in force."""
    from threadpoolctl import threadpool_info, threadpool_limits

    with _BLAS_LOCK:
        if _blas_state["users"] == 0:
            _blas_state["limiter"] = threadpool_limits(limits=1, user_api="blas")
            _blas_state["threads"] = max((i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"),
                                         default=0)
        _blas_state["users"] += 1
        threads = _blas_state["threads"]
    try:
        yield threads
    finally:
        with _BLAS_LOCK:
            _blas_state["users"] -= 1
            if _blas_state["users"] == 0:
                _blas_state["limiter"].restore_original_limits()
                _blas_state["limiter"] = None


class _Stop(Exception):
    """Raised inside a stage thread when another stage failed."""


class _TileStream:
    """The tile phase of :func:`run_slide` as a bounded producer/consumer stream (see :class:`ThreadPlan`)."""

    def __init__(self, slide, grid, epi, stains, settings: ScoreSettings, providers, plan: ThreadPlan,
                 progress: Progress) -> None:
        self.slide, self.grid, self.epi, self.stains, self.s = slide, grid, epi, stains, settings
        self.providers, self.plan, self.progress = providers, plan, progress
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.busy: dict[str, float] = defaultdict(float)
        self._busy_lock = threading.Lock()
        self.tables: dict[tuple[int, int], CellTable] = {}  # (tile, window) -> its cells
        self.artefacts: dict[tuple[int, int], int] = {}
        self.windows_left = [0] * len(grid)  # windows of a tile still to measure (progress counts tiles)
        self._ended = 0  # reader _END markers seen by the inference lanes
        self.pixels = [0, 0]  # pixels segmented (windows), pixels of the padded tiles
        self.skipped = 0  # tiles without epithelium where the core's cells can lie

    # -- plumbing -------------------------------------------------------------------------------
    def _add(self, key: str, seconds: float) -> None:
        with self._busy_lock:
            self.busy[key] += seconds

    def _put(self, q: queue.Queue, item) -> None:
        while True:
            if self.stop.is_set():
                raise _Stop
            try:
                q.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def _get(self, q: queue.Queue):
        while True:
            if self.stop.is_set():
                raise _Stop
            try:
                return q.get(timeout=0.05)
            except queue.Empty:
                continue

    def _fail(self, exc: BaseException) -> None:
        if not isinstance(exc, _Stop):
            self.errors.append(exc)
        self.stop.set()

    # -- stages ---------------------------------------------------------------------------------
    def _read_items(self, start: int, step: int):
        """The :class:`_TileWork` of every ``step``-th tile from ``start``, timed.

        A tile without epithelium where its own cells can lie (possible where the 2 um/px map
        barely touches it; :func:`tile_window` returns None) gets an empty cell table here and is
        not passed on.
        """
        from .tissue import read_tile

        tiles = list(self.grid)
        ov = self.grid.overlap
        for i in range(start, len(tiles), step):
            t0 = time.perf_counter()
            tile = tiles[i]
            epi_patch = _sample_mask(self.epi.epithelium_mask, self.epi.level0_per_pixel, tile.padded,
                                     self.grid.level0_per_pixel)
            if self.s.crop_to_epithelium:
                windows = tile_windows(epi_patch, tile.padded, ov, max_windows=self.s.windows_per_tile)
            else:
                x0, y0, x1, y1 = tile.padded
                windows = [(tile.padded, (x0 + ov, y0 + ov, x1 - ov, y1 - ov))]
            with self._busy_lock:
                self.pixels[1] += epi_patch.size
                self.pixels[0] += sum((b[2] - b[0]) * (b[3] - b[1]) for b, _ in windows)
                self.skipped += not windows
                self.windows_left[i] = len(windows)
            if not windows:
                self._add("read", time.perf_counter() - t0)
                self.progress.update()
                continue
            px0, py0 = tile.padded[:2]
            for j, (bounds, core) in enumerate(windows):
                if j:
                    t0 = time.perf_counter()
                sl = (slice(bounds[1] - py0, bounds[3] - py0), slice(bounds[0] - px0, bounds[2] - px0))
                image = read_tile(self.slide, self.grid, tile, bounds).image  # only the window is read
                work = _TileWork(i, j, np.ascontiguousarray(image), bounds, core, epi_patch[sl])
                self._add("read", time.perf_counter() - t0)
                yield work

    def _reader(self, q: queue.Queue, start: int, step: int) -> None:
        try:
            for work in self._read_items(start, step):
                self._put(q, work)
            self._put(q, _END)
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
            self._fail(exc)

    def _post(self, work: _TileWork, membrane: np.ndarray) -> None:
        from .stain import deconvolve

        s = self.s
        t0 = time.perf_counter()
        conc = deconvolve(work.image, self.stains)
        t1 = time.perf_counter()
        nuc = segment_nuclei(conc.hematoxylin, s.mpp, settings=s.nuclei)
        t2 = time.perf_counter()
        # the window owns the cells whose centres lie in its core (tile_windows: `overlap` inside the
        # window, in the tile's core, and apart from the tile's other windows' cores)
        tc = measure_tile(membrane, conc.dab, nuc, mpp=s.mpp, origin=work.bounds[:2], core=work.core,
                          epithelium=work.epithelium, settings=s.cells)
        t3 = time.perf_counter()
        with self._busy_lock:
            self.tables[work.index, work.window] = tc.cells
            self.artefacts[work.index, work.window] = tc.n_artefact_loops
            self.busy["deconvolve"] += t1 - t0
            self.busy["nuclei"] += t2 - t1
            self.busy["cells"] += t3 - t2
            self.windows_left[work.index] -= 1
            tile_done = self.windows_left[work.index] == 0
        if tile_done:
            self.progress.update()

    def _post_worker(self, q: queue.Queue) -> None:
        try:
            while (item := self._get(q)) is not _END:
                self._post(*item)
        except BaseException as exc:  # noqa: BLE001
            self._fail(exc)

    def _membrane(self, batch: list) -> list[np.ndarray]:
        from .membrane import predict_maps_batch

        t0 = time.perf_counter()
        maps = predict_maps_batch([w.image for w in batch], self.s.mpp, method=self.s.membrane_method,
                                  providers=self.providers, threads=self.plan.inference_threads,
                                  batch_size=self.s.membrane_batch_size, margin=self.s.membrane_margin)
        self._add("membrane", time.perf_counter() - t0)
        return [m.membrane for m in maps]

    # -- the stream -----------------------------------------------------------------------------
    def run(self) -> tuple[list, int, dict[str, float], dict]:
        with _one_blas_thread() as blas_threads:
            tables, artefacts, busy, perf = self._run()
        perf["blas_threads"] = blas_threads
        return tables, artefacts, busy, perf

    def _run(self) -> tuple[list, int, dict[str, float], dict]:
        plan = self.plan
        threads: list[threading.Thread] = []
        q_read: queue.Queue = queue.Queue(maxsize=plan.queue_tiles)
        q_post: queue.Queue = queue.Queue(maxsize=plan.queue_tiles)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for k in range(plan.readers):
            threads.append(threading.Thread(target=self._reader, args=(q_read, k, plan.readers),
                                            name=f"her2fast-read-{k}", daemon=True))
        for k in range(plan.post_workers):
            threads.append(threading.Thread(target=self._post_worker, args=(q_post,),
                                            name=f"her2fast-post-{k}", daemon=True))
        lanes = [threading.Thread(target=self._lane, args=(q_read, q_post), name=f"her2fast-infer-{k}", daemon=True)
                 for k in range(1, plan.inference_lanes)]
        for t in threads + lanes:
            t.start()
        self._lane(q_read, q_post)  # lane 0: the calling thread
        for t in lanes:
            t.join()
        try:  # the post workers stop once every lane is done
            for _ in range(plan.post_workers):
                self._put(q_post, _END)
        except BaseException as exc:  # noqa: BLE001
            self._fail(exc)
        for t in threads:
            t.join()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        if self.errors:
            raise self.errors[0]
        n = len(self.grid)
        perf = {
            "threads": plan.to_dict(),
            "wall_s": wall,
            "tiles": n,
            "tiles_per_s": n / wall if wall > 0 else 0.0,
            "cpu_percent": 100.0 * cpu / wall if wall > 0 else 0.0,
            "cores": _available_cores(),
            "window_fraction": self.pixels[0] / self.pixels[1] if self.pixels[1] else 0.0,
            "windows": len(self.tables),
            "tiles_without_epithelium": self.skipped,
        }
        tables = [self.tables[key] for key in sorted(self.tables)]  # grid order, then window order
        return tables, int(sum(self.artefacts.values())), dict(self.busy), perf

    def _lane(self, q_read: queue.Queue, q_post: queue.Queue) -> None:
        try:
            self._infer_loop(q_read, q_post)
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
            self._fail(exc)

    def _infer_loop(self, q_read: queue.Queue, q_post: queue.Queue) -> None:
        plan = self.plan
        if plan.readers:
            def items():
                # every reader ends with one _END; a lane that has seen them all (counted over all
                # lanes) puts one back so that the next lane waiting on the queue stops too
                while True:
                    item = self._get(q_read)
                    if item is not _END:
                        yield item
                        continue
                    with self._busy_lock:
                        self._ended += 1
                        done = self._ended >= plan.readers
                    if done:
                        self._put(q_read, _END)
                        return
            source = items()
        else:
            source = self._read_items(0, 1)
        batch_n = self.s.membrane_batch_size if self.s.membrane_method == "unet" else 1
        batch: list = []

        def flush() -> None:
            if not batch:
                return
            for work, mem in zip(batch, self._membrane(batch)):
                if plan.post_workers:
                    self._put(q_post, (work, mem))
                else:
                    self._post(work, mem)
            batch.clear()

        for item in source:
            batch.append(item)
            if len(batch) == batch_n:
                flush()
        flush()


@dataclass
class _TileWork:
    """One tile on its way through the stream: the window of it that is segmented."""

    index: int  # position in the grid
    window: int  # which of the tile's windows (tile_windows)
    image: np.ndarray  # (h, w, 3) uint8 RGB of `bounds`
    bounds: tuple[int, int, int, int]  # working pixels, half-open, inside tile.padded
    core: tuple[int, int, int, int]  # the cells this window owns: centres here (working pixels)
    epithelium: np.ndarray  # (h, w) bool, the 2 um/px epithelium map sampled at `bounds`' pixels


def _window_px(ra, rb, ca, cb, ov: int, m: int, h: int, w: int):
    """The window (x0, y0, x1, y1; padded-tile pixels, h x w tile) of the candidate-owner pixels in index
    rows ``ra..rb`` and columns ``ca..cb`` (index ``i`` is the padded tile's pixel ``ov + i``): their box
    with one pixel more on the low sides, widened by ``ov``, rounded out to the ``m`` grid and clipped
    (:func:`tile_window`); works elementwise on arrays."""
    return (np.maximum(0, (ca - 1) // m * m), np.maximum(0, (ra - 1) // m * m),
            np.minimum(w, -(-(cb + 1 + 2 * ov) // m) * m), np.minimum(h, -(-(rb + 1 + 2 * ov) // m) * m))


def tile_window(epithelium: np.ndarray, padded: tuple[int, int, int, int], overlap: int,
                multiple: int = 16) -> tuple[int, int, int, int] | None:
    """The part of a padded tile that holds the tumour cells its core owns (``crop_to_epithelium``).

    A cell is a tumour cell when the pixel holding its centre is epithelium, and the tile owns it when
    the centre itself lies in the core; so the window is the bounding box of the epithelium pixels
    that can hold an owned centre (the core and the first pixel row/column after it), one pixel
    more on the low sides (a centre up to half a pixel before its pixel), widened by ``overlap``,
    rounded out to the ``multiple`` grid and clipped to the padded tile.

    Parameters
    ----------
    epithelium : (H, W) array of bool
        Epithelium sampled over the padded tile (``H, W`` = the padded tile's size).
    padded : (x0, y0, x1, y1)
        The padded tile in working pixels (``Tile.padded``); its core is ``overlap`` inside.
    overlap : int
        The tile margin (``ScoreSettings.overlap``).
    multiple : int
        The window's corners are rounded outwards to this grid, counted from the padded tile's
        corner (16: the network's pooling grid stays the whole tile's).

    Returns
    -------
    (x0, y0, x1, y1) or None
        Working pixels, half-open, inside ``padded``. Its own core (``overlap`` inside it) lies in the
        tile's core and holds every centre the tile owns whose pixel is epithelium. None when no such
        pixel exists.

    Raises
    ------
    InvalidInputError
        For a mask of another shape than the padded tile, or a bad ``overlap`` / ``multiple``.

    Examples
    --------
    >>> import numpy as np
    >>> epi = np.zeros((800, 800), bool); epi[300:340, 100:120] = True
    >>> tile_window(epi, (1000, 2000, 1800, 2800), 48)
    (1048, 2240, 1176, 2400)
    """
    try:
        px0, py0, px1, py1 = (int(v) for v in padded)
    except (TypeError, ValueError):
        raise InvalidInputError(f"padded must be 4 integers (x0, y0, x1, y1), got {padded!r}") from None
    h, w = py1 - py0, px1 - px0
    ov = as_int(overlap, "overlap", 0)
    m = as_int(multiple, "multiple", 1)
    if min(h, w) <= 2 * ov:
        raise InvalidInputError(f"padded tile {padded} has no core inside an overlap of {ov} px")
    epi = np.asarray(epithelium, dtype=bool)
    if epi.shape != (h, w):
        raise InvalidInputError(f"epithelium must have the padded tile's shape {(h, w)}, got {epi.shape}: "
                                "sample the epithelium map over Tile.padded")
    # the pixels that can hold an owned centre: the core [ov, P - ov) and pixel P - ov (a centre in
    # [P - ov - 1/2, P - ov) rounds up to it)
    owned = epi[ov:h - ov + 1, ov:w - ov + 1]
    rows = np.flatnonzero(owned.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(owned.any(axis=0))
    # in padded-tile pixels the first such pixel is ov + cols[0]; its centres reach half a pixel
    # before it, so the window's core starts one pixel earlier; the window is that core widened by ov
    x0, y0, x1, y1 = (int(v) for v in _window_px(int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1]), ov, m, h, w))
    return (px0 + x0, py0 + y0, px0 + x1, py0 + y1)


#: a part of a tile is cut in two only when the halves' windows have at most this fraction of its
#: window's pixels (a window costs ~2 ms of fixed work, under 1 % of an 800^2 window's)
_SPLIT_MAX_FRACTION = 0.95
_FAR = np.iinfo(np.int64).max // 4


def _part_window(owned: np.ndarray, part: tuple[int, int, int, int], ov: int, m: int, h: int, w: int):
    """The window of the candidate-owner pixels of ``part`` (index rows r0..r1, columns c0..c1, inclusive),
    or None when it has none."""
    r0, r1, c0, c1 = part
    sub = owned[r0:r1 + 1, c0:c1 + 1]
    rows = np.flatnonzero(sub.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(sub.any(axis=0))
    return tuple(int(v) for v in _window_px(r0 + rows[0], r0 + rows[-1], c0 + cols[0], c0 + cols[-1], ov, m, h, w))


def _best_row_cut(owned: np.ndarray, part: tuple[int, int, int, int], ov: int, m: int, h: int, w: int):
    """The row cut of ``part`` whose halves' windows have the fewest pixels: ``(pixels, k)``, the halves
    holding index rows r0..k and k..r1 (row k: its pixels' centres lie on both sides of the cut), or
    None for a part of fewer than 3 rows. Every cut at once, with running minima and maxima."""
    r0, r1, c0, c1 = part
    sub = owned[r0:r1 + 1, c0:c1 + 1]
    n = sub.shape[0]
    if n < 3:
        return None
    any_r = sub.any(axis=1)
    idx = np.arange(n, dtype=np.int64)
    first = np.where(any_r, sub.argmax(axis=1), _FAR).astype(np.int64)
    last = np.where(any_r, sub.shape[1] - 1 - sub[:, ::-1].argmax(axis=1), -1).astype(np.int64)
    rev = slice(None, None, -1)
    k = idx[1:-1]
    # rows 0..k: first and last rows with epithelium, leftmost and rightmost columns
    top = (np.minimum.accumulate(np.where(any_r, idx, _FAR)), np.maximum.accumulate(np.where(any_r, idx, -1)),
           np.minimum.accumulate(first), np.maximum.accumulate(last))
    # rows k..n-1
    bottom = (np.minimum.accumulate(np.where(any_r, idx, _FAR)[rev])[rev],
              np.maximum.accumulate(np.where(any_r, idx, -1)[rev])[rev],
              np.minimum.accumulate(first[rev])[rev], np.maximum.accumulate(last[rev])[rev])
    total = np.zeros(k.shape, np.int64)
    for ra, rb, ca, cb in (tuple(a[k] for a in top), tuple(a[k] for a in bottom)):
        has = rb >= 0
        x0, y0, x1, y1 = _window_px(r0 + np.where(has, ra, 0), r0 + rb, c0 + np.where(has, ca, 0), c0 + cb, ov, m, h, w)
        total += np.where(has, (x1 - x0) * (y1 - y0), 0)
    j = int(np.argmin(total))
    return int(total[j]), r0 + int(k[j])


def tile_windows(epithelium: np.ndarray, padded: tuple[int, int, int, int], overlap: int, multiple: int = 16,
                 max_windows: int = 4) -> list[tuple[tuple[int, int, int, int], tuple[int, int, int, int]]]:
    """Up to ``max_windows`` windows of a padded tile that together hold the tumour cells its core owns.

    :func:`tile_window`'s one window, cut in two by a straight cut across the tile core (each half
    owning the cells on its side) while the halves' windows have at most 95 % of the pixels of the
    part's window, the best cut first: epithelium in two corners of a tile no longer makes the whole
    tile a window. Each window owns the cells whose centres lie in its core (the cores do not overlap,
    and hold every centre the tile owns whose pixel is epithelium) and has ``overlap`` of context
    around that core, as a tile has: the cells are those of the one window up to the network's far
    context.

    Parameters
    ----------
    epithelium, padded, overlap, multiple
        As :func:`tile_window`.
    max_windows : int
        At most this many windows; 1 gives :func:`tile_window`'s.

    Returns
    -------
    list of (window, core)
        Working pixels, half-open: the window (inside ``padded``) and the core whose cells it owns
        (inside the window by ``overlap``, and inside the tile's core). Empty when no pixel can hold
        an owned tumour centre.

    Raises
    ------
    InvalidInputError
        As :func:`tile_window`; or ``max_windows`` < 1.

    Examples
    --------
    >>> import numpy as np
    >>> epi = np.zeros((800, 800), bool); epi[60:120, 60:120] = True; epi[690:740, 680:740] = True
    >>> tile_windows(epi, (0, 0, 800, 800), 48)  # two corners: two windows, 9 % of the tile's pixels
    [((0, 0, 176, 176), (48, 48, 128, 120)), ((624, 640, 800, 800), (672, 688, 752, 752))]
    >>> tile_windows(epi, (0, 0, 800, 800), 48, max_windows=1)  # tile_window's: the whole tile
    [((0, 0, 800, 800), (48, 48, 752, 752))]
    """
    n_max = as_int(max_windows, "max_windows", 1)
    one = tile_window(epithelium, padded, overlap, multiple)  # validates everything else
    if one is None:
        return []
    ov, m = int(overlap), int(multiple)
    px0, py0, px1, py1 = (int(v) for v in padded)
    h, w = py1 - py0, px1 - px0
    owned = np.asarray(epithelium, dtype=bool)[ov:h - ov + 1, ov:w - ov + 1]
    owned_t = owned.T

    def area(win) -> int:
        return 0 if win is None else (win[2] - win[0]) * (win[3] - win[1])

    # a part: candidate-owner index rows r0..r1 and columns c0..c1, the core it owns (padded pixels,
    # half-open), its window
    whole = (0, owned.shape[0] - 1, 0, owned.shape[1] - 1)
    parts = [(whole, (ov, ov, w - ov, h - ov), _part_window(owned, whole, ov, m, h, w))]
    while len(parts) < n_max:
        best = None  # (saving, part index, axis, k)
        for i, ((r0, r1, c0, c1), _, win) in enumerate(parts):
            if win is None:
                continue
            for axis, cut in ((0, _best_row_cut(owned, (r0, r1, c0, c1), ov, m, h, w)),
                              (1, _best_row_cut(owned_t, (c0, c1, r0, r1), ov, m, w, h))):
                if cut is not None and cut[0] <= _SPLIT_MAX_FRACTION * area(win):
                    saving = area(win) - cut[0]
                    if best is None or saving > best[0]:
                        best = (saving, i, axis, cut[1])
        if best is None:
            break
        _, i, axis, k = best
        (r0, r1, c0, c1), (x0, y0, x1, y1), _ = parts.pop(i)
        if axis == 0:
            halves = [((r0, k, c0, c1), (x0, y0, x1, ov + k)), ((k, r1, c0, c1), (x0, ov + k, x1, y1))]
        else:
            halves = [((r0, r1, c0, k), (x0, y0, ov + k, y1)), ((r0, r1, k, c1), (ov + k, y0, x1, y1))]
        parts[i:i] = [(p, core, _part_window(owned, p, ov, m, h, w)) for p, core in halves]
    out = []
    for _, (cx0, cy0, cx1, cy1), win in parts:
        if win is None:
            continue
        wx0, wy0, wx1, wy1 = win
        core = (max(cx0, wx0 + ov), max(cy0, wy0 + ov), min(cx1, wx1 - ov), min(cy1, wy1 - ov))
        if core[0] >= core[2] or core[1] >= core[3]:
            continue
        out.append(((px0 + wx0, py0 + wy0, px0 + wx1, py0 + wy1),
                    (px0 + core[0], py0 + core[1], px0 + core[2], py0 + core[3])))
    return out


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


def run_slide(slide, settings: ScoreSettings, *, providers="auto", progress: bool = True,
              threads: ThreadPlan | None = None) -> PipelineOutput:
    """Run the stages over one open slide: slide-level stages, then the tiles as a bounded stream.

    Parameters
    ----------
    slide : her2fast.slide.Slide
    settings : ScoreSettings
    providers : "auto" or list of str
        What runs the membrane U-Net: ONNX Runtime execution providers, or ``["OpenVINO"]`` (see
        :class:`her2fast.membrane.MembraneSession`).
    progress : bool
        Progress line on stderr.
    threads : ThreadPlan, optional
        Threads of the tile stream (default :meth:`ThreadPlan.for_machine`); the result does not
        depend on it (:meth:`ThreadPlan.sequential` runs everything on the calling thread).

    Returns
    -------
    PipelineOutput
        ``not_scorable`` names the reason when the slide cannot be scored (no tissue, no epithelium);
        the cell table is then empty.
    """
    from .epithelium import classify_slide, default_model, select_tiles
    from .stain import slide_stain_vectors
    from .tissue import detect_tissue, tile_grid

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

    if threads is not None and not isinstance(threads, ThreadPlan):
        raise InvalidInputError(f"threads must be a her2fast.pipeline.ThreadPlan or None, got {type(threads).__name__}")
    plan = threads
    used: list[str] = []
    probe = None
    if s.membrane_method == "unet":
        from .membrane import get_session, uses_gpu

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
    lap("merge", t)
    counts["tiles_without_epithelium"] = perf["tiles_without_epithelium"]
    counts["tiles_segmented"] = len(sub) - perf["tiles_without_epithelium"]
    counts["artefact_loops"] = n_artefacts
    result = out(None, cells, stains.to_dict(), used)
    if probe is not None:
        perf["membrane_runtime_probe"] = probe
    result.performance = perf
    return result
