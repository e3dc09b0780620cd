"""The one contract every registry model must honour (timm/scikit-learn style common tests)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from emofuse.data import load_ravdess
from emofuse.data.synthetic import draw_face, tone_clip
from emofuse.errors import EmofuseError
from emofuse.fusion import FusionInput
from emofuse.labels import BASIC7, FER7, RAVDESS8
from emofuse.models import MODELS, NotFittedError, create_model, load_model

LABELS = ("neutral", "happy", "sad", "angry")
CODES = {"neutral": "01", "happy": "03", "sad": "04", "angry": "05"}
# Small and fast: two epochs are enough to exercise fit / predict / save / load.
FAST = {"train": {"epochs": 2, "batch_size": 8, "patience": 5}}
# Per-model overrides that keep the common test fast; the layout under test stays the same.
SMALL: dict[str, dict[str, Any]] = {
    "face_resnet": {"arch_params": {"widths": [8, 8, 16, 16]}},
    "face_effnet": {"arch_params": {"side": 64}},
    "text_bigru": {"embed_dim": 16, "hidden": 16},
}


def _clips(n_per_class: int, seed: int) -> tuple[list[np.ndarray], list[str]]:
    X, y = [], []
    for k in range(n_per_class):
        for label in LABELS:
            X.append(tone_clip(CODES[label], actor=k + 1, seconds=0.5, seed=seed + k))
            y.append(label)
    return X, y


def _faces(per_class: int, seed: int) -> tuple[np.ndarray, list[str]]:
    X = np.stack([draw_face(label, seed=seed + 10 * k + i) for k in range(per_class) for i, label in enumerate(FER7)])
    return X, [label for _ in range(per_class) for label in FER7]


def _texts(n: int, seed: int) -> tuple[list[str], list[str]]:
    words = {"happy": "wonderful great love joy", "sad": "miss lonely cry lost", "angry": "hate furious stupid damn"}
    rng = np.random.default_rng(seed)
    labels = [("happy", "sad", "angry")[k % 3] for k in range(n)]
    return [" ".join(rng.choice(words[label].split(), size=3)) + " it was" for label in labels], labels


def _members(n_per_class: int, seed: int) -> tuple[FusionInput, list[str]]:
    """Voice (RAVDESS8) and face (FER7) probabilities on the same samples, truth in BASIC7."""
    rng = np.random.default_rng(seed)
    y = np.tile(np.arange(len(BASIC7)), n_per_class)
    probs = {}
    for member, labels in (("voice", RAVDESS8), ("face", FER7)):
        logits = rng.normal(0, 1, (len(y), len(labels)))
        logits[np.arange(len(y)), [labels.index(BASIC7[t]) for t in y]] += 2.0
        probs[member] = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return FusionInput(probs, {"voice": RAVDESS8, "face": FER7}), [BASIC7[t] for t in y]


# modality -> (training data, validation data, label set): what every model of that modality is fed.
def _cases() -> dict[str, tuple[Any, Any, tuple[str, ...]]]:
    return {"voice": (_clips(4, 0), _clips(2, 100), LABELS), "face": (_faces(3, 0), _faces(2, 1000), FER7),
            "words": (_texts(30, 0), _texts(12, 1), ("happy", "sad", "angry")),
            "fusion": (_members(12, 0), _members(6, 1), BASIC7)}


@pytest.fixture(scope="module")
def cases():
    return _cases()


def _make(name: str):
    import inspect

    params = dict(SMALL.get(name, {}))
    if "train" in inspect.signature(MODELS[name].cls()).parameters:
        params.update(FAST)
    return create_model(name, **params)


def _take(X: Any, n: int) -> Any:
    return X.take(np.arange(n)) if isinstance(X, FusionInput) else X[:n]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_contract(name, cases, tmp_path):
    """Every registry model: refuses to predict unfitted, fits and returns itself, gives (n, n_labels)
    probabilities in label order that sum to 1, and survives save / load exactly."""
    (X, y), (X_val, y_val), labels = cases[MODELS[name].modality]
    model = _make(name)
    with pytest.raises(NotFittedError):
        model.predict_proba(_take(X_val, 2))
    assert model.fit(X, y, labels=labels, X_val=X_val, y_val=y_val) is model
    assert tuple(model.labels_) == labels
    probs = model.predict_proba(X_val)
    assert probs.shape == (len(X_val), len(labels))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert np.all(probs >= 0)

    model.save(tmp_path / "model")
    assert {"model.json", "model.safetensors"} <= {p.name for p in (tmp_path / "model").iterdir()}
    assert not [p for p in (tmp_path / "model").iterdir() if p.suffix in (".pt", ".pth", ".pkl", ".pickle")]
    loaded = load_model(tmp_path / "model")
    assert tuple(loaded.labels_) == labels
    np.testing.assert_allclose(loaded.predict_proba(X_val), probs, atol=1e-5)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_offers_the_whole_classifier_surface(name):
    """What callers rely on without looking at the class (emofuse.models.base.Classifier)."""
    import inspect
    import json

    from emofuse.models.base import Classifier

    model = _make(name)
    assert isinstance(model, Classifier) and model.name == name
    json.dumps(model.get_params())  # recorded in every run's config.json
    fit = inspect.signature(type(model).fit).parameters
    assert {"labels", "X_val", "y_val"} <= set(fit)
    assert {"log_path", "state_dir"} <= set(fit) or any(p.kind is p.VAR_KEYWORD for p in fit.values())
    assert isinstance(inspect.getattr_static(type(model), "load"), classmethod)


def test_a_class_missing_from_training_still_gets_a_column(cases):
    (X, y), (X_val, _y_val), _ = cases["voice"]
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
