"""Voice classifiers: MFCC-statistics logistic regression and the torch networks of voice_nets.

Inputs (``X``) are audio file paths or 16 kHz mono float32 waveforms. Each classifier owns its
feature settings (:class:`VoiceFeatures`), so a saved model re-creates exactly the features it was
trained on. Features of files are cached on disk (content hash + settings) and reused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emofuse.checkpoint import load_checkpoint, save_checkpoint
from emofuse.errors import ConfigError, checked_options
from emofuse.features.audio import SAMPLE_RATE_HZ, load_audio, load_waveform, trim_silence
from emofuse.features.cache import FeatureCache
from emofuse.features.spectral import log_mel, mfcc, utterance_stats
from emofuse.models.base import check_fitted, label_targets
from emofuse.models.linear import StandardisedLogReg
from emofuse.training.config import TrainConfig

AudioInput = str | Path | np.ndarray
MIN_FRAMES = 64  # 0.64 s: the deepest net pools time by 16


@dataclass(frozen=True)
class VoiceFeatures:
    """Which features a voice model sees. ``kind`` is ``mfcc`` (with deltas) or ``logmel``."""

    kind: str = "mfcc"
    sample_rate_hz: int = SAMPLE_RATE_HZ
    n_mfcc: int = 40
    n_mels: int = 64
    hop_length: int = 160  # 10 ms frames at 16 kHz
    trim: bool = True  # drop leading/trailing silence (RAVDESS clips start with ~1 s of it)
    top_db: float = 40.0

    def __post_init__(self) -> None:
        if self.kind not in ("mfcc", "logmel"):
            raise ConfigError(f"feature kind must be 'mfcc' or 'logmel', not {self.kind!r}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> VoiceFeatures:
        return cls(**checked_options(cls, d, what="feature"))

    @property
    def n_features(self) -> int:
        return self.n_mfcc * 3 if self.kind == "mfcc" else self.n_mels

    def compute(self, y: np.ndarray) -> np.ndarray:
        """Waveform ``(samples,)`` at ``sample_rate_hz`` -> features ``(n_features, frames)`` float32."""
        if self.trim:
            y = trim_silence(y, sr=self.sample_rate_hz, top_db=self.top_db)
        if self.kind == "mfcc":
            return mfcc(y, sr=self.sample_rate_hz, n_mfcc=self.n_mfcc, n_mels=self.n_mels, hop_length=self.hop_length)
        return log_mel(y, sr=self.sample_rate_hz, n_mels=self.n_mels, hop_length=self.hop_length)


def featurize(items: Sequence[AudioInput], features: VoiceFeatures, *, cache: FeatureCache | None,
              progress: bool = False, description: str = "features", speed: float = 1.0) -> list[np.ndarray]:
    """Features ``(n_features, frames)`` for each item; files go through the on-disk cache.

    ``speed`` != 1 computes the features of a speed-perturbed copy of each item (tempo and pitch
    together, Kaldi-style), cached under its own key: training augmentation computed once.
    """
    from emofuse._progress import track
    from emofuse.features.corrupt import speed_perturb

    def compute(y: np.ndarray) -> np.ndarray:
        if speed != 1.0:
            y = speed_perturb(y, factor=speed, sr=features.sample_rate_hz)
        return features.compute(y)

    settings: dict[str, Any] = {"features": asdict(features), "version": 1}
    if speed != 1.0:
        settings["speed"] = float(speed)
    out = []
    for item in track(items, description=description, total=len(items), enabled=progress):
        if cache is not None and isinstance(item, str | Path):
            out.append(cache.get_or_compute(item, settings, lambda p: compute(
                load_audio(p, sample_rate_hz=features.sample_rate_hz))))
        else:
            out.append(compute(load_waveform(item, sample_rate_hz=features.sample_rate_hz)))
    return out


# --- logistic regression on utterance statistics -----------------------------------------------


class VoiceLogReg:
    """Multinomial logistic regression on MFCC utterance statistics (mean, std, min, max per coefficient)."""

    def __init__(self, name: str = "voice_logreg", *, features: VoiceFeatures | None = None, C: float = 1.0,
                 max_iter: int = 3000, cache: FeatureCache | None = None, progress: bool = False) -> None:
        self.name = name
        self.features = features or VoiceFeatures(kind="mfcc")
        self.C = C
        self.max_iter = max_iter
        self.cache = cache
        self.progress = progress
        self.labels_: tuple[str, ...] = ()

    def get_params(self) -> dict[str, Any]:
        return {"features": asdict(self.features), "C": self.C, "max_iter": self.max_iter}

    def _stats(self, X: Sequence[AudioInput]) -> np.ndarray:
        feats = featurize(X, self.features, cache=self.cache, progress=self.progress)
        return np.stack([utterance_stats(f) for f in feats])

    def fit(self, X: Sequence[AudioInput], y: Sequence[str], *, labels: Sequence[str],
            X_val: Sequence[AudioInput] | None = None, y_val: Sequence[str] | None = None, **_: Any) -> VoiceLogReg:
        self.head_ = StandardisedLogReg(C=self.C, max_iter=self.max_iter).fit(self._stats(X), label_targets(y, labels))
        self.labels_ = tuple(labels)
        return self

    def predict_proba(self, X: Sequence[AudioInput]) -> np.ndarray:
        check_fitted(self)
        return self.head_.predict_proba(self._stats(X), len(self.labels_))

    def save(self, directory: str | Path) -> None:
        check_fitted(self)
        save_checkpoint(directory, arrays=self.head_.arrays(),
                        meta={"model": self.name, "architecture": {"kind": "logreg", "C": self.C},
                              "labels": list(self.labels_), "features": asdict(self.features)})

    @classmethod
    def load(cls, directory: str | Path, **kwargs: Any) -> VoiceLogReg:
        arrays, meta = load_checkpoint(directory)
        model = cls(meta["model"], features=VoiceFeatures.from_dict(meta["features"]), C=meta["architecture"]["C"],
                    **kwargs)
        model.head_ = StandardisedLogReg.from_arrays(arrays, C=model.C)
        model.labels_ = tuple(meta["labels"])
        return model


# --- torch networks ----------------------------------------------------------------------------


class TorchVoiceClassifier:
    """A voice network from :mod:`emofuse.models.voice_nets`, trained by the one training loop.

    Training clips are randomly cropped to ``max_frames`` (4 s by default: fixed-size batches, and a
    little augmentation for free); evaluation uses each clip whole. ``speed_copies`` (e.g. 0.9, 1.1)
    computes and caches the features of speed-perturbed copies of every training clip once; each
    time the loop draws a clip it gets the original or one of its copies, with equal chance. It
    combines with SpecAugment and mixup, not with the on-the-fly waveform augmentation.
    """

    def __init__(self, name: str, *, arch: str, features: VoiceFeatures | None = None,
                 arch_params: Mapping[str, Any] | None = None, train: TrainConfig | None = None,
                 augment: Any = None, max_frames: int = 400, speed_copies: Sequence[float] = (),
                 cache: FeatureCache | None = None, progress: bool = False) -> None:
        from emofuse.training.augment import PRESETS, AugmentConfig

        self.name = name
        self.arch = arch
        self.features = features or VoiceFeatures()
        self.arch_params = dict(arch_params or {})
        self.train = train or TrainConfig()
        if augment is None or isinstance(augment, str):
            augment = PRESETS[augment or "none"]
        elif isinstance(augment, Mapping):
            augment = AugmentConfig.from_dict(augment)
        self.augment = augment
        self.speed_copies = tuple(float(f) for f in speed_copies)
        if any(not 0.5 <= f <= 2.0 or f == 1.0 for f in self.speed_copies):
            raise ConfigError(f"speed_copies must be factors in [0.5, 2] other than 1, not {list(speed_copies)}")
        if self.speed_copies and augment.waveform_enabled:
            raise ConfigError("speed_copies are precomputed features: they do not combine with waveform "
                              "augmentation (use the augment config's speed range there instead)")
        self.max_frames = max_frames
        self.cache = cache
        self.progress = progress
        self.labels_: tuple[str, ...] = ()
        self.fit_result_: Any = None

    def get_params(self) -> dict[str, Any]:
        return {"arch": self.arch, "features": asdict(self.features), "arch_params": self.arch_params,
                "train": self.train.to_dict(), "augment": self.augment.to_dict(), "max_frames": self.max_frames,
                "speed_copies": list(self.speed_copies)}

    # The loop asks for a module, datasets of (features, target) and a collate function.
    def _collate(self, batch: list[tuple[np.ndarray, int]]) -> tuple[Any, Any, Any]:
        import torch

        lengths = torch.tensor([f.shape[1] for f, _ in batch], dtype=torch.long)
        # Pad to at least MIN_FRAMES so every pooling stage keeps one frame, even for a 0.1 s clip;
        # `lengths` keeps the truth, so the padding never counts.
        x = torch.zeros(len(batch), batch[0][0].shape[0], max(int(lengths.max()), MIN_FRAMES))
        for i, (f, _) in enumerate(batch):
            x[i, :, : f.shape[1]] = torch.from_numpy(f)
        targets = torch.tensor([t for _, t in batch], dtype=torch.long)
        return x, lengths, targets

    def _new_net(self, n_classes: int) -> Any:
        from emofuse.models.voice_nets import build_net

        return build_net(self.arch, self.features.n_features, n_classes, self.arch_params)

    def fit(self, X: Sequence[AudioInput], y: Sequence[str], *, labels: Sequence[str],
            X_val: Sequence[AudioInput] | None = None, y_val: Sequence[str] | None = None,
            log_path: str | Path | None = None, state_dir: str | Path | None = None) -> TorchVoiceClassifier:
        import torch

        from emofuse.training.loop import fit, seed_everything

        if X_val is None or y_val is None:
            raise ConfigError(f"{self.name} needs validation data (held-out speakers) for early stopping")
        targets, val_targets = label_targets(y, labels), label_targets(y_val, labels)
        train_feats = featurize(X, self.features, cache=self.cache, progress=self.progress, description="train features")
        val_feats = featurize(X_val, self.features, cache=self.cache, progress=self.progress, description="val features")
        frames = np.concatenate(train_feats, axis=1)  # (n_features, all frames)
        seed_everything(self.train.seed)  # the initial weights too follow the seed
        net = self._new_net(len(labels))
        net.set_normalisation(torch.from_numpy(frames.mean(axis=1)), torch.from_numpy(frames.std(axis=1)))
        if self.augment.waveform_enabled:
            waveforms = [load_waveform(item, sample_rate_hz=self.features.sample_rate_hz) for item in X]
            train_set: Any = _AugmentedWaveforms(waveforms, targets, self.features, self.augment, self.max_frames,
                                                 seed=self.train.seed)
        else:
            copies = [featurize(X, self.features, cache=self.cache, progress=self.progress, speed=f,
                                description=f"train features x{f}") for f in self.speed_copies]
            train_set = _CroppedFeatures(train_feats, targets, self.max_frames, seed=self.train.seed, copies=copies)
        val_set = list(zip(val_feats, val_targets.tolist(), strict=True))
        batch_transform = _batch_augment(self.augment, net) if (self.augment.spec_enabled or self.augment.mixup_alpha) else None
        self.fit_result_ = fit(net, train_set, val_set, train_targets=targets, val_targets=val_targets,
                               n_classes=len(labels), config=self.train, collate=self._collate,
                               batch_transform=batch_transform, log_path=log_path, state_dir=state_dir,
                               progress=self.progress, description=self.name)
        self.net_ = net
        self.labels_ = tuple(labels)
        return self

    def predict_proba(self, X: Sequence[AudioInput], *, batch_size: int = 32) -> np.ndarray:
        import torch

        from emofuse.training.loop import predict_logits, resolve_device

        check_fitted(self)
        feats = featurize(X, self.features, cache=self.cache)
        device = resolve_device(self.train.device)
        self.net_.to(device)
        try:
            logits = predict_logits(self.net_, [(f, 0) for f in feats], collate=self._collate,
                                    batch_size=batch_size, device=device)
        finally:
            self.net_.cpu()
        return torch.softmax(torch.from_numpy(logits).double(), dim=1).numpy()

    def save(self, directory: str | Path) -> None:
        check_fitted(self)
        fit_info = None
        if self.fit_result_ is not None:
            r = self.fit_result_
            fit_info = {"best_epoch": r.best_epoch, "best_val_ua": r.best_val_ua, "epochs_run": r.epochs_run,
                        "seconds": r.seconds, "device": r.device}
        save_checkpoint(directory, arrays=dict(self.net_.state_dict()), meta={
            "model": self.name,
            "architecture": {"kind": self.arch, "params": self.arch_params, "n_features": self.features.n_features},
            "labels": list(self.labels_),
            "features": asdict(self.features),
            "normalisation": "feature_mean / feature_std buffers in the weights, fitted on the training set",
            "max_frames": self.max_frames,
            "train": self.train.to_dict(),
            "augment": self.augment.to_dict(),
            "speed_copies": list(self.speed_copies),
            "fit": fit_info,
        })

    @classmethod
    def load(cls, directory: str | Path, **kwargs: Any) -> TorchVoiceClassifier:
        import torch

        arrays, meta = load_checkpoint(directory)
        train = TrainConfig.from_dict({**meta["train"], "device": kwargs.pop("device", "cpu")})
        model = cls(meta["model"], arch=meta["architecture"]["kind"], features=VoiceFeatures.from_dict(meta["features"]),
                    arch_params=meta["architecture"]["params"], train=train, augment=meta["augment"],
                    max_frames=meta["max_frames"], speed_copies=meta.get("speed_copies", ()), **kwargs)
        net = model._new_net(len(meta["labels"]))
        net.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()})
        net.eval()
        model.net_ = net
        model.labels_ = tuple(meta["labels"])
        return model


class _CroppedFeatures:
    """Training set of precomputed features, each randomly cropped to at most ``max_frames`` along
    ``frame_axis`` (1 for ``(n_features, frames)`` arrays, 0 for ``(frames, n_features)``).

    ``copies``: further versions of every clip's features (speed-perturbed), in the order of
    ``feats``; each draw of a clip picks the original or one of its copies uniformly.
    """

    def __init__(self, feats: list[np.ndarray], targets: np.ndarray, max_frames: int, *, seed: int,
                 frame_axis: int = 1, copies: Sequence[list[np.ndarray]] = ()) -> None:
        self.feats, self.targets, self.max_frames, self.frame_axis = feats, targets, max_frames, frame_axis
        self.copies = list(copies)
        if any(len(c) != len(feats) for c in self.copies):
            raise ValueError("every copy must hold one feature array per clip")
        self.rng = np.random.default_rng(seed)

    def reseed(self, seed: int) -> None:
        """A fresh random stream (each data-loading worker gets its own; see ``reseed_worker``)."""
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.feats)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        feats = self.feats[i]
        if self.copies:
            version = int(self.rng.integers(0, len(self.copies) + 1))
            feats = feats if version == 0 else self.copies[version - 1][i]
        crop = _random_crop(feats, self.max_frames, self.rng, frame_axis=self.frame_axis)
        return crop, int(self.targets[i])


class _AugmentedWaveforms:
    """Training set that augments each waveform on the fly, then computes its features."""

    def __init__(self, waveforms: list[np.ndarray], targets: np.ndarray, features: VoiceFeatures, augment: Any,
                 max_frames: int, *, seed: int) -> None:
        self.waveforms, self.targets, self.features, self.max_frames = waveforms, targets, features, max_frames
        self.augment = augment
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        """Fresh random streams (each data-loading worker gets its own; see ``reseed_worker``)."""
        from emofuse.training.augment import WaveformAugmenter

        self.augmenter = WaveformAugmenter(self.augment, sample_rate_hz=self.features.sample_rate_hz, seed=seed)
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.waveforms)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        y = self.augmenter(self.waveforms[i])
        return _random_crop(self.features.compute(y), self.max_frames, self.rng), int(self.targets[i])


def _random_crop(feats: np.ndarray, max_frames: int, rng: np.random.Generator, *, frame_axis: int = 1) -> np.ndarray:
    frames = feats.shape[frame_axis]
    if frames <= max_frames:
        return feats
    start = int(rng.integers(0, frames - max_frames + 1))
    window: list[slice] = [slice(None)] * feats.ndim
    window[frame_axis] = slice(start, start + max_frames)
    return feats[tuple(window)]  # a view, as plain slicing gives


def _batch_augment(config: Any, net: Any) -> Any:
    from emofuse.training.augment import mixup, spec_augment

    def transform(x: Any, soft: Any, generator: Any) -> tuple[Any, Any]:
        if config.spec_enabled:
            # Masks fill with zero; centring first makes a masked cell the training mean of its
            # feature (zero after the net's own normalisation), not an arbitrary raw value.
            mean = net.feature_mean.to(x.device)[None, :, None]
            x = spec_augment(x - mean, config, generator=generator) + mean
        if config.mixup_alpha:
            x, soft = mixup(x, soft, alpha=config.mixup_alpha, generator=generator)
        return x, soft

    return transform
