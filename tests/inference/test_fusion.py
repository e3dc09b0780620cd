from __future__ import annotations

import numpy as np
import pytest

from emofuse.inference.fusion import FUSED_LABELS, fuse_modalities
from emofuse.inference.results import ModalityResult, status_only
from emofuse.labels import BASIC7, FER7, RAVDESS8


def _result(labels: tuple[str, ...], probs: list[float]) -> ModalityResult:
    return ModalityResult(status="ok", labels=labels, probabilities=tuple(probs))


def test_mean_of_aligned_modalities_with_calm_folded_into_neutral() -> None:
    voice = _result(RAVDESS8, [0.1, 0.5, 0.1, 0.1, 0.1, 0.1, 0.0, 0.0])  # calm 0.5
    face = _result(FER7, [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0])  # happy
    fused = fuse_modalities({"voice": voice, "face": face, "words": status_only("unavailable")})
    assert fused.labels == FUSED_LABELS == BASIC7
    p = dict(zip(fused.labels, fused.probabilities, strict=True))
    assert p["neutral"] == pytest.approx((0.1 + 0.5) / 2)
    assert p["happy"] == pytest.approx((0.1 + 1.0) / 2)
    assert sum(fused.probabilities) == pytest.approx(1.0)
    assert fused.detail == "mean of voice, face"


def test_modalities_without_an_answer_take_no_part() -> None:
    face = _result(FER7, list(np.eye(7)[6]))  # neutral
    fused = fuse_modalities({"voice": status_only("no_speech"), "face": face})
    assert fused.label == "neutral" and fused.confidence == pytest.approx(1.0)


def test_nothing_to_fuse_says_why() -> None:
    assert fuse_modalities({"voice": status_only("absent"), "face": status_only("no_face")}).status == "no_face"
    assert fuse_modalities({"voice": status_only("absent"), "face": status_only("unavailable")}).status == "absent"
