"""Membrane segmentation: the shipped ONNX U-Net (ONNX Runtime) and a classical baseline.

:func:`predict` is the call the rest of her2fast uses: an RGB uint8 image of any size at a given
µm/px in, a membrane probability map (H, W) float32 in [0, 1] out. With ``method="unet"`` the image is
resampled to the model's µm/px, cut into overlapping tiles (only each tile's core is kept, so tile
seams do not show), run through one cached ONNX Runtime session in batches, stitched and resampled
back. ``method="classical"`` is the morphology baseline (colour deconvolution -> DAB -> ridge filter ->
soft threshold) in the same interface, so every evaluation can show both.

The network (``her2fast/models/membrane_unet/``): the modified U-Net of Khameneh et al. (2019), two
heads (membrane, membrane centre line), trained on phantoms (:mod:`her2fast.synth`) by
``training/train_membrane.py``; see its MODEL_CARD.md. This module needs ``onnxruntime`` (extra
``her2fast[cpu]`` or ``her2fast[gpu]``) for ``method="unet"`` only; it never imports torch.

Runtimes: ONNX Runtime (its CPU provider, or CUDA / TensorRT from onnxruntime-gpu), or OpenVINO on the
CPU (``providers=["OpenVINO"]``, extra ``her2fast[openvino]``), which runs the same ONNX file in bf16
on CPUs that have bf16 units (Intel AMX, AVX512-BF16) and in fp32 elsewhere. With ``providers="auto"``
on such a CPU, the session measures both runtimes on a probe tile when it is built and takes OpenVINO
only if its membrane agrees with ONNX Runtime's fp32 one and it is faster (:class:`MembraneSession`).

References
----------
.. [1] F. Khameneh, S. Razavi, M. Kamasak, "Automated segmentation of cell membranes to evaluate HER2
   status in whole slide images using a modified deep learning network", Computers in Biology and
   Medicine 110 (2019) 164-174.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .._files import file_sha256
from .._validate import as_int, as_positive_float, as_rgb_uint8
from ..errors import InvalidInputError, ModelError

__all__ = [
    "MembraneModelConfig",
    "MembraneMaps",
    "MembraneSession",
    "default_model_dir",
    "load_model_config",
    "probe_tile",
    "get_session",
    "uses_gpu",
    "parse_providers",
    "check_providers",
    "MAX_NETWORK_PIXELS",
    "predict",
    "predict_maps",
    "predict_maps_batch",
    "classical_membrane",
    "white_balance_to_training",
    "TRAINING_GLASS",
    "METHODS",
]

METHODS = ("unet", "classical")
#: The glass colour (RGB, as :attr:`her2fast.stages.tissue.TissueMask.background` reads it) of the phantoms the
#: membrane network was trained on: their glass is (250, 249, 247) +- 1.5 before noise, and the glass
#: estimate (99th percentile of a noisy glass) reads about (252, 251, 248.5) on them.
TRAINING_GLASS = (252.0, 251.0, 248.5)
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
#: the tile of that probe, shipped beside the model (:func:`probe_tile`)
PROBE_TILE = "probe_tile.png"
#: images up to this side (px at the model's µm/px, margins included) run in one pass instead of tiles
_SINGLE_PASS_MAX = 640
#: predict_maps_batch's one-pass limit (the slide pipeline's tiles: 704 + 2 x 48 px)
_BATCH_SINGLE_PASS_MAX = 1088


@dataclass(frozen=True)
class MembraneModelConfig:
    """What ``config.json`` of a membrane model says (see ``her2fast/models/membrane_unet/``).

    Attributes
    ----------
    path : Path
        The ONNX file.
    sha256 : str
        Expected SHA-256 of the ONNX file (checked when a session is built).
    mpp : float
        µm/px the network works at; :func:`predict` resamples to it.
    tile_size : int
        Tile side fed to the network (px at `mpp`).
    overlap : int
        Margin (px) dropped on each side of a tile when stitching.
    multiple : int
        Input height and width must be multiples of this (2 ** number of poolings).
    input_name : str
    output_names : tuple of str
        ``("membrane", "edge")``: probabilities (N, 1, H, W).
    threshold : float
        Decision threshold of the membrane probability (0.5: the exported probabilities are calibrated).
    raw : dict
        The whole config.json (normalisation, class names, opset, training command, metrics, ...).
    """

    path: Path
    sha256: str
    mpp: float
    tile_size: int
    overlap: int
    multiple: int
    input_name: str
    output_names: tuple[str, ...]
    threshold: float
    raw: dict[str, Any] = field(repr=False, compare=False)


@dataclass
class MembraneMaps:
    """Membrane and membrane-edge probability maps of one image (both (H, W) float32 in [0, 1])."""

    membrane: np.ndarray
    edge: np.ndarray
    mpp: float
    method: str


def default_model_dir() -> Path:
    """Directory of the shipped membrane model (``her2fast/models/membrane_unet``)."""
    return Path(str(resources.files("her2fast").joinpath("models", "membrane_unet")))


def probe_tile() -> np.ndarray:
    """The tile ``providers="auto"`` times both CPU runtimes on (:class:`MembraneSession`).

    A 512 x 512 phantom at 0.5 um/px (category 2+), shipped with the model as a lossless PNG
    (``her2fast/models/membrane_unet/probe_tile.png``, written by ``scripts/make_probe_tile.py``).

    Returns
    -------
    (512, 512, 3) uint8
        RGB.

    Raises
    ------
    ModelError
        The file is missing or unreadable (reinstall her2fast).
    """
    from PIL import Image, UnidentifiedImageError

    ref = resources.files("her2fast").joinpath("models", "membrane_unet", PROBE_TILE)
    try:
        with ref.open("rb") as fh, Image.open(fh) as im:
            rgb = np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError) as exc:
        raise ModelError(
            f"cannot read the membrane model's probe tile {ref}: {exc}; reinstall her2fast, or set "
            "HER2FAST_AUTO_OPENVINO=0 to skip the runtime probe"
        ) from None
    return np.ascontiguousarray(rgb)


def load_model_config(model_dir: str | Path | None = None) -> MembraneModelConfig:
    """Read and check ``config.json`` of a membrane model directory (default: the shipped one).

    Raises
    ------
    ModelError
        When the directory, ``config.json`` or the ONNX file is missing or the config lacks a key.
    """
    d = Path(model_dir) if model_dir is not None else default_model_dir()
    cfg_path = d / "config.json"
    if not cfg_path.is_file():
        raise ModelError(
            f"membrane model config not found: {cfg_path}; pass model_dir= pointing to a directory with "
            f"model.onnx and config.json, or reinstall her2fast (the shipped model lives in {default_model_dir()})"
        )
    try:
        raw = json.loads(cfg_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"membrane model config {cfg_path} is not valid JSON: {exc}") from exc
    try:
        path = d / raw["file"]
        cfg = MembraneModelConfig(
            path=path,
            sha256=str(raw["sha256"]),
            mpp=float(raw["mpp"]),
            tile_size=int(raw["input"]["tile_size"]),
            overlap=int(raw["input"]["overlap"]),
            multiple=int(raw["input"]["multiple"]),
            input_name=str(raw["input"]["name"]),
            output_names=tuple(o["name"] for o in raw["outputs"]),
            threshold=float(raw.get("threshold", 0.5)),
            raw=raw,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"membrane model config {cfg_path} lacks or mangles a required key: {exc!r}") from exc
    if not path.is_file():
        raise ModelError(
            f"membrane model file not found: {path} (named by {cfg_path}); reinstall her2fast "
            f"or re-export it with `python -m training.export_membrane`"
        )
    return cfg


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


def _resize(arr: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a uint8 RGB (h, w, 3) or float32 (h, w) array to `shape` (H, W) with PIL."""
    from PIL import Image

    if arr.shape[:2] == shape:
        return arr
    if arr.ndim == 3:
        return np.asarray(Image.fromarray(arr).resize((shape[1], shape[0]), Image.Resampling.BILINEAR))
    return np.asarray(
        Image.fromarray(arr.astype(np.float32), mode="F").resize((shape[1], shape[0]), Image.Resampling.BILINEAR)
    )


