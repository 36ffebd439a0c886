"""The membrane model on disk: its ``config.json`` (:class:`MembraneModelConfig`, :func:`load_model_config`),
the shipped model's folder and probe tile, what a prediction returns (:class:`MembraneMaps`) and the
resolutions an image may be given at.

Examples
--------
>>> cfg = load_model_config()
>>> cfg.output_names, cfg.path.name
(('membrane', 'edge'), 'model.onnx')
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..._validate import as_positive_float
from ...errors import InvalidInputError, ModelError

__all__ = ["MembraneModelConfig", "MembraneMaps", "default_model_dir", "load_model_config", "probe_tile"]


#: the tile of that probe, shipped beside the model (:func:`probe_tile`)
PROBE_TILE = "probe_tile.png"


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


def _check_mpp(mpp: object) -> float:
    """``mpp`` as a brightfield resolution (:data:`her2fast.io.slide.PLAUSIBLE_MPP`), or InvalidInputError."""
    from ...io.slide import PLAUSIBLE_MPP

    v = as_positive_float(mpp, "mpp")
    lo, hi = PLAUSIBLE_MPP
    if not lo <= v <= hi:
        raise InvalidInputError(
            f"mpp={v:.4g} um/px is not a brightfield image resolution (accepted: {lo:g} to {hi:g} um/px); pass the "
            "image's micrometres per pixel, e.g. 0.5 for a 20x scan or 0.25 for 40x"
        )
    return v
