import numpy as np
import pytest

from emofuse import labels as L


def test_every_label_set_uses_canonical_names():
    for name, label_set in L.LABEL_SETS.items():
        assert len(set(label_set)) == len(label_set), name
        assert set(label_set) <= set(L.EMOTIONS) | set(L.EXTRA_NAMES), name


def test_dataset_maps_land_in_canonical_names():
    assert [L.RAVDESS_CODES[f"{i:02d}"] for i in range(1, 9)] == list(L.RAVDESS8)
    assert [L.FER2013_CLASSES[i] for i in range(7)] == list(L.FER7)
    assert {L.MELD_NAMES[k] for k in L.MELD_NAMES} == set(L.MELD7)
    assert {L.CARER_NAMES[k] for k in L.CARER_NAMES} == set(L.CARER6)


def test_synonyms_and_unknown_labels_are_all_listed():
    assert L.map_labels(["Happiness", "joy", "ANGER", "fearful", "surprised"]) == [
        "happy", "happy", "angry", "fear", "surprise"]
    with pytest.raises(L.UnknownLabelError) as info:
        L.map_labels(["happy", "bored", "confused", "bored"], source="my.csv")
    assert info.value.unknown == ["bored", "confused"]
    assert "my.csv" in str(info.value) and "'bored'" in str(info.value) and "'confused'" in str(info.value)


def test_calm_folds_into_neutral_when_fusing_voice_with_face():
    assert L.shared_label_set(L.RAVDESS8, L.FER7) == L.BASIC7
    probs = np.array([[0.1, 0.3, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]])  # RAVDESS8 columns, calm = 0.3
    aligned = L.align_probabilities(probs, L.RAVDESS8, L.BASIC7)
    assert aligned.shape == (1, 7)
    assert aligned[0, L.BASIC7.index("neutral")] == pytest.approx(0.4)
    assert aligned.sum() == pytest.approx(1.0)
    assert L.convert_labels(["calm", "sad"], L.BASIC7) == ["neutral", "sad"]


def test_alignment_reorders_columns_between_label_sets():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(7), size=5)  # FER7 order
    aligned = L.align_probabilities(probs, L.FER7, L.BASIC7)
    for j, name in enumerate(L.BASIC7):
        np.testing.assert_allclose(aligned[:, j], probs[:, L.FER7.index(name)])
    # Back into 8 classes: calm gets no mass and coverage says the face model has no view on it.
    widened = L.align_probabilities(probs, L.FER7, L.RAVDESS8)
    assert np.all(widened[:, L.RAVDESS8.index("calm")] == 0)
    assert list(L.coverage(L.FER7, L.RAVDESS8)) == [name != "calm" for name in L.RAVDESS8]


def test_alignment_refuses_to_drop_a_class():
    with pytest.raises(L.UnknownLabelError):
        L.align_probabilities(np.ones((1, 8)) / 8, L.RAVDESS8, ("happy", "sad"))
    with pytest.raises(ValueError, match="columns"):
        L.align_probabilities(np.ones((1, 7)) / 7, L.RAVDESS8, L.BASIC7)


def test_ordered_label_set():
    assert L.ordered_label_set(["sad", "neutral", "love", "calm"]) == ("neutral", "calm", "sad", "love")
