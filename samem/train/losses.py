"""SAM 2's training losses: focal + dice on masks, IoU prediction, object-present score.

The formulation and default weights follow sam2's ``training/loss_fns.py``
(``MultiStepMultiMasksAndIous``: focal alpha 0.25, gamma 2; weights mask 20, dice 1,
IoU 1, class 1; mask losses only where the object is present; with several candidate
masks, only the one with the lowest focal + dice loss is supervised). That module cannot
be imported here: it pulls in sam2's whole trainer, which needs tensorboard and tensordict.

All losses are averaged over objects so a batch's loss does not scale with its size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossWeights:
    """Weights of the four terms (sam2's defaults)."""

    mask: float = 20.0
    dice: float = 1.0
    iou: float = 1.0
    score: float = 1.0
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0


def focal(logits: torch.Tensor, target: torch.Tensor, alpha: float, gamma: float) -> torch.Tensor:
    """Per-sample sigmoid focal loss, mean over all but the first dims -> ``(B, ...)``."""
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = prob * target + (1 - prob) * (1 - target)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    return loss.flatten(2).mean(-1)


def dice(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample soft dice loss ``(B, M)`` for logits/targets ``(B, M, H, W)``."""
    prob = logits.sigmoid().flatten(2)
    target = target.flatten(2)
    num = 2 * (prob * target).sum(-1)
    den = prob.sum(-1) + target.sum(-1)
    return 1 - (num + 1) / (den + 1)


def actual_iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU ``(B, M)`` of the thresholded logits with the target masks."""
    pred = (logits > 0).flatten(2)
    gt = target.flatten(2) > 0.5
    inter = (pred & gt).sum(-1).float()
    union = (pred | gt).sum(-1).float()
    return inter / union.clamp(min=1.0)


def step_loss(
    mask_logits: torch.Tensor,
    iou_pred: torch.Tensor,
    score_logits: torch.Tensor,
    target: torch.Tensor,
    weights: LossWeights = LossWeights(),
) -> dict[str, torch.Tensor]:
    """Losses of one propagation step for ``B`` objects.

    Parameters
    ----------
    mask_logits
        ``(B, M, H, W)`` candidate mask logits (M = 1 during tracking, 3 on a prompt frame).
    iou_pred
        ``(B, M)`` predicted IoU of each candidate.
    score_logits
        ``(B,)`` object-present logits.
    target
        ``(B, H, W)`` ground-truth masks (float 0/1) at the logits' resolution.

    Returns
    -------
    dict with ``mask``, ``dice``, ``iou``, ``score`` (each a scalar averaged over objects)
    and ``total`` (their weighted sum).
    """
    target_m = target[:, None].expand_as(mask_logits).to(mask_logits.dtype)
    present = (target.flatten(1).amax(-1) > 0.5).to(mask_logits.dtype)  # (B,)
    l_focal = focal(mask_logits, target_m, weights.focal_alpha, weights.focal_gamma)  # (B, M)
    l_dice = dice(mask_logits, target_m)
    l_iou = F.mse_loss(iou_pred.float(), actual_iou(mask_logits, target_m), reduction="none")
    best = (weights.mask * l_focal + weights.dice * l_dice).argmin(dim=1)
    rows = torch.arange(mask_logits.shape[0], device=mask_logits.device)
    n = max(mask_logits.shape[0], 1)
    out = {
        "mask": (l_focal[rows, best] * present).sum() / n,
        "dice": (l_dice[rows, best] * present).sum() / n,
        "iou": (l_iou[rows, best] * present).sum() / n,
        "score": F.binary_cross_entropy_with_logits(score_logits.float(), present.float(), reduction="sum")
        / n,
    }
    out["total"] = (
        weights.mask * out["mask"]
        + weights.dice * out["dice"]
        + weights.iou * out["iou"]
        + weights.score * out["score"]
    )
    return out
