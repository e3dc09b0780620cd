"""Confidence that means something: a temperature fitted on held-out data, and an ``uncertain`` rule.

A model's top probability is its confidence. Fitted on held-out speakers (voice) or FER2013's
PublicTest (face), never on test data:

* **temperature** ``T``: probabilities become ``softmax(log(p) / T)``, the ``T`` that minimises the
  negative log-likelihood of the held-out labels (:func:`emofuse.fusion.fit_temperature`). It keeps
  every ranking (the answer never changes) and makes a confidence of 0.7 right about 70 % of the
  time; the expected calibration error (ECE) before and after is measured on test data.
* **uncertain**: an answer whose calibrated confidence is below ``uncertain_below`` is shown as
  uncertain. The threshold is the lowest confidence from which on held-out answers were right at
  least as often as wrong: in bins of 0.05 of calibrated confidence, the first bin from which
  accuracy stays at or above 50 % (a bin with fewer than 20 answers is judged together with the
  bin below it). Below it,
  the model was wrong more often than right.

The numbers live in the model's ``card.json`` under ``calibration``; the Predictor applies them to
every answer of that model (``predict``, the REST routes, the live page).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

BIN_WIDTH = 0.05
MIN_BIN = 20


@dataclass(frozen=True)
class Calibration:
    temperature: float = 1.0
    uncertain_below: float = 0.0
    fitted_on: str = ""
    n_fit: int = 0
    ece_before: float | None = None  # on test data
    ece_after: float | None = None
    tested_on: str = ""

    @classmethod
    def from_card(cls, card: Mapping[str, Any]) -> Calibration:
        data = card.get("calibration") or {}
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def apply(self, probs: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, same shape; the arg-max never changes."""
        from emofuse.fusion import apply_temperature

        probs = np.asarray(probs, dtype=np.float64)
        if self.temperature == 1.0:
            return probs
        return apply_temperature(probs.reshape(-1, probs.shape[-1]), self.temperature).reshape(probs.shape)

    def uncertain(self, probs: np.ndarray) -> np.ndarray:
        """``(n,)`` True where the (already calibrated) top probability is below the threshold."""
        return np.asarray(probs, dtype=np.float64).reshape(-1, np.shape(probs)[-1]).max(axis=1) < self.uncertain_below


def uncertain_threshold(probs: np.ndarray, y: np.ndarray) -> float:
    """The lowest calibrated confidence from which held-out accuracy stays >= 50 % (rule above)."""
    confidence = np.asarray(probs).max(axis=1)
    correct = np.asarray(probs).argmax(axis=1) == np.asarray(y)
    n_bins = round(1 / BIN_WIDTH)
    bin_of = np.minimum((confidence / BIN_WIDTH).astype(int), n_bins - 1)  # bin b holds [b, b + 1) * width
    threshold, pending = 1.0, np.zeros(len(confidence), dtype=bool)
    for b in range(n_bins - 1, -1, -1):  # from the most confident bin down
        pending |= bin_of == b
        if pending.sum() < MIN_BIN and b > 0:
            continue  # too few answers to judge: merged with the bin below
        if pending.any() and correct[pending].mean() < 0.5:
            break
        threshold, pending = b * BIN_WIDTH, np.zeros(len(confidence), dtype=bool)
    return round(threshold, 2)


def fit_calibration(probs: np.ndarray, y: np.ndarray, labels: Sequence[str], *, fitted_on: str) -> Calibration:
    """Temperature and threshold from held-out ``probs`` ``(n, k)`` and targets ``y`` (indices into ``labels``)."""
    from emofuse.fusion import fit_temperature

    temperature = fit_temperature(np.asarray(probs, dtype=np.float64), np.asarray(y), source=labels, target=labels)
    calibrated = Calibration(temperature=temperature).apply(probs)
    return Calibration(temperature=round(temperature, 4), uncertain_below=uncertain_threshold(calibrated, y),
                       fitted_on=fitted_on, n_fit=len(y))


def with_test_ece(calibration: Calibration, probs: np.ndarray, y: np.ndarray, *, tested_on: str) -> Calibration:
    """``calibration`` with ECE before and after it measured on test ``probs`` and targets ``y``."""
    from emofuse.evaluation.metrics import expected_calibration_error

    before = expected_calibration_error(y, np.asarray(probs, dtype=np.float64))
    after = expected_calibration_error(y, calibration.apply(probs))
    return Calibration(**{**calibration.to_dict(), "ece_before": round(before, 4), "ece_after": round(after, 4),
                          "tested_on": tested_on})
