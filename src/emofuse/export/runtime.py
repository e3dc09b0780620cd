"""Exported models in onnxruntime, behind the same ``predict_proba`` the Predictor calls.

>>> model = OnnxModel.load("voice.onnx")          # reads voice.onnx.json beside it
>>> model.predict_proba(["clip.wav"])              # (1, 8), columns in model.labels_ order

The Python preprocessing is the torch model's own (the same feature functions, settings read from
the sidecar); only the graph runs in onnxruntime. :func:`cached_onnx_model` exports a saved model
once into ``<cache home>/onnx`` and loads it from there afterwards.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emofuse.errors import EmofuseError
from emofuse.export.session import new_session


class OnnxModel:
    """An exported emofuse model: ``name``, ``labels_`` and ``predict_proba(X)`` like the torch one."""

    runtime = "onnx"

    def __init__(self, path: str | Path, *, threads: int | None = None, batch_size: int = 32) -> None:
        from emofuse.export.sidecar import sidecar_path

        self.path = Path(path)
        sidecar = sidecar_path(self.path)
        if not self.path.is_file():
            raise EmofuseError(f"{self.path}: no such ONNX file")
        if not sidecar.is_file():
            raise EmofuseError(f"{self.path}: no {sidecar.name} beside it (export with `emofuse export onnx`)")
        self.meta = json.loads(sidecar.read_text(encoding="utf-8"))
        self.name = str(self.meta["model"])
        self.kind = str(self.meta["kind"])
        self.labels_: tuple[str, ...] = tuple(self.meta["labels"])
        self.batch_size = batch_size
        self.threads = threads
        self.session = new_session(self.path, threads=threads)
        self.input_names = [i["name"] for i in self.meta["inputs"]]
        self.prepare = _preprocessor(self.kind, self.meta)

    @classmethod
    def load(cls, path: str | Path, **kwargs: Any) -> OnnxModel:
        return cls(path, **kwargs)

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """The graph on ready tensors: ``inputs`` by name -> ``(batch, labels)`` probabilities."""
        return np.asarray(self.session.run(None, inputs)[0], dtype=np.float64)

    def predict_proba(self, X: Sequence[Any]) -> np.ndarray:
        out = [np.zeros((0, len(self.labels_)))]
        for start in range(0, len(X), self.batch_size):
            out.append(self.run(self.prepare(X[start : start + self.batch_size])))
        return np.concatenate(out)


# --- the preprocessing of each kind --------------------------------------------------------------


def _pad(rows: Sequence[np.ndarray], *, min_length: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Arrays ``(..., length_i)`` -> zero-padded ``(n, ..., max_length)`` and lengths ``(n,)``."""
    lengths = np.array([r.shape[-1] for r in rows], dtype=np.int64)
    shape = (len(rows), *rows[0].shape[:-1], max(int(lengths.max()), min_length))
    batch = np.zeros(shape, dtype=rows[0].dtype)
    for i, r in enumerate(rows):
        batch[i, ..., : r.shape[-1]] = r
    return batch, lengths


