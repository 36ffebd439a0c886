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

Modules
-------
- :mod:`~her2fast.stages.membrane.model`: :class:`MembraneModelConfig`, :func:`load_model_config`,
  :func:`default_model_dir`, :func:`probe_tile`, :class:`MembraneMaps`.
- :mod:`~her2fast.stages.membrane.runtime`: providers (:func:`check_providers`, :func:`parse_providers`,
  :func:`uses_gpu`), OpenVINO (:func:`openvino_bf16`, :func:`prefer_openvino`), :class:`MembraneSession`,
  :func:`get_session`.
- :mod:`~her2fast.stages.membrane.predict`: :func:`predict`, :func:`predict_maps`, :func:`predict_maps_batch`
  (resampling, tiling, batching), :func:`white_balance_to_training`.
- :mod:`~her2fast.stages.membrane.classical`: :func:`classical_membrane`.

Every public name of these modules is importable from ``her2fast.stages.membrane``.

Examples
--------
>>> import numpy as np
>>> from her2fast.stages.membrane import predict
>>> prob = predict(np.full((48, 64, 3), 240, np.uint8), 0.5, method="classical")
>>> prob.shape, prob.dtype.name, bool(prob.min() >= 0 and prob.max() <= 1)
((48, 64), 'float32', True)
"""

from __future__ import annotations

from .classical import classical_membrane
from .model import PROBE_TILE as PROBE_TILE
from .model import MembraneMaps, MembraneModelConfig, default_model_dir, load_model_config, probe_tile
from .predict import (
    MAX_NETWORK_PIXELS,
    METHODS,
    TRAINING_GLASS,
    predict,
    predict_maps,
    predict_maps_batch,
    white_balance_to_training,
)
from .predict import _single_pass_input as _single_pass_input
from .runtime import AUTO_MAX_ABS_DIFF as AUTO_MAX_ABS_DIFF
from .runtime import AUTO_MAX_FLIPS as AUTO_MAX_FLIPS
from .runtime import AUTO_MAX_TIME_RATIO as AUTO_MAX_TIME_RATIO
from .runtime import OPENVINO as OPENVINO
from .runtime import MembraneSession, check_providers, get_session, parse_providers, uses_gpu
from .runtime import openvino_bf16 as openvino_bf16
from .runtime import prefer_openvino as prefer_openvino

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
