"""What microphones, rooms and codecs do to a voice: pure functions on 16 kHz mono float32 waveforms.

Used twice, with different parameters: by ``benchmarks/voice_robustness.py`` to measure a model
under each corruption, and by channel augmentation of training clips. Every function takes
``y`` ``(samples,)`` and returns a new ``(samples',)`` float32 array; random ones take a
``numpy.random.Generator``.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_RATE_HZ = 16_000


def gain(y: np.ndarray, *, db: float) -> np.ndarray:
    """Louder or quieter by ``db``; a louder clip clips at full scale, as a hot microphone does."""
    return np.clip(y * 10 ** (db / 20), -1.0, 1.0).astype(np.float32)


def peak_normalise(y: np.ndarray, *, peak_dbfs: float = -1.0) -> np.ndarray:
    """Scaled so that its loudest sample is at ``peak_dbfs`` (what many recorders do)."""
    peak = float(np.abs(y).max()) if len(y) else 0.0
    return y.astype(np.float32) if peak == 0 else (y * (10 ** (peak_dbfs / 20) / peak)).astype(np.float32)


def telephone(y: np.ndarray, *, low_hz: float = 300.0, high_hz: float = 3400.0, rate_hz: int = 8000) -> np.ndarray:
    """Narrow-band telephone speech: resampled to ``rate_hz``, band-passed, back to 16 kHz."""
    import soxr
    from scipy.signal import butter, sosfiltfilt

    narrow = soxr.resample(y.astype(np.float32), SAMPLE_RATE_HZ, rate_hz)
    sos = butter(4, [low_hz, high_hz], btype="bandpass", fs=rate_hz, output="sos")
    return soxr.resample(sosfiltfilt(sos, narrow).astype(np.float32), rate_hz, SAMPLE_RATE_HZ).astype(np.float32)


def codec(y: np.ndarray, *, name: str, bitrate_kbps: int) -> np.ndarray:
    """Encoded and decoded again through PyAV: ``name`` is ``opus`` (libopus, Ogg) or ``mp3`` (LAME)."""
    import av
    import soxr

    from emofuse.features.audio import load_audio

    encoder, container_format, rate = {"opus": ("libopus", "ogg", 48_000), "mp3": ("libmp3lame", "mp3", 16_000)}[name]
    pcm = soxr.resample(y.astype(np.float32), SAMPLE_RATE_HZ, rate) if rate != SAMPLE_RATE_HZ else y
    pcm16 = (np.clip(pcm, -1, 1) * 32767).astype(np.int16)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container_format) as container:
        stream: Any = container.add_stream(encoder, rate=rate)
        stream.bit_rate = bitrate_kbps * 1000
        stream.layout = "mono"
        frame_size = 960 if name == "opus" else 1152
        for start in range(0, len(pcm16), frame_size):
            frame = av.AudioFrame.from_ndarray(pcm16[None, start : start + frame_size], format="s16", layout="mono")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"clip.{container_format}"
        path.write_bytes(buffer.getvalue())
        return load_audio(path, sample_rate_hz=SAMPLE_RATE_HZ)


def reverb(y: np.ndarray, *, rt60_s: float, rng: np.random.Generator, wet: float = 0.5) -> np.ndarray:
    """A synthetic room: ``y`` convolved with exponentially decaying noise (reverberation time
    ``rt60_s``), mixed ``wet`` with the dry signal, at the dry signal's level."""
    from scipy.signal import fftconvolve

    n = int(rt60_s * SAMPLE_RATE_HZ)
    t = np.arange(n) / SAMPLE_RATE_HZ
    impulse = rng.standard_normal(n) * np.exp(-6.9 * t / rt60_s)  # -60 dB at rt60
    impulse[0] = 1.0
    impulse /= np.sqrt(np.sum(impulse**2))
    room = fftconvolve(y, impulse)[: len(y)]
    mixed = (1 - wet) * y + wet * room
    scale = np.sqrt(np.mean(y**2) / max(np.mean(mixed**2), 1e-12))
    return (mixed * scale).astype(np.float32)


def noise(y: np.ndarray, *, snr_db: float, rng: np.random.Generator, slope: float = 0.0) -> np.ndarray:
    """Noise added at ``snr_db`` below the clip's power: white (``slope`` 0), pink (1), brown (2) or
    anything between (power falling as 1 / f ** slope)."""
    n = rng.standard_normal(len(y))
    if slope and len(y) > 1:
        spectrum = np.fft.rfft(n)
        f = np.fft.rfftfreq(len(y))
        f[0] = f[1]
        spectrum[0] = 0.0  # no offset: all the noise is sound
        n = np.fft.irfft(spectrum / f ** (slope / 2), n=len(y))
        n /= n.std() or 1.0
    power = float(np.mean(y**2)) or 1e-10
    return (y + n * np.sqrt(power / 10 ** (snr_db / 10))).astype(np.float32)


def band_limit(y: np.ndarray, *, low_hz: float, high_hz: float) -> np.ndarray:
    """A small or cheap microphone: band-passed between ``low_hz`` and ``high_hz`` at 16 kHz."""
    from scipy.signal import butter, sosfiltfilt

    sos = butter(4, [low_hz, min(high_hz, 0.45 * SAMPLE_RATE_HZ)], btype="bandpass", fs=SAMPLE_RATE_HZ, output="sos")
    return sosfiltfilt(sos, y).astype(np.float32)


def channel_copy(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random microphone, room and line for training (channel augmentation).

    The families of the robustness suite, drawn from ranges rather than its fixed settings (the suite
    is never tuned on): a room (RT60 0.15-1.0 s, 35 % of copies); a cheap microphone's band
    (80-500 Hz to 2.5-6 kHz) or a codec (Opus 16/24, MP3 24/48 kbit/s), 35 %; coloured noise from
    white to brown at 0-30 dB SNR, 70 %; then the level: peak-normalised (25 %) or a gain of -18 to
    +14 dB (a loud clip clips).
    """
    out = np.asarray(y, dtype=np.float32)
    if rng.random() < 0.35:
        out = reverb(out, rt60_s=float(rng.uniform(0.15, 1.0)), rng=rng, wet=float(rng.uniform(0.2, 0.6)))
    line = rng.random()
    if line < 0.2:
        out = band_limit(out, low_hz=float(rng.uniform(80, 500)), high_hz=float(rng.uniform(2500, 6000)))
    elif line < 0.35:
        name = "opus" if rng.random() < 0.5 else "mp3"
        out = codec(out, name=name, bitrate_kbps=int(rng.choice([16, 24] if name == "opus" else [24, 48])))[: len(out)]
    if rng.random() < 0.7:
        out = noise(out, snr_db=float(rng.uniform(0, 30)), rng=rng, slope=float(rng.uniform(0, 2)))
    if rng.random() < 0.25:
        return peak_normalise(out, peak_dbfs=float(rng.uniform(-6, 0)))
    return gain(out, db=float(rng.uniform(-18, 14)))


def speed_perturb(y: np.ndarray, *, factor: float, sr: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """Kaldi-style speed perturbation: (samples,) -> (round(samples / factor),).

    Resampling from ``sr`` to ``sr / factor`` and playing the result back at ``sr`` speeds the clip up
    by ``factor``: tempo and pitch change together, as when a tape runs fast. The one speed change in
    emofuse: waveform augmentation, Whisper's speed copies and the robustness benchmark all use it.
    """
    import soxr

    if factor <= 0:
        raise ValueError(f"speed factor must be > 0, got {factor}")
    if factor == 1.0:
        return y
    return np.asarray(soxr.resample(y, sr, sr / factor, quality="HQ"), dtype=np.float32)
