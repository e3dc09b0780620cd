"""Spectral features of a waveform: mel filterbank, power and log-mel spectrograms, MFCCs, deltas,
utterance statistics (numerically librosa's: the tests compare them).

Without importing librosa: its first call spends ~20 s compiling with numba and ``import
librosa.filters`` alone costs ~1 s. For the same reason this module imports only numpy and does not
use scipy (``import scipy.fft`` costs ~0.3 s, ``import scipy.signal`` ~1.2 s): the DCT is a cached
matrix and the Savitzky-Golay deltas a cached filter.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from emofuse.features.audio import SAMPLE_RATE_HZ

# log_mel adds this before the log so that silent bins stay finite (log(1e-6) ~ -13.8).
_LOG_MEL_OFFSET = 1e-6
# librosa.power_to_db defaults, which librosa.feature.mfcc uses: floor at 1e-10 (-100 dB), then
# nothing more than 80 dB below the loudest bin of the clip.
_DB_FLOOR_POWER = 1e-10
_DB_DYNAMIC_RANGE = 80.0

# Frames per block when computing a spectrogram, so a 10-minute file does not build a
# (frames, n_fft) float64 temporary of hundreds of MB in one go.
_STFT_BLOCK_FRAMES = 4096


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default, htk=False): linear below 1 kHz, logarithmic above."""
    mels = hz / (200.0 / 3)
    log_region = hz >= 1000.0
    mels[log_region] = 15.0 + np.log(hz[log_region] / 1000.0) / (np.log(6.4) / 27.0)
    return mels


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    hz = mels * (200.0 / 3)
    log_region = mels >= 15.0
    hz[log_region] = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mels[log_region] - 15.0))
    return hz


@functools.lru_cache(maxsize=32)
def mel_filterbank(
    *, sr: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None
) -> np.ndarray:
    """Triangular mel filters: ``(n_mels, n_fft // 2 + 1)`` float32, read-only (it is cached).

    Slaney mel scale and Slaney area normalisation (each filter scaled by 2 / its width in Hz),
    identical to ``librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)``.
    Warns, like librosa, when some filters fall between FFT bins and are empty.
    """
    if fmax is None:
        fmax = sr / 2
    if n_mels < 1 or n_fft < 1 or not 0.0 <= fmin < fmax:
        raise ValueError(
            f"need n_mels >= 1, n_fft >= 1 and 0 <= fmin < fmax, got {n_mels}, {n_fft}, {fmin}, {fmax}"
        )
    bin_hz = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)  # (n_fft//2+1,)
    # n_mels + 2 edges equally spaced in mel: filter i rises from edge i, peaks at i+1, falls to i+2.
    edges_mel = np.linspace(_hz_to_mel(np.array([fmin]))[0], _hz_to_mel(np.array([fmax]))[0], n_mels + 2)
    edges_hz = _mel_to_hz(edges_mel)
    edge_gaps_hz = np.diff(edges_hz)
    ramps = np.subtract.outer(edges_hz, bin_hz)  # (n_mels+2, bins)
    rising = -ramps[:-2] / edge_gaps_hz[:-1, None]
    falling = ramps[2:] / edge_gaps_hz[1:, None]
    # Cast before normalising, as librosa fills a float32 array then scales it: bit-identical.
    weights = np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)
    weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    if not np.all((edges_hz[:-2] == 0) | (weights.max(axis=1) > 0)):
        warnings.warn(
            f"empty mel filters: n_mels={n_mels} is too many for n_fft={n_fft} at sr={sr} "
            "(some bands fall between FFT bins); use fewer mels or a larger n_fft",
            stacklevel=2,
        )
    weights.flags.writeable = False
    return weights


@functools.lru_cache(maxsize=16)
def _stft_window(n_fft: int, win_length: int) -> np.ndarray:
    """Periodic Hann window of ``win_length`` zero-padded to ``(n_fft,)``, centred (librosa's pad_center)."""
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(win_length) / win_length)
    padded = np.zeros(n_fft)
    left = (n_fft - win_length) // 2
    padded[left : left + win_length] = window
    padded.flags.writeable = False
    return padded


def _as_waveform64(y: npt.ArrayLike) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError(f"expected a mono waveform (samples,), got shape {y.shape}; see prepare_waveform")
    if y.shape[0] == 0:
        raise ValueError("empty waveform")
    if not np.isfinite(y).all():
        raise ValueError("non-finite samples (NaN or infinity) in the waveform")
    return y


