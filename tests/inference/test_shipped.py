"""The default models shipped inside the package: present, small, documented, and working."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from emofuse.inference import Predictor
from emofuse.labels import FER7, RAVDESS8
from emofuse.models.shipped import assets_dir, render_model_card, shipped_model_dir
from tests._predictors import astronaut, voiced

SHIPPED = {"voice": RAVDESS8, "face": FER7}


@pytest.mark.parametrize("name", ["voice", "face", "text"])
def test_card_commands_name_no_absolute_path(name: str) -> None:
    folder = shipped_model_dir(name)
    if folder is None:
        pytest.skip(f"no shipped {name} model")
    command = json.loads((folder / "card.json").read_text())["command"]
    assert not [word for word in command.split() if word.startswith("/")], command


@pytest.fixture(scope="module")
def shipped() -> Predictor:
    return Predictor.from_shipped(words=False)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_model_card_is_rendered_from_measured_numbers(name: str) -> None:
    folder = shipped_model_dir(name)
    assert folder is not None, f"no shipped {name} model in {assets_dir()}"
    card = json.loads((folder / "card.json").read_text())
    assert (folder / "MODEL_CARD.md").read_text() == render_model_card(card)
    assert tuple(card["labels"]) == SHIPPED[name]
    assert 0 < card["measured"]["wa"] <= 1 and 0 < card["measured"]["ua"] <= 1
    assert card["measured"]["n"] >= 240  # a real held-out test set
    assert "scripts/train_default_models.py" in card["command"]
    licence = card["data"]["licence"]
    assert ("CC BY-NC-SA 4.0" in licence) if name == "voice" else ("FER2013" in licence)


def test_weights_stay_small() -> None:
    total = sum(p.stat().st_size for p in assets_dir().rglob("*.safetensors"))
    assert total <= 50 * 2**20, f"{total / 2**20:.1f} MB of shipped weights"


def test_shipped_predictor_answers(shipped: Predictor) -> None:
    pred = shipped.predict(audio=voiced("05", 2.0), image=astronaut())
    assert pred.modalities["voice"].status == "ok" and pred.modalities["voice"].labels == RAVDESS8
    assert pred.modalities["face"].status == "ok" and pred.modalities["face"].labels == FER7
    assert sum(pred.fused.probabilities) == pytest.approx(1.0)
    assert {m.modality: m.source for m in shipped.models()}.keys() == {"voice", "face"}
    assert all(m.card for m in shipped.models())


def test_shipped_voice_on_real_clips(shipped: Predictor, real_data: Path) -> None:
    """On one clip per actor and emotion of its own training data it must be right far above chance
    (8 classes): a check that the features and weights load as trained, not a measure of accuracy."""
    from emofuse.data import load_dataset

    dataset = load_dataset("ravdess", real_data / "ravdess-speech-16k")
    picked = {}
    for s in dataset.samples:
        picked.setdefault((s.speaker, s.label), s)
    samples = list(picked.values())[::4]
    waveforms = [shipped.load_audio(s.path) for s in samples]
    results = shipped.voice_results(waveforms)
    assert all(r.status == "ok" for r in results)
    accuracy = np.mean([r.label == s.label for r, s in zip(results, samples, strict=True)])
    assert accuracy > 0.5


def test_shipped_face_on_private_test(real_data: Path) -> None:
    """Accuracy on 400 PrivateTest crops is near the card's number for all 3,589."""
    from emofuse.data import load_dataset
    from emofuse.models import load_model

    folder = shipped_model_dir("face")
    assert folder is not None
    card = json.loads((folder / "card.json").read_text())
    dataset = load_dataset("fer2013", real_data / "fer2013")
    private = [s for s in dataset.samples if s.split == "PrivateTest"][::9]
    model = load_model(folder)
    probs = model.predict_proba([s.path for s in private])
    accuracy = np.mean([model.labels_[i] == s.label for i, s in zip(probs.argmax(axis=1), private, strict=True)])
    assert abs(accuracy - card["measured"]["wa"]) < 0.08


def test_shipped_voice_adapts_to_a_speaker(shipped: Predictor) -> None:
    clips = [voiced(code, 1.0) for code in ("01", "03", "05", "04", "02", "06")]
    speaker = shipped.new_speaker()
    assert speaker is not None and speaker.min_clips == 4  # the shipped voice model has a speaker head
    adapted = shipped.voice_results(clips, speaker=speaker)
    plain = shipped.voice_results(clips)
    assert speaker.n == len(clips)
    assert [r.detail for r in adapted[:3]] == ["", "", ""]
    np.testing.assert_allclose([r.probabilities for r in adapted[:3]], [r.probabilities for r in plain[:3]], atol=1e-12)
    assert [r.detail for r in adapted[3:]] == [f"adapted to the speaker from {k} clip(s) heard" for k in (4, 5, 6)]
    assert all(sum(r.probabilities) == pytest.approx(1.0) for r in adapted)
    assert adapted[5].probabilities != plain[5].probabilities
