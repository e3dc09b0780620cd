import numpy as np
import pytest
from sklearn import metrics as skm

from emofuse.evaluation.metrics import (
    bootstrap_ci,
    compute_metrics,
    confusion_matrix,
    expected_calibration_error,
    summarize_folds,
)

LABELS = ("neutral", "happy", "sad", "angry")


@pytest.fixture
def predictions():
    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 4, size=300)
    # A classifier that is right 60 % of the time, with a bias towards class 1.
    y_pred = np.where(rng.random(300) < 0.6, y_true, rng.choice([1, 1, 2, 3], size=300))
    return y_true, y_pred


def test_agrees_with_scikit_learn(predictions):
    y_true, y_pred = predictions
    m = compute_metrics(y_true, y_pred=y_pred, labels=LABELS)
    assert m.wa == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert m.ua == pytest.approx(skm.balanced_accuracy_score(y_true, y_pred))
    assert m.macro_f1 == pytest.approx(skm.f1_score(y_true, y_pred, average="macro"))
    assert m.weighted_f1 == pytest.approx(skm.f1_score(y_true, y_pred, average="weighted"))
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=range(4), zero_division=0)
    for i, label in enumerate(LABELS):
        assert m.per_class[label].precision == pytest.approx(p[i])
        assert m.per_class[label].recall == pytest.approx(r[i])
        assert m.per_class[label].f1 == pytest.approx(f[i])
        assert m.per_class[label].support == s[i]
    np.testing.assert_array_equal(m.confusion, skm.confusion_matrix(y_true, y_pred, labels=range(4)))


def test_ua_ignores_classes_absent_from_the_ground_truth():
    y_true = np.array([0, 0, 1, 1])
    y_pred = np.array([0, 1, 1, 1])
    m = compute_metrics(y_true, y_pred=y_pred, labels=LABELS)
    assert m.ua == pytest.approx((0.5 + 1.0) / 2)
    assert m.ua == pytest.approx(skm.balanced_accuracy_score(y_true, y_pred))


def test_probabilities_give_argmax_and_ece():
    probs = np.array([[0.9, 0.1, 0, 0], [0.2, 0.8, 0, 0], [0.6, 0.4, 0, 0], [0.1, 0.1, 0.1, 0.7]])
    y_true = np.array([0, 1, 1, 3])
    m = compute_metrics(y_true, probs=probs, labels=LABELS)
    assert m.wa == pytest.approx(0.75)
    # Bins by confidence: 0.9 right, 0.8 right, 0.6 wrong, 0.7 right -> |1-.9|+|1-.8|+|0-.6|+|1-.7| over 4.
    assert m.ece == pytest.approx((0.1 + 0.2 + 0.6 + 0.3) / 4)
    with pytest.raises(ValueError, match="shape"):
        compute_metrics(y_true, probs=probs[:, :3], labels=LABELS)


def test_calibrated_probabilities_have_small_ece_and_overconfident_ones_do_not():
    rng = np.random.default_rng(0)
    n = 20000
    confidence = rng.uniform(0.5, 1.0, n)
    probs = np.stack([confidence, 1 - confidence], axis=1)  # always predicts class 0
    y_true = np.where(rng.random(n) < confidence, 0, 1)  # ... and is right with that probability
    assert expected_calibration_error(y_true, probs) < 0.02
    y_coin = rng.integers(0, 2, n)  # same confidences, coin-flip truth: overconfident by ~0.25
    assert expected_calibration_error(y_coin, probs) == pytest.approx(0.25, abs=0.02)


def test_confusion_matrix_validates_input():
    with pytest.raises(ValueError, match=r"0\.\.3"):
        confusion_matrix(np.array([0, 4]), np.array([0, 1]), 4)
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(np.array([0, 1]), np.array([0]), 4)


def test_bootstrap_interval_brackets_the_point_estimate(predictions):
    y_true, y_pred = predictions
    ci = bootstrap_ci(y_true, y_pred, n_classes=4, n_resamples=400, seed=3)
    point = compute_metrics(y_true, y_pred=y_pred, labels=LABELS)
    for name, value in (("wa", point.wa), ("ua", point.ua), ("f1", point.macro_f1)):
        low, high = ci[name]
        assert low < value < high
        assert 0.03 < high - low < 0.25  # n=300: a few points wide, not degenerate
    assert bootstrap_ci(y_true, y_pred, n_classes=4, n_resamples=50, seed=3) == \
        bootstrap_ci(y_true, y_pred, n_classes=4, n_resamples=50, seed=3)


def test_summarize_folds(predictions):
    y_true, y_pred = predictions
    parts = np.array_split(np.arange(300), 3)
    fold_metrics = [compute_metrics(y_true[p], y_pred=y_pred[p], labels=LABELS) for p in parts]
    summary = summarize_folds(fold_metrics, pooled_true=y_true, pooled_pred=y_pred, n_resamples=100)
    assert summary.n_folds == 3 and summary.n_test == 300
    assert summary.ua_mean == pytest.approx(np.mean([m.ua for m in fold_metrics]))
    assert summary.ua_std == pytest.approx(np.std([m.ua for m in fold_metrics]))
    assert np.sum(summary.confusion) == 300
    assert summary.ece_mean is None
