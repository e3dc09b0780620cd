"""Audio for the voice models: decoding any file, mono, resampling, trimming silence, chunking.

Pure functions on numpy arrays with keyword-only parameters, in librosa's conventions: ``y`` is a
mono waveform ``(samples,)`` and ``sr`` its sample rate in Hz. Spectrograms, MFCCs and their
statistics are :mod:`emofuse.features.spectral`. Only numpy is imported at the top: soundfile, soxr
and PyAV are imported by the functions that decode or resample.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import numpy.typing as npt

from emofuse._io import check_file, file_head, looks_like_text
from emofuse.errors import DataError

SAMPLE_RATE_HZ = 16_000
"""The rate every voice model is trained at."""

MAX_SECONDS_DEFAULT = 600.0
"""Longest file :func:`load_audio` decodes in one piece; longer ones must be chunked by the caller."""

# trim_silence measures loudness on the usual speech analysis frame: 25 ms every 10 ms.
_TRIM_FRAME_SECONDS = 0.025
_TRIM_HOP_SECONDS = 0.010

# libsndfile's header dump says "(should be N)" when a RIFF/data chunk claims more bytes than the
# file holds: a WAV cut off mid-download. libsndfile itself then quietly reads what is there.
_TRUNCATED_WAV = re.compile(r"(data|RIFF)\s*:\s*\d+\s*\(should be \d+\)")

# A container (m4a, webm) whose decoded audio is this much shorter than its header says was cut off.
_TRUNCATED_FRACTION = 0.9


# --------------------------------------------------------------------------------------------
# Decoding


def load_audio(
    path: str | Path,
    *,
    sample_rate_hz: int = SAMPLE_RATE_HZ,
    trim: bool = False,
    top_db: float = 40.0,
    max_seconds: float | None = MAX_SECONDS_DEFAULT,
) -> np.ndarray:
    """Decode any audio file -> mono float32 ``(samples,)`` at ``sample_rate_hz``.

    soundfile (libsndfile) reads wav, flac, ogg and mp3; a file it cannot open (m4a, webm, the audio
    track of an mp4 video) is decoded with PyAV. Channels are averaged, the rate is converted with
    soxr, and with ``trim`` the leading and trailing audio quieter than ``top_db`` below the loudest
    frame is dropped (see :func:`trim_silence`).

    Raises :class:`~emofuse.errors.DataError` naming the file when it is missing, empty, not audio,
    truncated or corrupt, has no audio stream or no samples, holds NaN or infinite samples, or
    lasts longer than ``max_seconds`` (``None``: no limit; cut long audio with :func:`chunk`).
    A silent file is not an error: it loads as zeros.
    """
    path = Path(path)
    check_file(path)
    try:
        y, file_rate_hz = _read_with_soundfile(path, max_seconds=max_seconds)  # (frames, channels)
    except _NotForSoundfile as exc:
        y, file_rate_hz = _read_with_av(path, max_seconds=max_seconds, soundfile_problem=str(exc))
    if y.shape[0] == 0:
        raise DataError(path, "zero-length audio: the file holds no samples")
    if not np.isfinite(y).all():
        raise DataError(path, "non-finite samples (NaN or infinity) in the audio")
    mono = resample(_mix_to_mono(y), orig_hz=file_rate_hz, target_hz=sample_rate_hz)
    if mono.shape[0] == 0:
        raise DataError(path, f"audio too short: {y.shape[0]} samples at {file_rate_hz} Hz")
    if trim:
        mono = trim_silence(mono, sr=sample_rate_hz, top_db=top_db)
    return mono


class _NotForSoundfile(Exception):
    """libsndfile does not open this file; PyAV may (m4a, webm, mp4, ...)."""


def _read_with_soundfile(path: Path, *, max_seconds: float | None) -> tuple[np.ndarray, int]:
    """``(y, rate_hz)``, ``y`` float32 ``(frames, channels)``; :class:`_NotForSoundfile` if it won't open."""
    import soundfile as sf

    try:
        handle = sf.SoundFile(path)
    except (RuntimeError, TypeError) as exc:  # LibsndfileError is a RuntimeError
        problem = exc.error_string.strip() if isinstance(exc, sf.LibsndfileError) else str(exc)
        raise _NotForSoundfile(problem.rstrip(".") or "format not recognised") from None
    with handle:
        rate_hz, header_frames = int(handle.samplerate), int(handle.frames)
        if _TRUNCATED_WAV.search(handle.extra_info):
            raise DataError(path, "truncated audio: the header promises more samples than the file holds")
        _check_duration(path, header_frames / rate_hz, max_seconds=max_seconds)
        try:
            y = handle.read(dtype="float32", always_2d=True)
        except sf.LibsndfileError as exc:
            raise DataError(path, f"audio does not decode: {exc.error_string.strip() or exc}") from None
    if y.shape[0] < header_frames:
        raise DataError(path, f"truncated audio: decoded {y.shape[0]} of {header_frames} samples")
    return y, rate_hz


