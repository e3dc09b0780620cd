"""Awkward audio at prediction time: each works or fails with a clear message, never a crash."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from emofuse.data.synthetic import tone_clip
from emofuse.errors import DataError
from emofuse.models import create_model

LABELS = ("neutral", "happy", "sad", "angry")
CODES = {"neutral": "01", "happy": "03", "sad": "04", "angry": "05"}


@pytest.fixture(scope="module", params=["voice_logreg", "voice_cnn2d", "voice_gru"])
def model(request):
    X = [tone_clip(CODES[label], actor=k, seconds=0.5, seed=k) for k in range(1, 4) for label in LABELS]
    y = [label for _ in range(1, 4) for label in LABELS]
    kwargs = {} if request.param == "voice_logreg" else {"train": {"epochs": 1, "batch_size": 8}}
    return create_model(request.param, **kwargs).fit(X, y, labels=LABELS, X_val=X[:4], y_val=y[:4])


def _ok(probs: np.ndarray, n: int) -> None:
    assert probs.shape == (n, len(LABELS))
    assert np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)


def test_silence_tiny_and_long_clips(model):
    silent = np.zeros(16_000, np.float32)
    tiny = tone_clip("03", actor=1, seconds=0.1)
    long = np.tile(tone_clip("05", actor=1, seconds=1.0), 60)  # one minute
    _ok(model.predict_proba([silent, tiny, long]), 3)


def test_other_rates_and_stereo_files_are_converted(model, tmp_path):
    y16 = tone_clip("04", actor=2, seconds=0.6)
    stereo_44k = np.stack([np.interp(np.linspace(0, 1, 26_460), np.linspace(0, 1, y16.size), y16)] * 2, axis=1)
    sf.write(tmp_path / "a.wav", stereo_44k, 44_100)
    sf.write(tmp_path / "b.flac", y16[::2], 8_000)
    _ok(model.predict_proba([tmp_path / "a.wav", tmp_path / "b.flac"]), 2)


def test_bad_audio_is_a_clear_error(model, tmp_path):
    with pytest.raises(ValueError, match="non-finite"):
        model.predict_proba([np.array([0.0, np.nan, 0.1] * 1000, np.float32)])
    with pytest.raises(ValueError, match="1-D"):
        model.predict_proba([np.zeros((100, 2), np.float32)])
    corrupt = tmp_path / "c.wav"
    corrupt.write_bytes(b"RIFF\x00\x00garbage")
    with pytest.raises(DataError) as info:
        model.predict_proba([corrupt])
    assert str(corrupt) in str(info.value)
