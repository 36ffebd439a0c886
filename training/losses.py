"""Losses of the membrane U-Net: L = L_CE(beta) + lambda * L_Dice,edge (lambda = 1.1, as the paper).

- ``L_CE``: class-balanced cross-entropy (the paper's Eq. 1, as in HED): with
  ``beta = |Y_background| / |Y|`` of the batch's ground truth, membrane pixels are weighted by ``beta``
  and background pixels by ``1 - beta`` (i.e. background weight / membrane weight = the
  membrane/background ratio), normalised by the total weight. ``beta_power`` < 1 softens the
  balancing (``weights ** beta_power``; 1 = the paper).
- ``L_Dice,edge``: soft Dice loss ``1 - (2 sum(p g) + eps) / (sum p + sum g + eps)`` of the edge head's
  sigmoid against the 1-px membrane centre line (the paper's Eq. 2).
- optional, not in the paper: ``mu * L_Dice,membrane``, the same soft Dice on the membrane head's
  softmax probability against the membrane band (``membrane_dice_weight`` mu; 0 = the paper's loss).
  It rewards the band's exact extent, which the balanced cross-entropy (a per-pixel loss that
  over-weights membrane pixels) does not.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["balanced_cross_entropy", "dice_loss", "soft_dice_membrane", "membrane_loss"]


def balanced_cross_entropy(logits: torch.Tensor, target: torch.Tensor, beta_power: float = 1.0) -> torch.Tensor:
    """Beta-weighted cross-entropy of (N, 2, H, W) logits against (N, H, W) int64 labels."""
    pos = target.float().mean().clamp(0.005, 0.5)  # membrane share; clamped so empty batches still learn
    w_pos, w_neg = (1.0 - pos) ** beta_power, pos**beta_power
    weights = torch.where(target > 0, w_pos, w_neg)
    ce = F.cross_entropy(logits, target, reduction="none")
    return (weights * ce).sum() / weights.sum()


def _soft_dice(p: torch.Tensor, g: torch.Tensor, eps: float) -> torch.Tensor:
    """``1 - (2 sum(p g) + eps) / (sum p + sum g + eps)`` of probabilities `p` against a {0, 1} target `g`."""
    return 1.0 - (2.0 * (p * g).sum() + eps) / (p.sum() + g.sum() + eps)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Soft Dice loss of (N, 1, H, W) logits (sigmoid) against a {0, 1} float target of the same shape."""
    return _soft_dice(torch.sigmoid(logits), target, eps)


def soft_dice_membrane(mem_logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Soft Dice loss of the membrane class of (N, 2, H, W) logits (softmax) against (N, H, W) labels."""
    return _soft_dice(torch.softmax(mem_logits, 1)[:, 1], target.float(), eps)


def membrane_loss(
    mem_logits: torch.Tensor,
    edge_logits: torch.Tensor,
    mem_target: torch.Tensor,
    edge_target: torch.Tensor,
    edge_weight: float = 1.1,
    beta_power: float = 1.0,
    membrane_dice_weight: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, CE part, edge Dice part, membrane Dice part); the last is 0 (not computed) when its weight is 0."""
    ce = balanced_cross_entropy(mem_logits, mem_target, beta_power)
    dl = dice_loss(edge_logits, edge_target)
    total = ce + edge_weight * dl
    dm = torch.zeros(())
    if membrane_dice_weight:
        dm = soft_dice_membrane(mem_logits, mem_target)
        total = total + membrane_dice_weight * dm
    return total, ce, dl, dm
