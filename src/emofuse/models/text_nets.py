"""Text classifiers trained by the one loop over token ids: a BiGRU from scratch (with its own
vocabulary), and the pretrained sentence encoder fine-tuned end to end."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emofuse.checkpoint import load_checkpoint, save_checkpoint
from emofuse.errors import ConfigError
from emofuse.models.base import check_fitted, label_targets
from emofuse.models.text import load_text_encoder, mean_pool, tokenize
from emofuse.training.config import TrainConfig
from emofuse.training.loop import seed_everything

# --- networks over token ids, trained by the one loop -------------------------------------------------


def _fit_token_net(model: Any, net: Any, X: Sequence[str], y: Sequence[str], labels: Sequence[str],
                   X_val: Sequence[str], y_val: Sequence[str], log_path: str | Path | None,
                   state_dir: str | Path | None) -> None:
    """Train ``net`` on ``model._encode``d texts with the loop; sets ``net_``, ``labels_``, ``fit_result_``."""
    from emofuse.training.loop import fit

    targets, val_targets = label_targets(y, labels), label_targets(y_val, labels)
    model.fit_result_ = fit(net, list(zip(model._encode(X), targets.tolist(), strict=True)),
                            list(zip(model._encode(X_val), val_targets.tolist(), strict=True)),
                            train_targets=targets, val_targets=val_targets, n_classes=len(labels),
                            config=model.train, collate=model._collate, log_path=log_path, state_dir=state_dir,
                            progress=model.progress, description=model.name)
    model.net_ = net.cpu().eval()
    model.labels_ = tuple(labels)


def _predict_token_net(net: Any, ids: list[np.ndarray], collate: Any, *, batch_size: int) -> np.ndarray:
    import torch

    from emofuse.training.loop import predict_logits

    logits = predict_logits(net, [(i, 0) for i in ids], collate=collate, batch_size=batch_size,
                            device=torch.device("cpu"))
    return torch.softmax(torch.from_numpy(logits).double(), dim=1).numpy()


# --- a BiGRU from scratch ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Vocabulary:
    """Word -> index; 0 is padding, 1 is an unknown word."""

    words: tuple[str, ...]

    @classmethod
    def build(cls, texts: Sequence[str], *, min_count: int = 2, max_size: int = 20_000) -> Vocabulary:
        counts = Counter(t for text in texts for t in tokenize(text))
        kept = [w for w, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if c >= min_count]
        return cls(tuple(kept[:max_size]))

    def encode(self, text: str, *, max_tokens: int) -> np.ndarray:
        index = self._index()
        ids = [index.get(t, 1) for t in tokenize(text)][:max_tokens]
        return np.array(ids or [1], dtype=np.int64)  # an empty text is one unknown token, not nothing

    def _index(self) -> dict[str, int]:
        cached: dict[str, int] | None = self.__dict__.get("_cached_index")
        if cached is None:
            cached = {w: i + 2 for i, w in enumerate(self.words)}
            object.__setattr__(self, "_cached_index", cached)
        return cached

    def __len__(self) -> int:
        return len(self.words) + 2


def _build_bigru(vocab_size: int, n_classes: int, *, embed_dim: int, hidden: int, dropout: float) -> Any:
    import torch
    from torch import nn

    class BiGRUText(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
            self.drop = nn.Dropout(dropout)
            self.gru = nn.GRU(embed_dim, hidden, batch_first=True, bidirectional=True)
            self.out = nn.Linear(4 * hidden, n_classes)

        def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
            # tokens (batch, max_tokens) -> logits (batch, n_classes); mean and max over real tokens
            packed = nn.utils.rnn.pack_padded_sequence(self.drop(self.embed(tokens)), lengths.cpu(),
                                                       batch_first=True, enforce_sorted=False)
            states, _ = self.gru(packed)
            states, _ = nn.utils.rnn.pad_packed_sequence(states, batch_first=True, total_length=tokens.shape[1])
            mask = (torch.arange(tokens.shape[1], device=tokens.device)[None, :] < lengths[:, None]).unsqueeze(-1)
            mean = (states * mask).sum(1) / lengths[:, None].clamp(min=1)
            peak = states.masked_fill(~mask, -1e4).max(1).values
            return self.out(self.drop(torch.cat([mean, peak], dim=1)))

    return BiGRUText()


class TextBiGRU:
    """Word embeddings learnt from the training texts, a bidirectional GRU, mean+max pooling: the
    reference design's text branch. Trained by the one training loop."""

    def __init__(self, name: str = "text_bigru", *, embed_dim: int = 128, hidden: int = 128, dropout: float = 0.3,
                 min_count: int = 2, max_vocab: int = 20_000, max_tokens: int = 64, train: TrainConfig | None = None,
                 progress: bool = False) -> None:
        self.name = name
        self.embed_dim, self.hidden, self.dropout = embed_dim, hidden, dropout
        self.min_count, self.max_vocab, self.max_tokens = min_count, max_vocab, max_tokens
        self.train = train or TrainConfig(epochs=20, patience=5, lr=2e-3, batch_size=64)
        self.progress = progress
        self.labels_: tuple[str, ...] = ()
        self.fit_result_: Any = None
        self.net_: Any = None

    def get_params(self) -> dict[str, Any]:
        return {"embed_dim": self.embed_dim, "hidden": self.hidden, "dropout": self.dropout,
                "min_count": self.min_count, "max_vocab": self.max_vocab, "max_tokens": self.max_tokens,
                "train": self.train.to_dict()}

    def _net(self, n_classes: int) -> Any:
        return _build_bigru(len(self.vocab_), n_classes, embed_dim=self.embed_dim, hidden=self.hidden,
                            dropout=self.dropout)

    @staticmethod
    def _collate(batch: list[tuple[np.ndarray, int]]) -> tuple[Any, Any, Any]:
        import torch

        lengths = torch.tensor([len(ids) for ids, _ in batch], dtype=torch.long)
        tokens = torch.zeros(len(batch), int(lengths.max()), dtype=torch.long)
        for i, (ids, _) in enumerate(batch):
            tokens[i, : len(ids)] = torch.from_numpy(ids)
        return tokens, lengths, torch.tensor([t for _, t in batch], dtype=torch.long)

    def _encode(self, X: Sequence[str]) -> list[np.ndarray]:
        return [self.vocab_.encode(str(x), max_tokens=self.max_tokens) for x in X]

    def fit(self, X: Sequence[str], y: Sequence[str], *, labels: Sequence[str], X_val: Sequence[str] | None = None,
            y_val: Sequence[str] | None = None, log_path: str | Path | None = None,
            state_dir: str | Path | None = None) -> TextBiGRU:
        if X_val is None or y_val is None:
            raise ConfigError(f"{self.name} needs validation data for early stopping")
        self.vocab_ = Vocabulary.build([str(x) for x in X], min_count=self.min_count, max_size=self.max_vocab)
        seed_everything(self.train.seed)  # the initial weights too follow the seed
        _fit_token_net(self, self._net(len(labels)), X, y, labels, X_val, y_val, log_path, state_dir)
        return self

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        check_fitted(self)
        return _predict_token_net(self.net_, self._encode(X), self._collate, batch_size=256)

    def save(self, directory: str | Path) -> None:
        check_fitted(self)
        r = self.fit_result_
        save_checkpoint(directory, arrays=dict(self.net_.state_dict()), meta={
            "model": self.name,
            "architecture": {"kind": "bigru", "embed_dim": self.embed_dim, "hidden": self.hidden,
                             "dropout": self.dropout},
            "labels": list(self.labels_),
            "features": {"tokenizer": "emofuse.models.text.tokenize", "vocabulary": list(self.vocab_.words),
                         "max_tokens": self.max_tokens, "min_count": self.min_count, "max_vocab": self.max_vocab},
            "train": self.train.to_dict(),
            "fit": None if r is None else {"best_epoch": r.best_epoch, "best_val_ua": r.best_val_ua,
                                           "epochs_run": r.epochs_run, "seconds": r.seconds},
        })

    @classmethod
    def load(cls, directory: str | Path, **kwargs: Any) -> TextBiGRU:
        import torch

        arrays, meta = load_checkpoint(directory)
        arch, feats = meta["architecture"], meta["features"]
        model = cls(meta["model"], embed_dim=arch["embed_dim"], hidden=arch["hidden"], dropout=arch["dropout"],
                    min_count=feats["min_count"], max_vocab=feats["max_vocab"], max_tokens=feats["max_tokens"],
                    train=TrainConfig.from_dict(meta["train"]), **kwargs)
        model.vocab_ = Vocabulary(tuple(feats["vocabulary"]))
        net = model._net(len(meta["labels"]))
        net.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()})
        model.net_ = net.eval()
        model.labels_ = tuple(meta["labels"])
        return model


