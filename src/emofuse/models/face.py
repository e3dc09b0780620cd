"""Face classifiers: pixel logistic regression and the torch networks of face_nets.

Inputs (``X``) are face crops: 48 × 48 grey uint8 arrays (FER2013's own form), any other crop
(resized to 48 × 48 grey), or paths to such images. Finding the face in a photo is the job of
:mod:`emofuse.features.face` before this.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from emofuse.checkpoint import load_checkpoint, save_checkpoint
from emofuse.features.face_crop import FACE_SIDE
from emofuse.models.base import check_fitted, label_targets
from emofuse.models.linear import StandardisedLogReg
from emofuse.training.config import TrainConfig
from emofuse.training.loop import seed_everything

FaceInput = str | Path | np.ndarray


def as_faces(X: Sequence[FaceInput] | np.ndarray) -> np.ndarray:
    """``(n, 48, 48)`` uint8 grey from crops or image paths (an ``(n, 48, 48)`` uint8 array passes through)."""
    if isinstance(X, np.ndarray) and X.ndim == 3 and X.shape[1:] == (FACE_SIDE, FACE_SIDE) and X.dtype == np.uint8:
        return X
    from emofuse.features.face_crop import to_model_input
    from emofuse.features.image import load_image

    out = np.empty((len(X), FACE_SIDE, FACE_SIDE), np.uint8)
    for i, item in enumerate(X):
        image = load_image(item) if isinstance(item, str | Path) else np.asarray(item)
        out[i] = to_model_input(image, side=FACE_SIDE)
    return out


class FaceLogReg:
    """Multinomial logistic regression on standardised pixels (the reference design's face baseline)."""

    def __init__(self, name: str = "face_logreg", *, C: float = 0.01, max_iter: int = 300, progress: bool = False) -> None:
        self.name = name
        self.C = C
        self.max_iter = max_iter
        self.progress = progress
        self.labels_: tuple[str, ...] = ()

    def get_params(self) -> dict[str, Any]:
        return {"C": self.C, "max_iter": self.max_iter}

    def fit(self, X: Sequence[FaceInput] | np.ndarray, y: Sequence[str], *, labels: Sequence[str],
            X_val: Any = None, y_val: Any = None, **_: Any) -> FaceLogReg:
        targets = label_targets(y, labels)
        self.head_ = StandardisedLogReg(C=self.C, max_iter=self.max_iter).fit(_pixels(X), targets)
        self.labels_ = tuple(labels)
        return self

    def predict_proba(self, X: Sequence[FaceInput] | np.ndarray) -> np.ndarray:
        check_fitted(self)
        return self.head_.predict_proba(_pixels(X), len(self.labels_))

    def save(self, directory: str | Path) -> None:
        check_fitted(self)
        save_checkpoint(directory, arrays=self.head_.arrays(),
                        meta={"model": self.name, "architecture": {"kind": "logreg", "C": self.C},
                              "labels": list(self.labels_), "features": {"input": "48x48 grey pixels / 255"}})

    @classmethod
    def load(cls, directory: str | Path, **kwargs: Any) -> FaceLogReg:
        arrays, meta = load_checkpoint(directory)
        model = cls(meta["model"], C=meta["architecture"]["C"], **kwargs)
        model.head_ = StandardisedLogReg.from_arrays(arrays, C=model.C)
        model.labels_ = tuple(meta["labels"])
        return model


def _pixels(X: Sequence[FaceInput] | np.ndarray) -> np.ndarray:
    faces = as_faces(X)
    return faces.reshape(len(faces), -1).astype(np.float32) / 255  # (n, 2304)


class TorchFaceClassifier:
    """A face network trained by the one training loop, with batch augmentation on the device and
    optional ten-crop test-time augmentation (four corners + centre, each also mirrored)."""

    def __init__(self, name: str, *, arch: str, arch_params: Mapping[str, Any] | None = None,
                 train: TrainConfig | None = None, augment: Any = None, tta: bool | str = True,
                 progress: bool = False) -> None:
        from emofuse.training.face_augment import FaceAugmentConfig

        self.name = name
        self.arch = arch
        self.arch_params = dict(arch_params or {})
        self.train = train or TrainConfig()
        if augment is None:
            augment = FaceAugmentConfig()
        elif isinstance(augment, Mapping):
            augment = FaceAugmentConfig.from_dict(augment)
        self.augment = augment
        self.tta = tta
        self.progress = progress
        self.labels_: tuple[str, ...] = ()
        self.fit_result_: Any = None

    def get_params(self) -> dict[str, Any]:
        return {"arch": self.arch, "arch_params": self.arch_params, "train": self.train.to_dict(),
                "augment": self.augment.to_dict(), "tta": self.tta}

    @staticmethod
    def _collate(batch: list[tuple[np.ndarray, int]]) -> tuple[Any, Any, Any]:
        import torch

        x = torch.from_numpy(np.stack([f for f, _ in batch])).float().div_(255).unsqueeze(1)  # (batch, 1, 48, 48)
        return x, None, torch.tensor([t for _, t in batch], dtype=torch.long)

    def _new_net(self, n_classes: int) -> Any:
        from emofuse.models.face_nets import build_face_net

        return build_face_net(self.arch, n_classes, {"crop": self.augment.crop, **self.arch_params})

    def fit(self, X: Sequence[FaceInput] | np.ndarray, y: Sequence[str], *, labels: Sequence[str],
            X_val: Sequence[FaceInput] | np.ndarray | None = None, y_val: Sequence[str] | None = None,
            log_path: str | Path | None = None, state_dir: str | Path | None = None) -> TorchFaceClassifier:
        from emofuse.errors import ConfigError
        from emofuse.training.face_augment import augment_faces, mix_faces
        from emofuse.training.loop import fit

        if X_val is None or y_val is None:
            raise ConfigError(f"{self.name} needs validation data for early stopping")
        faces, val_faces = as_faces(X), as_faces(X_val)
        targets, val_targets = label_targets(y, labels), label_targets(y_val, labels)
        seed_everything(self.train.seed)  # the initial weights too follow the seed
        net = self._new_net(len(labels))
        net.init_pretrained()  # a pretrained backbone's weights (a no-op for networks trained from scratch)
        net.set_normalisation(float(faces.mean() / 255), float(faces.std() / 255))
        config = self.augment

        def transform(x: Any, soft: Any, generator: Any) -> tuple[Any, Any]:
            return mix_faces(augment_faces(x, config, generator=generator), soft, config, generator=generator)

        self.fit_result_ = fit(net, _Pairs(faces, targets), _Pairs(val_faces, val_targets), train_targets=targets,
                               val_targets=val_targets, n_classes=len(labels), config=self.train,
                               collate=self._collate, batch_transform=transform, log_path=log_path,
                               state_dir=state_dir, progress=self.progress, description=self.name)
        self.net_ = net
        self.labels_ = tuple(labels)
        return self

    def predict_proba(self, X: Sequence[FaceInput] | np.ndarray, *, batch_size: int = 256,
                      tta: bool | str | None = None) -> np.ndarray:
        """Probabilities ``(n, len(labels_))``; ``tta`` overrides the model's setting: ``True`` (or
        ``"ten_crop"``) averages ten crops (10x the work), ``"flip"`` the face and its mirror image (2x)."""
        import torch

        from emofuse.training.loop import resolve_device

        check_fitted(self)
        faces = as_faces(X)
        device = resolve_device(self.train.device)
        on_cpu = device.type == "cpu"
        net = self._inference_net(device.type)
        if not on_cpu:
            net.to(device)
        out = []
        try:
            with torch.no_grad():
                for start in range(0, len(faces), batch_size):
                    x = torch.from_numpy(faces[start : start + batch_size]).float().div_(255).unsqueeze(1).to(device)
                    views = tta_views(x, net.crop, self.tta if tta is None else tta)
                    probs = torch.stack([torch.softmax(net(v).float(), dim=1) for v in views]).mean(dim=0)
                    out.append(probs.double().cpu())
        finally:
            if not on_cpu:
                net.cpu()
        return torch.cat(out).numpy() if out else np.zeros((0, len(self.labels_)))

    def _inference_net(self, device: str = "cpu") -> Any:
        """``net_`` as prediction runs it on ``device`` (``cpu``, ``cuda``): batch norms folded, and on the
        CPU compiled, where the network can; made once per ``net_`` and device, in eval mode."""
        cached = getattr(self, "inference_net_", None)
        if cached is None or cached[0] is not self.net_ or cached[1] != device:
            self.inference_net_ = (self.net_, device, self.net_.for_inference(device=device).eval())
        return self.inference_net_[2]

    def save(self, directory: str | Path) -> None:
        check_fitted(self)
        r = self.fit_result_
        fit_info = None if r is None else {"best_epoch": r.best_epoch, "best_val_ua": r.best_val_ua,
                                           "epochs_run": r.epochs_run, "seconds": r.seconds, "device": r.device}
        save_checkpoint(directory, arrays=dict(self.net_.state_dict()), meta={
            "model": self.name,
            "architecture": {"kind": self.arch, "params": self.arch_params},
            "labels": list(self.labels_),
            "features": {"input": "48x48 grey face crop, pixels / 255", "crop": self.augment.crop,
                         "normalisation": "pixel_mean / pixel_std buffers in the weights"},
            "train": self.train.to_dict(),
            "augment": asdict(self.augment),
            "tta": self.tta,
            "fit": fit_info,
        })

    @classmethod
    def load(cls, directory: str | Path, **kwargs: Any) -> TorchFaceClassifier:
        import torch

        arrays, meta = load_checkpoint(directory)
        train = TrainConfig.from_dict({**meta["train"], "device": kwargs.pop("device", "cpu")})
        model = cls(meta["model"], arch=meta["architecture"]["kind"], arch_params=meta["architecture"]["params"],
                    train=train, augment=meta["augment"], tta=meta["tta"], **kwargs)
        net = model._new_net(len(meta["labels"]))
        net.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()})
        model.net_ = net.eval()
        model.labels_ = tuple(meta["labels"])
        return model


def tta_views(x: Any, crop: int, tta: bool | str) -> list[Any]:
    """The views of ``x`` (batch, 1, side, side) whose probabilities are averaged at test time."""
    if tta == "flip":
        return [x, x.flip(-1)]
    if tta is True or tta == "ten_crop":
        return ten_crops(x, crop)
    if tta is False:
        return [x]
    raise ValueError(f"tta must be True, False, 'ten_crop' or 'flip', not {tta!r}")


def ten_crops(x: Any, crop: int) -> list[Any]:
    """Four corner crops and the centre crop of ``x`` (batch, 1, side, side), each also mirrored."""
    side = x.shape[-1]
    if side <= crop:
        return [x, x.flip(-1)]
    c = (side - crop) // 2
    offsets = [(0, 0), (0, side - crop), (side - crop, 0), (side - crop, side - crop), (c, c)]
    views = [x[..., r : r + crop, q : q + crop] for r, q in offsets]
    return views + [v.flip(-1) for v in views]


class _Pairs:
    def __init__(self, faces: np.ndarray, targets: np.ndarray) -> None:
        self.faces, self.targets = faces, targets

    def __len__(self) -> int:
        return len(self.faces)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        return self.faces[i], int(self.targets[i])
