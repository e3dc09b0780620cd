"""Fusion strategies as classifiers of the registry (``fusion_mean``, ``fusion_weighted``, ...).

They follow the model contract of :mod:`emofuse.models.base`, with one difference in what ``X``
is: a :class:`FusionInput`, the members' probabilities for the same samples. ``fit(X, y, labels=...)``
learns from ``X`` what the strategy needs (per-member temperatures, weights, the stacker); pass it
the members' predictions on *validation* data, never on test data.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emofuse.evaluation.metrics import beats_by_se, ua_score
from emofuse.fusion._core import (
    Aligned,
    FusionError,
    align_members,
    combine,
    fit_temperature,
    present_rows,
)
from emofuse.models.base import check_fitted, label_targets


@dataclass(frozen=True)
class FusionInput:
    """Members' probabilities for the same ``n`` samples: what a fusion classifier is fed.

    ``probabilities[m]`` is ``(n, len(labels[m]))``, columns in member ``m``'s label order; a row of
    NaN says the member is missing for that sample.
    """

    probabilities: Mapping[str, np.ndarray]
    labels: Mapping[str, tuple[str, ...]]
    members: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        members = self.members or tuple(self.probabilities)
        object.__setattr__(self, "members", tuple(members))
        sizes = {len(p) for p in self.probabilities.values()}
        if len(sizes) > 1:
            raise FusionError(f"members disagree on the number of samples: {sorted(sizes)}")

    def __len__(self) -> int:
        return len(next(iter(self.probabilities.values()))) if self.probabilities else 0

    def take(self, idx: np.ndarray | Sequence[int]) -> FusionInput:
        index = np.asarray(idx, dtype=np.int64)
        return FusionInput({m: np.asarray(p)[index] for m, p in self.probabilities.items()}, self.labels,
                           self.members)

    def without(self, member: str, rows: np.ndarray) -> FusionInput:
        """A copy with ``member`` missing (NaN) for the samples where ``rows`` ``(n,)`` is True."""
        probs = dict(self.probabilities)
        probs[member] = np.where(np.asarray(rows)[:, None], np.nan, np.asarray(probs[member], dtype=np.float64))
        return FusionInput(probs, self.labels, self.members)

    def present(self) -> np.ndarray:
        """``(n, M)``: which members are present for which samples, columns in ``members`` order."""
        n = len(self)
        return np.stack([present_rows(np.asarray(self.probabilities[m], dtype=np.float64))
                         if m in self.probabilities else np.zeros(n, dtype=bool) for m in self.members], axis=1)


@dataclass(frozen=True)
class FusionResult:
    """What fusion says: probabilities over ``labels`` and which members it used.

    For one sample, ``probabilities`` is ``(K,)`` and ``used`` ``(M,)``; for ``n`` samples they are
    ``(n, K)`` and ``(n, M)``. ``used_modalities`` names the members used (for any sample).
    """

    labels: tuple[str, ...]
    probabilities: np.ndarray
    used_modalities: tuple[str, ...]
    members: tuple[str, ...]
    used: np.ndarray

    @property
    def label(self) -> str:
        """The top label (one sample only)."""
        if self.probabilities.ndim != 1:
            raise FusionError("label is defined for one sample; use probabilities.argmax(axis=1)")
        return self.labels[int(self.probabilities.argmax())]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: for one sample ``{label, probabilities: {label: p}, used_modalities}``; for a batch,
        per-sample lists."""
        if self.probabilities.ndim == 1:
            return {"label": self.label, "probabilities": dict(zip(self.labels, map(float, self.probabilities),
                                                                    strict=True)),
                    "used_modalities": list(self.used_modalities)}
        return {"labels": list(self.labels), "probabilities": self.probabilities.tolist(),
                "used_modalities": [[m for m, u in zip(self.members, row, strict=True) if u] for row in self.used]}


def _check_input(X: Any, name: str) -> None:
    if not isinstance(X, FusionInput):
        raise FusionError(f"{name} fuses members' probabilities (a FusionInput), not {type(X).__name__}: "
                          "fusion runs over trained models, e.g. as a fusions: entry of `emofuse study`")


