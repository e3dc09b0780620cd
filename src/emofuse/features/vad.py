"""Is there speech in this audio? Silero VAD, with two spectral checks it needs beside it.

A voice model answers whatever it is given: a steady 220 Hz tone came out "sad" at 0.89. Before any
voice model runs, :func:`check_speech` decides, on 16 kHz mono audio:

1. **silence**: less than ``min_loud_seconds`` of 30 ms frames above -60 dBFS (and within 30 dB of
   the loudest frame) -> no speech.
2. **Silero VAD** (v6, the ONNX model that ships inside faster-whisper, run by onnxruntime) gives a
   speech probability per 32 ms; its maximum over the clip is the main evidence.
3. **tonal share**: the median, over loud 128 ms frames, of the power in the 16 strongest of 1025
   spectral bins. A steady tone, a hum, a chord or synthetic notes keep ~0.93-1.0 of their power
   there; speech, whose pitch moves and whose harmonics are shaped by formants, less (the most
   tonal of RAVDESS's 1,440 clips: 0.973).
4. **flatness**: the median spectral flatness (geometric over arithmetic mean of the power
   spectrum) of loud 32 ms frames: ~0.56 for white noise, 0.17 for pink noise, below 0.031 for
   every RAVDESS clip.

Speech is either strong Silero evidence (max >= 0.5) that is not a pure tone (tonal share < 0.99:
an amplitude-modulated tone fools Silero at 0.97); or, in a noise-like sound (flatness >= 0.05),
Silero at 0.3 or more (speech under white noise at 10 dB SNR: 0.31-0.50; white noise alone: at
most 0.18); or weaker Silero evidence (max >= 0.1) from a sound that is neither tonal (< 0.85) nor
noise-like: shouted speech, where Silero falls to 0.15 (8 of RAVDESS's clips, all of actor 06's
strong-intensity takes). Measured on every
RAVDESS clip (none gated out) and on generated tones, hums, chords, sweeps, synthetic music, white,
pink and brown noise (all gated out): tests/features/test_vad.py and benchmarks/vad.py.

Without faster-whisper or onnxruntime the Silero step is skipped and the two spectral checks
decide alone (``SpeechCheck.vad`` says which): pure tones and noise are still refused, but a
synthetic melody can pass as speech.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

SAMPLE_RATE_HZ = 16_000
SILERO_WINDOW = 512  # samples per Silero decision (32 ms)
STRONG_SPEECH, SPEECH_IN_NOISE, WEAK_SPEECH = 0.5, 0.3, 0.1
TONE_SHARE, TONAL_FOR_WEAK = 0.99, 0.85
NOISE_FLATNESS = 0.05


@dataclass(frozen=True)
class SpeechCheck:
    """What :func:`check_speech` found; ``reason`` is ``speech``, ``silence``, ``tone``, ``noise`` or
    ``no_voice`` (sound that is neither, in which Silero hears no speech)."""

    is_speech: bool
    reason: str
    loud_seconds: float
    silero_max: float | None  # None when Silero VAD is not installed
    tonal_share: float
    flatness: float

    @property
    def vad(self) -> str:
        return "silero" if self.silero_max is not None else "spectral only"

    @property
    def detail(self) -> str:
        return {"speech": "speech", "silence": "no sound above the speech threshold",
                "tone": "a steady tone, hum or chord, not speech", "noise": "noise, not speech",
                "no_voice": "sound, but the voice-activity detector hears no speech"}[self.reason]


@functools.lru_cache(maxsize=1)
def silero_model() -> Any | None:
    """faster-whisper's Silero VAD session (loaded once), or None when it cannot be loaded here."""
    try:
        from faster_whisper.vad import get_vad_model

        return get_vad_model()
    except Exception:  # faster-whisper or onnxruntime missing, or the model file: the spectral checks decide
        return None


def silero_probabilities(y: np.ndarray) -> np.ndarray | None:
    """Speech probability per 32 ms of ``y`` (16 kHz mono) ``(ceil(samples / 512),)``; None without Silero."""
    model = silero_model()
    if model is None:
        return None
    y = np.asarray(y, dtype=np.float32)
    padded = np.pad(y, (0, (-len(y)) % SILERO_WINDOW)) if len(y) else np.zeros(SILERO_WINDOW, np.float32)
    return np.asarray(model(padded), dtype=np.float64).reshape(-1)


