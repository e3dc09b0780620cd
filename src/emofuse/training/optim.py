"""What the loop optimises and how (:func:`emofuse.training.loop.fit`): the loss (soft targets, class
weights), the optimiser, the learning-rate schedule and the weight average."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from emofuse.training.config import TrainConfig


def class_weights(targets: np.ndarray, n_classes: int) -> torch.Tensor:
    """Inverse-frequency weights, mean 1 over the classes present; absent classes get 0."""
    counts = np.bincount(targets, minlength=n_classes).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / (np.count_nonzero(counts) * np.maximum(counts, 1)), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


def soft_cross_entropy_terms(logits: torch.Tensor, soft_targets: torch.Tensor,
                             weights: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sum of weighted per-sample losses, sum of sample weights)``: the loss is their ratio.

    Apart, so that several processes can divide their own sums by the *global* weight sum.
    """
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    per_sample = -(soft_targets * log_probs).sum(dim=-1)  # (batch,)
    if weights is None:
        return per_sample.sum(), torch.tensor(float(len(per_sample)), device=per_sample.device)
    sample_weights = soft_targets @ weights  # (batch,)
    return (per_sample * sample_weights).sum(), sample_weights.sum()


def soft_cross_entropy(logits: torch.Tensor, soft_targets: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy against soft targets (mixup, label smoothing), each sample weighted by its target's class weight."""
    total, weight = soft_cross_entropy_terms(logits, soft_targets, weights)
    return total / weight.clamp_min(1e-8)


def make_optimizer(config: TrainConfig, module: nn.Module) -> torch.optim.Optimizer:
    """AdamW or SGD; a module with ``parameter_groups()`` (a pretrained body and a new head) gets its
    body trained at ``backbone_lr_scale`` times the head's rate."""
    groups_of = getattr(module, "parameter_groups", None)
    if callable(groups_of) and config.backbone_lr_scale != 1.0:
        named = groups_of()
        groups = [{"params": named["backbone"], "lr": config.lr * config.backbone_lr_scale},
                  {"params": named["head"], "lr": config.lr}]
    else:
        groups = [{"params": list(module.parameters()), "lr": config.lr}]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=0.9, nesterov=True, weight_decay=config.weight_decay)
    return torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)


def make_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer, total_steps: int,
                    steps_per_epoch: int) -> Any:
    peaks = [group["lr"] for group in optimizer.param_groups]
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peaks, total_steps=total_steps,
                                                   pct_start=0.15, anneal_strategy="cos")
    if not config.warmup_epochs:
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps, eta_min=config.lr * 0.01)
    # Linear warm-up from 1 % of the peak, then cosine down to 1 % of it.
    warmup = min(max(1, round(config.warmup_epochs * steps_per_epoch)), max(1, total_steps - 1))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(warmup, total_steps))


class WarmupCosine:
    """A picklable schedule factor (``LambdaLR`` leaves callable objects out of its state)."""

    def __init__(self, warmup_steps: int, total_steps: int) -> None:
        self.warmup_steps, self.total_steps = warmup_steps, total_steps

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return 0.01 + 0.99 * step / self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress))


@torch.no_grad()
def update_ema(average: nn.Module, module: nn.Module, *, decay: float) -> None:
    """``average <- decay * average + (1 - decay) * module``, parameters and float buffers (batch-norm
    statistics) alike; integer buffers are copied."""
    for a, p in zip(average.parameters(), module.parameters(), strict=True):
        a.lerp_(p.detach(), 1 - decay)
    for kept, live in zip(average.buffers(), module.buffers(), strict=True):
        if kept.is_floating_point():
            kept.lerp_(live, 1 - decay)
        else:
            kept.copy_(live)


def ema_decay_at(step: int, decay: float) -> float:
    """Early steps average over fewer updates, so the average is not dominated by the initial weights."""
    return min(decay, (1 + step) / (10 + step))
