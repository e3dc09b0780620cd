"""Whisper voice models: heads, training copies (speed, channel), speaker-adapted head, save/load."""

from __future__ import annotations

import numpy as np
import pytest

from emofuse.data.synthetic import tone_clip
from emofuse.errors import ConfigError
from emofuse.features.cache import FeatureCache
from emofuse.models.voice_whisper import VoiceWhisper


class _TableFeatures(VoiceWhisper):
    """A VoiceWhisper whose "clips" are row numbers of a feature table (the encoder is tested elsewhere)."""

    table: np.ndarray

    def featurize(self, X):
        return self.table[np.asarray(X, dtype=int)]


def _emotion_and_speaker_table(rng: np.random.Generator, n_speakers: int = 8, per: int = 24):
    """Two emotions on feature 0 (±1), each speaker shifted by a large random offset on every feature."""
    rows, labels, speakers = [], [], []
    for s in range(n_speakers):
        offset = rng.normal(scale=4.0, size=3)
        for i in range(per):
            label = i % 2
            rows.append(offset + np.array([2.0 * label - 1, 0.0, 0.0]) + rng.normal(scale=0.3, size=3))
            labels.append(("calm", "angry")[label])
            speakers.append(f"s{s}")
    return np.array(rows), labels, speakers


def test_speaker_head_adapts_to_an_unseen_speaker_and_survives_save_load(tmp_path):
    from emofuse.models import load_model

    rng = np.random.default_rng(0)
    table, labels, speakers = _emotion_and_speaker_table(rng)
    train = [i for i, s in enumerate(speakers) if s not in ("s6", "s7")]
    val = [i for i, s in enumerate(speakers) if s == "s6"]
    test = [i for i, s in enumerate(speakers) if s == "s7"]
    model = _TableFeatures("voice_whisper_tiny", C=1.0)
    model.table = table
    pick = lambda idx, seq: [seq[i] for i in idx]  # noqa: E731
    model.fit(train, pick(train, labels), labels=["calm", "angry"])
    assert not model.adapts_to_speakers
    with pytest.raises(ConfigError, match="speaker-adapted head"):
        model.new_speaker()
    model.fit_speaker_head(train, pick(train, labels), pick(train, speakers), X_val=val, y_val=pick(val, labels),
                           val_speakers=pick(val, speakers), shrinkage=2.0, min_clips=4, C="val")
    speaker = model.new_speaker()
    probs, adapted = model.predict_proba_for_speaker(test, speaker)
    assert speaker.n == len(test) and adapted.tolist() == [0, 0, 0, *range(4, len(test) + 1)]
    np.testing.assert_allclose(probs[:3], model.predict_proba(test[:3]))  # the plain head before min_clips
    truth = np.array([labels[i] == "angry" for i in test])
    adapted_accuracy = np.mean((probs[8:, 1] > 0.5) == truth[8:])
    plain_accuracy = np.mean((model.predict_proba(test)[8:, 1] > 0.5) == truth[8:])
    assert adapted_accuracy >= 0.9 and adapted_accuracy > plain_accuracy  # the speaker's offset is gone

    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    loaded.__class__ = _TableFeatures
    loaded.table = table
    again, adapted_again = loaded.predict_proba_for_speaker(test, loaded.new_speaker())
    np.testing.assert_allclose(again, probs, atol=1e-12)
    assert adapted_again.tolist() == adapted.tolist()


