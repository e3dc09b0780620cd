"""What microphones, rooms and codecs do to a voice: each corruption does what it says."""

from __future__ import annotations

import numpy as np
import pytest

from emofuse.data.synthetic import voiced_clip
from emofuse.features import corrupt

SR = 16_000


@pytest.fixture(scope="module")
def y() -> np.ndarray:
    return voiced_clip(seconds=1.0)


def _band_share(x: np.ndarray, low: float, high: float) -> float:
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / SR)
    return float(power[(freqs >= low) & (freqs < high)].sum() / power.sum())


def test_gain_and_peak(y):
    quiet = corrupt.gain(y, db=-20)
    np.testing.assert_allclose(quiet, y * 0.1, rtol=1e-5)
    loud = corrupt.gain(y, db=40)
    assert loud.max() == pytest.approx(1.0) and loud.dtype == np.float32  # a hot microphone clips
    assert np.abs(corrupt.peak_normalise(y, peak_dbfs=-1.0)).max() == pytest.approx(10 ** (-1 / 20), rel=1e-5)


def test_telephone_keeps_the_voice_band(y):
    phone = corrupt.telephone(y)
    assert len(phone) == pytest.approx(len(y), abs=2)
    # Nothing above 4 kHz (8 kHz sampling) and little below 300 Hz, where the vowels' pitch lives.
    assert _band_share(phone, 4000, 8000) < 1e-6 < _band_share(y, 4000, 8000)
    assert _band_share(phone, 0, 250) < 0.01 < _band_share(y, 0, 250)


@pytest.mark.parametrize(("name", "kbps"), [("opus", 12), ("mp3", 32)])
def test_codecs_round_trip(y, name, kbps):
    decoded = corrupt.codec(y, name=name, bitrate_kbps=kbps)
    assert abs(len(decoded) - len(y)) < 0.1 * SR
    assert not np.allclose(decoded[: len(y)], y[: len(decoded)])  # lossy, but still the same clip's loudness
    assert np.sqrt(np.mean(decoded**2)) == pytest.approx(np.sqrt(np.mean(y**2)), rel=0.5)


def test_noise_at_the_asked_snr_and_reverb_keeps_level(y):
    rng = np.random.default_rng(0)
    noisy = corrupt.noise(y, snr_db=10, rng=rng)
    snr = 10 * np.log10(np.mean(y**2) / np.mean((noisy - y) ** 2))
    assert snr == pytest.approx(10, abs=0.5)
    wet = corrupt.reverb(y, rt60_s=0.6, rng=rng)
    assert len(wet) == len(y) and np.mean(wet**2) == pytest.approx(np.mean(y**2), rel=1e-3)


def test_speed_perturb_length_and_identity(y):
    assert len(corrupt.speed_perturb(y, factor=1.1)) == round(len(y) / 1.1)
    assert corrupt.speed_perturb(y, factor=1.0) is y
    with pytest.raises(ValueError):
        corrupt.speed_perturb(y, factor=0)


def test_coloured_noise_tilts_towards_low_frequencies_at_the_same_snr(y):
    rng = np.random.default_rng(0)
    white = corrupt.noise(np.zeros_like(y) + 1e-3, snr_db=-40, rng=rng) - 1e-3
    brown = corrupt.noise(np.zeros_like(y) + 1e-3, snr_db=-40, rng=np.random.default_rng(0), slope=2.0) - 1e-3
    assert _band_share(brown, 0, 500) > 0.8 > 0.1 > _band_share(white, 0, 500)
    assert np.mean(brown**2) == pytest.approx(np.mean(white**2), rel=0.1)


def test_band_limit_removes_what_lies_outside(y):
    narrow = corrupt.band_limit(y, low_hz=400, high_hz=2500)
    assert _band_share(narrow, 4000, 8000) < 0.1 * _band_share(y, 4000, 8000)


def test_channel_copies_vary_and_stay_playable(y):
    copies = [corrupt.channel_copy(y, np.random.default_rng(k)) for k in range(12)]
    assert all(c.shape == y.shape and c.dtype == np.float32 and np.abs(c).max() <= 1.0 for c in copies)
    levels = [10 * np.log10(np.mean(c.astype(np.float64) ** 2)) for c in copies]
    assert max(levels) - min(levels) > 10  # the level is one of the things that varies
    np.testing.assert_array_equal(copies[3], corrupt.channel_copy(y, np.random.default_rng(3)))
