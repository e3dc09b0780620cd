"""Late fusion: combine members' probabilities (voice, face, words, or several voice models).

Two ways in:

* :func:`fuse` - a plain function for fixed strategies (``mean``, ``weighted`` with given weights,
  ``max_confidence``, ``product``), for one sample or a batch, with missing members allowed::

      result = fuse({"voice": p_voice, "face": None}, {"voice": RAVDESS8, "face": FER7})
      result.label, result.probabilities, result.used_modalities   # ('happy', (7,), ('voice',))

* the registry's fusion classifiers (``fusion_mean``, ``fusion_weighted``, ``fusion_max_confidence``,
  ``fusion_product``, ``fusion_stacking``): fitted on the members' *validation* predictions
  (temperatures, weights, the stacker), saved and loaded like every model, and used the same way
  through their ``fuse`` method.

Members with different label sets meet in :func:`emofuse.labels.shared_label_set` (RAVDESS8 +
FER7 -> BASIC7, calm folding into neutral). A member missing for a sample is left out for that
sample and fusion renormalises over the members present; it never fails because one is missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from emofuse.fusion._core import (
    STRATEGIES,
    FusionError,
    align_members,
    apply_temperature,
    combine,
    fit_temperature,
)
from emofuse.fusion._models import FusionInput, FusionResult, LateFusion, _as_input, _result
from emofuse.fusion.stacking import StackingFusion
from emofuse.labels import shared_label_set


def create_fusion(name: str, **params: object) -> LateFusion:
    """A fusion classifier of the registry by name (``fusion_mean``, ...); other models are an error."""
    from emofuse.models import MODELS, create_model

    if name not in MODELS or MODELS[name].modality != "fusion":
        known = ", ".join(n for n, s in MODELS.items() if s.modality == "fusion")
        raise FusionError(f"{name!r} is not a fusion model; known: {known}")
    model = create_model(name, **params)
    assert isinstance(model, LateFusion)
    return model


class NoModalityError(FusionError):
    """Every member is missing for the sample: there is nothing to fuse."""


def fuse(probabilities: Mapping[str, np.ndarray | None], labels: Mapping[str, Sequence[str]], *,
         strategy: str = "mean", weights: Mapping[str, float] | None = None,
         temperatures: Mapping[str, float] | None = None, target: Sequence[str] | None = None) -> FusionResult:
    """Fuse members' probabilities, ``(k_m,)`` for one sample or ``(n, k_m)`` for a batch.

    ``labels[m]`` is member ``m``'s label set (its column order). A member given as ``None``, or a
    row of NaN, is missing and left out. ``target`` is the fused label set (default: the shared
    label set of all members named). ``weights`` (by member; required by ``weighted``) and
    ``temperatures`` (by member) come from a fit on validation data, e.g. a saved
    ``fusion_weighted`` model. Raises :class:`NoModalityError` for one sample with every member missing.
    """
    if strategy == "stacking":
        raise FusionError("stacking needs a fitted model: load_model(DIR).fuse(...) with a fitted fusion_stacking")
    if strategy not in STRATEGIES:
        raise FusionError(f"unknown fusion strategy {strategy!r}; known: {', '.join((*STRATEGIES, 'stacking'))}")
    members = tuple(probabilities)
    if not members:
        raise NoModalityError("no members to fuse")
    X, single = _as_input(probabilities, labels, members)
    present = X.present()
    if single and not present.any():
        raise NoModalityError(f"every member ({', '.join(members)}) is missing: nothing to fuse")
    target = tuple(target) if target is not None else shared_label_set(*(X.labels[m] for m in members))
    unknown = sorted(set(weights or {}) - set(members)) + sorted(set(temperatures or {}) - set(members))
    if unknown:
        raise FusionError(f"weights or temperatures for unknown member(s) {', '.join(unknown)}")
    w = None if weights is None else [float(weights.get(m, 0.0)) for m in members]
    aligned = align_members(X.probabilities, X.labels, target, members=members, temperatures=temperatures)
    return _result(combine(aligned, strategy, weights=w), target, members, present, single)


__all__ = [
    "STRATEGIES",
    "FusionError",
    "FusionInput",
    "FusionResult",
    "LateFusion",
    "NoModalityError",
    "StackingFusion",
    "align_members",
    "apply_temperature",
    "combine",
    "create_fusion",
    "fit_temperature",
    "fuse",
]