def test_speed_augmentation_and_untrimmed_view(tmp_path):
    """voice_whisper_plus's levers on real tiny.en states: augmented copies join training (cached under
    their own key), a second head reads the untrimmed clips, and save/load keeps both heads."""
    import soundfile as sf

    from emofuse.models import create_model, load_model

    paths, labels = [], []
    for k in range(8):
        code = ("01", "05")[k % 2]
        wave = np.concatenate([np.zeros(4000, np.float32), tone_clip(code, actor=1 + k // 2, seconds=0.5, seed=k),
                               np.zeros(4000, np.float32)])
        paths.append(tmp_path / f"{k}.wav")
        sf.write(paths[-1], wave, 16_000)
        labels.append(("neutral", "angry")[k % 2])
    cache = FeatureCache(tmp_path / "cache")
    model = create_model("voice_whisper_plus", features={"models": ["tiny.en"]}, C=0.1, cache=cache)
    assert model.augment_speeds == (0.9, 1.1) and model.untrimmed_view
    model.fit(paths[:6], labels[:6], labels=["neutral", "angry"])
    # 6 clips x (original, 0.9, 1.1), trimmed; 6 untrimmed: every view cached under its own key
    assert cache.misses == 6 * 4
    slow = model.featurize(paths[:1], speed=0.9)
    assert not np.allclose(slow, model.featurize(paths[:1]))
    probs = model.predict_proba(paths[6:])
    trimmed = model.head_.predict_proba(model.featurize(paths[6:]), 2)
    untrimmed = model.untrimmed_head_.predict_proba(model.featurize(paths[6:], trim=False), 2)
    np.testing.assert_allclose(probs, (trimmed + untrimmed) / 2)
    model.save(tmp_path / "m")
    again = load_model(tmp_path / "m", cache=cache)
    assert again.augment_speeds == (0.9, 1.1) and again.untrimmed_view
    np.testing.assert_allclose(again.predict_proba(paths[6:]), probs, atol=1e-12)
    with pytest.raises(ConfigError, match="augment_speeds"):
        create_model("voice_whisper_plus", augment_speeds=[1.0])


def test_channel_copies_join_training_and_the_count_survives_save_load(tmp_path):
    """augment_channels N: N channel copies of every training clip are encoded (cached under their own
    keys) and join the head's training set; prediction reads the clip alone."""
    import soundfile as sf

    from emofuse.models import load_model

    paths, labels = [], []
    for k in range(6):
        paths.append(tmp_path / f"{k}.wav")
        sf.write(paths[-1], tone_clip(("01", "05")[k % 2], actor=1 + k // 2, seconds=0.5, seed=k), 16_000)
        labels.append(("neutral", "angry")[k % 2])
    cache = FeatureCache(tmp_path / "cache")
    model = VoiceWhisper(features={"models": ["tiny.en"]}, C=0.1, augment_channels=2, cache=cache)
    model.fit(paths[:4], labels[:4], labels=["neutral", "angry"])
    assert cache.misses == 4 * 3
    seen = np.concatenate([model.featurize(paths[:4], channel=k) for k in (0, 1, 2)])
    np.testing.assert_allclose(model.head_.mean_, seen.mean(axis=0), rtol=1e-5, atol=1e-6)  # what the head saw
    probs = model.predict_proba(paths[4:])
    np.testing.assert_allclose(probs, model.head_.predict_proba(model.featurize(paths[4:]), 2))
    model.save(tmp_path / "m")
    again = load_model(tmp_path / "m", cache=cache)
    assert again.augment_channels == 2 and again.get_params()["augment_channels"] == 2
    np.testing.assert_allclose(again.predict_proba(paths[4:]), probs, atol=1e-12)
    with pytest.raises(ConfigError, match="augment_channels"):
        VoiceWhisper(augment_channels=-1)


def test_mfcc_statistics_beside_the_whisper_states(tmp_path):
    import soundfile as sf

    from emofuse.features.spectral import utterance_stats
    from emofuse.models import create_model, load_model
    from emofuse.models.voice import VoiceFeatures, featurize

    paths = []
    for k in range(4):
        paths.append(tmp_path / f"{k}.wav")
        sf.write(paths[-1], tone_clip(("01", "05")[k % 2], actor=1 + k, seconds=0.6, seed=k), 16_000)
    cache = FeatureCache(tmp_path / "cache")
    model = create_model("voice_whisper_mfcc", features={"models": ["tiny.en"]}, C=0.1, cache=cache)
    combined = model.featurize(paths)
    stats = np.stack([utterance_stats(f) for f in featurize(paths, VoiceFeatures(), cache=None)])
    assert combined.shape == (4, 5 * 768 + stats.shape[1])
    np.testing.assert_allclose(combined[:, -stats.shape[1]:], stats, rtol=1e-5)
    model.fit(paths, ["neutral", "angry"] * 2, labels=["neutral", "angry"])
    model.save(tmp_path / "m")
    again = load_model(tmp_path / "m", cache=cache)
    assert again.mfcc_stats
    np.testing.assert_allclose(again.predict_proba(paths), model.predict_proba(paths), atol=1e-12)
    with pytest.raises(ConfigError, match="mfcc_stats combines"):
        create_model("voice_whisper_mfcc", augment_speeds=[0.9])


def test_heldout_validation_probabilities_come_from_heads_that_never_saw_those_clips():
    """With ``refit_with_val`` the final head learns the validation clips, so its own validation
    probabilities are in-sample; fusion gets those of the head fitted before the refit instead."""
    from emofuse.models.linear import StandardisedLogReg

    rng = np.random.default_rng(1)
    table, labels, speakers = _emotion_and_speaker_table(rng)
    table = table + rng.normal(scale=1.5, size=table.shape)  # noisy enough that a refit moves the head
    train = [i for i, s in enumerate(speakers) if s not in ("s6", "s7")]
    val = [i for i, s in enumerate(speakers) if s == "s6"]
    pick = lambda idx, seq: [seq[i] for i in idx]  # noqa: E731
    ys = {"calm": 0, "angry": 1}
    model = _TableFeatures("voice_whisper_tiny", C="val", C_grid=(0.01, 1.0))
    model.table = table
    model.fit(train, pick(train, labels), labels=["calm", "angry"], X_val=val, y_val=pick(val, labels))
    assert model.fits_on_validation
    before_refit = StandardisedLogReg(C=model.C_, max_iter=model.max_iter, solver="torch", balanced=True).fit(
        table[train], np.array([ys[label] for label in pick(train, labels)]))
    np.testing.assert_allclose(model.heldout_val_proba_, before_refit.predict_proba(table[val], 2), atol=1e-6)
    assert not np.allclose(model.heldout_val_proba_, model.predict_proba(val), atol=1e-3)

    plain = _TableFeatures("voice_whisper_tiny", C="val", C_grid=(0.01, 1.0), refit_with_val=False)
    plain.table = table
    plain.fit(train, pick(train, labels), labels=["calm", "angry"], X_val=val, y_val=pick(val, labels))
    assert not plain.fits_on_validation
    np.testing.assert_allclose(plain.heldout_val_proba_, plain.predict_proba(val), atol=1e-6)


def test_ridge_head_is_chosen_on_validation_and_survives_save_load(tmp_path):
    from emofuse.models import create_model, load_model

    rng = np.random.default_rng(2)
    targets = np.tile([0, 1], 60)
    table = np.outer(2.0 * targets - 1, np.linspace(1.0, 0.2, 10)) + rng.normal(size=(len(targets), 10))
    labels = [("calm", "angry")[t] for t in targets]
    train, val, test = list(range(80)), list(range(80, 100)), list(range(100, 120))
    pick = lambda idx, seq: [seq[i] for i in idx]  # noqa: E731
    assert VoiceWhisper("voice_whisper_tiny", head="ridge").C_grid == (1e-4, 3e-4, 1e-3)  # for thousands of states
    model = _TableFeatures("voice_whisper_tiny", head="ridge", C_grid=(0.1, 1.0))  # ten features here
    assert model.get_params()["head"] == "ridge"
    model.table = table
    model.fit(train, pick(train, labels), labels=["calm", "angry"], X_val=val, y_val=pick(val, labels))
    assert model.head_.solver == "ridge" and set(model.val_scores_) == set(model.C_grid)
    probs = model.predict_proba(test)
    assert (probs.argmax(axis=1) == targets[test]).mean() > 0.9
    model.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert again.head == "ridge"
    again.__class__ = _TableFeatures
    again.table = table
    np.testing.assert_allclose(again.predict_proba(test), probs, atol=1e-12)
    assert create_model("voice_whisper_plus_ridge").head == "ridge"
    with pytest.raises(ConfigError, match="head must be one of"):
        VoiceWhisper("voice_whisper_tiny", head="svm")
    with pytest.raises(ConfigError, match="C must be positive"):
        VoiceWhisper("voice_whisper_tiny", head="ridge", C=0.0)  # alpha = 1 / C
    with pytest.raises(ConfigError, match="C_grid must hold positive values"):
        VoiceWhisper("voice_whisper_tiny", C_grid=[0.01, -1.0])


class _ViewTables(VoiceWhisper):
    """A VoiceWhisper whose clips are row numbers, with one feature table per (speed, trim) view."""

    tables: dict[tuple[float, bool], np.ndarray]

    def featurize(self, X, *, speed=1.0, trim=None):
        return self.tables[(speed, self.features.trim if trim is None else trim)][np.asarray(X, dtype=int)]


def _noisy_views(rng: np.random.Generator, n: int = 600, d: int = 6):
    """Two emotions on every feature (±0.4), each view of a clip (speed copy, untrimmed) with its own
    unit noise: averaging a clip's views averages its noise away."""
    targets = np.tile([0, 1], n // 2)
    signal = np.outer(0.8 * targets - 0.4, np.ones(d))
    tables = {(s, t): signal + rng.normal(size=signal.shape) for s in (1.0, 0.9, 1.1) for t in (True, False)}
    return tables, targets


def test_test_time_augmentation_averages_the_clips_speed_copies(tmp_path):
    from emofuse.models import create_model, load_model
    from emofuse.models.linear import StandardisedLogReg

    tables, targets = _noisy_views(np.random.default_rng(3))
    labels = [("calm", "angry")[t] for t in targets]
    train, val, test = list(range(200)), list(range(200, 300)), list(range(300, 600))
    pick = lambda idx, seq: [seq[i] for i in idx]  # noqa: E731
    common = {"augment_speeds": (0.9, 1.1), "untrimmed_view": True, "head": "ridge", "C_grid": (0.01, 1.0)}
    plain, tta = _ViewTables("voice_whisper_tiny", **common), _ViewTables("voice_whisper_tiny", tta=True, **common)
    for model in (plain, tta):
        model.tables = tables
        model.fit(train, pick(train, labels), labels=["calm", "angry"], X_val=val, y_val=pick(val, labels))
    probs = tta.predict_proba(test)
    speeds = [tta.head_.predict_proba(tables[(s, True)][test], 2) for s in (1.0, 0.9, 1.1)]
    untrimmed = tta.untrimmed_head_.predict_proba(tables[(1.0, False)][test], 2)
    np.testing.assert_allclose(probs, (np.mean(speeds, axis=0) + untrimmed) / 2, atol=1e-12)
    accuracy = lambda p: (p.argmax(axis=1) == targets[test]).mean()  # noqa: E731
    assert accuracy(np.mean(speeds, axis=0)) > accuracy(speeds[0]) + 0.05  # three draws of the noise, averaged
    np.testing.assert_allclose(plain.predict_proba(test), (plain.head_.predict_proba(tables[(1.0, True)][test], 2)
                                                           + plain.untrimmed_head_.predict_proba(
                                                               tables[(1.0, False)][test], 2)) / 2, atol=1e-12)

    # C is chosen, and fusion's held-out validation probabilities given, with the same averaging
    def head(C, views):  # a ridge head fitted on the training clips only, before the refit
        x = np.concatenate([tables[v][train] for v in views])
        return StandardisedLogReg(C=C, max_iter=300, solver="ridge", balanced=True).fit(x, np.tile(targets[train], len(views)))

    speed_views = [(s, True) for s in (1.0, 0.9, 1.1)]
    trimmed_val = np.mean([head(tta.C_, speed_views).predict_proba(tables[v][val], 2) for v in speed_views], axis=0)
    untrimmed_val = head(tta.untrimmed_C_, [(1.0, False)]).predict_proba(tables[(1.0, False)][val], 2)
    np.testing.assert_allclose(tta.heldout_val_proba_, (trimmed_val + untrimmed_val) / 2, atol=1e-9)

    tta.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert again.tta and again.get_params()["tta"]
    again.__class__ = _ViewTables
    again.tables = tables
    np.testing.assert_allclose(again.predict_proba(test), probs, atol=1e-12)
    assert create_model("voice_whisper_plus_ridge_tta").tta
    with pytest.raises(ConfigError, match="needs augment_speeds"):
        VoiceWhisper("voice_whisper_tiny", tta=True)


def test_validation_views_must_match_the_validation_features():
    from emofuse.models.linear import fit_logreg_select

    x, t = np.eye(4), np.array([0, 1, 0, 1])
    with pytest.raises(ConfigError, match="val_views"):
        fit_logreg_select(x, t, ["a", "b"], C=1.0, C_grid=(), max_iter=10, val=(x, t), name="m", val_views=[x[:2]])
    with pytest.raises(ConfigError, match="val_views"):
        fit_logreg_select(x, t, ["a", "b"], C=1.0, C_grid=(), max_iter=10, val=None, name="m", val_views=[x])