class SileroStream:
    """Silero's speech probabilities over a live stream, each 32 ms window computed once.

    Windows sit on a fixed grid from the stream's first sample (window ``k``: samples ``512 k`` to
    ``512 (k + 1)``). :meth:`extend` runs the model on the whole windows it has not seen yet, carrying
    its recurrent state and 64-sample context across calls, so the answers are those of one pass over
    the stream (to float rounding), at the cost of only the new audio. Audio that has left the
    caller's buffer before it was looked at restarts the state at the next window it has.
    Not thread-safe: one stream, one caller at a time. ``available`` is False without Silero.
    """

    CONTEXT = 64  # samples of the previous window the v6 model sees with each window

    def __init__(self) -> None:
        model = silero_model()
        # The ONNX session inside faster-whisper's wrapper runs the windows with our state: without it
        # (another faster-whisper), the words loop falls back to its clock as without Silero.
        self.model = model if hasattr(model, "session") else None
        self.first_window = 0  # the grid index of probs[0]
        self.probs = np.zeros(0, np.float64)
        self._state: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # (h, c, context)

    @property
    def available(self) -> bool:
        return self.model is not None

    @property
    def next_window(self) -> int:
        """The grid index of the first window not computed yet."""
        return self.first_window + len(self.probs)

    def extend(self, start: int, audio: np.ndarray) -> None:
        """Take ``audio``, the stream's samples from sample ``start`` on, and compute its new whole windows."""
        if self.model is None:
            return
        begin = self.next_window * SILERO_WINDOW
        if start > begin:  # a gap: restart on the grid
            self.first_window = -(-start // SILERO_WINDOW)
            self.probs = np.zeros(0, np.float64)
            self._state = None
            begin = self.first_window * SILERO_WINDOW
        n = (start + len(audio) - begin) // SILERO_WINDOW
        if n <= 0:
            return
        windows = np.asarray(audio[begin - start : begin - start + n * SILERO_WINDOW], np.float32).reshape(n, -1)
        h, c, context = self._state or (np.zeros((1, 1, 128), np.float32), np.zeros((1, 1, 128), np.float32),
                                         np.zeros(self.CONTEXT, np.float32))
        contexts = np.concatenate([context[None], windows[:-1, -self.CONTEXT :]])
        out, h, c = self.model.session.run(None, {"input": np.concatenate([contexts, windows], axis=1), "h": h, "c": c})
        self._state = (h, c, windows[-1, -self.CONTEXT :].copy())
        self.probs = np.concatenate([self.probs, np.asarray(out, np.float64).reshape(-1)])

    def since(self, window: int) -> np.ndarray:
        """The probabilities of windows ``window`` on (computed ones only); earlier ones are forgotten."""
        drop = min(max(0, window - self.first_window), len(self.probs))
        self.probs, self.first_window = self.probs[drop:], self.first_window + drop
        return self.probs[max(0, window - self.first_window) :]


def speech_span(y: np.ndarray, *, threshold: float = STRONG_SPEECH, pad_seconds: float = 0.1) -> tuple[int, int] | None:
    """Sample range ``(start, stop)`` from the first to the last 32 ms window Silero hears as speech
    (probability >= ``threshold``), widened by ``pad_seconds`` each side; None without Silero or speech.

    Unlike an energy trim it holds in noise, where nothing is quieter than the noise floor."""
    probs = silero_probabilities(y)
    if probs is None:
        return None
    voiced = np.flatnonzero(probs >= threshold)
    if not len(voiced):
        return None
    pad = int(pad_seconds * SAMPLE_RATE_HZ)
    return max(0, int(voiced[0]) * SILERO_WINDOW - pad), min(len(y), (int(voiced[-1]) + 1) * SILERO_WINDOW + pad)


def utterance_span(probs: np.ndarray, *, pause_s: float, max_s: float, flush: bool = False,
                   threshold: float = STRONG_SPEECH, pad_seconds: float = 0.1) -> tuple[int, int] | None:
    """The first finished utterance in a live stream's audio, as a sample range, from its Silero
    probabilities ``probs`` (one per 32 ms, :func:`silero_probabilities`); None while there is none.

    An utterance runs from the first window heard as speech to the last one before a pause of
    ``pause_s``; it is finished once that pause has been heard, once it has run ``max_s`` without one
    (the words must come while the speaker goes on), or at once when ``flush`` (the audio stopped).
    Padded by ``pad_seconds`` each side, as :func:`speech_span` is.
    """
    voiced = np.asarray(probs) >= threshold
    if not voiced.any():
        return None
    window_s = SILERO_WINDOW / SAMPLE_RATE_HZ
    pause, longest = max(1, round(pause_s / window_s)), max(1, round(max_s / window_s))
    first = int(np.argmax(voiced))
    last = first
    for k in range(first + 1, len(voiced)):
        if voiced[k]:
            last = k
        elif k - last >= pause:
            break
        if k - first + 1 >= longest:
            break
    ended = len(voiced) - 1 - last >= pause or last - first + 1 >= longest or flush
    if not ended:
        return None
    pad = int(pad_seconds * SAMPLE_RATE_HZ)
    return max(0, first * SILERO_WINDOW - pad), min(len(voiced) * SILERO_WINDOW, (last + 1) * SILERO_WINDOW + pad)


def _frames(y: np.ndarray, size: int, hop: int) -> np.ndarray:
    if len(y) < size:
        y = np.pad(y, (0, size - len(y)))
    return np.lib.stride_tricks.sliding_window_view(y, size)[::hop]  # (n_frames, size)


def _loud(frames: np.ndarray, *, threshold_dbfs: float) -> np.ndarray:
    level_db = 10 * np.log10((frames.astype(np.float64) ** 2).mean(axis=1) + 1e-12)
    return (level_db > threshold_dbfs) & (level_db > level_db.max() - 30)


def tonal_share(y: np.ndarray, *, threshold_dbfs: float = -60.0) -> float:
    """Median share of power in the 16 strongest bins of 2048-point spectra of loud frames (0 when silent)."""
    frames = _frames(np.asarray(y, dtype=np.float64), 2048, 512)
    loud = _loud(frames, threshold_dbfs=threshold_dbfs)
    if not loud.any():
        return 0.0
    power = np.abs(np.fft.rfft(frames[loud] * np.hanning(2048), axis=1)) ** 2 + 1e-20  # (loud frames, 1025)
    top = -np.partition(-power, 16, axis=1)[:, :16]
    return float(np.median(top.sum(axis=1) / power.sum(axis=1)))


def spectral_flatness(y: np.ndarray, *, threshold_dbfs: float = -60.0) -> float:
    """Median spectral flatness of loud 512-sample frames (0 when silent)."""
    frames = _frames(np.asarray(y, dtype=np.float64), 512, 256)
    loud = _loud(frames, threshold_dbfs=threshold_dbfs)
    if not loud.any():
        return 0.0
    power = np.abs(np.fft.rfft(frames[loud] * np.hanning(512), axis=1)) ** 2 + 1e-20
    return float(np.median(np.exp(np.log(power).mean(axis=1)) / power.mean(axis=1)))


def speech_seconds(y: np.ndarray, *, sr: int, threshold_dbfs: float = -60.0) -> float:
    """Seconds of ``y`` (mono) in 30 ms frames louder than ``threshold_dbfs`` RMS: sound, not yet speech."""
    frame = max(1, int(0.03 * sr))
    n = len(y) // frame
    if n == 0:
        return 0.0
    frames = np.asarray(y[: n * frame], dtype=np.float64).reshape(n, frame)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    loud = rms > 10 ** (threshold_dbfs / 20)
    return float(loud.sum() * frame / sr)


def check_speech(y: np.ndarray, *, sr: int = SAMPLE_RATE_HZ, threshold_dbfs: float = -60.0,
                 min_loud_seconds: float = 0.2) -> SpeechCheck:
    """Whether ``y`` (mono, ``sr`` = 16 kHz) holds speech; the rule is in the module docstring."""
    if sr != SAMPLE_RATE_HZ:
        raise ValueError(f"check_speech needs {SAMPLE_RATE_HZ} Hz audio, got {sr}")
    y = np.asarray(y, dtype=np.float32)
    loud_seconds = speech_seconds(y, sr=sr, threshold_dbfs=threshold_dbfs) if len(y) else 0.0
    if loud_seconds < min_loud_seconds:
        return SpeechCheck(False, "silence", loud_seconds, None, 0.0, 0.0)
    tonal, flat = tonal_share(y, threshold_dbfs=threshold_dbfs), spectral_flatness(y, threshold_dbfs=threshold_dbfs)
    probs = silero_probabilities(y)
    silero_max = float(probs.max()) if probs is not None else None
    if tonal >= TONE_SHARE:
        reason = "tone"
    elif silero_max is not None and silero_max >= STRONG_SPEECH:
        reason = "speech"
    elif flat >= NOISE_FLATNESS:  # noise-like: speech only if Silero hears it through the noise
        reason = "speech" if silero_max is not None and silero_max >= SPEECH_IN_NOISE else "noise"
    elif silero_max is None:  # spectral checks only: what is neither a pure tone nor noise counts as speech
        reason = "speech"
    elif tonal >= TONAL_FOR_WEAK:
        reason = "tone"
    elif silero_max >= WEAK_SPEECH:
        reason = "speech"
    else:
        reason = "no_voice"
    return SpeechCheck(reason == "speech", reason, loud_seconds, silero_max, tonal, flat)
