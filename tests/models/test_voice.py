"""The torch voice classifier's speed-perturbed training copies: computed once, cached under their
own key, drawn at random in training, kept through save/load."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from emofuse.data.synthetic import tone_clip
from emofuse.errors import ConfigError
from emofuse.features.cache import FeatureCache
from emofuse.models import create_model
from emofuse.models.voice import VoiceFeatures, _AugmentedWaveforms, _CroppedFeatures, featurize

LABELS = ("neutral", "happy", "sad", "angry")
CODES = {"neutral": "01", "happy": "03", "sad": "04", "angry": "05"}


def _cached_entries(root) -> int:
    return sum(1 for p in root.rglob("*") if p.is_file())


def test_speed_copies_are_shorter_or_longer_and_cached_apart(tmp_path):
    path = tmp_path / "clip.wav"
    sf.write(path, tone_clip("03", actor=1, seconds=2.0), 16_000)
    cache = FeatureCache(tmp_path / "cache")
    features = VoiceFeatures(kind="logmel", trim=False)
    plain = featurize([path], features, cache=cache)[0]
    fast = featurize([path], features, cache=cache, speed=1.25)[0]
    slow = featurize([path], features, cache=cache, speed=0.8)[0]
    assert fast.shape[1] == pytest.approx(plain.shape[1] / 1.25, abs=2)
    assert slow.shape[1] == pytest.approx(plain.shape[1] / 0.8, abs=2)
    assert _cached_entries(tmp_path / "cache") == 3  # one entry per speed, none overwritten
    np.testing.assert_array_equal(featurize([path], features, cache=cache, speed=1.25)[0], fast)
    np.testing.assert_array_equal(featurize([path], features, cache=cache)[0], plain)
    assert cache.hits == 2  # the second reads came from the cache, not recomputed


def test_cropped_set_draws_the_original_and_every_copy():
    feats = [np.full((2, 10), 0.0, np.float32), np.full((2, 10), 1.0, np.float32)]
    copies = [[f + 10 for f in feats], [f + 20 for f in feats]]
    data = _CroppedFeatures(feats, np.array([0, 1]), max_frames=5, seed=0, copies=copies)
    seen = {float(data[1][0][0, 0]) for _ in range(60)}
    assert seen == {1.0, 11.0, 21.0}
    assert data[0][0].shape == (2, 5) and data[0][1] == 0
    with pytest.raises(ValueError, match="one feature array per clip"):
        _CroppedFeatures(feats, np.array([0, 1]), max_frames=5, seed=0, copies=[feats[:1]])


def test_training_sets_reseed_their_random_streams():
    """What each data-loading worker calls (``reseed_worker``): a seed fixes the stream, another changes it."""
    feats = [np.arange(40, dtype=np.float32).reshape(2, 20)]
    crops = _CroppedFeatures(feats, np.array([0]), max_frames=5, seed=0)

    def draws(data) -> list[float]:
        return [float(data[0][0][0, 0]) for _ in range(8)]

    crops.reseed(3)
    first = draws(crops)
    crops.reseed(3)
    assert draws(crops) == first
    crops.reseed(4)
    assert draws(crops) != first

    from emofuse.training.augment import PRESETS

    waves = _AugmentedWaveforms([tone_clip("03", actor=1, seconds=1.0)], np.array([0]),
                                VoiceFeatures(kind="logmel", trim=False), PRESETS["light"], max_frames=40, seed=0)
    waves.reseed(3)
    first_aug = waves[0][0]
    waves.reseed(3)
    np.testing.assert_array_equal(waves[0][0], first_aug)
    waves.reseed(4)
    assert not np.array_equal(waves[0][0], first_aug)


def test_classifier_with_speed_copies_trains_and_round_trips(tmp_path):
    X = [tone_clip(CODES[label], actor=k, seconds=0.8, seed=k) for k in range(1, 4) for label in LABELS]
    y = [label for _ in range(1, 4) for label in LABELS]
    model = create_model("voice_cnn1d", speed_copies=[0.9, 1.1], train={"epochs": 2, "batch_size": 8})
    model.fit(X, y, labels=LABELS, X_val=X[:4], y_val=y[:4])
    probs = model.predict_proba(X[:4])
    model.save(tmp_path / "m")
    loaded = type(model).load(tmp_path / "m")
    assert loaded.speed_copies == (0.9, 1.1)
    np.testing.assert_allclose(loaded.predict_proba(X[:4]), probs, atol=1e-6)


def test_speed_copies_refuse_bad_factors_and_waveform_augmentation():
    with pytest.raises(ConfigError, match="other than 1"):
        create_model("voice_cnn1d", speed_copies=[1.0])
    with pytest.raises(ConfigError, match="waveform augmentation"):
        create_model("voice_cnn1d", speed_copies=[0.9], augment="light")