def _power_spectrogram64(y: npt.ArrayLike, *, n_fft: int, win_length: int, hop_length: int) -> np.ndarray:
    """``(frames, n_fft // 2 + 1)`` float64: frames first, the layout the FFT produces."""
    if not 1 <= win_length <= n_fft or hop_length < 1:
        raise ValueError(
            f"need 1 <= win_length <= n_fft and hop_length >= 1, got {win_length}, {n_fft}, {hop_length}"
        )
    # Computed in float64 whatever the input: near-silent bins keep their precision in the log.
    waveform = _as_waveform64(y)
    # center=True: zero padding of n_fft // 2 both sides puts frame t's centre at sample t * hop,
    # and gives even a clip shorter than n_fft one frame.
    padded = np.pad(waveform, n_fft // 2)
    frames = sliding_window_view(padded, n_fft)[::hop_length]  # (n_frames, n_fft), a view
    window = _stft_window(n_fft, win_length)
    power = np.empty((frames.shape[0], n_fft // 2 + 1))
    for first in range(0, frames.shape[0], _STFT_BLOCK_FRAMES):
        block = slice(first, first + _STFT_BLOCK_FRAMES)
        spectrum = np.fft.rfft(frames[block] * window, axis=-1)
        power[block] = spectrum.real**2 + spectrum.imag**2
    return power


def power_spectrogram(
    y: npt.ArrayLike, *, n_fft: int = 512, win_length: int = 400, hop_length: int = 160
) -> np.ndarray:
    """``|STFT|**2``: ``(samples,)`` -> ``(n_fft // 2 + 1, frames)`` float32.

    ``frames = 1 + samples // hop_length`` (for an even ``n_fft``). A periodic Hann window of
    ``win_length`` centred in ``n_fft``; frames centred on multiples of ``hop_length``, with zero
    padding at the ends: ``librosa.stft(y, n_fft=..., hop_length=..., win_length=...,
    window="hann", center=True, pad_mode="constant")`` magnitudes squared.
    """
    power = _power_spectrogram64(y, n_fft=n_fft, win_length=win_length, hop_length=hop_length)
    return np.ascontiguousarray(power.T, dtype=np.float32)


def _to_mel64(power: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """``(frames, bins)`` power, ``(n_mels, bins)`` filters -> ``(n_mels, frames)`` float64 mel power."""
    return np.ascontiguousarray((power @ filters.T.astype(np.float64)).T)


def log_mel(
    y: npt.ArrayLike,
    *,
    sr: int = SAMPLE_RATE_HZ,
    n_mels: int = 64,
    n_fft: int = 512,
    win_length: int = 400,
    hop_length: int = 160,
    fmin: float = 0.0,
    fmax: float | None = None,
) -> np.ndarray:
    """Log mel spectrogram: ``(samples,)`` -> ``(n_mels, frames)`` float32, ``log(mel_power + 1e-6)``.

    At the defaults (16 kHz): 25 ms Hann windows every 10 ms, 64 Slaney mel bands over 0-8 kHz.
    """
    power = _power_spectrogram64(y, n_fft=n_fft, win_length=win_length, hop_length=hop_length)
    filters = mel_filterbank(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    mel_power = _to_mel64(power, filters)  # (n_mels, frames)
    return np.log(mel_power + _LOG_MEL_OFFSET).astype(np.float32)


@functools.lru_cache(maxsize=8)
def _dct_ortho_matrix(n: int) -> np.ndarray:
    """``(n, n)`` orthonormal DCT-II: ``matrix @ x == scipy.fft.dct(x, type=2, norm="ortho", axis=0)``."""
    k = np.arange(n)[:, None]
    matrix = np.sqrt(2.0 / n) * np.cos(np.pi * k * (2 * np.arange(n)[None, :] + 1) / (2 * n))
    matrix[0] /= np.sqrt(2.0)
    matrix.flags.writeable = False
    return matrix


def mfcc(
    y: npt.ArrayLike,
    *,
    sr: int = SAMPLE_RATE_HZ,
    n_mfcc: int = 40,
    n_mels: int = 64,
    n_fft: int = 512,
    win_length: int = 400,
    hop_length: int = 160,
    deltas: bool = True,
) -> np.ndarray:
    """MFCCs: ``(samples,)`` -> ``(n_mfcc * 3, frames)`` float32 with ``deltas``, else ``(n_mfcc, frames)``.

    As ``librosa.feature.mfcc``: the mel power in dB (floored at -100 dB, and at 80 dB below the
    clip's loudest bin), then an orthonormal DCT-II over the mel axis, first ``n_mfcc`` kept.
    With ``deltas``, rows ``n_mfcc:2*n_mfcc`` are the first and ``2*n_mfcc:`` the second
    derivative over time (:func:`delta`, width 9).
    """
    if not 1 <= n_mfcc <= n_mels:
        raise ValueError(f"need 1 <= n_mfcc <= n_mels, got n_mfcc={n_mfcc}, n_mels={n_mels}")
    power = _power_spectrogram64(y, n_fft=n_fft, win_length=win_length, hop_length=hop_length)
    mel_power = _to_mel64(power, mel_filterbank(sr=sr, n_fft=n_fft, n_mels=n_mels))  # (n_mels, frames)
    mel_db = 10.0 * np.log10(np.maximum(mel_power, _DB_FLOOR_POWER))  # (n_mels, frames)
    mel_db = np.maximum(mel_db, mel_db.max() - _DB_DYNAMIC_RANGE)
    coefficients = _dct_ortho_matrix(n_mels)[:n_mfcc] @ mel_db  # (n_mfcc, frames)
    if not deltas:
        return coefficients.astype(np.float32)
    return np.concatenate(
        [coefficients, _delta64(coefficients, width=9, order=1), _delta64(coefficients, width=9, order=2)]
    ).astype(np.float32)


@functools.lru_cache(maxsize=8)
def _savgol_derivative_weights(width: int, order: int) -> np.ndarray:
    """``(width,)`` weights giving, dotted with a window, the ``order``-th derivative at its centre.

    Savitzky-Golay with polyorder == deriv == order: least-squares fit a polynomial of degree
    ``order`` to the window; its ``order``-th derivative is ``order!`` times the top coefficient,
    the same at every point of the window.
    """
    offsets = np.arange(width, dtype=np.float64) - width // 2
    vandermonde = offsets[:, None] ** np.arange(order + 1)  # (width, order + 1)
    weights = math.factorial(order) * np.linalg.pinv(vandermonde)[order]
    weights.flags.writeable = False
    return weights


def _delta64(feats: np.ndarray, *, width: int, order: int) -> np.ndarray:
    if width < 3 or width % 2 == 0 or not 1 <= order < width:
        raise ValueError(f"need an odd width >= 3 and 1 <= order < width, got width={width}, order={order}")
    feats = np.asarray(feats, dtype=np.float64)
    n_frames = feats.shape[-1] if feats.ndim else 0
    if n_frames == 0:
        return np.zeros(feats.shape)
    weights = _savgol_derivative_weights(width, order)
    half = width // 2
    if n_frames < width:
        # Too short to fit one window (librosa refuses): extend the edges by repetition, as
        # scipy's savgol_filter(mode="nearest") does.
        padding = [(0, 0)] * (feats.ndim - 1) + [(half, half)]
        return sliding_window_view(np.pad(feats, padding, mode="edge"), width, axis=-1) @ weights
    inner = sliding_window_view(feats, width, axis=-1) @ weights  # (..., n_frames - width + 1)
    # mode="interp": the first and last half-windows take the derivative of the polynomial fitted
    # to the first / last full window, which for deriv == polyorder is a constant: the inner value.
    head = np.repeat(inner[..., :1], half, axis=-1)
    tail = np.repeat(inner[..., -1:], half, axis=-1)
    return np.concatenate([head, inner, tail], axis=-1)


def delta(feats: npt.ArrayLike, *, width: int = 9, order: int = 1) -> np.ndarray:
    """Derivative of ``order`` over time (the last axis): ``(..., frames)`` -> same shape, float32.

    Savitzky-Golay over ``width`` frames, as ``librosa.feature.delta(feats, width=width,
    order=order, mode="interp")``. Inputs shorter than ``width`` frames, which librosa refuses,
    are extended at the edges by repetition instead.
    """
    return _delta64(np.asarray(feats), width=width, order=order).astype(np.float32)


def utterance_stats(feats: npt.ArrayLike) -> np.ndarray:
    """Summary of a whole clip: ``(n_features, frames)`` -> ``(n_features * 4,)`` float32.

    Per-row mean, standard deviation, min and max over frames, concatenated in that order.
    """
    feats = np.asarray(feats, dtype=np.float64)
    if feats.ndim != 2 or feats.shape[1] == 0:
        raise ValueError(f"expected (n_features, frames) with at least one frame, got shape {feats.shape}")
    return np.concatenate(
        [feats.mean(axis=1), feats.std(axis=1), feats.min(axis=1), feats.max(axis=1)]
    ).astype(np.float32)