def _as_input(probabilities: Mapping[str, np.ndarray | None], labels: Mapping[str, Sequence[str]],
              members: Sequence[str] | None = None) -> tuple[FusionInput, bool]:
    """One sample (1-D arrays) or a batch; ``None`` means the member is missing. Returns (input, single)."""
    given = {m: np.asarray(p, dtype=np.float64) for m, p in probabilities.items() if p is not None}
    dims = {p.ndim for p in given.values()}
    if len(dims) > 1 or dims - {1, 2}:
        raise FusionError("give every member's probabilities as (k,) for one sample or (n, k) for a batch")
    single = dims == {1} or not given
    if single:
        given = {m: p[None, :] for m, p in given.items()}
    n = len(next(iter(given.values()))) if given else 1
    names = tuple(members) if members is not None else tuple(probabilities)
    label_sets = {m: tuple(labels[m]) for m in names if m in labels}
    missing_labels = [m for m in names if m not in label_sets]
    if missing_labels:
        raise FusionError(f"no label set given for member(s) {', '.join(missing_labels)}")
    full = {m: given.get(m, np.full((n, len(label_sets[m])), np.nan)) for m in names}
    return FusionInput(full, label_sets, names), single


def _result(fused: np.ndarray, labels: tuple[str, ...], members: tuple[str, ...], used: np.ndarray,
            single: bool) -> FusionResult:
    names = tuple(m for j, m in enumerate(members) if used[:, j].any())
    if single:
        return FusionResult(labels, fused[0], names, members, used[0])
    return FusionResult(labels, fused, names, members, used)


