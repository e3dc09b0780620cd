"""Pooled Whisper encoder states of clips, cached: what the Whisper voice models read.

A clip's features are the mean and standard deviation over its frames of each layer's states (the
convolutional embedding and every block) of each Whisper model named, computed once per file and
cached (content hash + settings); which layers a head reads is the model's choice, so one
extraction serves every variant. Training views of a clip (a speed-perturbed copy, the k-th
channel-augmented copy) are cached under their own keys. The encoder itself is
:mod:`emofuse.features.whisper`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emofuse.errors import ConfigError, checked_options
from emofuse.features.audio import SAMPLE_RATE_HZ, load_waveform, trim_silence
from emofuse.features.cache import FeatureCache
from emofuse.features.corrupt import channel_copy, speed_perturb

AudioInput = str | Path | np.ndarray
FEATURE_VERSION = 1
CHANNEL_VERSION = 1  # bump when channel_copy's recipe changes: cached copies then miss


@dataclass(frozen=True)
class WhisperFeatures:
    """Which encoder states a model reads.

    ``models``: offline Whisper models (``tiny.en``, ``base``) or CTranslate2 model folders; their
    features are concatenated. ``layers``: ``"all"``, or indices into each model's states (0 = the
    convolutional embedding, -1 = the last block); negative indices count from the end, so one
    setting fits models of different depth. ``pooling``: ``mean`` or ``mean_std`` over frames, or
    ``attention``: the frames themselves are kept (averaged in groups of ``frame_stride``, 20 ms
    each) and the model learns how to pool them (``voice_whisper_attn``).
    ``trim`` drops leading and trailing silence first (RAVDESS clips open with about a second of it),
    so only frames of real audio are pooled. ``speech_crop`` crops instead to the span Silero VAD
    hears as speech (an energy trim keeps everything once noise fills the silence), falling back to
    the energy trim where it hears none; ``loudness_dbfs`` then scales the clip to that RMS level, so
    a quiet and a loud recording of one voice give the encoder the same input.
    """

    models: tuple[str, ...] = ("tiny.en",)
    layers: str | tuple[int, ...] = "all"
    pooling: str = "mean_std"
    trim: bool = True
    top_db: float = 40.0
    batch_size: int = 8
    frame_stride: int = 2
    speech_crop: bool = False
    loudness_dbfs: float | None = None

    def __post_init__(self) -> None:
        from emofuse.features.whisper import POOLINGS

        object.__setattr__(self, "models", tuple(self.models))
        if not self.models:
            raise ConfigError("WhisperFeatures needs at least one model")
        if isinstance(self.layers, str):
            if self.layers != "all":
                raise ConfigError(f"layers must be 'all' or a list of layer indices, not {self.layers!r}")
        else:
            object.__setattr__(self, "layers", tuple(int(i) for i in self.layers))
        if self.pooling not in (*POOLINGS, "attention"):
            raise ConfigError(f"pooling must be one of {', '.join(POOLINGS)}, attention, not {self.pooling!r}")
        if self.frame_stride < 1:
            raise ConfigError(f"frame_stride must be at least 1, not {self.frame_stride}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> WhisperFeatures:
        return cls(**checked_options(cls, d, what="Whisper feature"))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["models"] = list(self.models)
        d["layers"] = self.layers if isinstance(self.layers, str) else list(self.layers)
        return d

    def cache_settings(self, model: str) -> dict[str, Any]:
        """What the cached array of one model depends on (not the layer choice: all layers are stored)."""
        # The two later options enter the key only when on, so the arrays cached before them stay valid.
        extra = {k: v for k, v in (("speech_crop", self.speech_crop), ("loudness_dbfs", self.loudness_dbfs)) if v}
        if self.pooling == "attention":
            return {"kind": "whisper_frames", "model": model, "frame_stride": self.frame_stride, "trim": self.trim,
                    "top_db": self.top_db, "version": FEATURE_VERSION, **extra}
        return {"kind": "whisper", "model": model, "pooling": self.pooling, "trim": self.trim,
                "top_db": self.top_db, "version": FEATURE_VERSION, **extra}


def channel_rng(y: np.ndarray, copy: int) -> np.random.Generator:
    """The random source of a clip's ``copy``-th channel copy: seeded by the audio itself, so a copy
    is the same in every run and every fold (and may be cached)."""
    return np.random.default_rng([CHANNEL_VERSION, copy, zlib.crc32(np.ascontiguousarray(y).tobytes())])


def prepare_waveform(item: AudioInput, features: WhisperFeatures, *, speed: float = 1.0,
                     channel: int = 0) -> np.ndarray:
    """A clip as the Whisper features take it: decoded at 16 kHz, checked, sped up or down, passed
    through its ``channel``-th random microphone, room and line (0: none; training only), trimmed."""
    y = load_waveform(item, sample_rate_hz=SAMPLE_RATE_HZ)
    if speed != 1.0:
        y = speed_perturb(y, factor=speed)
    if channel:
        y = channel_copy(y, channel_rng(y, channel))
    span = None
    if features.speech_crop:
        from emofuse.features.vad import speech_span

        span = speech_span(y)
        if span is not None:
            y = y[span[0] : span[1]]
    if features.trim and span is None:
        y = trim_silence(y, sr=SAMPLE_RATE_HZ, top_db=features.top_db)
    if features.loudness_dbfs is not None:
        rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if len(y) else 0.0
        if rms > 0:
            y = np.clip(y * (10 ** (features.loudness_dbfs / 20) / rms), -1.0, 1.0).astype(np.float32)
    if len(y) < 800:  # under 50 ms: pad with silence so the encoder has a few frames
        y = np.pad(y, (0, 800 - len(y)))
    return y[: 30 * SAMPLE_RATE_HZ]  # the encoder's window; longer audio is chunked by callers


def pooled_states(items: Sequence[AudioInput], features: WhisperFeatures, *, model: str,
                  cache: FeatureCache | None = None, device: str = "cpu", progress: bool = False,
                  speed: float = 1.0, channel: int = 0) -> np.ndarray:
    """``(len(items), n_layers + 1, d)`` pooled states of one Whisper model for each item.

    Files already in ``cache`` are read back; the rest are encoded in batches of similar length
    (sorting by length keeps padding, and so wasted work, small). ``speed`` != 1 encodes a
    speed-perturbed copy of each item, ``channel`` k > 0 its k-th channel-augmented copy (training
    augmentation, see :func:`emofuse.features.corrupt.channel_copy`), each cached under its own key.
    """
    from emofuse.features.whisper import pool_states

    if features.pooling == "attention":
        raise ConfigError("pooling 'attention' keeps the frames: use frame_states")
    return np.stack(_encoded(items, features, model=model, cache=cache, device=device, progress=progress,
                             speed=speed, channel=channel,
                             reduce=lambda states: pool_states(states, kind=features.pooling)))


def frame_states(items: Sequence[AudioInput], features: WhisperFeatures, *, model: str,
                 cache: FeatureCache | None = None, device: str = "cpu", progress: bool = False) -> list[np.ndarray]:
    """Per item, ``(n_layers + 1, frames, d)`` float16 states of one Whisper model, every
    ``features.frame_stride`` encoder frames averaged into one (``pooling="attention"``), cached like
    :func:`pooled_states`."""
    if features.pooling != "attention":
        raise ConfigError(f"frame_states keeps the frames of pooling 'attention', not {features.pooling!r}")
    return _encoded(items, features, model=model, cache=cache, device=device, progress=progress,
                    reduce=lambda states: stride_frames(states, stride=features.frame_stride))


def stride_frames(states: np.ndarray, *, stride: int) -> np.ndarray:
    """``(layers, frames, d)`` -> ``(layers, ceil(frames / stride), d)`` float16: the mean of each
    group of ``stride`` frames (the last group may be shorter), halving storage once more."""
    layers, frames, d = states.shape
    groups = -(-frames // stride)
    padded = np.zeros((layers, groups * stride, d), dtype=np.float32)
    padded[:, :frames] = states
    counts = np.full(groups, stride, dtype=np.float32)
    counts[-1] = frames - (groups - 1) * stride
    sums = padded.reshape(layers, groups, stride, d).sum(axis=2)
    return (sums / counts[None, :, None]).astype(np.float16)


def _encoded(items: Sequence[AudioInput], features: WhisperFeatures, *, model: str, cache: FeatureCache | None,
             device: str, progress: bool, reduce: Callable[[np.ndarray], np.ndarray],
             speed: float = 1.0, channel: int = 0) -> list[np.ndarray]:
    """``reduce(states)`` of each item, read from ``cache`` or encoded in length-sorted batches."""
    from emofuse._progress import track
    from emofuse.features.whisper import encode_batch, load_whisper_encoder

    settings = features.cache_settings(model)
    if speed != 1.0:
        settings = {**settings, "speed": float(speed)}
    if channel:
        settings = {**settings, "channel": int(channel), "channel_version": CHANNEL_VERSION}
    out: list[np.ndarray | None] = [None] * len(items)
    todo: list[int] = []
    for i, item in enumerate(items):
        if cache is not None and isinstance(item, str | Path):
            hit = cache.lookup(item, settings)
            if hit is not None:
                out[i] = hit
                continue
        todo.append(i)
    if todo:
        encoder = load_whisper_encoder(model, device=device)
        waves = {i: prepare_waveform(items[i], features, speed=speed, channel=channel)
                 for i in track(todo, description="Reading audio", total=len(todo), enabled=progress)}
        order = sorted(todo, key=lambda i: len(waves[i]))
        batches = [order[s : s + features.batch_size] for s in range(0, len(order), features.batch_size)]
        for batch in track(batches, description=f"Whisper {model}", total=len(batches), enabled=progress):
            for i, states in zip(batch, encode_batch(encoder, [waves[i] for i in batch]), strict=True):
                reduced = reduce(states)
                item = items[i]
                if cache is not None and isinstance(item, str | Path):
                    cache.store(item, settings, reduced)
                out[i] = reduced
    return [o for o in out if o is not None]


def select_layers(pooled: np.ndarray, layers: str | tuple[int, ...]) -> np.ndarray:
    """``(n, n_layers + 1, d)`` -> ``(n, len(layers) * d)``: the chosen layers side by side."""
    if isinstance(layers, str):
        chosen = pooled
    else:
        n = pooled.shape[1]
        bad = [i for i in layers if not -n <= i < n]
        if bad:
            raise ConfigError(f"layer index {bad[0]} out of range for an encoder with {n} states")
        chosen = pooled[:, list(layers)]
    return chosen.reshape(len(pooled), -1)
