"""How the service runs: one typed, strict settings object, passed to :func:`create_app`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from emofuse.errors import ConfigError, checked_options


@dataclass(frozen=True)
class ServeSettings:
    host: str = "127.0.0.1"  # loopback unless told otherwise
    port: int = 8000
    workers: int = 2  # inference threads; requests beyond them queue
    torch_threads: int = 1  # per inference thread: workers x torch_threads ~ the cores
    max_pending: int = 256  # requests waiting for a worker before new ones get 503
    max_upload_bytes: int = 50_000_000  # larger bodies get 413, before they are read
    request_timeout_s: float = 60.0  # an inference that takes longer gets 504
    max_text_chars: int = 5_000
    cors_origins: list[str] = field(default_factory=list)  # empty: no CORS headers at all
    voice_model: str | None = None  # a saved model folder instead of the shipped one
    face_model: str | None = None
    words: bool = True
    runtime: str = "torch"  # or "onnx": the exported graphs in onnxruntime, torch_threads intra-op threads each
    warm_up: bool = True  # one tiny prediction per modality at startup, so the first user waits less
    # The live stream (WS /v1/stream): one inference thread per modality (face, voice, words), apart
    # from the main workers, so neither uploads nor another modality hold back a live update
    # (docs/live.md: who runs where, with which threads).
    stream_update_s: float = 0.45  # a fused update this often: under 0.5 s with scheduling jitter
    stream_voice_window_s: float = 2.0  # voice reads the last this-many seconds
    stream_adapt_speaker: bool = True  # a live stream is one speaker: adapt the voice model to them (when it can)
    # Words: an utterance is transcribed once the voice-activity detector hears it end (this long a pause),
    # or once it has run this long without one; without a detector, on a clock.
    stream_words_pause_s: float = 0.4
    stream_transcribe_window_s: float = 6.0
    stream_transcribe_every_s: float = 2.0  # the clock, when there is no voice-activity detector
    stream_words_threads: int = 1  # speech-to-text's own CPU threads
    stream_words_beam_size: int = 1  # greedy decoding live; files keep the transcriber's beam
    stream_max_message_bytes: int = 2_000_000
    stream_max_errors: int = 50  # malformed messages tolerated before the socket is closed

    def __post_init__(self) -> None:
        if self.workers < 1 or self.max_pending < 1 or self.max_upload_bytes < 1:
            raise ConfigError("workers, max_pending and max_upload_bytes must be at least 1")
        if self.request_timeout_s <= 0 or self.stream_update_s <= 0:
            raise ConfigError("timeouts and intervals must be positive")
        if self.stream_words_threads < 1 or self.stream_words_beam_size < 1 or self.stream_words_pause_s <= 0:
            raise ConfigError("stream_words_threads and stream_words_beam_size must be at least 1, "
                              "stream_words_pause_s positive")
        if self.runtime not in ("torch", "onnx"):
            raise ConfigError(f"runtime must be 'torch' or 'onnx', not {self.runtime!r}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ServeSettings:
        return cls(**checked_options(cls, d, what="serve"))
