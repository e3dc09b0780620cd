"""Classification metrics for emotion recognition, as the literature reports them.

* **WA** (weighted accuracy): plain accuracy, the share of samples classified correctly.
* **UA** (unweighted average recall, balanced accuracy): the mean of per-class recall over the
  classes present in the ground truth; robust to class imbalance, the usual headline for speech.
* **macro-F1** (and weighted-F1, MELD's headline), per-class precision / recall / F1, the
  confusion matrix (rows true, columns predicted), and the expected calibration error (ECE).

Everything is computed from the confusion matrix with numpy; the tests check it against
scikit-learn.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

ECE_BINS = 15


@dataclass(frozen=True)
class ClassScores:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Metrics:
    """Scores of one set of predictions (one fold's test set)."""

    labels: tuple[str, ...]
    n: int
    wa: float
    ua: float
    macro_f1: float
    weighted_f1: float
    per_class: dict[str, ClassScores]
    confusion: list[list[int]]
    ece: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["labels"] = list(self.labels)
        return out


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """``(n_classes, n_classes)`` counts; entry ``[i, j]`` = samples of class i predicted as j."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but y_pred has {y_pred.shape}")
    if y_true.size and (min(y_true.min(), y_pred.min()) < 0 or max(y_true.max(), y_pred.max()) >= n_classes):
        raise ValueError(f"class indices must lie in 0..{n_classes - 1}")
    return np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)


def scores_from_confusion(cm: np.ndarray) -> dict[str, Any]:
    """WA, UA, macro/weighted F1 and per-class arrays from a confusion matrix."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = _safe_div(tp, predicted)
    recall = _safe_div(tp, support)
    f1 = _safe_div(2 * precision * recall, precision + recall)
    total = cm.sum()
    present = support > 0
    return {
        "wa": float(tp.sum() / total) if total else 0.0,
        # Mean recall over classes that occur in the ground truth (a class absent from a test
        # fold has no recall to average; scikit-learn's balanced_accuracy does the same).
        "ua": float(recall[present].mean()) if present.any() else 0.0,
        # Macro-F1 over the same classes, so one fold missing a class does not score it 0.
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "weighted_f1": float((f1 * support).sum() / total) if total else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": support.astype(np.int64),
    }


def expected_calibration_error(y_true: np.ndarray, probs: np.ndarray, *, n_bins: int = ECE_BINS) -> float:
    """ECE: the confidence-weighted gap between confidence and accuracy, over equal-width bins."""
    probs = np.asarray(probs, dtype=np.float64)
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(y_true)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Bin i holds confidences in (edges[i], edges[i+1]]; confidence 0 cannot happen for a distribution.
    bins = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        in_bin = bins == b
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


def compute_metrics(
    y_true: Sequence[int] | np.ndarray,
    *,
    labels: Sequence[str],
    y_pred: Sequence[int] | np.ndarray | None = None,
    probs: np.ndarray | None = None,
) -> Metrics:
    """Score predictions given as class indices (``y_pred``) or probabilities ``(n, n_classes)``.

    With ``probs`` the prediction is the arg-max and ECE is computed too.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    if probs is not None:
        probs = np.asarray(probs, dtype=np.float64)
        if probs.shape != (len(y_true), len(labels)):
            raise ValueError(f"probs must have shape ({len(y_true)}, {len(labels)}), got {probs.shape}")
        y_pred = probs.argmax(axis=1)
    if y_pred is None:
        raise ValueError("give y_pred or probs")
    cm = confusion_matrix(y_true, np.asarray(y_pred), len(labels))
    s = scores_from_confusion(cm)
    per_class = {
        label: ClassScores(float(s["precision"][i]), float(s["recall"][i]), float(s["f1"][i]), int(s["support"][i]))
        for i, label in enumerate(labels)
    }
    return Metrics(
        labels=tuple(labels),
        n=len(y_true),
        wa=s["wa"],
        ua=s["ua"],
        macro_f1=s["macro_f1"],
        weighted_f1=s["weighted_f1"],
        per_class=per_class,
        confusion=cm.tolist(),
        ece=expected_calibration_error(y_true, probs) if probs is not None else None,
    )


def bootstrap_ci(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    n_classes: int,
    metrics: Sequence[str] = ("wa", "ua", "f1"),
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap interval of each metric, resampling test samples with replacement."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    rng = np.random.default_rng(seed)
    n = len(y_true)
    values: dict[str, list[float]] = {m: [] for m in metrics}
    for _ in range(n_resamples):
        idx = rng.integers(0, n, size=n)
        cm = confusion_matrix(y_true[idx], y_pred[idx], n_classes)
        s = scores_from_confusion(cm)
        named = {"wa": s["wa"], "ua": s["ua"], "f1": s["macro_f1"], "weighted_f1": s["weighted_f1"]}
        for m in metrics:
            values[m].append(named[m])
    alpha = (1.0 - level) / 2
    return {m: (float(np.quantile(v, alpha)), float(np.quantile(v, 1 - alpha))) for m, v in values.items()}


@dataclass(frozen=True)
class FoldSummary:
    """Metrics over folds: mean ± std (population std over folds), and a bootstrap interval on the
    pooled test predictions of all folds."""

    n_folds: int
    n_test: int
    wa_mean: float
    wa_std: float
    ua_mean: float
    ua_std: float
    f1_mean: float
    f1_std: float
    weighted_f1_mean: float
    ece_mean: float | None
    ci95: dict[str, tuple[float, float]]
    confusion: list[list[int]]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ci95"] = {k: list(v) for k, v in self.ci95.items()}
        return out


def summarize_folds(
    fold_metrics: Sequence[Metrics],
    *,
    pooled_true: np.ndarray,
    pooled_pred: np.ndarray,
    n_resamples: int = 1000,
    seed: int = 0,
) -> FoldSummary:
    """Aggregate per-fold metrics; ``pooled_*`` are all folds' test labels and predictions together."""
    if not fold_metrics:
        raise ValueError("no folds to summarize")
    labels = fold_metrics[0].labels
    wa = np.array([m.wa for m in fold_metrics])
    ua = np.array([m.ua for m in fold_metrics])
    f1 = np.array([m.macro_f1 for m in fold_metrics])
    eces = [m.ece for m in fold_metrics if m.ece is not None]
    confusion = np.sum([np.asarray(m.confusion) for m in fold_metrics], axis=0)
    return FoldSummary(
        n_folds=len(fold_metrics),
        n_test=int(sum(m.n for m in fold_metrics)),
        wa_mean=float(wa.mean()),
        wa_std=float(wa.std()),
        ua_mean=float(ua.mean()),
        ua_std=float(ua.std()),
        f1_mean=float(f1.mean()),
        f1_std=float(f1.std()),
        weighted_f1_mean=float(np.mean([m.weighted_f1 for m in fold_metrics])),
        ece_mean=float(np.mean(eces)) if eces else None,
        ci95=bootstrap_ci(pooled_true, pooled_pred, n_classes=len(labels), n_resamples=n_resamples, seed=seed),
        confusion=confusion.tolist(),
    )


def ua_score(y_idx: np.ndarray, probs: np.ndarray, n_classes: int) -> float:
    return float(scores_from_confusion(confusion_matrix(y_idx, probs.argmax(axis=1), n_classes))["ua"])


def beats_by_se(y_idx: np.ndarray, candidate: np.ndarray, reference: np.ndarray, n_classes: int, n_se: float,
                *, n_boot: int = 200, seed: int = 0, groups: np.ndarray | None = None) -> bool:
    """Does ``candidate`` beat ``reference`` in UA by more than ``n_se`` standard errors of the
    difference, estimated by a paired bootstrap over samples (fixed seed: the same data give the
    same answer)? With ``groups`` (an integer cluster per sample, e.g. its speaker) the bootstrap
    resamples whole clusters."""
    diff = ua_score(y_idx, candidate, n_classes) - ua_score(y_idx, reference, n_classes)
    if diff <= 0:
        return False
    if n_se <= 0:
        return True
    pred_c, pred_r = candidate.argmax(axis=1), reference.argmax(axis=1)
    diffs = np.array([ua_of_present(y_idx[idx], pred_c[idx]) - ua_of_present(y_idx[idx], pred_r[idx])
                      for idx in bootstrap_indices(len(y_idx), groups, n_boot=n_boot, seed=seed)])
    return diff > n_se * float(diffs.std())


def bootstrap_indices(n: int, groups: np.ndarray | None, *, n_boot: int = 200, seed: int = 0) -> Iterator[np.ndarray]:
    """``n_boot`` resamples (index arrays) of ``n`` samples, fixed seed; with ``groups`` (an integer
    cluster per sample) whole clusters are resampled (a cluster bootstrap)."""
    rng = np.random.default_rng(seed)
    clusters = None if groups is None else [np.flatnonzero(groups == g) for g in np.unique(groups)]
    for _ in range(n_boot):
        if clusters is None:
            yield rng.integers(0, n, n)
        else:
            yield np.concatenate([clusters[i] for i in rng.integers(0, len(clusters), len(clusters))])


def ua_of_present(y_idx: np.ndarray, pred: np.ndarray) -> float:
    """Mean recall over the classes present in ``y_idx`` (a bootstrap resample may lack one)."""
    present = np.unique(y_idx)
    return float(np.mean([(pred[y_idx == c] == c).mean() for c in present])) if len(present) else 0.0
