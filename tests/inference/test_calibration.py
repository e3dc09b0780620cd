"""Calibration: a temperature and an uncertainty threshold fitted on held-out answers, applied by the
Predictor to every answer of a model whose card carries them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from emofuse.evaluation.metrics import expected_calibration_error
from emofuse.inference import Predictor
from emofuse.inference.calibration import Calibration, fit_calibration, uncertain_threshold, with_test_ece
from tests._predictors import astronaut, tiny_model_dirs

__all__ = ["tiny_model_dirs"]


def _overconfident(n: int, seed: int, k: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.standard_normal((n, k)) * 2
    logits[np.arange(n), y] += rng.uniform(0, 4, n)
    p = np.exp(3 * logits)  # three times too sharp
    return p / p.sum(axis=1, keepdims=True), y


def test_temperature_fixes_overconfidence_on_other_data():
    labels = [str(i) for i in range(7)]
    fit_p, fit_y = _overconfident(3000, 0)
    test_p, test_y = _overconfident(3000, 1)
    calibration = with_test_ece(fit_calibration(fit_p, fit_y, labels, fitted_on="validation"), test_p, test_y,
                                tested_on="test")
    assert calibration.temperature > 2
    assert calibration.ece_before > 0.2 and calibration.ece_after < 0.05
    assert calibration.ece_after == pytest.approx(expected_calibration_error(test_y, calibration.apply(test_p)),
                                                  abs=1e-4)
    np.testing.assert_array_equal(calibration.apply(test_p).argmax(axis=1), test_p.argmax(axis=1))


def test_threshold_is_where_answers_stop_being_right_more_often_than_wrong():
    confidence = np.repeat(np.arange(0.15, 1.0, 0.1), 2000)  # accuracy will equal confidence
    rng = np.random.default_rng(0)
    correct = rng.random(confidence.size) < confidence
    k = 10  # the top class 0 holds `confidence`, the other nine share the rest
    probs = np.repeat(((1 - confidence) / (k - 1))[:, None], k, axis=1)
    probs[:, 0] = confidence
    y = np.where(correct, 0, rng.integers(1, k, confidence.size))
    threshold = uncertain_threshold(probs, y)
    assert 0.4 <= threshold <= 0.6
    assert uncertain_threshold(probs, np.zeros_like(y)) == 0.0  # always right: never uncertain
    assert uncertain_threshold(probs, np.ones_like(y)) == 1.0  # always wrong: always uncertain


def test_predictor_applies_the_card(tiny_model_dirs: dict[str, Path], tmp_path: Path) -> None:
    plain = Predictor.from_shipped(voice_dir=tiny_model_dirs["voice"], face_dir=tiny_model_dirs["face"], words=False)
    face_dir = tmp_path / "face"
    shutil.copytree(tiny_model_dirs["face"], face_dir)
    calibration = Calibration(temperature=3.0, uncertain_below=0.99, fitted_on="test fixture")
    (face_dir / "card.json").write_text(json.dumps({"calibration": calibration.to_dict()}))
    calibrated = Predictor.from_shipped(voice_dir=tiny_model_dirs["voice"], face_dir=face_dir, words=False)
    before = plain.predict(image=astronaut()).modalities["face"]
    after = calibrated.predict(image=astronaut())
    face = after.modalities["face"]
    assert not before.uncertain and face.uncertain and after.fused.uncertain
    assert face.label == before.label and face.confidence < before.confidence
    np.testing.assert_allclose(face.probabilities, calibration.apply(np.array([before.probabilities]))[0], atol=1e-9)
    assert face.to_dict()["uncertain"] is True
