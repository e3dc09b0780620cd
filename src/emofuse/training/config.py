"""How a torch model is trained (:class:`TrainConfig`, strict) and what training returned (:class:`FitResult`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from emofuse.errors import ConfigError, checked_options


@dataclass(frozen=True)
class TrainConfig:
    """How a torch model is trained. Strict: :meth:`from_dict` rejects unknown keys."""

    epochs: int = 60
    batch_size: int = 32  # the global batch: under torchrun each of N processes takes batch_size / N
    lr: float = 1e-3
    weight_decay: float = 1e-2
    schedule: str = "onecycle"  # "onecycle" or "cosine"
    patience: int = 15  # epochs without a better validation UA before stopping
    seed: int = 0
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", ...
    amp: bool = True  # bfloat16 autocast; only ever used on CUDA
    class_balanced: bool = True  # weight the loss by inverse class frequency
    label_smoothing: float = 0.0
    grad_clip: float | None = 5.0
    num_workers: int = 0
    eval_batch_size: int = 64
    optimizer: str = "adamw"  # "adamw", or "sgd" (Nesterov momentum 0.9)
    warmup_epochs: float = 0.0  # linear warm-up before the cosine schedule (onecycle warms up by itself)
    # Learning rate of a pretrained body relative to its new head, for modules with parameter_groups().
    backbone_lr_scale: float = 1.0
    # Exponential moving average of the weights (decay per step); the average is what is validated,
    # kept and returned. 0 turns it off.
    ema_decay: float = 0.0
    channels_last: bool = False  # NHWC memory for 2D convolution nets (faster on CPU: benchmarks/face_speed.py)

    def __post_init__(self) -> None:
        if self.schedule not in ("onecycle", "cosine"):
            raise ConfigError(f"schedule must be 'onecycle' or 'cosine', not {self.schedule!r}")
        if self.optimizer not in ("adamw", "sgd"):
            raise ConfigError(f"optimizer must be 'adamw' or 'sgd', not {self.optimizer!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("epochs and batch_size must be at least 1")
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"ema_decay must be in [0, 1), not {self.ema_decay}")
        if self.warmup_epochs < 0 or self.backbone_lr_scale <= 0:
            raise ConfigError("warmup_epochs must be >= 0 and backbone_lr_scale > 0")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        return cls(**checked_options(cls, d, what="training"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FitResult:
    best_epoch: int
    best_val_ua: float
    epochs_run: int
    seconds: float
    device: str
    history: list[dict[str, float]] = field(default_factory=list)
