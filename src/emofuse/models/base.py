"""The one classifier contract every model in the registry follows (scikit-learn style).

* ``__init__`` stores parameters only;
* ``fit(X, y, *, labels, X_val=None, y_val=None)`` learns and returns ``self``; ``y`` holds canonical
  label names, ``labels`` fixes the column order (a class absent from ``y`` still gets a column);
* ``predict_proba(X)`` returns ``(len(X), len(labels_))`` probabilities whose rows sum to 1, columns
  in ``labels_`` order, and refuses to run before ``fit`` (:class:`NotFittedError`);
* ``save(directory)`` writes safetensors + JSON; ``load(directory)`` (a classmethod) reads it back.

What ``X`` holds depends on the modality: for voice models, 16 kHz mono float32 waveforms or paths
to audio files (paths let the feature cache skip work it has done before).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from emofuse.errors import EmofuseError

if TYPE_CHECKING:
    import numpy as np


class NotFittedError(EmofuseError):
    """predict_proba or save was called on a model that has not been fitted."""


@runtime_checkable
class Classifier(Protocol):
    """What every registry model offers, and what callers (the experiment runner, the study, the
    Predictor, the contract test) may rely on without looking at the class."""

    name: str
    labels_: tuple[str, ...]

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters that make this model what it is (JSON-serialisable; recorded in runs)."""
        ...

    def fit(self, X: Sequence[Any], y: Sequence[str], *, labels: Sequence[str],
            X_val: Sequence[Any] | None = None, y_val: Sequence[str] | None = None,
            log_path: str | Path | None = None, state_dir: str | Path | None = None) -> Classifier:
        """Learn; ``log_path`` (JSON lines per epoch) and ``state_dir`` (resumable training state) are
        used by models that train epoch by epoch and ignored by the others."""
        ...

    def predict_proba(self, X: Sequence[Any]) -> np.ndarray: ...

    def save(self, directory: str | Path) -> None: ...

    @classmethod
    def load(cls, directory: str | Path, **kwargs: Any) -> Classifier: ...


def label_targets(y: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Canonical label names -> integer targets in ``labels`` order; an unknown name is an error."""
    import numpy as np

    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted(set(y) - set(index))
    if unknown:
        raise EmofuseError(f"label(s) {', '.join(unknown)} not in the model's label set {tuple(labels)}")
    return np.array([index[v] for v in y], dtype=np.int64)


def check_fitted(model: Any) -> None:
    if not getattr(model, "labels_", None):
        raise NotFittedError(f"{type(model).__name__} is not fitted: call fit() or load a checkpoint first")
