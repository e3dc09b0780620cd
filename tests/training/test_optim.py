"""The loss the loop optimises: class weights and soft-target cross-entropy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emofuse.training.optim import WarmupCosine, class_weights, soft_cross_entropy


def test_class_weights_and_weighted_loss():
    w = class_weights(np.array([0, 0, 0, 1]), 3)
    assert w[0] == pytest.approx(4 / (2 * 3)) and w[1] == pytest.approx(4 / 2) and w[2] == 0
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    targets = torch.eye(3)[:2]
    plain = soft_cross_entropy(logits, targets, None)
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1]))
    torch.testing.assert_close(plain, expected)
    assert soft_cross_entropy(logits, targets, torch.tensor([1.0, 1.0, 1.0])) == pytest.approx(float(expected))


def test_warm_up_then_cosine_down_to_one_percent():
    schedule = WarmupCosine(warmup_steps=10, total_steps=110)
    assert schedule(0) == pytest.approx(0.01) and schedule(5) == pytest.approx(0.505)
    assert schedule(10) == pytest.approx(1.0) and schedule(60) == pytest.approx(0.505)
    assert schedule(110) == pytest.approx(0.01) and schedule(500) == pytest.approx(0.01)