def _read_with_av(path: Path, *, max_seconds: float | None, soundfile_problem: str) -> tuple[np.ndarray, int]:
    """``(y, rate_hz)`` with ``y`` float32 ``(frames, channels)``, decoded by FFmpeg through PyAV."""
    if looks_like_text(file_head(path)):
        raise DataError(path, "not audio: the file holds text")
    try:
        import av
    except ImportError:
        raise DataError(
            path,
            f"not readable as audio (libsndfile: {soundfile_problem}); "
            "PyAV, which reads m4a/webm/mp4, is not installed",
        ) from None
    try:
        container = av.open(str(path))
    except av.FFmpegError as exc:
        raise DataError(
            path, f"not readable as audio (libsndfile: {soundfile_problem}; FFmpeg: {_av_reason(exc)})"
        ) from None
    with container:
        if not container.streams.audio:
            raise DataError(path, "no audio stream in the file")
        stream = container.streams.audio[0]
        header_seconds = (
            float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
        )
        if header_seconds is None and container.duration and not container.streams.video:
            # webm keeps the duration on the container; with a video track that could be the video's.
            header_seconds = container.duration / av.time_base
        if header_seconds is not None:
            _check_duration(path, header_seconds, max_seconds=max_seconds)

        # Decoders hand out int16, float, packed or planar samples; converting every frame to
        # planar float ("fltp": (channels, samples), in [-1, 1]) gives one layout to stack.
        to_planar_float = av.AudioResampler(format="fltp")
        blocks: list[np.ndarray] = []  # each (channels, samples)
        rate_hz = int(stream.codec_context.sample_rate or 0)
        decoded_frames = 0
        try:
            for frame in container.decode(stream):
                for converted in to_planar_float.resample(frame):
                    blocks.append(converted.to_ndarray())
                    decoded_frames += converted.samples
                    rate_hz = converted.sample_rate
                # Without a duration in the header the limit can only be enforced while decoding.
                if max_seconds is not None and rate_hz and decoded_frames > max_seconds * rate_hz:
                    raise DataError(
                        path,
                        f"audio is longer than {max_seconds:g} s (stopped decoding at "
                        f"{decoded_frames / rate_hz:.1f} s); longer files must be chunked by the caller: "
                        "load with max_seconds=None and use chunk()",
                    )
            for converted in to_planar_float.resample(None):
                blocks.append(converted.to_ndarray())
                decoded_frames += converted.samples
        except av.FFmpegError as exc:
            raise DataError(path, f"audio does not decode: {_av_reason(exc)}") from None
    if not blocks or decoded_frames == 0:
        raise DataError(path, "zero-length audio: the audio stream holds no samples")
    if header_seconds and decoded_frames / rate_hz < _TRUNCATED_FRACTION * header_seconds:
        raise DataError(
            path,
            f"truncated audio: decoded {decoded_frames / rate_hz:.2f} s "
            f"of the {header_seconds:.2f} s the header promises",
        )
    y = np.concatenate(blocks, axis=1).T  # (frames, channels), like soundfile
    return np.ascontiguousarray(y, dtype=np.float32), rate_hz


def _av_reason(exc: Exception) -> str:
    return str(getattr(exc, "strerror", None) or exc)


def _check_duration(path: Path, seconds: float, *, max_seconds: float | None) -> None:
    if max_seconds is not None and seconds > max_seconds:
        raise DataError(
            path,
            f"audio is {seconds:.1f} s long, over the {max_seconds:g} s limit; longer files must be "
            "chunked by the caller: load with max_seconds=None and use chunk()",
        )


def _mix_to_mono(y: np.ndarray) -> np.ndarray:
    """``(frames, channels)`` -> ``(frames,)`` by averaging the channels."""
    if y.shape[1] == 1:
        return y[:, 0]
    return y.mean(axis=1, dtype=np.float64).astype(np.float32)


