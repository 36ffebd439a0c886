"""The bounded tile stream: reader threads -> pre-processing -> network lanes -> nuclei and cells, with
bounded queues; :meth:`ThreadPlan.sequential` runs the same stages on the calling thread."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from ..qc import QualityTally, quality_map
from ..scoring import CellTable
from ..stages.cells import measure_tile
from ..stages.nuclei import drop_nuclei_on_membrane, segment_nuclei
from .progress import Progress
from .settings import ScoreSettings, ThreadPlan, _available_cores
from .windows import tile_windows

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
            _blas_state["threads"] = max(
                (i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"), default=0
            )
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

    def __init__(
        self, slide, grid, epi, stains, settings: ScoreSettings, providers, plan: ThreadPlan, progress: Progress
    ) -> None:
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
        self.quality: QualityTally | None = QualityTally() if settings.quality_map else None

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
        from ..stages.tissue import read_tile

        tiles = list(self.grid)
        ov = self.grid.overlap
        for i in range(start, len(tiles), step):
            t0 = time.perf_counter()
            tile = tiles[i]
            epi_patch = _sample_mask(
                self.epi.epithelium_mask, self.epi.level0_per_pixel, tile.padded, self.grid.level0_per_pixel
            )
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
        from ..stages.stain import deconvolve

        s = self.s
        t0 = time.perf_counter()
        conc = deconvolve(work.image, self.stains)
        t1 = time.perf_counter()
        nuc = segment_nuclei(conc.hematoxylin, s.mpp, settings=s.nuclei)
        if s.nuclei.max_membrane_share < 1:  # no cell seeded on a membrane's hematoxylin leak
            nuc = drop_nuclei_on_membrane(nuc, membrane >= 0.5, s.nuclei.max_membrane_share)
        t2 = time.perf_counter()
        # the window owns the cells whose centres lie in its core (tile_windows: `overlap` inside the
        # window, in the tile's core, and apart from the tile's other windows' cores)
        tc = measure_tile(
            membrane,
            conc.dab,
            nuc,
            mpp=s.mpp,
            origin=work.bounds[:2],
            core=work.core,
            epithelium=work.epithelium,
            settings=s.cells,
        )
        t3 = time.perf_counter()
        cells, tally = tc.cells, None
        if self.quality is not None:
            cells, tally = _quality_filter(work, cells, s.mpp)
        t4 = time.perf_counter()
        with self._busy_lock:
            self.tables[work.index, work.window] = cells
            if tally is not None:
                self.quality.add(tally)  # type: ignore[union-attr]  # a tally only when quality is kept
                self.busy["quality"] += t4 - t3
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
        from ..stages.membrane import predict_maps_batch

        t0 = time.perf_counter()
        images = [w.image for w in batch]
        if self.s.membrane_white_balance and self.s.membrane_method == "unet":
            from ..stages.membrane import white_balance_to_training

            images = [white_balance_to_training(im, self.stains.background) for im in images]
        maps = predict_maps_batch(
            images,
            self.s.mpp,
            method=self.s.membrane_method,
            providers=self.providers,
            threads=self.plan.inference_threads,
            batch_size=self.s.membrane_batch_size,
            margin=self.s.membrane_margin,
        )
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
            threads.append(
                threading.Thread(
                    target=self._reader, args=(q_read, k, plan.readers), name=f"her2fast-read-{k}", daemon=True
                )
            )
        for k in range(plan.post_workers):
            threads.append(
                threading.Thread(target=self._post_worker, args=(q_post,), name=f"her2fast-post-{k}", daemon=True)
            )
        lanes = [
            threading.Thread(target=self._lane, args=(q_read, q_post), name=f"her2fast-infer-{k}", daemon=True)
            for k in range(1, plan.inference_lanes)
        ]
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


def _quality_filter(work: _TileWork, cells: CellTable, mpp: float) -> tuple[CellTable, QualityTally]:
    """The window's cells without those in unusable tissue (:func:`her2fast.qc.quality_map` of the window's
    pixels), and the tally of what its core lost."""
    qm = quality_map(work.image, mpp)
    bx, by = work.bounds[:2]
    cx0, cy0, cx1, cy1 = work.core
    tally = qm.tally((cx0 - bx, cy0 - by, cx1 - bx, cy1 - by), work.epithelium)
    if len(cells) and tally.removed_px.get("any", 0):
        out = qm.unusable_at(cells.x - bx, cells.y - by)["any"]
        tally.cells_removed = int(out.sum())
        tally.tumour_cells_removed = int((out & cells.is_tumour.astype(bool)).sum())
        cells = cells.select(np.flatnonzero(~out))
    return cells, tally


@dataclass
class _TileWork:
    """One tile on its way through the stream: the window of it that is segmented."""

    index: int  # position in the grid
    window: int  # which of the tile's windows (tile_windows)
    image: np.ndarray  # (h, w, 3) uint8 RGB of `bounds`
    bounds: tuple[int, int, int, int]  # working pixels, half-open, inside tile.padded
    core: tuple[int, int, int, int]  # the cells this window owns: centres here (working pixels)
    epithelium: np.ndarray  # (h, w) bool, the 2 um/px epithelium map sampled at `bounds`' pixels


def _sample_mask(
    mask: np.ndarray, mask_l0: tuple[float, float], bounds: tuple[int, int, int, int], work_l0: tuple[float, float]
) -> np.ndarray:
    """A low-resolution mask sampled (nearest) at the centres of the working pixels of ``bounds``."""
    x0, y0, x1, y1 = bounds
    cols = np.floor((np.arange(x0, x1) + 0.5) * work_l0[0] / mask_l0[0]).astype(np.int64)
    rows = np.floor((np.arange(y0, y1) + 0.5) * work_l0[1] / mask_l0[1]).astype(np.int64)
    h, w = mask.shape
    okc = (cols >= 0) & (cols < w)
    okr = (rows >= 0) & (rows < h)
    out = mask[np.clip(rows, 0, h - 1)][:, np.clip(cols, 0, w - 1)]
    return out & okr[:, None] & okc[None, :]
