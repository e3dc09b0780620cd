"""The linear head the ``*_logreg`` and Whisper models share: standardise, fit, and keep every
column of the label set even for classes the training data lacked. Besides logistic regression it
fits a ridge classifier whose scores become probabilities through a temperature fitted on its exact
leave-one-out scores (``solver="ridge"``), stored in the same arrays."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

SOLVERS = ("sklearn", "torch", "ridge")


class StandardisedLogReg:
    """Multinomial logistic regression on standardised features, stored as plain arrays (no pickle).

    ``solver="ridge"``: a ridge classifier instead (one-vs-rest least squares on ±1 targets, class
    balanced as scikit-learn's ``RidgeClassifier``, ``alpha = 1 / C``), solved through the clips x clips
    kernel when features outnumber clips (as pooled Whisper states do); its scores times one temperature,
    chosen for the lowest NLL of the *leave-one-out* scores (exact for a linear smoother, so no clip
    rates itself), are the logits. It predicts, saves and exports like the logistic head."""

    def __init__(self, *, C: float, max_iter: int, solver: str = "sklearn", balanced: bool = True) -> None:
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {', '.join(SOLVERS)}, not {solver!r}")
        self.C = C
        self.max_iter = max_iter
        self.solver = solver
        self.balanced = balanced  # weight classes by inverse frequency (scikit-learn's "balanced")

    def fit(self, features: np.ndarray, targets: np.ndarray) -> StandardisedLogReg:
        """``features`` (n, d), ``targets`` (n,) class indices.

        ``solver="torch"`` minimises the same objective as scikit-learn's multinomial, class-balanced
        L2 logistic regression (``C * sum_i w_i CE_i + ||W||^2 / 2``, intercept unpenalised) with
        full-batch L-BFGS: several times faster for thousands of features (pooled Whisper states).
        """
        self.mean_ = features.mean(axis=0)
        self.scale_ = features.std(axis=0) + 1e-6
        standardised = (features - self.mean_) / self.scale_
        if self.solver == "ridge":
            self.coef_, self.intercept_, self.classes_, self.temperature_ = _ridge_softmax(
                standardised, targets, alpha=1.0 / self.C, balanced=self.balanced)
            return self
        if self.solver == "torch":
            self.coef_, self.intercept_, self.classes_ = _torch_logreg(standardised, targets, C=self.C,
                                                                       max_iter=self.max_iter, balanced=self.balanced)
            return self
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=self.C, max_iter=self.max_iter,
                                   class_weight="balanced" if self.balanced else None)
        model.fit(standardised, targets)
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


def _balanced_weights(t: np.ndarray, n_classes: int) -> np.ndarray:
    """scikit-learn's "balanced" class weights, ``n / (n_classes * count)``, for targets ``t`` in 0..n_classes-1."""
    return len(t) / (n_classes * np.bincount(t, minlength=n_classes))


def _torch_logreg(x: np.ndarray, targets: np.ndarray, *, C: float, max_iter: int,
                  balanced: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import torch

    classes = np.unique(targets)
    t = torch.from_numpy(np.searchsorted(classes, targets))
    weight = torch.from_numpy(_balanced_weights(t.numpy(), len(classes))).float() if balanced else None
    a = torch.from_numpy(x.astype(np.float32))
    W = torch.zeros(a.shape[1], len(classes), requires_grad=True)
    b = torch.zeros(len(classes), requires_grad=True)
    optimizer = torch.optim.LBFGS([W, b], lr=1, max_iter=max_iter, tolerance_grad=1e-6, tolerance_change=1e-9,
                                  history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = C * torch.nn.functional.cross_entropy(a @ W + b, t, weight=weight, reduction="sum") \
            + 0.5 * (W**2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return W.detach().numpy().T.astype(np.float64), b.detach().numpy().astype(np.float64), classes.astype(np.int64)


def ridge_fit(x: np.ndarray, Y: np.ndarray, w: np.ndarray, *, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted ridge regression of ``Y`` (n, k) on ``x`` (n, d) with an unpenalised intercept:
    ``min sum_i w_i ||Y_i - x_i W - b||^2 + alpha ||W||^2``. Returns ``W`` (d, k), ``b`` (k,) and the
    exact leave-one-out predictions (n, k), each sample's from the fit without it (same weights for
    the rest). Solved through the n x n kernel when features outnumber samples (pooled Whisper
    states), else through the d x d Gram matrix."""
    sw = w / w.sum()
    x_bar, y_bar = sw @ x, sw @ Y
    root = np.sqrt(w)[:, None]
    A, B = (x - x_bar) * root, (Y - y_bar) * root
    if len(x) <= x.shape[1]:
        evals, V = np.linalg.eigh(A @ A.T)
        evals = np.clip(evals, 0.0, None)
        W = A.T @ (V @ ((V.T @ B) / (evals + alpha)[:, None]))
        centred_leverage = (V**2) @ (evals / (evals + alpha))
    else:
        evals, V = np.linalg.eigh(A.T @ A)
        evals = np.clip(evals, 0.0, None)
        W = V @ ((V.T @ (A.T @ B)) / (evals + alpha)[:, None])
        centred_leverage = ((A @ V) ** 2) @ (1.0 / (evals + alpha))
    fitted = x @ W + (y_bar - x_bar @ W)
    leverage = sw + centred_leverage  # the hat matrix's diagonal, intercept included
    loo = Y - (Y - fitted) / np.maximum(1.0 - leverage, 1e-9)[:, None]
    return W, y_bar - x_bar @ W, loo


def _ridge_softmax(x: np.ndarray, targets: np.ndarray, *, alpha: float,
                   balanced: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    classes = np.unique(targets)
    t = np.searchsorted(classes, targets)
    w = _balanced_weights(t, len(classes))[t] if balanced else np.ones(len(t))
    Y = -np.ones((len(t), len(classes)))
    Y[np.arange(len(t)), t] = 1.0
    W, b, loo = ridge_fit(x.astype(np.float64), Y, w, alpha=alpha)
    temperature = 1.0
    if len(classes) > 1:
        def nll(T: float) -> float:
            z = T * loo
            z = z - z.max(axis=1, keepdims=True)
            return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(t)), t]))

        temperature = min(np.geomspace(1e-3, 1e3, 121), key=nll)
    return (temperature * W).T, temperature * b, classes.astype(np.int64), float(temperature)


class SelectedHead(NamedTuple):
    """What :func:`fit_logreg_select` chose: the final head, its C, validation score per C tried,
    and held-out validation probabilities (None without validation data)."""

    head: StandardisedLogReg
    C: float
    scores: dict[float, float]
    val_proba: np.ndarray | None


def fit_logreg_select(feats: np.ndarray, targets: np.ndarray, labels: Sequence[str], *, C: float | str,
                C_grid: Sequence[float], max_iter: int, val: tuple[np.ndarray, np.ndarray] | None,
                name: str, refit_with_val: bool = False, solver: str = "torch", balanced: bool = True,
                select_by: str = "ua", refit_extra: tuple[np.ndarray, np.ndarray] | None = None,
                val_views: Sequence[np.ndarray] = ()) -> SelectedHead:
    """Fit the head; with ``C="val"``, pick C by validation UA first (ties go to the stronger
    regularisation; ``select_by="weighted_f1"`` for MELD-style headlines). ``refit_with_val`` then fits the final head on training and validation data
    together (the validation speakers are never test speakers, so nothing leaks); ``refit_extra``
    joins that final fit only (augmented copies of the validation clips). ``val_views``: other
    views of the validation clips (e.g. their speed copies, for test-time augmentation), each
    ``val[0]``'s shape; the validation probabilities are then the mean over ``val[0]`` and these, for
    choosing C and in ``val_proba``, as the model predicts.

    The result's ``val_proba`` holds the validation probabilities of a head at the chosen C fitted
    without the validation data: held-out predictions even when the final head is refitted with
    them (late fusion fits its weights on these)."""
    from emofuse.errors import ConfigError
    from emofuse.evaluation.metrics import compute_metrics

    def fit(c: float, x: np.ndarray, t: np.ndarray) -> StandardisedLogReg:
        return StandardisedLogReg(C=c, max_iter=max_iter, solver=solver, balanced=balanced).fit(x, t)

    def val_predict(head: StandardisedLogReg) -> np.ndarray:  # as the model predicts: mean over the views
        assert val is not None
        return np.mean([head.predict_proba(v, len(labels)) for v in (val[0], *val_views)], axis=0)

    if val_views and (val is None or any(v.shape != val[0].shape for v in val_views)):
        raise ConfigError(f"{name}: val_views need validation features, each view of their shape")
    scores: dict[float, float] = {}
    val_probas: dict[float, np.ndarray] = {}
    if C == "val":
        if val is None:
            raise ConfigError(f"{name}: C='val' needs validation data")
        for c in C_grid:
            val_probas[c] = val_predict(fit(c, feats, targets))
            pred = val_probas[c].argmax(axis=1)
            scores[c] = getattr(compute_metrics(val[1], y_pred=pred, labels=list(labels)), select_by)
        C = max(scores, key=lambda c: (scores[c], -c))
    C = float(C)
    if val is None:
        return SelectedHead(fit(C, feats, targets), C, scores, None)
    if not refit_with_val:
        head = fit(C, feats, targets)
        val_proba = val_probas[C] if C in val_probas else val_predict(head)
        return SelectedHead(head, C, scores, val_proba)
    val_proba = val_probas[C] if C in val_probas else val_predict(fit(C, feats, targets))
    feats, targets = np.concatenate([feats, val[0]]), np.concatenate([targets, val[1]])
    if refit_extra is not None:
        feats, targets = np.concatenate([feats, refit_extra[0]]), np.concatenate([targets, refit_extra[1]])
    return SelectedHead(fit(C, feats, targets), C, scores, val_proba)