class LateFusion:
    """Late fusion by ``mean``, ``weighted``, ``max_confidence`` or ``product`` of members' probabilities.

    ``temperature``: fit one temperature per member on the fit data (NLL) and apply it before
    fusing. ``weighted`` fits one non-negative weight per member (summing to 1) by an exhaustive
    search of a simplex grid that includes every member alone, minimising the NLL of the fused
    probabilities on the fit data (``objective="nll"``, the default) or maximising UA
    (``objective="ua"``, ties broken by NLL).

    Why NLL: UA on a few hundred validation clips moves by whole points when a handful of clips
    change their top class, so the UA-best weights are mostly noise, and they often pick whichever
    of two similar members was luckier on the validation actors. The NLL is smooth and uses every
    probability, not just the top class. Measured on ravdess-6fold (``benchmarks/fusion_objectives.py``):
    NLL weights were at or above the best member on every set of Whisper heads tried and 0.33 below
    it on two similar mel-CNNs, UA weights below it on all of them (docs/study.md has the numbers).

    ``select_se`` (UA objective): a mix of members is kept only when its UA on the fit data beats the
    best member alone by more than ``select_se`` bootstrap standard errors of that difference (the
    one-standard-error rule; 0 keeps the plain maximum). On a few hundred validation clips a gain of
    a point or two is noise, and members that early-stopped or chose C on those clips look better
    there than on new speakers: measured on ravdess-6fold, the plain maximum put 10-30 % weight on
    the from-scratch CRNN beside a Whisper head and lost 0.7 points UA on test.

    ``groups`` (``fit``): the speaker of each fit sample, when test speakers are new ones. Clips of
    one speaker err together, so the bootstrap then resamples speakers, not clips (a cluster
    bootstrap); resampling clips of four validation actors understates how much a gain there varies.
    """

    def __init__(self, name: str, *, strategy: str = "mean", temperature: bool = True, objective: str = "nll",
                 max_grid_points: int = 500, select_se: float = 1.0, progress: bool = False) -> None:
        self.name = name
        self.strategy = strategy
        self.temperature = temperature
        self.objective = objective
        self.max_grid_points = max_grid_points
        self.select_se = select_se
        self.progress = progress
        self.labels_: tuple[str, ...] = ()

    def get_params(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "temperature": self.temperature, "objective": self.objective,
                "max_grid_points": self.max_grid_points, "select_se": self.select_se}

    def _check_params(self) -> None:
        from emofuse.fusion._core import STRATEGIES

        if self.strategy not in STRATEGIES:
            raise FusionError(f"unknown fusion strategy {self.strategy!r}; known: {', '.join(STRATEGIES)}")
        if self.objective not in ("ua", "nll"):
            raise FusionError(f"objective must be 'ua' or 'nll', not {self.objective!r}")
        if not (isinstance(self.select_se, int | float) and 0 <= self.select_se < float("inf")):
            raise FusionError(f"select_se must be a number >= 0, not {self.select_se!r}")

    def _fit_members(self, X: FusionInput, y_idx: np.ndarray, labels: tuple[str, ...]) -> None:
        self.members_ = X.members
        self.member_labels_ = {m: tuple(X.labels[m]) for m in X.members}
        self.temperatures_ = {
            m: fit_temperature(np.asarray(X.probabilities[m], dtype=np.float64), y_idx,
                               source=self.member_labels_[m], target=labels) if self.temperature else 1.0
            for m in X.members}

    def _align(self, X: FusionInput) -> Aligned:
        _check_input(X, self.name)
        known = {m: X.labels[m] for m in X.members if m in self.member_labels_}
        for m, member_labels in known.items():
            if tuple(member_labels) != self.member_labels_[m]:
                raise FusionError(f"member {m!r} has label set {tuple(member_labels)}, but the fusion was fitted "
                                  f"with {self.member_labels_[m]}")
        extra = sorted(set(X.members) - set(self.members_))
        if extra:
            raise FusionError(f"{self.name} was fitted on members {self.members_}; unknown member(s) {extra}")
        # A fitted member absent from X is missing for every sample, which fusion handles.
        probs = {m: p for m, p in X.probabilities.items() if m in self.member_labels_}
        return align_members(probs, self.member_labels_, self.labels_, members=self.members_,
                             temperatures=self.temperatures_)

    def fit(self, X: FusionInput, y: Sequence[str], *, labels: Sequence[str], X_val: Any = None,
            y_val: Any = None, groups: Sequence[Any] | np.ndarray | None = None, **_: Any) -> LateFusion:
        """Learn temperatures (and weights) from ``X``: members' predictions on validation data.

        ``groups``: the speaker (or any cluster) of each sample, or None for independent samples."""
        del X_val, y_val  # the fit data *is* validation data; there is nothing to early-stop
        _check_input(X, self.name)
        self._check_params()
        y_idx, group_idx = self._start_fit(X, y, labels, groups)
        if self.strategy == "weighted":
            self.weights_ = self._search_weights(self._align(X), y_idx, group_idx)
        return self

    def _start_fit(self, X: FusionInput, y: Sequence[str], labels: Sequence[str],
                   groups: Sequence[Any] | np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        """What every fit does first: the members' temperatures, the labels, equal weights; returns the
        targets and each sample's group index."""
        fit_labels = tuple(labels)
        y_idx = label_targets(y, fit_labels)
        group_idx = _group_index(groups, len(X))
        self._fit_members(X, y_idx, fit_labels)
        self.labels_ = fit_labels  # only once the members are fitted: a failed fit leaves no fitted state
        self.weights_ = np.ones(len(self.members_))
        return y_idx, group_idx

    def _search_weights(self, aligned: Aligned, y_idx: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
        return search_weights(aligned, y_idx, len(self.labels_), objective=self.objective,
                              max_points=self.max_grid_points, select_se=self.select_se, groups=groups)

    def predict_proba(self, X: FusionInput) -> np.ndarray:
        check_fitted(self)
        return combine(self._align(X), self.strategy, weights=self.weights_)

    def fuse(self, probabilities: Mapping[str, np.ndarray | None],
             labels: Mapping[str, Sequence[str]] | None = None) -> FusionResult:
        """Fuse one sample (``(k,)`` arrays) or a batch; a member given as None (or left out) is missing."""
        check_fitted(self)
        X, single = _as_input(probabilities, labels or self.member_labels_, self.members_)
        return _result(self.predict_proba(X), self.labels_, self.members_, X.present(), single)

    def _meta(self) -> dict[str, Any]:
        return {"model": self.name, "architecture": {"kind": "fusion", **self.get_params()},
                "labels": list(self.labels_), "members": list(self.members_),
                "member_labels": {m: list(v) for m, v in self.member_labels_.items()},
                "temperatures": dict(self.temperatures_)}

    def save(self, directory: str | Path) -> None:
        from emofuse.checkpoint import save_checkpoint

        check_fitted(self)
        save_checkpoint(directory, arrays={"weights": self.weights_}, meta=self._meta())

    @classmethod
    def load(cls, directory: str | Path, **kwargs: Any) -> LateFusion:
        from emofuse.checkpoint import load_checkpoint

        arrays, meta = load_checkpoint(directory)
        params = {k: v for k, v in meta["architecture"].items() if k != "kind"}
        model = cls(meta["model"], **params, **kwargs)
        model._restore(arrays, meta)
        return model

    def _restore(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
        self.labels_ = tuple(meta["labels"])
        self.members_ = tuple(meta["members"])
        self.member_labels_ = {m: tuple(v) for m, v in meta["member_labels"].items()}
        self.temperatures_ = {m: float(t) for m, t in meta["temperatures"].items()}
        self.weights_ = np.asarray(arrays["weights"], dtype=np.float64)


def search_weights(aligned: Aligned, y_idx: np.ndarray, n_labels: int, *, objective: str = "nll",
                   max_points: int = 500, select_se: float = 0.0, groups: np.ndarray | None = None) -> np.ndarray:
    """The weights of :class:`LateFusion`'s ``weighted`` strategy: an exhaustive search of a simplex
    grid that includes every member alone, for the lowest NLL of the fused probabilities on
    ``y_idx`` (``objective="nll"``) or the highest UA, ties broken by NLL (``"ua"``; with
    ``select_se`` > 0 a mix must beat the best member alone by that many bootstrap standard errors,
    resampling ``groups`` when given)."""
    from emofuse.evaluation.metrics import confusion_matrix, scores_from_confusion
    from emofuse.fusion._core import member_nll

    n_members = len(aligned.members)
    best_key: tuple[float, float] | None = None
    best = np.ones(n_members) / n_members
    ones = np.ones(len(y_idx), dtype=bool)
    for w in simplex_grid(n_members, max_points=max_points):
        if not (w > 0).any():
            continue
        fused = combine(aligned, "weighted", weights=w)
        nll = member_nll(fused, y_idx, ones) if len(y_idx) else 0.0
        if objective == "ua":
            ua = scores_from_confusion(confusion_matrix(y_idx, fused.argmax(axis=1), n_labels))["ua"]
            key = (-ua, nll)
        else:
            key = (nll, 0.0)
        if best_key is None or key < best_key:
            best_key, best = key, w
    best = np.asarray(best, dtype=np.float64)
    if objective == "ua" and select_se > 0 and np.count_nonzero(best) > 1:
        singles = [combine(aligned, "weighted", weights=np.eye(n_members)[m]) for m in range(n_members)]
        alone = max(range(n_members), key=lambda m: ua_score(y_idx, singles[m], n_labels))
        mixed = combine(aligned, "weighted", weights=best)
        if not beats_by_se(y_idx, mixed, singles[alone], n_labels, select_se, groups=groups):
            best = np.eye(n_members)[alone]
    return best


def simplex_grid(n_members: int, *, max_points: int = 500) -> list[np.ndarray]:
    """Weight vectors on the simplex at the finest step 1/r (r <= 10) with at most ``max_points`` of them.

    Always contains every one-member vertex, so a fitted weighting can fall back to the best member.
    """
    from math import comb

    resolution = 1
    for r in (10, 8, 6, 5, 4, 3, 2, 1):
        if comb(r + n_members - 1, n_members - 1) <= max_points:
            resolution = r
            break
    points = []
    # Stars and bars: choose n_members - 1 cut positions among resolution + n_members - 1 slots.
    for cuts in itertools.combinations(range(resolution + n_members - 1), n_members - 1):
        bounds = (-1, *cuts, resolution + n_members - 1)
        counts = [bounds[i + 1] - bounds[i] - 1 for i in range(n_members)]
        points.append(np.asarray(counts, dtype=np.float64) / resolution)
    return points


def _group_index(groups: Sequence[Any] | np.ndarray | None, n: int) -> np.ndarray | None:
    """``groups`` (any hashable label per sample) as integer codes ``(n,)``, or None when not given."""
    if groups is None:
        return None
    values = np.asarray([str(g) for g in groups])
    if len(values) != n:
        raise FusionError(f"groups has {len(values)} entries for {n} fit samples: give one group (speaker) per sample")
    return np.unique(values, return_inverse=True)[1].astype(np.int64)
