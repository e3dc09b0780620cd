"""Batch augmentation of face crops on the training device: the FER2013 state-of-the-art recipe
(random crops, horizontal flips, small rotations, random erasing), camera-like jitter (brightness,
contrast, low resolution, sensor noise) and batch mixing (mixup, CutMix). Each is off at 0 / False."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch

from emofuse.errors import checked_options
from emofuse.training.augment import AugmentConfigError, cutmix, mixup


@dataclass(frozen=True)
class FaceAugmentConfig:
    """Batch augmentation for face crops, on the training device: the FER2013 state-of-the-art recipe
    (random crops, horizontal flips, small rotations, random erasing). Each is off at 0 / False."""

    crop: int = 44  # random crop side out of the 48 × 48 input
    flip: bool = True
    rotate_degrees: float = 10.0
    erase_p: float = 0.5  # probability of erasing one random rectangle (2-20 % of the crop)
    # Batch mixing, off at 0: with both on, each batch takes one of the two at random.
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    # What cameras do: brightness and contrast each scaled by a factor drawn from [1 - j, 1 + j];
    # with probability lowres_p, the crop down-sampled to a side drawn from [lowres_min_side, crop)
    # and back; with probability noise_p, Gaussian noise of a standard deviation up to noise_max.
    photometric: float = 0.0
    lowres_p: float = 0.0
    lowres_min_side: int = 20
    noise_p: float = 0.0
    noise_max: float = 0.03

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FaceAugmentConfig:
        return cls(**checked_options(cls, d, what="face augmentation", error=AugmentConfigError))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def mix_faces(x: torch.Tensor, soft: torch.Tensor, config: FaceAugmentConfig, *,
              generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup or CutMix of a face batch as ``config`` asks (unchanged when both are off)."""
    use_mixup, use_cutmix = config.mixup_alpha > 0, config.cutmix_alpha > 0
    if use_mixup and use_cutmix:
        coin = float(torch.rand(1, generator=generator, device=generator.device))
        use_mixup, use_cutmix = coin < 0.5, coin >= 0.5
    if use_mixup:
        return mixup(x, soft, alpha=config.mixup_alpha, generator=generator)
    if use_cutmix:
        return cutmix(x, soft, alpha=config.cutmix_alpha, generator=generator)
    return x, soft


def augment_faces(x: torch.Tensor, config: FaceAugmentConfig, *, generator: torch.Generator) -> torch.Tensor:
    """``x`` (batch, 1, side, side) in [0, 1] -> (batch, 1, crop, crop), each example transformed independently."""
    b, _, side, _ = x.shape
    dev = x.device

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator, device=generator.device).to(dev)

    if config.rotate_degrees:
        angle = (uniform(b) * 2 - 1) * config.rotate_degrees * torch.pi / 180
        cos, sin = torch.cos(angle), torch.sin(angle)
        zeros = torch.zeros_like(cos)
        theta = torch.stack([torch.stack([cos, -sin, zeros], 1), torch.stack([sin, cos, zeros], 1)], 1)
        grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
        x = torch.nn.functional.grid_sample(x, grid, padding_mode="border", align_corners=False)
    crop = min(config.crop, side)
    if crop < side:
        # One random offset per example, gathered with index arithmetic rather than a Python loop.
        offsets = (uniform(b, 2) * (side - crop + 1)).long().clamp_max(side - crop)
        rows = offsets[:, 0, None] + torch.arange(crop, device=dev)[None, :]  # (batch, crop)
        cols = offsets[:, 1, None] + torch.arange(crop, device=dev)[None, :]
        x = x.gather(2, rows[:, None, :, None].expand(b, 1, crop, side))
        x = x.gather(3, cols[:, None, None, :].expand(b, 1, crop, crop))
    if config.flip:
        flip = uniform(b) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    if config.erase_p:
        area = (0.02 + uniform(b) * 0.18) * crop * crop
        aspect = torch.exp((uniform(b) * 2 - 1) * 1.2)  # ratios in about [0.3, 3.3]
        h = (area * aspect).sqrt().clamp(1, crop).long()
        w = (area / aspect).sqrt().clamp(1, crop).long()
        top = (uniform(b) * (crop - h + 1)).long()
        left = (uniform(b) * (crop - w + 1)).long()
        r = torch.arange(crop, device=dev)
        inside = ((r[None, :] >= top[:, None]) & (r[None, :] < (top + h)[:, None]))[:, :, None] & \
                 ((r[None, :] >= left[:, None]) & (r[None, :] < (left + w)[:, None]))[:, None, :]
        erase = (uniform(b) < config.erase_p)[:, None, None] & inside
        noise = uniform(b, crop, crop)
        x = torch.where(erase[:, None], noise[:, None], x)
    return camera_faces(x, config, generator=generator)


def camera_faces(x: torch.Tensor, config: FaceAugmentConfig, *, generator: torch.Generator) -> torch.Tensor:
    """Brightness, contrast, resolution and sensor noise of ``x`` (batch, 1, crop, crop), per example."""
    b, _, crop, _ = x.shape
    if not (config.photometric or config.lowres_p or config.noise_p):
        return x

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator, device=generator.device).to(x.device)
    if config.photometric:
        gain = 1 + (uniform(b) * 2 - 1) * config.photometric
        stretch = 1 + (uniform(b) * 2 - 1) * config.photometric
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - mean) * stretch.view(b, 1, 1, 1) + mean) * gain.view(b, 1, 1, 1)
    if config.lowres_p and config.lowres_min_side < crop:
        # One side per batch (a resize takes one size), applied to a random subset of the examples.
        side = config.lowres_min_side + int(float(uniform(1)) * (crop - config.lowres_min_side))
        coarse = torch.nn.functional.interpolate(x, size=(side, side), mode="area")
        coarse = torch.nn.functional.interpolate(coarse, size=(crop, crop), mode="bilinear", align_corners=False)
        x = torch.where((uniform(b) < config.lowres_p).view(b, 1, 1, 1), coarse, x)
    if config.noise_p:
        sigma = uniform(b) * config.noise_max * (uniform(b) < config.noise_p)
        gaussian = torch.randn(x.shape, generator=generator, device=generator.device).to(x.device)
        x = x + sigma.view(b, 1, 1, 1) * gaussian
    return x.clamp(0, 1)
