"""The shared linear head: the ridge solver against scikit-learn, its leave-one-out scores, its temperature."""

from __future__ import annotations

import numpy as np
import pytest

from emofuse.models.linear import StandardisedLogReg, ridge_fit


@pytest.mark.parametrize("n_features", [40, 10])  # more features than samples (the kernel), fewer (the Gram matrix)
def test_ridge_fit_matches_scikit_learn_and_its_leave_one_out_is_exact(n_features):
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(25, n_features)), rng.uniform(0.5, 2.0, size=25)
    Y = rng.normal(size=(25, 3))
    W, b, loo = ridge_fit(x, Y, w, alpha=3.0)
    reference = Ridge(alpha=3.0).fit(x, Y, sample_weight=w)
    np.testing.assert_allclose(W, reference.coef_.T, atol=1e-10)
    np.testing.assert_allclose(b, reference.intercept_, atol=1e-10)
    brute = np.stack([Ridge(alpha=3.0).fit(np.delete(x, i, 0), np.delete(Y, i, 0), sample_weight=np.delete(w, i))
                      .predict(x[i:i + 1])[0] for i in range(len(x))])
    np.testing.assert_allclose(loo, brute, atol=1e-9)


def test_ridge_head_decides_as_ridge_classifier_with_a_held_out_temperature():
    from sklearn.linear_model import RidgeClassifier

    rng = np.random.default_rng(1)
    centres = rng.normal(scale=1.5, size=(4, 30))
    targets = np.repeat(np.arange(4), [30, 20, 15, 15])  # unbalanced
    x = centres[targets] + rng.normal(size=(len(targets), 30))
    head = StandardisedLogReg(C=0.1, max_iter=0, solver="ridge").fit(x, targets)
    standardised = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-6)
    reference = RidgeClassifier(alpha=10.0, class_weight="balanced").fit(standardised, targets)
    probs = head.predict_proba(x, 5)  # a fifth label never seen in training gets probability 0
    assert probs.shape == (len(x), 5) and np.allclose(probs.sum(axis=1), 1) and (probs[:, 4] == 0).all()
    np.testing.assert_array_equal(probs.argmax(axis=1), reference.predict(standardised))
    np.testing.assert_allclose(head.coef_, head.temperature_ * reference.coef_, atol=1e-9)
    # Separable classes earn a confident temperature; labels unrelated to the features a timid one.
    shuffled = StandardisedLogReg(C=0.1, max_iter=0, solver="ridge").fit(x, rng.permutation(targets))
    assert head.temperature_ > 5 * shuffled.temperature_
    again = StandardisedLogReg.from_arrays(head.arrays(), C=0.1)
    np.testing.assert_allclose(again.predict_proba(x, 5), probs)
    with pytest.raises(ValueError, match="solver must be one of"):
        StandardisedLogReg(C=1.0, max_iter=1, solver="svm")
