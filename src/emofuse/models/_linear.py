"""The logistic-regression head both ``*_logreg`` models share: standardise, fit, and keep every
column of the label set even for classes the training data lacked."""

from __future__ import annotations

from typing import Any

import numpy as np


class StandardisedLogReg:
    """Multinomial logistic regression on standardised features, stored as plain arrays (no pickle)."""

    def __init__(self, *, C: float, max_iter: int) -> None:
        self.C = C
        self.max_iter = max_iter

    def fit(self, features: np.ndarray, targets: np.ndarray) -> StandardisedLogReg:
        """``features`` (n, d), ``targets`` (n,) class indices."""
        from sklearn.linear_model import LogisticRegression

        self.mean_ = features.mean(axis=0)
        self.scale_ = features.std(axis=0) + 1e-6
        model = LogisticRegression(C=self.C, max_iter=self.max_iter, class_weight="balanced")
        model.fit((features - self.mean_) / self.scale_, targets)
        self.coef_, self.intercept_ = model.coef_, model.intercept_
        self.classes_ = model.classes_.astype(np.int64)
        return self

    def predict_proba(self, features: np.ndarray, n_classes: int) -> np.ndarray:
        """``(n, n_classes)``; a class never seen in training gets probability 0."""
        logits = ((features - self.mean_) / self.scale_) @ self.coef_.T + self.intercept_
        if logits.shape[1] == 1:  # scikit-learn's binary form: one column, for classes_[1]
            logits = np.concatenate([-logits, logits], axis=1) / 2
        logits = logits - logits.max(axis=1, keepdims=True)
        present = np.exp(logits)
        present /= present.sum(axis=1, keepdims=True)
        probs = np.zeros((len(features), n_classes))
        probs[:, self.classes_] = present
        return probs

    def arrays(self) -> dict[str, Any]:
        return {"coef": self.coef_, "intercept": self.intercept_, "classes": self.classes_,
                "mean": self.mean_, "scale": self.scale_}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], *, C: float, max_iter: int = 0) -> StandardisedLogReg:
        head = cls(C=C, max_iter=max_iter)
        head.coef_, head.intercept_, head.classes_ = arrays["coef"], arrays["intercept"], arrays["classes"]
        head.mean_, head.scale_ = arrays["mean"], arrays["scale"]
        return head