def _preprocessor(kind: str, sidecar: dict[str, Any]) -> Callable[[Sequence[Any]], dict[str, np.ndarray]]:
    meta = sidecar["checkpoint"]  # the model's own model.json
    if kind == "voice_frames":
        from emofuse.models.voice import MIN_FRAMES, VoiceFeatures, featurize

        features = VoiceFeatures.from_dict(meta["features"])

        def voice_frames(X: Sequence[Any]) -> dict[str, np.ndarray]:
            feats, lengths = _pad(featurize(X, features, cache=None), min_length=MIN_FRAMES)
            return {"features": feats.astype(np.float32), "lengths": lengths}

        return voice_frames
    if kind == "voice_stats":
        from emofuse.features.spectral import utterance_stats
        from emofuse.models.voice import VoiceFeatures, featurize

        stats_features = VoiceFeatures.from_dict(meta["features"])

        def voice_stats(X: Sequence[Any]) -> dict[str, np.ndarray]:
            return {"features": np.stack([utterance_stats(f) for f in featurize(X, stats_features, cache=None)])}

        return voice_stats
    if kind == "whisper":
        from emofuse.features.whisper import whisper_log_mel
        from emofuse.features.whisper_states import WhisperFeatures, prepare_waveform

        whisper = WhisperFeatures.from_dict(meta["features"])
        n_mels = int(sidecar["inputs"][0]["shape"][1])  # mel (batch, n_mels, frames)

        def whisper_mel(X: Sequence[Any]) -> dict[str, np.ndarray]:
            mel, lengths = _pad([whisper_log_mel(prepare_waveform(x, whisper), n_mels=n_mels) for x in X])
            return {"mel": mel, "lengths": lengths}

        return whisper_mel
    if kind == "face_crops":
        from emofuse.models.face import as_faces

        return lambda X: {"faces": as_faces(X)}
    if kind == "face_fer":
        from emofuse.models.face_peer import preprocess

        return lambda X: {"pixels": preprocess(X)}
    if kind == "text_tokens":
        from emofuse.models.text_nets import Vocabulary

        vocab = Vocabulary(tuple(meta["features"]["vocabulary"]))
        max_tokens = int(meta["features"]["max_tokens"])

        def text_tokens(X: Sequence[Any]) -> dict[str, np.ndarray]:
            tokens, lengths = _pad([vocab.encode(str(x), max_tokens=max_tokens) for x in X])
            return {"tokens": tokens, "lengths": lengths}

        return text_tokens
    if kind == "text_wordpieces":
        tokenizer = _tokenizer(meta["architecture"]["encoder"])
        max_length = int(meta["features"]["max_length"])

        def wordpieces(X: Sequence[Any]) -> dict[str, np.ndarray]:
            ids = tokenizer([str(x) for x in X], truncation=True, max_length=max_length)["input_ids"]
            tokens, lengths = _pad([np.asarray(i, dtype=np.int64) for i in ids])
            return {"tokens": tokens, "lengths": lengths}

        return wordpieces
    if kind == "text_encoder":
        sentence_tokenizer = _tokenizer(meta["features"]["encoder"])
        sentence_max = int(meta["features"]["max_length"])

        def sentences(X: Sequence[Any]) -> dict[str, np.ndarray]:
            enc = sentence_tokenizer([str(x) for x in X], padding=True, truncation=True, max_length=sentence_max,
                                     return_tensors="np")
            return {"input_ids": enc["input_ids"].astype(np.int64),
                    "attention_mask": enc["attention_mask"].astype(np.int64)}

        return sentences
    raise EmofuseError(f"unknown exported model kind {kind!r} (exported by a newer emofuse?)")


def _tokenizer(encoder: str) -> Any:
    """The encoder's tokenizer alone (the weights live in the graph)."""
    from transformers import AutoTokenizer

    from emofuse.models.text import resolve_text_encoder

    return AutoTokenizer.from_pretrained(resolve_text_encoder(encoder))


# --- exported once, from the cache ---------------------------------------------------------------


def onnx_cache_dir() -> Path:
    from emofuse.features.cache import cache_home

    return cache_home() / "onnx"


def cached_export_path(model_dir: str | Path) -> Path:
    """Where the export of the saved model in ``model_dir`` lives in the cache: keyed by its weights,
    its model.json, and the emofuse, torch and opset versions that made the graph."""
    import torch

    from emofuse import __version__
    from emofuse.export.onnx import OPSET

    folder = Path(model_dir)
    digest = hashlib.sha256()
    for name in ("model.json", "model.safetensors"):
        with open(folder / name, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    digest.update(f"{__version__}|{torch.__version__}|{OPSET}".encode())
    name = json.loads((folder / "model.json").read_text(encoding="utf-8"))["model"]
    return onnx_cache_dir() / digest.hexdigest()[:16] / f"{name}.onnx"


def cached_onnx_model(source: str | Path, *, threads: int | None = None) -> OnnxModel:
    """An :class:`OnnxModel` for ``source``: an ``.onnx`` file (its sidecar beside it), or a saved
    model folder, exported into the cache the first time and read from there afterwards."""
    from emofuse.export.onnx import export_onnx
    from emofuse.export.sidecar import sidecar_path

    source = Path(source)
    if source.suffix == ".onnx":
        return OnnxModel(source, threads=threads)
    path = cached_export_path(source)
    if not (path.is_file() and sidecar_path(path).is_file()):
        export_onnx(source, path)
    return OnnxModel(path, threads=threads)
