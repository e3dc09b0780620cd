"""Torch networks for faces: each maps grey crops ``(batch, 1, side, side)`` in [0, 1] to logits.

Networks normalise with the training set's pixel mean and std (buffers saved with the weights) and
see ``crop`` × ``crop`` pixels: training feeds random crops, and a larger input (the 48 × 48 face) is
centre-cropped, so evaluation without test-time augmentation sees what training saw.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from emofuse.models.face_effnet import FaceEffNet


class _FaceNet(nn.Module):
    pixel_mean: torch.Tensor
    pixel_std: torch.Tensor

    def __init__(self, crop: int) -> None:
        super().__init__()
        self.crop = crop
        self.register_buffer("pixel_mean", torch.tensor(0.5))
        self.register_buffer("pixel_std", torch.tensor(0.25))

    def set_normalisation(self, mean: float, std: float) -> None:
        self.pixel_mean.fill_(mean)
        self.pixel_std.fill_(max(std, 1e-3))

    def init_pretrained(self) -> None:
        """Networks trained from scratch start from their random initialisation."""

    def for_inference(self, *, device: str = "cpu") -> _FaceNet:
        """The network prediction runs (itself: nothing to fold)."""
        return self

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        side = x.shape[-1]
        if side > self.crop:
            start = (side - self.crop) // 2
            x = x[..., start : start + self.crop, start : start + self.crop]
        return (x - self.pixel_mean) / self.pixel_std


class FaceCNN(_FaceNet):
    """The reference design's CNN: two 3×3 conv stages, two pooled 128-channel stages, a 1024-unit dense layer."""

    def __init__(self, n_classes: int, *, crop: int = 44, dropout: float = 0.5) -> None:
        super().__init__(crop)
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25),
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(128, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25),
        )
        side = crop // 8
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(128 * side * side, 1024), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(1024, n_classes))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.body(self.prepare(x)))


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return torch.relu(h + self.shortcut(x))


class FaceResNet(_FaceNet):
    """ResNet-18 layout (2-2-2-2 basic blocks) for 44 × 44 crops: a stride-1 3×3 stem, no max-pool.

    ``widths`` scales it: (64, 128, 256, 512) is ResNet-18's own width (11 M parameters);
    the default (32, 64, 128, 256) has 2.8 M and ships in 11 MB.
    """

    def __init__(self, n_classes: int, *, crop: int = 44, widths: tuple[int, ...] = (32, 64, 128, 256),
                 blocks: tuple[int, ...] = (2, 2, 2, 2), dropout: float = 0.2) -> None:
        super().__init__(crop)
        self.stem = nn.Sequential(nn.Conv2d(1, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU())
        stages: list[nn.Module] = []
        c_in = widths[0]
        for i, (width, n_blocks) in enumerate(zip(widths, blocks, strict=True)):
            for j in range(n_blocks):
                stages.append(BasicBlock(c_in, width, stride=2 if (i > 0 and j == 0) else 1))
                c_in = width
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(c_in, n_classes))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.stages(self.stem(self.prepare(x))))


FACE_NETS: dict[str, Any] = {"cnn": FaceCNN, "resnet": FaceResNet, "effnet_lite0": FaceEffNet}


def build_face_net(arch: str, n_classes: int, params: dict[str, Any]) -> Any:
    """A face network: ``forward(x (batch, 1, side, side) in [0, 1])`` -> logits, with ``crop``,
    ``set_normalisation`` and ``init_pretrained``."""
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    return FACE_NETS[arch](n_classes, **params)
