"""Spectral features against librosa (the numbers they stand for), and their edge cases."""

from __future__ import annotations

import warnings
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from emofuse.features.audio import SAMPLE_RATE_HZ, load_audio
from emofuse.features.spectral import delta, log_mel, mel_filterbank, mfcc, power_spectrogram, utterance_stats

RAVDESS_CLIP = Path("ravdess-speech-16k/Actor_01/03-01-01-01-01-01-01.flac")
# librosa.stft / melspectrogram / mfcc with the settings our defaults stand for.
STFT_KWARGS = {
    "n_fft": 512,
    "win_length": 400,
    "hop_length": 160,
    "window": "hann",
    "center": True,
    "pad_mode": "constant",
}


@pytest.fixture(scope="module")
def librosa() -> ModuleType:
    # Only the comparison tests need it (and pay for its import).
    return pytest.importorskip("librosa")


def chirp_plus_noise(*, seconds: float = 3.5, sr: int = SAMPLE_RATE_HZ, seed: int = 0) -> np.ndarray:
    """A 100 Hz -> 6 kHz linear chirp over a noise floor: energy in every mel band, like speech."""
    t = np.arange(round(seconds * sr)) / sr
    sweep_hz_per_s = (6000 - 100) / seconds
    chirp = 0.5 * np.sin(2 * np.pi * (100 * t + 0.5 * sweep_hz_per_s * t**2))
    noise = 0.05 * np.random.default_rng(seed).standard_normal(t.size)
    return (chirp + noise).astype(np.float32)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sr": 16_000, "n_fft": 512, "n_mels": 64},
        {"sr": 22_050, "n_fft": 2048, "n_mels": 128, "fmin": 50.0, "fmax": 8000.0},
        {"sr": 8_000, "n_fft": 256, "n_mels": 40},
    ],
)
def test_mel_filterbank_matches_librosa(librosa: ModuleType, kwargs: dict) -> None:
    ours = mel_filterbank(**kwargs)
    assert ours.shape == (kwargs["n_mels"], kwargs["n_fft"] // 2 + 1)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, librosa.filters.mel(**kwargs), rtol=1e-6, atol=1e-9)


def test_mel_filterbank_is_cached_and_read_only() -> None:
    first = mel_filterbank(sr=16_000, n_fft=512, n_mels=64)
    assert mel_filterbank(sr=16_000, n_fft=512, n_mels=64) is first
    with pytest.raises(ValueError):
        first[0, 0] = 1.0


def test_mel_filterbank_warns_about_empty_filters() -> None:
    # 128 bands over 0-8 kHz: the lowest are narrower than the 62.5 Hz FFT bins of n_fft=256.
    with pytest.warns(UserWarning, match="empty mel filters"):
        mel_filterbank(sr=16_000, n_fft=256, n_mels=128)


@pytest.mark.parametrize(
    ("n_fft", "win_length", "hop_length"),
    [(512, 400, 160), (1024, 1024, 256), (400, 400, 160), (511, 300, 100)],
)
def test_power_spectrogram_matches_librosa(
    librosa: ModuleType, n_fft: int, win_length: int, hop_length: int
) -> None:
    y = chirp_plus_noise()
    ours = power_spectrogram(y, n_fft=n_fft, win_length=win_length, hop_length=hop_length)
    reference = (
        np.abs(
            librosa.stft(
                y.astype(np.float64),
                n_fft=n_fft,
                win_length=win_length,
                hop_length=hop_length,
                window="hann",
                center=True,
                pad_mode="constant",
            )
        )
        ** 2
    )
    assert ours.shape == reference.shape
    assert ours.shape[0] == n_fft // 2 + 1
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-6 * reference.max())


def _librosa_log_mel(librosa: ModuleType, y: np.ndarray, **kwargs: object) -> np.ndarray:
    mel = librosa.feature.melspectrogram(
        y=y.astype(np.float64), sr=SAMPLE_RATE_HZ, n_mels=64, **STFT_KWARGS, **kwargs
    )
    return np.log(mel + 1e-6)


def _librosa_mfcc_with_deltas(librosa: ModuleType, y: np.ndarray) -> np.ndarray:
    coefficients = librosa.feature.mfcc(
        y=y.astype(np.float64), sr=SAMPLE_RATE_HZ, n_mfcc=40, n_mels=64, **STFT_KWARGS
    )
    return np.concatenate(
        [
            coefficients,
            librosa.feature.delta(coefficients, order=1),
            librosa.feature.delta(coefficients, order=2),
        ]
    )


def test_log_mel_matches_librosa(librosa: ModuleType) -> None:
    y = chirp_plus_noise()
    ours = log_mel(y)  # (n_mels, frames)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, _librosa_log_mel(librosa, y), atol=1e-5)
    banded = log_mel(y, fmin=80.0, fmax=7600.0)
    np.testing.assert_allclose(banded, _librosa_log_mel(librosa, y, fmin=80.0, fmax=7600.0), atol=1e-5)


