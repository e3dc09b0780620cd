"""Voice emotion from a frozen Whisper encoder, pooled by learnt attention over its frames.

``voice_whisper`` averages each layer's states over the clip (mean and std) and fits a logistic
regression. This model keeps the frames instead (every ``frame_stride`` 20 ms frames averaged into
one, float16, cached per file) and trains a head through the one training loop. Two heads:

- ``head="stats"`` (the default): attentive statistics pooling. Every layer's states, standardised,
  are pooled into an attention-weighted mean and std, then a linear layer. The attention starts
  uniform, so training starts from the mean+std pooled linear model and learns which frames
  (the loud, expressive moments of a clip) to weigh up.
- ``head="projected"``: a learnt softmax mix of the layers, a linear projection to ``hidden`` per
  Whisper model, ``heads`` attention distributions over the frames, dropout, linear.

``n_seeds`` > 1 trains that many heads and averages their probabilities.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emofuse.checkpoint import load_checkpoint, save_checkpoint
from emofuse.errors import ConfigError
from emofuse.features.cache import FeatureCache
from emofuse.features.whisper_states import AudioInput, WhisperFeatures, frame_states
from emofuse.models.base import check_fitted, label_targets
from emofuse.training.config import TrainConfig

if TYPE_CHECKING:
    from emofuse.models._whisper_heads import AttentiveStatsHead, ProjectedAttentionHead

class VoiceWhisperAttention:
    """Attention pooling over frozen Whisper encoder frames, a head trained by the one loop.

    ``features`` must use ``pooling="attention"``; ``head`` is ``stats`` or ``projected`` (module
    docstring), ``hidden`` the attention's width (and the projection's), ``heads`` the projected
    head's attention distributions; ``train`` is the loop's config (early stopping on
    the validation speakers); ``max_frames`` crops long training clips at random (after the
    stride: 100 frames = 4 s at the default stride 2); evaluation reads each clip whole.
    """

    def __init__(self, name: str = "voice_whisper_attn", *, features: WhisperFeatures | Mapping[str, Any] | None = None,
                 head: str = "stats", hidden: int = 128, heads: int = 4, dropout: float = 0.3, n_seeds: int = 1,
                 train: TrainConfig | Mapping[str, Any] | None = None, max_frames: int = 100,
                 cache: FeatureCache | None = None, device: str = "cpu", progress: bool = False) -> None:
        self.name = name
        if isinstance(features, Mapping):
            features = WhisperFeatures.from_dict({"pooling": "attention", **features})
        self.features = features or WhisperFeatures(pooling="attention")
        if self.features.pooling != "attention":
            raise ConfigError(f"{name} pools frames itself: its features need pooling 'attention', "
                              f"not {self.features.pooling!r}")
        if isinstance(train, Mapping):
            train = TrainConfig.from_dict(train)
        self.train = train or TrainConfig()
        if n_seeds < 1 or hidden < 1 or heads < 1 or max_frames < 1:
            raise ConfigError(f"{name}: n_seeds, hidden, heads and max_frames must be at least 1")
        if head not in ("stats", "projected"):
            raise ConfigError(f"{name}: head must be one of stats, projected, not {head!r}")
        self.head_kind = head
        self.hidden, self.heads, self.dropout, self.n_seeds = int(hidden), int(heads), float(dropout), int(n_seeds)
        self.max_frames = int(max_frames)
        self.cache = cache
        self.device = device
        self.progress = progress
        self.labels_: tuple[str, ...] = ()

    def get_params(self) -> dict[str, Any]:
        return {"features": self.features.to_dict(), "head": self.head_kind, "hidden": self.hidden, "heads": self.heads,
                "dropout": self.dropout, "n_seeds": self.n_seeds, "train": self.train.to_dict(),
                "max_frames": self.max_frames}

    def featurize(self, X: Sequence[AudioInput]) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
        """Per clip ``(frames, sum of n_states * d)`` float16 (every model's chosen layers side by side,
        frame by frame), and ``[(n_states, d), ...]`` per model."""
        per_model, dims = [], []
        for m in self.features.models:
            states = frame_states(X, self.features, model=m, cache=self.cache, device=self.device,
                                  progress=self.progress)
            if not isinstance(self.features.layers, str):
                n = states[0].shape[0]
                bad = [i for i in self.features.layers if not -n <= i < n]
                if bad:
                    raise ConfigError(f"layer index {bad[0]} out of range for an encoder with {n} states")
                states = [s[list(self.features.layers)] for s in states]
            dims.append((states[0].shape[0], states[0].shape[2]))
            per_model.append(states)
        clips = []
        for parts in zip(*per_model, strict=True):
            frames = {p.shape[1] for p in parts}
            if len(frames) != 1:
                raise ConfigError(f"{self.name}: its Whisper models gave different frame counts {sorted(frames)}")
            clips.append(np.concatenate([p.transpose(1, 0, 2).reshape(p.shape[1], -1) for p in parts], axis=1))
        return clips, dims

    @staticmethod
    def _collate(batch: list[tuple[np.ndarray, int]]) -> tuple[Any, Any, Any]:
        import torch

        lengths = torch.tensor([f.shape[0] for f, _ in batch], dtype=torch.long)
        x = torch.zeros(len(batch), int(lengths.max()), batch[0][0].shape[1])
        for i, (f, _) in enumerate(batch):
            x[i, : f.shape[0]] = torch.from_numpy(f.astype(np.float32))
        return x, lengths, torch.tensor([t for _, t in batch], dtype=torch.long)

    def _new_head(self, n_classes: int) -> AttentiveStatsHead | ProjectedAttentionHead:
        from emofuse.models._whisper_heads import build_head

        return build_head(self.dims_, n_classes, kind=self.head_kind, hidden=self.hidden, heads=self.heads,
                          dropout=self.dropout)

    def fit(self, X: Sequence[AudioInput], y: Sequence[str], *, labels: Sequence[str],
            X_val: Sequence[AudioInput] | None = None, y_val: Sequence[str] | None = None,
            log_path: str | Path | None = None, state_dir: str | Path | None = None) -> VoiceWhisperAttention:
        import dataclasses

        import torch

        from emofuse.models._whisper_heads import AttentiveStatsHead
        from emofuse.models.voice import _CroppedFeatures
        from emofuse.training.loop import fit, seed_everything

        if X_val is None or y_val is None:
            raise ConfigError(f"{self.name} needs validation data (held-out speakers) for early stopping")
        targets, val_targets = label_targets(y, labels), label_targets(y_val, labels)
        train_feats, self.dims_ = self.featurize(X)
        val_feats, _ = self.featurize(X_val)
        mean, std = (torch.from_numpy(a) for a in _frame_mean_std(train_feats))
        train_set = _CroppedFeatures(train_feats, targets, self.max_frames, seed=self.train.seed, frame_axis=0)
        train_set_whole = list(zip(train_feats, targets.tolist(), strict=True))
        val_set = list(zip(val_feats, val_targets.tolist(), strict=True))
        self.heads_, self.fit_results_ = [], []
        for k in range(self.n_seeds):
            config = dataclasses.replace(self.train, seed=self.train.seed + k)
            seed_everything(config.seed)  # the initial weights follow the seed
            head = self._new_head(len(labels))
            head.set_normalisation(mean, std)
            if isinstance(head, AttentiveStatsHead):
                head.fit_pooled_normalisation(self._collate(train_set_whole[s : s + 64])[:2]
                                              for s in range(0, len(train_set_whole), 64))
            # One head keeps the loop's own log and state paths; several get one each.
            suffix = "" if self.n_seeds == 1 else f"-seed{k}"
            head_log = log_path if log_path is None or not suffix else f"{log_path}{suffix}"
            head_state = state_dir if state_dir is None or not suffix else Path(state_dir) / f"seed{k}"
            self.fit_results_.append(fit(
                head, train_set, val_set, train_targets=targets, val_targets=val_targets, n_classes=len(labels),
                config=config, collate=self._collate,
                log_path=head_log, state_dir=head_state,
                progress=self.progress, description=f"{self.name}{suffix}"))
            head.eval()
            self.heads_.append(head)
        self.labels_ = tuple(labels)
        return self

    def predict_proba(self, X: Sequence[AudioInput], *, batch_size: int = 32) -> np.ndarray:
        import torch

        from emofuse.training.loop import predict_logits

        check_fitted(self)
        if len(X) == 0:
            return np.zeros((0, len(self.labels_)))
        feats, _ = self.featurize(X)
        probs = np.zeros((len(feats), len(self.labels_)))
        for head in self.heads_:
            logits = predict_logits(head, [(f, 0) for f in feats], collate=self._collate, batch_size=batch_size,
                                    device=torch.device("cpu"))
            probs += torch.softmax(torch.from_numpy(logits).double(), dim=1).numpy()
        return probs / len(self.heads_)

    def save(self, directory: str | Path) -> None:
        check_fitted(self)
        arrays = {f"seed{k}.{name}": v for k, head in enumerate(self.heads_) for name, v in head.state_dict().items()}
        fits = [{"best_epoch": r.best_epoch, "best_val_ua": r.best_val_ua, "epochs_run": r.epochs_run,
                 "seconds": r.seconds, "device": r.device} for r in getattr(self, "fit_results_", [])]
        save_checkpoint(directory, arrays=arrays, meta={
            "model": self.name,
            "architecture": {"kind": "whisper_attention", "head": self.head_kind, "dims": [list(d) for d in self.dims_],
                             "hidden": self.hidden, "heads": self.heads, "dropout": self.dropout,
                             "n_seeds": self.n_seeds},
            "labels": list(self.labels_),
            "features": self.features.to_dict(),
            "normalisation": "feature_mean / feature_std buffers in the weights, fitted on the training frames",
            "max_frames": self.max_frames,
            "train": self.train.to_dict(),
            "fit": fits,
        })

    @classmethod
    def load(cls, directory: str | Path, **kwargs: Any) -> VoiceWhisperAttention:
        import torch

        arrays, meta = load_checkpoint(directory)
        arch = meta["architecture"]
        model = cls(meta["model"], features=WhisperFeatures.from_dict(meta["features"]), head=arch["head"],
                    hidden=arch["hidden"],
                    heads=arch["heads"], dropout=arch["dropout"], n_seeds=arch["n_seeds"],
                    train=TrainConfig.from_dict(meta["train"]), max_frames=meta["max_frames"], **kwargs)
        model.dims_ = [(int(n), int(d)) for n, d in arch["dims"]]
        model.heads_ = []
        for k in range(model.n_seeds):
            head = model._new_head(len(meta["labels"]))
            prefix = f"seed{k}."
            head.load_state_dict({name.removeprefix(prefix): torch.from_numpy(v)
                                  for name, v in arrays.items() if name.startswith(prefix)})
            head.eval()
            model.heads_.append(head)
        model.labels_ = tuple(meta["labels"])
        return model


def _frame_mean_std(feats: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std over every frame of ``feats`` (each ``(frames, features)``), float32,
    accumulated clip by clip in float64 rather than from one float32 copy of all the frames."""
    total = sum(f.shape[0] for f in feats)
    sums = np.zeros(feats[0].shape[1])
    squares = np.zeros(feats[0].shape[1])
    for f in feats:
        x = f.astype(np.float64)
        sums += x.sum(axis=0)
        squares += np.square(x).sum(axis=0)
    mean = sums / total
    std = np.sqrt(np.maximum(squares / total - np.square(mean), 0.0))
    return mean.astype(np.float32), std.astype(np.float32)
