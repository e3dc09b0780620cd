"""voice_whisper_attn: frame states (strided, cached), the attention head, and its configuration errors."""

from __future__ import annotations

import numpy as np
import pytest

from emofuse.errors import ConfigError
from emofuse.features.whisper_states import WhisperFeatures, pooled_states
from emofuse.models import create_model, load_model
from emofuse.models.voice_whisper import VoiceWhisper
from emofuse.models.voice_whisper_attn import VoiceWhisperAttention


def test_configuration_errors():
    with pytest.raises(ConfigError, match="pooling 'attention'"):
        VoiceWhisperAttention(features={"pooling": "mean_std"})
    with pytest.raises(ConfigError, match="attention pooling is voice_whisper_attn's"):
        VoiceWhisper(features={"pooling": "attention"})
    with pytest.raises(ConfigError, match="frame_stride"):
        WhisperFeatures(pooling="attention", frame_stride=0)
    with pytest.raises(ConfigError, match="frame_states"):
        pooled_states([np.zeros(1600, np.float32)], WhisperFeatures(pooling="attention"), model="tiny.en")
    with pytest.raises(ConfigError, match="at least 1"):
        VoiceWhisperAttention(heads=0)
    with pytest.raises(ConfigError, match="head must be one of"):
        VoiceWhisperAttention(head="transformer")


class _TableFrames(VoiceWhisperAttention):
    """A VoiceWhisperAttention whose "clips" index synthetic frame sequences (the encoder is tested elsewhere)."""

    table: list[np.ndarray]

    def featurize(self, X):
        return [self.table[int(i)] for i in X], [(2, 4)]


def _needle_clips(rng: np.random.Generator, n: int) -> tuple[list[np.ndarray], list[str]]:
    """Clips of 30-60 noise frames. Three marked frames (dimension 4 at +3) carry the class in the sign of
    dimension 5; three other frames carry the opposite sign there, so every clip's mean and std are the
    same whatever its class: uniform pooling is at chance, attention to the marked frames is not."""
    clips, labels = [], []
    for i in range(n):
        frames = int(rng.integers(30, 61))
        x = rng.normal(size=(frames, 2 * 4)).astype(np.float16)
        sign = 1.0 if i % 2 else -1.0
        marked, other = np.split(rng.choice(frames, size=6, replace=False), 2)
        x[marked, 4] = 3.0
        x[marked, 5] = 3.0 * sign
        x[other, 5] = -3.0 * sign
        clips.append(x)
        labels.append(("calm", "angry")[i % 2])
    return clips, labels


@pytest.mark.parametrize("head", ["stats", "projected"])
def test_the_head_finds_the_frames_that_matter_and_survives_save_load(head, tmp_path):
    rng = np.random.default_rng(0)
    clips, labels = _needle_clips(rng, 240)
    model = _TableFrames(features={"models": ["tiny.en"]}, head=head, hidden=16, heads=2, dropout=0.1, n_seeds=2,
                         train={"epochs": 25, "patience": 25, "lr": 3e-3, "batch_size": 16})
    model.table = clips
    idx = np.arange(240)
    model.fit(idx[:160], labels[:160], labels=("calm", "angry"), X_val=idx[160:200], y_val=labels[160:200])
    probs = model.predict_proba(idx[200:])
    accuracy = np.mean(np.array(("calm", "angry"))[probs.argmax(axis=1)] == np.array(labels[200:]))
    assert accuracy >= 0.9
    # Padding never counts: a clip scored alone or beside a longer one gets the same probabilities.
    alone = model.predict_proba(idx[200:201])
    np.testing.assert_allclose(alone[0], probs[0], atol=1e-6)
    assert model.predict_proba([]).shape == (0, 2)

    model.save(tmp_path / "model")
    loaded = load_model(tmp_path / "model")
    assert isinstance(loaded, VoiceWhisperAttention) and len(loaded.heads_) == 2
    table_loaded = _TableFrames.load(tmp_path / "model")  # the same weights, reading the same table
    table_loaded.table = clips
    np.testing.assert_allclose(table_loaded.predict_proba(idx[200:]), probs, atol=1e-6)


def test_registry_entry_reads_tiny_and_base_frames():
    model = create_model("voice_whisper_attn", train={"epochs": 3})
    assert model.features.models == ("tiny.en", "base") and model.features.pooling == "attention"
    assert model.head_kind == "projected"
    assert model.train.epochs == 3 and model.train.weight_decay == 0.05  # the override merges with the recipe
