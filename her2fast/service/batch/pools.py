"""Where a batch's slides run: a local process pool or a Dask cluster; each yields (job, outcome) as slides end.

- :func:`run_local` -- a spawn-context process pool; a worker that dies costs only the slide it was
  scoring (the slides in flight with it are run again, one at a time, to find which);
- :func:`run_dask` -- one task per slide on a Dask ``distributed`` cluster (an address, ``"local"`` or a
  client).
"""

from __future__ import annotations

import os
import uuid
from collections import deque
from collections.abc import Generator, Sequence

from ...errors import InvalidInputError
from ..slide_jobs import describe_error
from .progress import BatchProgress
from .workers import Job, Outcome, died, init_worker, work, work_local

__all__ = ["run_dask", "run_local"]


_CRASH = (
    "the worker process died while scoring this slide (a crash in a native library, or killed, e.g. by the "
    "out-of-memory killer); see the system log"
)


def _stop_pool(pool) -> None:
    pool.shutdown(wait=False, cancel_futures=True)
    procs = getattr(pool, "_processes", None) or {}
    for p in list(procs.values()):
        if p.is_alive():
            p.terminate()
    for p in list(procs.values()):
        p.join(10)


def run_local(
    jobs: Sequence[Job], shared: dict, workers: int, ui: BatchProgress
) -> Generator[tuple[Job, Outcome], None, None]:
    """A spawn-context process pool, at most ``workers`` slides in flight; a crashed worker costs one slide."""
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool
    from queue import Empty

    ctx = mp.get_context("spawn")  # never fork a parent that may hold ONNX Runtime threads
    queue = ctx.Queue() if ui.enabled else None

    def new_pool(n: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=n, mp_context=ctx, initializer=init_worker, initargs=(shared, queue, os.getpid())
        )

    def drain() -> None:
        if queue is None:
            return
        while True:
            try:
                key, d, t = queue.get_nowait()
            except (Empty, OSError, ValueError):
                return
            ui.tiles(key, d, t)

    pending = deque(jobs)
    pool = new_pool(workers)
    inflight: dict = {}
    try:
        while pending or inflight:
            broken = False
            while pending and len(inflight) < workers:
                job = pending.popleft()
                try:
                    fut = pool.submit(work_local, job.path, job.name)
                except BrokenProcessPool:  # a worker died since the last wait: not this slide's fault
                    pending.appendleft(job)
                    broken = True
                    break
                inflight[fut] = job
                ui.started(job.path)
            done, _ = wait(list(inflight), timeout=0.5, return_when=FIRST_COMPLETED)
            drain()
            suspects: list[Job] = []
            for fut in done:
                job = inflight.pop(fut)
                try:
                    outcome = fut.result()
                except BrokenProcessPool:
                    suspects.append(job)
                    continue
                yield job, outcome
            if not suspects and not broken:
                continue
            # A worker died: every slide in flight failed with it. Run each alone to find the culprit.
            suspects += list(inflight.values())
            inflight.clear()
            _stop_pool(pool)
            for job in sorted(suspects, key=lambda j: j.index):
                solo = new_pool(1)
                try:
                    outcome = solo.submit(work_local, job.path, job.name).result()
                except BrokenProcessPool:
                    outcome = died(job.path, shared["versions"], _CRASH)
                finally:
                    _stop_pool(solo)
                drain()
                yield job, outcome
            pool = new_pool(workers)
    finally:
        _stop_pool(pool)
        if queue is not None:
            queue.close()
            queue.cancel_join_thread()


def run_dask(
    jobs: Sequence[Job], shared: dict, scheduler, workers: int, ui: BatchProgress
) -> Generator[tuple[Job, Outcome], None, None]:
    """One task per slide on a Dask distributed cluster; results come back here to be stored."""
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise InvalidInputError(
            "the Dask path needs the 'distributed' package: pip install 'her2fast[cluster]'"
        ) from None
    cluster = client = None
    own = True
    try:
        if isinstance(scheduler, str) and scheduler in ("local", "dask"):
            cluster = LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
            )
            client = Client(cluster)
        elif isinstance(scheduler, str):
            try:
                client = Client(scheduler, timeout="30s")
            except (OSError, TimeoutError) as exc:
                raise InvalidInputError(
                    f"cannot reach the Dask scheduler at {scheduler}: {exc}; start it with "
                    "`dask scheduler` and its workers with `dask worker <address>`"
                ) from None
        elif hasattr(scheduler, "submit") and hasattr(scheduler, "scatter"):
            client, own = scheduler, False
        else:
            raise InvalidInputError(
                f"scheduler must be an address like 'tcp://host:8786', 'local' or a "
                f"distributed.Client, got {scheduler!r}"
            )
        [shared_future] = client.scatter([shared], broadcast=True)
        tag = uuid.uuid4().hex[:8]
        futures = {}
        for job in jobs:
            fut = client.submit(
                work, job.path, job.name, shared_future, pure=False, key=f"her2fast-score-{job.index}-{tag}"
            )
            futures[fut] = job
        try:
            for fut in as_completed(list(futures)):
                job = futures[fut]
                try:
                    outcome = fut.result()
                except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker: the slide took workers down
                    outcome = died(job.path, shared["versions"], f"the Dask task failed: {describe_error(exc)}")
                fut.release()
                yield job, outcome
        finally:
            pending = [f for f in futures if not f.done()]
            if pending:
                client.cancel(pending)
    finally:
        if own and client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
