"""The machine the benchmark runs on: its CPU and the membrane runtimes to time there."""

from __future__ import annotations

from pathlib import Path

__all__ = ["CPU_FLAGS", "cpu_info", "runtimes"]


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