#: Most pixels an image may have once resampled to the network's resolution (2**26, 8192 x 8192).
MAX_NETWORK_PIXELS = 1 << 26


def _check_mpp(mpp: object) -> float:
    """``mpp`` as a brightfield resolution (:data:`her2fast.io.slide.PLAUSIBLE_MPP`), or InvalidInputError."""
    from ..io.slide import PLAUSIBLE_MPP

    v = as_positive_float(mpp, "mpp")
    lo, hi = PLAUSIBLE_MPP
    if not lo <= v <= hi:
        raise InvalidInputError(
            f"mpp={v:.4g} um/px is not a brightfield image resolution (accepted: {lo:g} to {hi:g} um/px); pass the "
            "image's micrometres per pixel, e.g. 0.5 for a 20x scan or 0.25 for 40x"
        )
    return v


def _unet_maps(
    image: np.ndarray, mpp: float, session: MembraneSession, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    cfg = session.config
    h0, w0 = image.shape[:2]
    scale = mpp / cfg.mpp
    if h0 * scale * w0 * scale > MAX_NETWORK_PIXELS:
        raise InvalidInputError(
            f"a {w0}x{h0} image at mpp={mpp:.4g} um/px is {w0 * scale:.0f}x{h0 * scale:.0f} pixels at the network's "
            f"{cfg.mpp:g} um/px, more than MAX_NETWORK_PIXELS={MAX_NETWORK_PIXELS}; pass a smaller region or "
            "check mpp"
        )
    if abs(scale - 1.0) > 0.01:
        shape = (max(1, round(h0 * scale)), max(1, round(w0 * scale)))
        img = _resize(image, shape)
    else:
        img = image
    h, w = img.shape[:2]
    t, o = cfg.tile_size, cfg.overlap
    mult = cfg.multiple
    if h + 2 * o <= _SINGLE_PASS_MAX and w + 2 * o <= _SINGLE_PASS_MAX:
        # small image: one pass over the image plus a mirrored margin (cheaper than 2 x 2 overlapping tiles)
        pm, pe = session.run(_single_pass_input(img, o, mult)[None])
        mem, edge = pm[0, o : o + h, o : o + w], pe[0, o : o + h, o : o + w]
        if (h, w) != (h0, w0):
            mem, edge = _resize(mem, (h0, w0)), _resize(edge, (h0, w0))
        return np.clip(mem, 0, 1).astype(np.float32), np.clip(edge, 0, 1).astype(np.float32)
    core = t - 2 * o
    ny, nx = -(-h // core), -(-w // core)
    ph, pw = ny * core + 2 * o, nx * core + 2 * o
    padded = np.pad(img, ((o, ph - h - o), (o, pw - w - o), (0, 0)), mode="symmetric")
    mem = np.zeros((ny * core, nx * core), np.float32)
    edge = np.zeros_like(mem)
    starts = [(iy * core, ix * core) for iy in range(ny) for ix in range(nx)]
    for b in range(0, len(starts), batch_size):
        chunk = starts[b : b + batch_size]
        x = np.stack([padded[y : y + t, x_ : x_ + t] for y, x_ in chunk])
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32)
        x *= np.float32(1.0 / 255.0)
        pm, pe = session.run(x)
        for (y, x_), m_, e_ in zip(chunk, pm, pe):
            mem[y : y + core, x_ : x_ + core] = m_[o : o + core, o : o + core]
            edge[y : y + core, x_ : x_ + core] = e_[o : o + core, o : o + core]
    mem, edge = mem[:h, :w], edge[:h, :w]
    if (h, w) != (h0, w0):
        mem, edge = _resize(mem, (h0, w0)), _resize(edge, (h0, w0))
    return np.clip(mem, 0, 1).astype(np.float32), np.clip(edge, 0, 1).astype(np.float32)


def classical_membrane(
    image: np.ndarray,
    mpp: float,
    *,
    dab_threshold: float = 0.03,
    ridge_threshold: float = 0.0093,
    softness: float = 0.25,
) -> MembraneMaps:
    """Classical membrane map: colour deconvolution -> DAB -> ridge filter -> soft threshold.

    The DAB optical density (Ruifrok-Johnston deconvolution, :func:`skimage.color.rgb2hed`) is
    filtered with the Sato tubeness filter (bright ridges, scales 0.5 and 1 µm) — the "morphology"
    approach the paper compares the U-Net with. A pixel is membrane when both its DAB density and its
    ridge response pass their thresholds; the returned "probability" is a logistic of the smaller
    of the two normalised margins (0.5 at the threshold), so it thresholds like the U-Net's output.
    Thresholds were fitted on validation phantoms (``benchmarks/membrane.py``).

    Parameters
    ----------
    image : (H, W, 3) uint8
    mpp : float
        µm/px of `image`.
    dab_threshold, ridge_threshold : float
        DAB OD and Sato response at which a pixel becomes membrane.
    softness : float
        Width of the logistic, relative to each threshold.

    Returns
    -------
    MembraneMaps
        ``membrane`` as described; ``edge`` the ridge response scaled to [0, 1].
    """
    from skimage.color import rgb2hed
    from skimage.filters import sato

    image = as_rgb_uint8(image)
    mpp = _check_mpp(mpp)
    dab = rgb2hed(image)[..., 2].astype(np.float32)
    sigmas = [s / mpp for s in (0.5, 1.0)]
    ridge = sato(dab, sigmas=sigmas, black_ridges=False, mode="reflect").astype(np.float32)
    m_dab = (dab - dab_threshold) / (softness * dab_threshold)
    m_ridge = (ridge - ridge_threshold) / (softness * ridge_threshold)
    z = np.clip(np.minimum(m_dab, m_ridge), -30, 30)
    prob = (1.0 / (1.0 + np.exp(-z))).astype(np.float32)
    edge = np.clip(ridge / (4 * ridge_threshold), 0, 1).astype(np.float32)
    return MembraneMaps(prob, edge, mpp, "classical")


def predict_maps(
    image: np.ndarray,
    mpp: float,
    *,
    method: str = "unet",
    model_dir: str | Path | None = None,
    providers: str | Sequence[str] = "auto",
    threads: int | None = None,
    batch_size: int = 4,
) -> MembraneMaps:
    """Membrane and membrane-edge probabilities of an RGB image (see :func:`predict`)."""
    image = as_rgb_uint8(image)
    mpp = _check_mpp(mpp)
    if method not in METHODS:
        raise InvalidInputError(f"method must be one of {METHODS}, got {method!r}")
    if method == "classical":
        return classical_membrane(image, mpp)
    batch_size = as_int(batch_size, "batch_size", 1, 256)
    session = get_session(model_dir, providers, threads)
    mem, edge = _unet_maps(image, mpp, session, batch_size)
    return MembraneMaps(mem, edge, mpp, "unet")


def white_balance_to_training(image: np.ndarray, background: np.ndarray | Sequence[float]) -> np.ndarray:
    """Scale each channel so that the slide's glass colour reads :data:`TRAINING_GLASS`.

    A scanner's white balance multiplies each channel by a gain; optical densities relative to the glass
    do not see it, but the network reads RGB and does. Dividing by the glass and multiplying by the
    training glass gives the network the colours it was trained on (rounded, clipped to 0..255; one
    look-up table per channel).

    Parameters
    ----------
    image : (H, W, 3) uint8
    background : (3,) float
        The slide's glass colour (:attr:`her2fast.stages.stain.StainVectors.background`).

    Returns
    -------
    (H, W, 3) uint8

    Examples
    --------
    >>> import numpy as np
    >>> glass = np.full((1, 1, 3), (236, 244, 248), np.uint8)
    >>> white_balance_to_training(glass, (236, 244, 248))[0, 0].tolist()
    [252, 251, 248]
    """
    img = as_rgb_uint8(image)
    bg = np.asarray(background, np.float64).reshape(-1)
    if bg.size != 3 or not np.all(np.isfinite(bg)) or np.any(bg < 100) or np.any(bg > 255.5):
        raise InvalidInputError(f"background must be three RGB glass levels in 100..255, got {background!r}")
    levels = np.arange(256, dtype=np.float64)
    out = np.empty_like(img)
    for c in range(3):
        lut = np.clip(np.rint(levels * (TRAINING_GLASS[c] / bg[c])), 0, 255).astype(np.uint8)
        out[..., c] = lut[img[..., c]]
    return out


def _single_pass_input(img: np.ndarray, o: int, mult: int) -> np.ndarray:
    """(3, H', W') float32 network input of an image with a mirrored margin ``o`` (H', W' multiples of mult)."""
    h, w = img.shape[:2]
    ph, pw = -(-(h + 2 * o) // mult) * mult, -(-(w + 2 * o) // mult) * mult
    padded = np.pad(img, ((o, ph - h - o), (o, pw - w - o), (0, 0)), mode="symmetric")
    x = np.ascontiguousarray(padded.transpose(2, 0, 1), dtype=np.float32)
    x *= np.float32(1.0 / 255.0)
    return x


def predict_maps_batch(
    images: Sequence[np.ndarray],
    mpp: float,
    *,
    method: str = "unet",
    model_dir: str | Path | None = None,
    providers: str | Sequence[str] = "auto",
    threads: int | None = None,
    batch_size: int = 4,
    margin: int | None = None,
) -> list[MembraneMaps]:
    """:func:`predict_maps` of several images, sharing network batches where the images allow it.

    Images at the model's µm/px up to 1088 px with their margins (tiles of the slide pipeline) run
    in a single pass, those of one shape stacked ``batch_size`` at a time into one ONNX Runtime call;
    anything else runs image by image through :func:`predict_maps`. Which path an image takes never
    depends on the other images of the call. Up to 576 px (and the default
    margin) the maps equal :func:`predict_maps`'s (which runs one pass up to there too; the network
    treats the images of a batch independently).

    Parameters
    ----------
    images : sequence of (H, W, 3) uint8
    mpp, method, model_dir, providers, threads, batch_size
        As :func:`predict_maps`.
    margin : int, optional
        Mirrored margin added around each image in single-pass mode (default: the model's
        ``overlap``, 32 px). Images that already carry real context around the region that matters
        (the slide pipeline's tiles) can use less.

    Returns
    -------
    list of MembraneMaps
        One per image, in order.
    """
    images = [as_rgb_uint8(im) for im in images]
    mpp = _check_mpp(mpp)
    if method not in METHODS:
        raise InvalidInputError(f"method must be one of {METHODS}, got {method!r}")
    batch_size = as_int(batch_size, "batch_size", 1, 256)
    if method == "classical" or not images:
        return [predict_maps(im, mpp, method=method) for im in images]
    session = get_session(model_dir, providers, threads)
    cfg = session.config
    o = cfg.overlap if margin is None else as_int(margin, "margin", 0, 1024)
    out: list[MembraneMaps | None] = [None] * len(images)
    by_shape: dict[tuple, list[int]] = {}
    for i, im in enumerate(images):  # images of one shape share batches; each image's path is its own
        by_shape.setdefault(im.shape, []).append(i)
    for (h, w, _), idx in by_shape.items():
        if abs(mpp / cfg.mpp - 1.0) > 0.01 or h + 2 * o > _BATCH_SINGLE_PASS_MAX or w + 2 * o > _BATCH_SINGLE_PASS_MAX:
            for i in idx:
                out[i] = MembraneMaps(*_unet_maps(images[i], mpp, session, batch_size), mpp, "unet")
            continue
        for b in range(0, len(idx), batch_size):
            part = idx[b : b + batch_size]
            x = np.stack([_single_pass_input(images[i], o, cfg.multiple) for i in part])
            pm, pe = session.run(x)
            for i, m_, e_ in zip(part, pm, pe):
                out[i] = MembraneMaps(
                    np.clip(m_[o : o + h, o : o + w], 0, 1).astype(np.float32),
                    np.clip(e_[o : o + h, o : o + w], 0, 1).astype(np.float32),
                    mpp,
                    "unet",
                )
    return out  # type: ignore[return-value]


def predict(
    image: np.ndarray,
    mpp: float,
    *,
    method: str = "unet",
    model_dir: str | Path | None = None,
    providers: str | Sequence[str] = "auto",
    threads: int | None = None,
    batch_size: int = 4,
) -> np.ndarray:
    """Membrane probability of every pixel of an RGB image of any size.

    Parameters
    ----------
    image : (H, W, 3) uint8
        Brightfield HER2 IHC (DAB + hematoxylin) RGB.
    mpp : float
        µm/px of `image`; it is resampled to the model's µm/px (0.5) and the result back.
    method : {"unet", "classical"}
        The shipped U-Net (needs onnxruntime) or the classical baseline (:func:`classical_membrane`).
    model_dir : path, optional
        Another membrane model directory (``model.onnx`` + ``config.json``).
    providers : "auto" or list of str
        ONNX Runtime execution providers, or ``["OpenVINO"]`` (see :class:`MembraneSession`).
    threads : int, optional
        ONNX Runtime intra-op threads (default: all cores).
    batch_size : int
        Tiles per network call.

    Returns
    -------
    (H, W) float32 in [0, 1]
        Membrane probability; threshold at 0.5 for a mask.

    Raises
    ------
    InvalidInputError
        Wrong image shape/dtype, `mpp` outside :data:`her2fast.io.slide.PLAUSIBLE_MPP`, an image over
        :data:`MAX_NETWORK_PIXELS` at the network's resolution, `providers` not ``"auto"`` or a list of names,
        unknown `method`.
    ModelError
        Model missing or corrupt (sha256 mismatch), or onnxruntime not installed.

    Examples
    --------
    >>> from her2fast.synth import make_tile
    >>> t = make_tile(256, category="3+", seed=1)
    >>> p = predict(t.rgb, 0.5)
    >>> p.shape, p.dtype
    ((256, 256), dtype('float32'))
    """
    return predict_maps(
        image, mpp, method=method, model_dir=model_dir, providers=providers, threads=threads, batch_size=batch_size
    ).membrane
