"""The one contract every registry model must honour (timm/scikit-learn style common tests)."""

from __future__ import annotations

import numpy as np
import pytest

from emofuse.data import load_ravdess
from emofuse.data.synthetic import tone_clip
from emofuse.errors import EmofuseError
from emofuse.models import MODELS, NotFittedError, create_model, load_model

LABELS = ("neutral", "happy", "sad", "angry")
CODES = {"neutral": "01", "happy": "03", "sad": "04", "angry": "05"}
# Small and fast: two epochs are enough to exercise fit / predict / save / load.
FAST = {"train": {"epochs": 2, "batch_size": 8, "patience": 5}}


def _clips(n_per_class: int, seed: int) -> tuple[list[np.ndarray], list[str]]:
    X, y = [], []
    for k in range(n_per_class):
        for label in LABELS:
            X.append(tone_clip(CODES[label], actor=k + 1, seconds=0.5, seed=seed + k))
            y.append(label)
    return X, y


@pytest.fixture(scope="module")
def data():
    return _clips(4, seed=0), _clips(2, seed=100)


def _make(name: str):
    import inspect

    trains = "train" in inspect.signature(MODELS[name].cls()).parameters
    return create_model(name, **FAST) if trains else create_model(name)


@pytest.mark.parametrize("name", sorted(n for n, s in MODELS.items() if s.modality == "audio"))
def test_contract(name, data, tmp_path):
    (X, y), (X_val, y_val) = data
    model = _make(name)
    with pytest.raises(NotFittedError):
        model.predict_proba(X[:2])
    assert model.fit(X, y, labels=LABELS, X_val=X_val, y_val=y_val) is model
    assert model.labels_ == LABELS
    probs = model.predict_proba(X_val)
    assert probs.shape == (len(X_val), len(LABELS))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert np.all(probs >= 0)

    model.save(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["model.json", "model.safetensors"]
    loaded = load_model(tmp_path / "model")
    assert loaded.labels_ == LABELS
    np.testing.assert_allclose(loaded.predict_proba(X_val), probs, atol=1e-5)


def test_a_class_missing_from_training_still_gets_a_column(data):
    (X, y), (X_val, _y_val) = data
    keep = [i for i, label in enumerate(y) if label != "angry"]
    model = create_model("voice_logreg").fit([X[i] for i in keep], [y[i] for i in keep], labels=LABELS)
    probs = model.predict_proba(X_val)
    assert probs.shape == (len(X_val), 4) and np.all(probs[:, LABELS.index("angry")] == 0)


def test_registry_errors():
    with pytest.raises(EmofuseError, match="unknown model"):
        create_model("voice_transformer9000")
    with pytest.raises(EmofuseError, match="unknown training option"):
        create_model("voice_cnn2d", train={"epochz": 3})
    with pytest.raises(EmofuseError, match="unknown feature option"):
        create_model("voice_gru", features={"kind": "mfcc", "n_mfccs": 13})


def test_paths_and_waveforms_give_the_same_probabilities(ravdess_dir, tmp_path):
    from emofuse.features.audio import load_audio
    from emofuse.features.cache import FeatureCache

    dataset = load_ravdess(ravdess_dir)
    paths = [s.path for s in dataset.samples[:30]]
    labels = [s.label for s in dataset.samples[:30]]
    model = create_model("voice_logreg", cache=FeatureCache(tmp_path / "cache"))
    model.fit(paths, labels, labels=dataset.labels)
    from_paths = model.predict_proba(paths[:5])
    from_arrays = model.predict_proba([load_audio(p) for p in paths[:5]])
    np.testing.assert_allclose(from_paths, from_arrays, atol=1e-6)
    assert model.cache.hits >= 5  # the second pass over the files came from the cache
