"""The modified U-Net of the membrane segmentation (PyTorch; training only).

Architecture (after Khameneh et al., "Automated segmentation of cell membranes to evaluate HER2 status
in whole slide images using a modified deep learning network", Comput Biol Med 2019):

- encoder block: 5x5 conv -> ReLU -> 3x3 conv -> ReLU -> BatchNorm (BN after the two activations),
  then (going down) 2x2 max-pooling -> dropout;
- decoder block: 2x up-sampling (nearest) -> concatenation with the skip feature map -> 3x3 conv ->
  ReLU -> 3x3 conv -> ReLU -> BatchNorm;
- a final 1x1 convolution to the classes: two heads, membrane (2 classes, softmax) and membrane
  edge (1 channel, sigmoid).

Widths double per level: ``width, 2 width, ..., 2**depth width``. ``depth`` poolings, so the input
side must be a multiple of ``2**depth`` (:func:`her2fast.stages.membrane.predict` pads tiles).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["UNetConfig", "MembraneUNet", "count_flops"]


@dataclass(frozen=True)
class UNetConfig:
    """Hyper-parameters of :class:`MembraneUNet`."""

    width: int = 8
    depth: int = 4
    dropout: float = 0.1
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)  # applied to RGB / 255 inside the network
    std: tuple[float, float, float] = (0.25, 0.25, 0.25)


class EncoderBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 5, padding=2)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(F.relu(self.conv2(F.relu(self.conv1(x)))))


class DecoderBlock(nn.Module):
    def __init__(self, cin: int, cskip: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin + cskip, cout, 3, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        x = torch.cat([x, skip], dim=1)
        return self.bn(F.relu(self.conv2(F.relu(self.conv1(x)))))


class MembraneUNet(nn.Module):
    """Two-headed U-Net: returns (membrane logits (N, 2, H, W), edge logits (N, 1, H, W)).

    The input is RGB scaled to [0, 1] (``rgb / 255``), NCHW float32; the normalisation
    ``(x - mean) / std`` is part of the network (and of the exported ONNX graph).
    """

    def __init__(self, cfg: UNetConfig = UNetConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        chans = [w * 2**i for i in range(cfg.depth + 1)]
        self.register_buffer("mean", torch.tensor(cfg.mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("inv_std", 1.0 / torch.tensor(cfg.std, dtype=torch.float32).view(1, 3, 1, 1))
        self.enc = nn.ModuleList([EncoderBlock(3 if i == 0 else chans[i - 1], chans[i]) for i in range(cfg.depth + 1)])
        self.drop = nn.Dropout2d(cfg.dropout)
        self.dec = nn.ModuleList([DecoderBlock(chans[i + 1], chans[i], chans[i]) for i in reversed(range(cfg.depth))])
        self.head = nn.Conv2d(chans[0], 3, 1)  # channels 0-1: membrane classes, 2: edge

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (x - self.mean) * self.inv_std
        skips = []
        for i, block in enumerate(self.enc):
            x = block(x)
            if i < self.cfg.depth:
                skips.append(x)
                x = self.drop(F.max_pool2d(x, 2))
        for block, skip in zip(self.dec, reversed(skips)):
            x = block(x, skip)
        out = self.head(x)
        return out[:, :2], out[:, 2:]


# the exported probability graph (calibrated membrane softmax + edge sigmoid): training/export_membrane.py


def count_flops(cfg: UNetConfig, size: int = 512) -> float:
    """Multiply-adds x 2 of the convolutions for one ``size`` x ``size`` tile (GFLOP)."""
    w, d = cfg.width, cfg.depth
    chans = [w * 2**i for i in range(d + 1)]
    total = 0.0
    for i in range(d + 1):
        px = (size / 2**i) ** 2
        cin = 3 if i == 0 else chans[i - 1]
        total += px * (25 * cin * chans[i] + 9 * chans[i] * chans[i])
        if i < d:
            total += px * (9 * (chans[i + 1] + chans[i]) * chans[i] + 9 * chans[i] * chans[i])
    total += size * size * chans[0] * 3
    return 2 * total / 1e9
