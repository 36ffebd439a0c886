"""Checkpoints and weights as ``.npz`` (no pickle): model tensors, SGD momentum, step, RNG states."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["save_weights", "load_weights", "save_checkpoint", "load_checkpoint"]


def _state_arrays(model: torch.nn.Module, prefix: str = "model/") -> dict[str, np.ndarray]:
    return {prefix + k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}


def _load_state(model: torch.nn.Module, z: Any, prefix: str = "model/") -> None:
    state = {k[len(prefix) :]: torch.from_numpy(np.array(z[k])) for k in z.files if k.startswith(prefix)}
    model.load_state_dict(state, strict=True)


def save_weights(path: str | Path, model: torch.nn.Module, meta: dict[str, Any]) -> None:
    """Weights of `model` plus a JSON `meta` (model config, training summary)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, meta=np.array(json.dumps(meta)), **_state_arrays(model))  # type: ignore[arg-type]  # numpy stub


def load_weights(path: str | Path, model: torch.nn.Module | None = None) -> tuple[torch.nn.Module | None, dict]:
    """Load weights into `model` (if given); returns (model, meta)."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        if model is not None:
            _load_state(model, z)
    return model, meta


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    opt: torch.optim.SGD,
    step: int,
    elapsed: float,
    rng: np.random.Generator,
    config: dict[str, Any],
    history: list[dict],
) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = _state_arrays(model)
    for gi, group in enumerate(opt.param_groups):
        for pi, p in enumerate(group["params"]):
            buf = opt.state.get(p, {}).get("momentum_buffer")
            if buf is not None:
                arrays[f"momentum/{gi}/{pi}"] = buf.detach().cpu().numpy()
    arrays["torch_rng"] = torch.get_rng_state().numpy()
    meta = {"step": step, "elapsed": elapsed, "np_rng": rng.bit_generator.state, "config": config, "history": history}
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, meta=np.array(json.dumps(meta)), **arrays)  # type: ignore[arg-type]  # numpy stub
    tmp.replace(path)


def load_checkpoint(
    path: str | Path, model: torch.nn.Module, opt: torch.optim.SGD, rng: np.random.Generator
) -> dict[str, Any]:
    """Restore model, optimizer momentum, RNG states; returns the meta (step, elapsed, history, ...)."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        _load_state(model, z)
        for gi, group in enumerate(opt.param_groups):
            for pi, p in enumerate(group["params"]):
                key = f"momentum/{gi}/{pi}"
                if key in z.files:
                    opt.state[p]["momentum_buffer"] = torch.from_numpy(np.array(z[key]))
        torch.set_rng_state(torch.from_numpy(np.array(z["torch_rng"])))
    rng.bit_generator.state = meta["np_rng"]
    return meta