# --- fine-tuning the pretrained encoder --------------------------------------------------------------


def _build_finetune_net(encoder: str, n_classes: int, dropout: float) -> Any:
    import copy

    import torch
    from torch import nn

    _, pretrained = load_text_encoder(encoder)

    class EncoderClassifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = copy.deepcopy(pretrained).train()  # the shared frozen copy stays untouched
            self.drop = nn.Dropout(dropout)
            self.out = nn.Linear(pretrained.config.hidden_size, n_classes)

        def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
            # tokens (batch, max_tokens) word-piece ids -> logits (batch, n_classes), mean-pooled states
            mask = (torch.arange(tokens.shape[1], device=tokens.device)[None, :] < lengths[:, None]).long()
            states = self.encoder(input_ids=tokens, attention_mask=mask).last_hidden_state
            return self.out(self.drop(mean_pool(states, mask)))

    return EncoderClassifier()


class TextEncoderFineTuned:
    """The pretrained sentence encoder fine-tuned end to end with a linear head, by the one training
    loop (AdamW, early stopping on validation UA). Several times the cost of ``text_minilm``; meant
    for a GPU (``train={"device": "cuda"}``), it runs on a CPU too."""

    def __init__(self, name: str = "text_minilm_finetune", *, encoder: str = "minilm", dropout: float = 0.1,
                 max_length: int = 64, train: TrainConfig | None = None, progress: bool = False) -> None:
        self.name = name
        self.encoder = encoder
        self.dropout = dropout
        self.max_length = max_length
        self.train = train or TrainConfig(epochs=4, patience=2, lr=3e-5, batch_size=32, weight_decay=0.01,
                                          schedule="onecycle")
        self.progress = progress
        self.labels_: tuple[str, ...] = ()
        self.fit_result_: Any = None
        self.net_: Any = None

    def get_params(self) -> dict[str, Any]:
        return {"encoder": self.encoder, "dropout": self.dropout, "max_length": self.max_length,
                "train": self.train.to_dict()}

    def _encode(self, X: Sequence[str]) -> list[np.ndarray]:
        tokenizer, _ = load_text_encoder(self.encoder)
        ids = tokenizer([str(x) for x in X], truncation=True, max_length=self.max_length)["input_ids"]
        return [np.asarray(i, dtype=np.int64) for i in ids]

    @staticmethod
    def _collate(batch: list[tuple[np.ndarray, int]]) -> tuple[Any, Any, Any]:
        return TextBiGRU._collate(batch)  # pad id 0 is [PAD] in BERT-style vocabularies; lengths mask it

    def fit(self, X: Sequence[str], y: Sequence[str], *, labels: Sequence[str], X_val: Sequence[str] | None = None,
            y_val: Sequence[str] | None = None, log_path: str | Path | None = None,
            state_dir: str | Path | None = None) -> TextEncoderFineTuned:
        if X_val is None or y_val is None:
            raise ConfigError(f"{self.name} needs validation data for early stopping")
        seed_everything(self.train.seed)  # the new head's initial weights too follow the seed
        _fit_token_net(self, _build_finetune_net(self.encoder, len(labels), self.dropout), X, y, labels, X_val, y_val,
                       log_path, state_dir)
        return self

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        check_fitted(self)
        return _predict_token_net(self.net_, self._encode(X), self._collate, batch_size=64)

    def save(self, directory: str | Path) -> None:
        check_fitted(self)
        save_checkpoint(directory, arrays={k: v.contiguous() for k, v in self.net_.state_dict().items()}, meta={
            "model": self.name,
            "architecture": {"kind": "encoder_finetuned", "encoder": self.encoder, "dropout": self.dropout},
            "labels": list(self.labels_),
            "features": {"tokenizer": self.encoder, "max_length": self.max_length},
            "train": self.train.to_dict(),
        })

    @classmethod
    def load(cls, directory: str | Path, **kwargs: Any) -> TextEncoderFineTuned:
        import torch

        arrays, meta = load_checkpoint(directory)
        model = cls(meta["model"], encoder=meta["architecture"]["encoder"], dropout=meta["architecture"]["dropout"],
                    max_length=meta["features"]["max_length"], train=TrainConfig.from_dict(meta["train"]), **kwargs)
        net = _build_finetune_net(model.encoder, len(meta["labels"]), model.dropout)
        net.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()})
        model.net_ = net.eval()
        model.labels_ = tuple(meta["labels"])
        return model
