"""Typed training configuration, read from TOML (``training/configs/*.toml``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import tomllib

__all__ = ["ModelSection", "DataSection", "OptimSection", "LossSection", "RunSection", "TrainConfig", "load_config"]


@dataclass
class ModelSection:
    width: int = 8
    depth: int = 4
    dropout: float = 0.1


@dataclass
class DataSection:
    cache_dir: str = "training/cache"
    tile_size: int = 512
    train_n: int = 240
    train_seed0: int = 0
    val_n: int = 12
    val_seed0: int = 100000
    crop: int = 256
    batch: int = 8


@dataclass
class OptimSection:
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    min_lr_ratio: float = 0.05
    steps: int = 1500
    max_minutes: float = 0.0  # > 0: stop (and schedule the lr) by wall-clock instead of steps


@dataclass
class LossSection:
    edge_weight: float = 1.1
    beta_power: float = 1.0
    membrane_dice_weight: float = 0.0  # > 0 adds a soft Dice term on the membrane head (not in the paper)


@dataclass
class RunSection:
    out_dir: str = "training/runs/default"
    seed: int = 0
    threads: int = 1
    log_every: int = 20
    val_every: int = 250
    ckpt_every: int = 100


@dataclass
class TrainConfig:
    name: str = "default"
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    loss: LossSection = field(default_factory=LossSection)
    run: RunSection = field(default_factory=RunSection)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        sections = {f.name: f.type for f in fields(cls)}
        known = {
            "model": ModelSection,
            "data": DataSection,
            "optim": OptimSection,
            "loss": LossSection,
            "run": RunSection,
        }
        kw: dict[str, Any] = {}
        for key, value in d.items():
            if key not in sections:
                raise ValueError(f"unknown config key {key!r}; valid keys: {sorted(sections)}")
            if key in known:
                sec = known[key]
                valid = {f.name for f in fields(sec)}
                bad = set(value) - valid
                if bad:
                    raise ValueError(f"unknown key(s) {sorted(bad)} in [{key}]; valid: {sorted(valid)}")
                kw[key] = sec(**value)
            else:
                kw[key] = value
        return cls(**kw)


def load_config(path: str | Path) -> TrainConfig:
    """Read a TOML config file into a :class:`TrainConfig`."""
    with open(path, "rb") as f:
        return TrainConfig.from_dict(tomllib.load(f))