def prepare_waveform(y: npt.ArrayLike, *, sr: int, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """The conversion :func:`load_audio` does, for audio already in memory -> mono float32 ``(samples,)``.

    ``y`` is ``(samples,)`` or channels-last ``(samples, channels)`` as soundfile returns it, at
    ``sr`` Hz. Channels are averaged and the rate converted to ``sample_rate_hz``. Integer PCM is
    scaled to [-1, 1] as soundfile does (int16 / 32768; unsigned types are centred first). The
    result is always a new array.

    Raises ValueError for an empty array, NaN or infinite samples, or an array that looks
    channels-first (more channels than samples).
    """
    y = np.asarray(y)
    if y.ndim not in (1, 2):
        raise ValueError(f"expected (samples,) or (samples, channels), got shape {y.shape}")
    if y.size == 0:
        raise ValueError(f"empty waveform (shape {y.shape})")
    if y.ndim == 2 and y.shape[1] > y.shape[0]:
        raise ValueError(
            f"shape {y.shape} has more channels than samples: "
            "pass channels-last (samples, channels), e.g. y.T"
        )
    if np.issubdtype(y.dtype, np.integer):
        info = np.iinfo(y.dtype)
        full_scale = 2.0 ** (info.bits - 1)
        centre = 0.0 if info.min < 0 else full_scale
        y = ((y.astype(np.float64) - centre) / full_scale).astype(np.float32)
    elif not np.issubdtype(y.dtype, np.floating):
        raise ValueError(f"expected float or integer samples, got dtype {y.dtype}")
    if not np.isfinite(y).all():
        raise ValueError("non-finite samples (NaN or infinity) in the waveform")
    mono = _mix_to_mono(y) if y.ndim == 2 else y
    out = resample(mono, orig_hz=sr, target_hz=sample_rate_hz)
    if out.shape[0] == 0:
        raise ValueError(f"waveform too short: {mono.shape[0]} samples at {sr} Hz")
    return out


def resample(y: npt.ArrayLike, *, orig_hz: int, target_hz: int) -> np.ndarray:
    """Convert the sample rate: ``(samples,)`` or ``(samples, channels)`` -> same layout, float32.

    soxr at its high-quality setting (a proper band-limited resampler, not interpolation), so
    downsampling does not alias. Always returns a new array, even when the rates are equal.
    """
    if orig_hz <= 0 or target_hz <= 0:
        raise ValueError(f"sample rates must be positive, got orig_hz={orig_hz}, target_hz={target_hz}")
    y = np.array(y, dtype=np.float32, order="C")  # a copy, which soxr needs contiguous anyway
    if orig_hz == target_hz or y.shape[0] == 0:
        return y
    import soxr

    out: np.ndarray = soxr.resample(y, orig_hz, target_hz, quality="HQ")
    return out


def trim_silence(y: npt.ArrayLike, *, sr: int, top_db: float = 40.0) -> np.ndarray:
    """Drop leading and trailing audio ``top_db`` below the loudest frame: ``(samples,)`` -> ``(kept,)``.

    Loudness is the mean power of 25 ms frames every 10 ms. The cut keeps every sample of the
    first and last loud frames, so it errs on keeping a little silence rather than clipping a
    speech onset. An all-silent input is returned unchanged: there is no loud part to keep.
    The result is a slice (view) of ``y``.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"expected a mono waveform (samples,), got shape {y.shape}")
    n_samples = y.shape[0]
    if n_samples == 0:
        return y
    frame_samples = max(1, round(_TRIM_FRAME_SECONDS * sr))
    hop_samples = max(1, round(_TRIM_HOP_SECONDS * sr))
    n_frames = 1 + max(0, math.ceil((n_samples - frame_samples) / hop_samples))
    # Frame power from a running sum of squares: no (frames, frame_samples) temporary, which
    # for a long file would be 2.5x the audio. Zero padding lets the last frame reach the end.
    energy = np.zeros((n_frames - 1) * hop_samples + frame_samples + 1)
    np.cumsum(np.square(y, dtype=np.float64), out=energy[1 : n_samples + 1])
    energy[n_samples + 1 :] = energy[n_samples]
    starts = np.arange(n_frames) * hop_samples
    frame_power = np.maximum(energy[starts + frame_samples] - energy[starts], 0.0) / frame_samples
    peak_power = frame_power.max()
    if peak_power <= 0.0:
        return y
    loud = np.flatnonzero(frame_power > peak_power * 10.0 ** (-top_db / 10.0))
    start = int(starts[loud[0]])
    end = min(n_samples, int(starts[loud[-1]]) + frame_samples)
    return y[start:end]


def chunk(y: npt.ArrayLike, *, sr: int, window_seconds: float, hop_seconds: float) -> list[np.ndarray]:
    """Cut long audio into fixed windows: ``(samples,)`` -> list of ``(window_samples,)`` views of ``y``.

    Windows start every ``hop_seconds``. The last window is kept if it is at least half a window
    long (shorter tails are dropped); a clip no longer than one window comes back as one chunk.
    Works on the first axis, so ``(samples, channels)`` is cut the same way.
    """
    y = np.asarray(y)
    window_samples = round(window_seconds * sr)
    hop_samples = round(hop_seconds * sr)
    if window_samples <= 0 or hop_samples <= 0:
        raise ValueError(
            f"window and hop must be at least one sample, got {window_samples} and {hop_samples}"
        )
    n_samples = y.shape[0] if y.ndim else 0
    if n_samples == 0:
        raise ValueError("cannot chunk an empty waveform")
    if n_samples <= window_samples:
        return [y]
    chunks: list[np.ndarray] = []
    for start in range(0, n_samples, hop_samples):
        piece = y[start : start + window_samples]
        if piece.shape[0] * 2 >= window_samples:
            chunks.append(piece)
        if start + window_samples >= n_samples:
            break  # this window reached the end; later ones would lie inside it
    return chunks


def load_waveform(item: str | Path | np.ndarray, *, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """A path is decoded, mixed to mono and resampled (:func:`load_audio`); an array is taken as mono
    audio at ``sample_rate_hz`` and checked: 1-D and finite. What every voice model reads its input with."""
    if isinstance(item, str | Path):
        return load_audio(item, sample_rate_hz=sample_rate_hz)
    y = np.asarray(item, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"a waveform must be 1-D mono audio at {sample_rate_hz} Hz, got shape {y.shape}")
    if not np.isfinite(y).all():
        raise ValueError("waveform has non-finite samples (NaN or inf)")
    return y
