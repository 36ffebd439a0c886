"""The membrane network alone under each runtime: tiles/s on phantom tiles, alternated, in one process.

``python -m her2fast.bench.pipeline network [--providers all] [--int8-model-dir DIR] [--repeats 5]``

Every runtime of :func:`~her2fast.bench.pipeline.machine.runtimes` (``all``: ONNX Runtime CPU fp32,
CUDA where present, OpenVINO fp32, OpenVINO bf16 on bf16 CPUs), plus, with ``int8_model_dir`` (a
model directory as ``python -m training.quantize_membrane`` writes it), that int8 model in ONNX Runtime
and in OpenVINO. Each runtime is a :class:`~her2fast.stages.membrane.MembraneSession` with
``threads`` intra-op threads (default: every core this process may use), warmed up on the tiles
first; then ``repeats`` rounds, each running every runtime over the same tiles (one network call per
tile, batch 1) in a rotated order, so that all runtimes see the same machine noise. Printed per
runtime: the median and min-max of tiles/s over the rounds, the ratio of its median to the first
runtime's, and the median CPU seconds per tile (all the process's threads: what the network costs
when the cores are shared); the load average before and after, since a shared machine slows every
figure.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from .figures import spread
from .machine import cpu_info, runtimes

__all__ = ["network_main", "network_runtimes"]


def network_runtimes(providers: str, flags: dict, int8_model_dir: str | None) -> list[tuple[str, str, str | None]]:
    """(name, ``--providers`` text, model directory or None for the shipped model) of each runtime timed.

    Examples
    --------
    >>> network_runtimes("auto", {}, "int8_dir")
    [('auto', 'auto', None), ('onnxruntime-cpu-int8', 'CPUExecutionProvider', 'int8_dir')]
    """
    out: list[tuple[str, str, str | None]] = [(n, t, None) for n, t in runtimes(providers, flags)]
    if int8_model_dir is not None:
        out.append(("onnxruntime-cpu-int8", "CPUExecutionProvider", int8_model_dir))
        if any(t.startswith("OpenVINO") for _, t, _ in out):
            out.append(("openvino-int8", "OpenVINO:f32", int8_model_dir))
    return out


def _tiles(n: int, size: int) -> list[np.ndarray]:
    from ...synth import make_tile

    cats = ("1+", "2+", "3+")
    out = []
    for i in range(n):
        rgb = make_tile(size, category=cats[i % 3], seed=880_000 + i, jpeg_quality=90).rgb
        out.append(np.ascontiguousarray((rgb.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]))
    return out


def network_main(
    *,
    providers: str = "all",
    int8_model_dir: str | None = None,
    threads: int | None = None,
    repeats: int = 5,
    tiles: int = 4,
    size: int = 512,
    json_path: str | None = None,
) -> int:
    """Time the network under each runtime (see the module's docstring); returns the exit code."""
    from ... import __version__
    from ...errors import InvalidInputError
    from ...pipeline.settings import _available_cores
    from ...stages.membrane import MembraneSession, parse_providers

    if repeats < 3:
        raise InvalidInputError(f"repeats must be >= 3 (a median and a spread need three runs), got {repeats}")
    if size % 16 or size < 16:
        raise InvalidInputError(f"size must be a positive multiple of 16 (the network's grid), got {size}")
    cpu = cpu_info()
    threads = _available_cores() if threads is None else threads
    rts = network_runtimes(providers, cpu["flags"], int8_model_dir)
    flags = "  ".join(f"{f} {'?' if v is None else ('yes' if v else 'no')}" for f, v in cpu["flags"].items())
    load0 = os.getloadavg()
    print(f"her2fast {__version__} bench network: {tiles} phantom tiles of {size}^2, batch 1, {threads} threads")
    print(f"cpu: {cpu['model']}, {cpu['cpus']} logical CPUs; {flags}")
    print(f"load average before: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}", flush=True)
    sessions = {}
    for name, text, model_dir in rts:
        s = MembraneSession(model_dir, parse_providers(text), threads)
        sessions[name] = s
        print(f"  {name}: {s.providers} ({'shipped fp32 model' if model_dir is None else model_dir})", flush=True)
    batches = _tiles(tiles, size)
    for s in sessions.values():
        for b in batches:
            s.run(b)
    tps: dict[str, list[float]] = {n: [] for n in sessions}
    cpu_s: dict[str, list[float]] = {n: [] for n in sessions}
    names = list(sessions)
    for r in range(repeats):
        k = r % len(names)
        for n in names[k:] + names[:k]:
            s = sessions[n]
            w0, c0 = time.perf_counter(), time.process_time()
            for b in batches:
                s.run(b)
            w, c = time.perf_counter() - w0, time.process_time() - c0
            tps[n].append(len(batches) / w)
            cpu_s[n].append(c / len(batches))
    load1 = os.getloadavg()
    base = spread(tps[names[0]])["median"]
    out: dict = {
        "her2fast_version": __version__,
        "cpu": cpu,
        "threads": threads,
        "tiles": tiles,
        "size": size,
        "repeats": repeats,
        "load_average": {"before": list(load0), "after": list(load1)},
        "runtimes": [],
    }
    print(f"\n{'runtime':22s} {'ran as':24s} {'tiles/s median (min-max)':>26s} {'ratio':>6s} {'CPU s/tile':>10s}")
    print("-" * 92)
    for name, text, model_dir in rts:
        t = spread(tps[name])
        cs = spread(cpu_s[name])
        ratio = t["median"] / base if base > 0 else float("nan")
        print(
            f"{name:22s} {','.join(sessions[name].providers)[:24]:24s} "
            f"{t['median']:10.2f} ({t['min']:.2f}-{t['max']:.2f}){'':5s} {ratio:5.2f}x {cs['median']:10.3f}"
        )
        out["runtimes"].append(
            {
                "name": name,
                "providers": text,
                "model_dir": model_dir,
                "ran_as": sessions[name].providers,
                "tiles_per_s": t,
                "cpu_s_per_tile": cs,
                "ratio_to_first": round(ratio, 3),
            }
        )
    print(f"ratio: median tiles/s / {names[0]}'s; load average after: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    if json_path:
        Path(json_path).write_text(json.dumps(out, indent=1))
        print(f"wrote {json_path}")
    return 0