def test_mfcc_matches_librosa(librosa: ModuleType) -> None:
    y = chirp_plus_noise()
    ours = mfcc(y)  # (120, frames): 40 coefficients, their deltas, their second deltas
    reference = _librosa_mfcc_with_deltas(librosa, y)
    assert ours.shape == reference.shape == (120, 1 + y.size // 160)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, reference, atol=1e-4, rtol=1e-6)
    np.testing.assert_allclose(mfcc(y, deltas=False), reference[:40], atol=1e-4, rtol=1e-6)


def test_features_match_librosa_on_a_real_ravdess_clip(librosa: ModuleType, real_data: Path) -> None:
    path = real_data / RAVDESS_CLIP
    if not path.is_file():
        pytest.skip(f"{path} not found")
    y = load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1 and y.size > SAMPLE_RATE_HZ
    np.testing.assert_allclose(log_mel(y), _librosa_log_mel(librosa, y), atol=1e-4)
    np.testing.assert_allclose(mfcc(y), _librosa_mfcc_with_deltas(librosa, y), atol=1e-3, rtol=1e-6)


@pytest.mark.parametrize(("width", "order"), [(9, 1), (9, 2), (5, 1), (3, 2)])
def test_delta_matches_librosa(librosa: ModuleType, width: int, order: int) -> None:
    feats = np.random.default_rng(1).standard_normal((7, 50))
    ours = delta(feats, width=width, order=order)
    assert ours.shape == feats.shape
    np.testing.assert_allclose(ours, librosa.feature.delta(feats, width=width, order=order), atol=1e-5)


def test_delta_on_clips_shorter_than_its_window() -> None:
    scipy_signal = pytest.importorskip("scipy.signal")
    feats = np.random.default_rng(2).standard_normal((4, 5))  # 5 frames < width 9
    for order in (1, 2):
        expected = scipy_signal.savgol_filter(feats, 9, order, deriv=order, mode="nearest", axis=-1)
        np.testing.assert_allclose(delta(feats, order=order), expected, atol=1e-6)
    np.testing.assert_allclose(delta(np.ones((3, 1))), np.zeros((3, 1)), atol=1e-12)


def test_delta_refuses_bad_windows() -> None:
    with pytest.raises(ValueError, match="odd width"):
        delta(np.zeros((2, 20)), width=4)
    with pytest.raises(ValueError, match="order"):
        delta(np.zeros((2, 20)), width=3, order=3)


@pytest.mark.parametrize("n_samples", [1, 100, 1_600, 511, 512, 513])
def test_any_clip_length_gives_frames(n_samples: int) -> None:
    # 1_600 samples is a 0.1 s clip; clips shorter than n_fft still make a frame thanks to centre padding.
    y = np.random.default_rng(3).standard_normal(n_samples).astype(np.float32)
    n_frames = 1 + n_samples // 160
    assert power_spectrogram(y).shape == (257, n_frames)
    assert log_mel(y).shape == (64, n_frames)
    feats = mfcc(y)
    assert feats.shape == (120, n_frames)
    assert np.isfinite(feats).all()
    assert utterance_stats(feats).shape == (480,)


def test_all_zero_input_is_finite_and_quiet() -> None:
    y = np.zeros(SAMPLE_RATE_HZ // 2, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no divide-by-zero or log(0) warnings either
        outputs = [power_spectrogram(y), log_mel(y), mfcc(y), utterance_stats(mfcc(y))]
    for out in outputs:
        assert np.isfinite(out).all()
    np.testing.assert_allclose(log_mel(y), np.log(1e-6), rtol=1e-6)


def test_feature_functions_refuse_bad_waveforms() -> None:
    with pytest.raises(ValueError, match="empty"):
        log_mel(np.zeros(0, dtype=np.float32))
    with pytest.raises(ValueError, match="non-finite"):
        mfcc(np.array([0.0, np.nan, 0.0]))
    with pytest.raises(ValueError, match="mono"):
        power_spectrogram(np.zeros((100, 2)))
    with pytest.raises(ValueError, match="n_mfcc"):
        mfcc(np.zeros(1000), n_mfcc=80, n_mels=64)


def test_utterance_stats_are_mean_std_min_max_per_row() -> None:
    feats = np.array([[1.0, 2.0, 3.0], [0.0, -4.0, 4.0]])  # (n_features, frames)
    stats = utterance_stats(feats)
    assert stats.dtype == np.float32
    np.testing.assert_allclose(stats, [2, 0, np.std([1, 2, 3]), np.std([0, -4, 4]), 1, -4, 3, 4], rtol=1e-6)
    with pytest.raises(ValueError):
        utterance_stats(np.zeros((3, 0)))


