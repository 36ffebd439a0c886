"""What runs the membrane network: the runtime and its providers (ONNX Runtime's CPU, CUDA or TensorRT
providers, or OpenVINO on the CPU), the ``providers="auto"`` choice with its OpenVINO probe, and the
cached sessions (:class:`MembraneSession`, :func:`get_session`).

Examples
--------
>>> parse_providers("OpenVINO"), check_providers("auto"), uses_gpu(["OpenVINO"])
(['OpenVINO'], 'auto', False)
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..._files import file_sha256
from ..._validate import as_int
from ...errors import InvalidInputError, ModelError
from .model import load_model_config, probe_tile

__all__ = ["MembraneSession", "get_session", "uses_gpu", "parse_providers", "check_providers"]


_GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
_AUTO_ORDER = (*_GPU_PROVIDERS, "CPUExecutionProvider")
#: her2fast's names for the OpenVINO runtime on the CPU (not ONNX Runtime providers): "OpenVINO" runs
#: in bf16 where the CPU has bf16 units, else fp32; "OpenVINO:f32" always in fp32
OPENVINO = "OpenVINO"
_OPENVINO_NAMES = (OPENVINO, OPENVINO + ":f32")
#: what ``providers="auto"`` asks of OpenVINO on a bf16 CPU before taking it (:func:`prefer_openvino`):
#: the membrane probabilities of the probe tile within this of ONNX Runtime's fp32 ones ...
AUTO_MAX_ABS_DIFF = 0.02
#: ... at most this fraction of its pixels on the other side of the 0.5 threshold ...
AUTO_MAX_FLIPS = 0.001
#: ... and at most this fraction of ONNX Runtime's time on it (a clear gain, not noise)
AUTO_MAX_TIME_RATIO = 0.9


def _import_ort() -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ModelError(
            "the membrane U-Net needs ONNX Runtime, which is not installed: pip install 'her2fast[cpu]' "
            "(or 'her2fast[gpu]' for onnxruntime-gpu); method='classical' works without it"
        ) from exc
    return ort


def check_providers(providers: object) -> str | list[str]:
    """``providers`` as ``"auto"`` or a list of names, or InvalidInputError naming the argument.

    Parameters
    ----------
    providers : object
        What a caller passed as ``providers=``.

    Returns
    -------
    str or list of str
        ``"auto"``, or the names as a new list (which providers exist is checked when the session is built).

    Examples
    --------
    >>> check_providers(("CPUExecutionProvider",))
    ['CPUExecutionProvider']
    """
    if isinstance(providers, str):
        return providers
    if isinstance(providers, (list, tuple)) and all(isinstance(p, str) for p in providers):
        return list(providers)
    raise InvalidInputError(
        f"providers must be 'auto' or a list of provider names such as ['CUDAExecutionProvider'] or ['OpenVINO'], "
        f"got {providers!r} ({type(providers).__name__})"
    )


def _wants_openvino(providers: str | Sequence[str]) -> bool:
    """Whether an explicit providers list names OpenVINO."""
    providers = check_providers(providers)
    return not isinstance(providers, str) and any(p in _OPENVINO_NAMES for p in providers)


def _import_openvino() -> Any:
    try:
        import openvino
    except ImportError as exc:
        raise ModelError(
            "providers=['OpenVINO'] needs the OpenVINO runtime, which is not installed: pip install "
            "'her2fast[openvino]' (or leave providers='auto' for ONNX Runtime)"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - an installed but broken runtime (missing shared libraries)
        raise ModelError(
            f"the OpenVINO runtime is installed but cannot be loaded ({exc!r}): reinstall it "
            "(pip install --force-reinstall openvino) or use providers='auto' for ONNX Runtime"
        ) from exc
    return openvino


_BF16_CPU: bool | None = None


def openvino_bf16() -> bool:
    """Whether OpenVINO is installed and reports native bf16 on this CPU (Intel AMX, AVX512-BF16).

    On such CPUs OpenVINO runs the network in bf16 (the issue that asked for it measured 3.7x ONNX
    Runtime's fp32 speed on a Sapphire Rapids core); elsewhere it runs fp32, at ONNX Runtime's speed.
    """
    global _BF16_CPU
    if _BF16_CPU is None:
        try:
            ov = _import_openvino()
            _BF16_CPU = "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
        except Exception:  # noqa: BLE001 - not installed, or no CPU plugin: no bf16
            _BF16_CPU = False
    return _BF16_CPU


def parse_providers(text: str) -> str | list[str]:
    """``--providers`` text -> ``"auto"`` or a list of runtime names.

    Parameters
    ----------
    text : str
        ``"auto"``, or comma-separated ONNX Runtime execution providers or ``OpenVINO`` /
        ``OpenVINO:f32``.

    Returns
    -------
    str or list of str

    Examples
    --------
    >>> parse_providers("CUDAExecutionProvider, CPUExecutionProvider")
    ['CUDAExecutionProvider', 'CPUExecutionProvider']
    """
    return "auto" if text == "auto" else [p.strip() for p in text.split(",") if p.strip()]


def prefer_openvino(max_abs_diff: float, flip_fraction: float, ms_openvino: float, ms_onnxruntime: float) -> bool:
    """The ``providers="auto"`` rule on a bf16 CPU: OpenVINO only when it agrees and is clearly faster.

    Parameters
    ----------
    max_abs_diff : float
        Largest difference of the probe tile's membrane probabilities (OpenVINO vs ONNX Runtime fp32).
    flip_fraction : float
        Fraction of the probe's pixels on the other side of the 0.5 threshold.
    ms_openvino, ms_onnxruntime : float
        Time of one probe run in each runtime (best of a few).

    Examples
    --------
    >>> prefer_openvino(0.003, 0.0, 30.0, 110.0), prefer_openvino(0.003, 0.0, 105.0, 110.0)
    (True, False)
    """
    return bool(
        max_abs_diff <= AUTO_MAX_ABS_DIFF
        and flip_fraction <= AUTO_MAX_FLIPS
        and ms_openvino <= AUTO_MAX_TIME_RATIO * ms_onnxruntime
    )


class _OpenVinoRunner:
    """The model compiled by OpenVINO for the CPU. Each compiled model runs one request at a time on
    its own stream, so calls at once (the slide stream's inference lanes) take idle compiled models
    from a pool, compiling another when none is idle: as many as ever ran at once, kept for the next
    slide."""

    def __init__(self, path: Path, threads: int | None, bf16: bool) -> None:
        ov = _import_openvino()
        self._core = ov.Core()
        self._model = self._core.read_model(str(path))
        # one stream of `threads` threads per compiled model; no pinning (the post workers share the cores)
        self._config = {
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
            "INFERENCE_NUM_THREADS": threads or 0,
            "ENABLE_CPU_PINNING": False,
            "INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32",
        }
        self._lock = threading.Lock()
        self.compiles = 0
        first = self._compile()  # compiled now: a model OpenVINO cannot compile fails here
        self._idle = [first]
        # what OpenVINO actually runs in (a bf16 hint on a CPU without bf16 units runs fp32)
        self.precision = "bf16" if first[0].get_property("INFERENCE_PRECISION_HINT") == ov.Type.bf16 else "f32"

    def _compile(self) -> tuple[Any, Any]:
        with self._lock:
            self.compiles += 1
            compiled = self._core.compile_model(self._model, "CPU", self._config)
        return compiled, compiled.create_infer_request()

    def run(self, output_names: Sequence[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        with self._lock:
            pair = self._idle.pop() if self._idle else None
        pair = pair or self._compile()
        try:
            result = pair[1].infer(feed)
            by_name = {port.get_any_name(): value for port, value in result.items()}
            # copies: the request's output buffers are reused by its next call
            return [np.array(by_name[n], copy=True) for n in output_names]
        finally:
            with self._lock:
                self._idle.append(pair)


class _OrtRunner:
    def __init__(self, session: Any) -> None:
        self.session = session

    def run(self, output_names: Sequence[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(list(output_names), feed)


def _resolve_providers(providers: str | Sequence[str], available: Sequence[str]) -> list[str]:
    providers = check_providers(providers)
    if isinstance(providers, str):
        if providers != "auto":
            raise InvalidInputError(
                f"providers must be 'auto' or a list of provider names, got {providers!r}; "
                f"available here: {list(available)} (and {list(_OPENVINO_NAMES)} with "
                f"her2fast[openvino])"
            )
        return [p for p in _AUTO_ORDER if p in available] or list(available)
    chosen = list(providers)
    if not chosen:
        raise InvalidInputError(f"providers must not be empty; available here: {list(available)}")
    if any(p in _OPENVINO_NAMES for p in chosen):
        if len(chosen) != 1:
            raise InvalidInputError(
                f"OpenVINO runs alone: pass providers=['OpenVINO'] (or 'OpenVINO:f32'), not {chosen}"
            )
        return chosen
    unknown = [p for p in chosen if p not in available]
    if unknown:
        raise InvalidInputError(
            f"providers {unknown} are not available in this onnxruntime build; "
            f"available: {list(available)} (onnxruntime-gpu provides the CUDA/TensorRT ones)"
        )
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen


def uses_gpu(providers: str | Sequence[str] = "auto") -> bool:
    """Whether these providers would put the network on a GPU (without building a session)."""
    if _wants_openvino(providers):
        return False  # OpenVINO runs on the CPU here
    try:
        ort = _import_ort()
    except ModelError:
        return False
    return any(p in _GPU_PROVIDERS for p in _resolve_providers(providers, ort.get_available_providers()))


class MembraneSession:
    """A runtime session of a membrane model, built once (see :func:`get_session`).

    Parameters
    ----------
    model_dir : path or None
        Model directory (``model.onnx`` + ``config.json``); None: the shipped model.
    providers : "auto" or list of str
        ``"auto"``: TensorRT / CUDA when onnxruntime-gpu sees a GPU; else, on a CPU with bf16 units
        where OpenVINO is installed, OpenVINO if it passes the probe (below); else ONNX Runtime's CPU
        provider. An explicit list of ONNX Runtime providers wins (CPU is appended as the last
        resort); ``["OpenVINO"]`` (bf16 where the CPU has it, else fp32) or ``["OpenVINO:f32"]``
        runs OpenVINO alone.
    threads : int or None
        Intra-op threads (None: the runtime's default, all cores).

    Attributes
    ----------
    providers : list of str
        What runs the network: the ONNX Runtime providers the session actually uses
        (``session.get_providers()``), or ``["OpenVINO:bf16"]`` / ``["OpenVINO:f32"]``.
    fell_back : bool
        True when a requested GPU provider was not taken (ONNX Runtime silently uses the CPU then);
        a ``RuntimeWarning`` is issued too.
    selection : dict or None
        With ``providers="auto"`` on a bf16 CPU with OpenVINO: the probe's figures and the choice
        (``max_abs_diff``, ``flip_fraction``, ``ms_openvino``, ``ms_onnxruntime``, ``chosen``; or
        ``openvino_error`` / ``probe_error`` and ``chosen`` when OpenVINO or the probe tile cannot be
        loaded); OpenVINO is taken only when :func:`prefer_openvino` says so. None otherwise (also when the
        environment sets ``HER2FAST_AUTO_OPENVINO=0``: ONNX Runtime on every CPU, the same numbers
        on every workstation).
    """

    def __init__(
        self, model_dir: str | Path | None = None, providers: str | Sequence[str] = "auto", threads: int | None = None
    ) -> None:
        self.config = load_model_config(model_dir)
        digest = file_sha256(self.config.path)
        if digest != self.config.sha256:
            raise ModelError(
                f"membrane model {self.config.path} is corrupt or was replaced: sha256 {digest} "
                f"!= {self.config.sha256} in config.json; reinstall her2fast or re-export the model"
            )
        if threads is not None:
            threads = as_int(threads, "threads", 1, 1024)
        self.selection: dict[str, Any] | None = None
        self.fell_back = False
        if _wants_openvino(providers):
            _resolve_providers(providers, ())  # checks that OpenVINO is asked for alone
            self.requested = list(providers)
            ov_runner = self._openvino(threads, bf16=providers[0] == OPENVINO and openvino_bf16())
            self._runner: _OpenVinoRunner | _OrtRunner = ov_runner
            self.providers: list[str] = [f"{OPENVINO}:{ov_runner.precision}"]
            return
        ort = _import_ort()
        requested = _resolve_providers(providers, ort.get_available_providers())
        self.requested = requested
        ort_runner = _OrtRunner(self._ort_session(ort, requested, threads))
        self._runner = ort_runner
        self.providers = list(ort_runner.session.get_providers())
        wanted_gpu = [p for p in requested if p in _GPU_PROVIDERS]
        self.fell_back = bool(wanted_gpu) and not any(p in self.providers for p in wanted_gpu)
        if self.fell_back:
            warnings.warn(
                f"requested {wanted_gpu} but ONNX Runtime uses {self.providers} (CUDA/cuDNN libraries "
                f"missing or no GPU); membrane inference runs on the CPU",
                RuntimeWarning,
                stacklevel=2,
            )
        if (
            providers == "auto"
            and not any(p in _GPU_PROVIDERS for p in self.providers)
            and os.environ.get("HER2FAST_AUTO_OPENVINO", "1") != "0"
            and openvino_bf16()
        ):
            self._probe_openvino(threads)

    @property
    def session(self) -> Any:
        """The ONNX Runtime session (None when OpenVINO runs the network)."""
        return getattr(self._runner, "session", None)

    def _ort_session(self, ort: Any, requested: list[str], threads: int | None) -> Any:
        so = ort.SessionOptions()
        if threads is not None:
            so.intra_op_num_threads = threads
        # idle intra-op threads sleep instead of spinning: the tile stream runs post-processing on the
        # same cores, and spinning took their time (measured: 1.13x more tiles/s with 2 intra-op
        # threads beside the post workers on 2 cores)
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            return ort.InferenceSession(str(self.config.path), sess_options=so, providers=requested)
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable graphs
            raise ModelError(f"ONNX Runtime cannot load membrane model {self.config.path}: {exc}") from exc

    def _openvino(self, threads: int | None, bf16: bool) -> _OpenVinoRunner:
        try:
            return _OpenVinoRunner(self.config.path, threads, bf16)
        except ModelError:
            raise
        except Exception as exc:  # openvino raises RuntimeError for graphs it cannot read or compile
            raise ModelError(f"OpenVINO cannot load membrane model {self.config.path}: {exc}") from exc

    def _probe_openvino(self, threads: int | None) -> None:
        """``providers="auto"`` on a bf16 CPU: time both runtimes on the probe tile, keep the better."""
        import time

        try:
            probe = probe_tile()
        except ModelError as exc:
            self.selection = {"chosen": self.providers, "probe_error": str(exc)}
            return
        try:
            candidate = self._openvino(threads, bf16=True)
        except ModelError as exc:
            self.selection = {"chosen": self.providers, "openvino_error": str(exc)}
            return
        batch = np.ascontiguousarray((probe.astype(np.float32) / 255.0).transpose(2, 0, 1)[None])
        feed = {self.config.input_name: batch}
        names = self.config.output_names[:1]
        out, best = {}, {}
        for name, runner in (("onnxruntime", self._runner), ("openvino", candidate)):
            out[name] = runner.run(names, feed)[0]  # the first run also warms the runtime up
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                runner.run(names, feed)
                times.append(time.perf_counter() - t0)
            best[name] = 1e3 * min(times)
        diff = float(np.abs(out["openvino"] - out["onnxruntime"]).max())
        flips = float(((out["openvino"] >= 0.5) != (out["onnxruntime"] >= 0.5)).mean())
        take = prefer_openvino(diff, flips, best["openvino"], best["onnxruntime"])
        if take:
            self._runner = candidate
            self.providers = [f"{OPENVINO}:{candidate.precision}"]
        self.selection = {
            "max_abs_diff": round(diff, 6),
            "flip_fraction": round(flips, 6),
            "ms_openvino": round(best["openvino"], 2),
            "ms_onnxruntime": round(best["onnxruntime"], 2),
            "chosen": list(self.providers),
        }

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the network on a float32 (N, 3, H, W) batch of RGB / 255; returns (membrane, edge) (N, H, W)."""
        if batch.ndim != 4 or batch.shape[1] != 3 or batch.dtype != np.float32:
            raise InvalidInputError(f"batch must be float32 (N, 3, H, W), got {batch.dtype} {batch.shape}")
        m = self.config.multiple
        if batch.shape[2] % m or batch.shape[3] % m:
            raise InvalidInputError(f"batch height and width must be multiples of {m}, got {batch.shape[2:]}")
        mem, edge = self._runner.run(self.config.output_names, {self.config.input_name: batch})
        return mem[:, 0], edge[:, 0]


_SESSIONS: dict[tuple, MembraneSession] = {}
_SESSIONS_LOCK = threading.Lock()


def get_session(
    model_dir: str | Path | None = None, providers: str | Sequence[str] = "auto", threads: int | None = None
) -> MembraneSession:
    """The cached :class:`MembraneSession` for these arguments (built on first use)."""
    providers = check_providers(providers)
    key = (
        str(Path(model_dir).resolve()) if model_dir is not None else None,
        providers if isinstance(providers, str) else tuple(providers),
        threads,
    )
    with _SESSIONS_LOCK:
        s = _SESSIONS.get(key)
        if s is None:
            s = MembraneSession(model_dir, providers, threads)
            _SESSIONS[key] = s
        return s
