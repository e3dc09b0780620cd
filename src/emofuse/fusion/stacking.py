"""``fusion_stacking``: a logistic regression over the members' calibrated probabilities, kept only
when cross-validation says it beats the weighted mean by more than ``select_se`` standard errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emofuse.evaluation.metrics import beats_by_se
from emofuse.fusion._core import Aligned, FusionError, combine
from emofuse.fusion._models import FusionInput, LateFusion, _check_input, search_weights
from emofuse.models.base import check_fitted


class StackingFusion(LateFusion):
    """A multinomial logistic regression on the members' (temperature-scaled, aligned) probabilities.

    Features per member: its ``K`` aligned probabilities and a presence flag; a missing member's
    probabilities are zeros with the flag off. So that the stacker knows what to do when a member
    is missing, it is fitted on the fit data repeated with each member dropped in turn (and with
    each member alone), besides the rows as they come.

    ``C=None`` (the default) picks the regularisation from :data:`C_GRID` by 3-fold cross-validation
    (log-loss) on the fit data itself, folds grouped by sample; a validation set of a few hundred
    clips is small for ``M * (K + 1)`` features, and a fixed weak penalty overfits it. With
    ``groups`` (the speaker of each sample, for tests on new speakers) the folds hold out whole
    speakers instead (one per fold, at most 5 folds): the members' errors are speaker-specific, so a
    stacker that learns to correct the validation actors' own confusions scores well on other clips
    of the same actors and badly on new ones (measured on ravdess-6fold: folds by clip kept such a
    stacker on every fold, 3.0 points UA below the better of the two Whisper heads it stacked).

    ``fallback=True`` (the default) guards against a stacker that only fits noise: the same folds
    score the stacker's held-out UA against the NLL-weighted average of the members (the
    ``fusion_weighted`` default, its weights fitted on the other folds too), and unless the stacker
    beats it, the fusion answers with that weighted average, its weights fitted on all the fit data
    (``stacker_kept_`` False, ``weights_``; a member alone is one of the weightings it can choose).
    "Beats" is the one-standard-error rule of :class:`LateFusion` (``select_se``): the stacker is
    kept only when its UA is higher by more than that many bootstrap standard errors. Earlier
    versions fell back to the member with the best held-out UA; between two members of similar
    strength that picks the luckier one on the validation actors.
    """

    C_GRID = (0.001, 0.01, 0.1, 1.0)

    def __init__(self, name: str, *, temperature: bool = True, C: float | None = None, max_iter: int = 2000,
                 fallback: bool = True, select_se: float = 1.0, progress: bool = False) -> None:
        super().__init__(name, strategy="mean", temperature=temperature, select_se=select_se, progress=progress)
        self.C = C
        self.max_iter = max_iter
        self.fallback = fallback

    def get_params(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "C": self.C, "max_iter": self.max_iter, "fallback": self.fallback,
                "select_se": self.select_se}

    @staticmethod
    def _features(aligned: Aligned) -> np.ndarray:
        """``(n, M * (K + 1))``: each member's aligned probabilities (zero when missing) and presence flag."""
        parts = []
        for m in range(len(aligned.members)):
            parts.append(aligned.probs[m])
            parts.append(aligned.present[:, m : m + 1].astype(np.float64))
        return np.concatenate(parts, axis=1)

    @staticmethod
    def _masks(n_members: int) -> list[np.ndarray]:
        masks = {tuple([True] * n_members)}
        if n_members > 1:
            for m in range(n_members):
                masks.add(tuple(j != m for j in range(n_members)))
                masks.add(tuple(j == m for j in range(n_members)))
        return [np.asarray(mask) for mask in sorted(masks, reverse=True)]

    def fit(self, X: FusionInput, y: Sequence[str], *, labels: Sequence[str], X_val: Any = None,
            y_val: Any = None, groups: Sequence[Any] | np.ndarray | None = None, **_: Any) -> StackingFusion:
        from emofuse.models.linear import StandardisedLogReg

        del X_val, y_val
        _check_input(X, self.name)
        y_idx, group_idx = self._start_fit(X, y, labels, groups)
        labels = self.labels_
        aligned = self._align(X)
        feats, targets = [], []
        for mask in self._masks(len(self.members_)):
            present = aligned.present & mask[None, :]
            keep = present.any(axis=1)
            dropped = Aligned(aligned.members, aligned.labels, aligned.probs * mask[:, None, None],
                              present, aligned.covers)
            feats.append(self._features(dropped)[keep])
            targets.append(y_idx[keep])
        features, all_targets = np.concatenate(feats), np.concatenate(targets)
        row_sample = np.concatenate([np.flatnonzero(keep_mask) for keep_mask in self._kept(aligned)])
        if len(np.unique(all_targets)) < 2:
            raise FusionError(f"{self.name}: stacking needs fit data with at least two classes")
        fold_of = _cv_folds(len(X), group_idx)
        if self.C is not None:
            self.C_ = float(self.C)
            held_out = self._held_out(features, all_targets, fold_of[row_sample], [self.C_])[0] if self.fallback else None
        else:
            held_out_by_C = self._held_out(features, all_targets, fold_of[row_sample], list(self.C_GRID))
            losses = [_log_loss(p, all_targets) for p in held_out_by_C]
            best = int(np.argmin(losses))
            self.C_, held_out = float(self.C_GRID[best]), held_out_by_C[best]
        self.stacker_kept_ = True
        if self.fallback and held_out is not None:
            self.weights_ = self._nll_weights(aligned, y_idx)
            self.stacker_kept_ = self._keep_stacker(aligned, y_idx, held_out, fold_of, group_idx)
        self.head_ = StandardisedLogReg(C=self.C_, max_iter=self.max_iter).fit(features, all_targets)
        return self

    def _nll_weights(self, aligned: Aligned, y_idx: np.ndarray) -> np.ndarray:
        return search_weights(aligned, y_idx, len(self.labels_), objective="nll")

    @property
    def fallback_(self) -> int:
        """-1 when the stacker answers; else the member the fallback weighting leans on most."""
        check_fitted(self)
        return -1 if self.stacker_kept_ else int(np.argmax(self.weights_))

    def _kept(self, aligned: Aligned) -> list[np.ndarray]:
        return [(aligned.present & mask[None, :]).any(axis=1) for mask in self._masks(len(self.members_))]

    def _held_out(self, features: np.ndarray, targets: np.ndarray, row_fold: np.ndarray,
                  Cs: Sequence[float]) -> list[np.ndarray]:
        """For each C, every row's probabilities from a stacker that never saw its sample (nor, with
        speaker groups, its speaker): ``row_fold`` is each row's fold (a row left unscored, when a
        fold cannot be fitted, is uniform)."""
        from emofuse.models.linear import StandardisedLogReg

        out = []
        for C in Cs:
            probs = np.full((len(targets), len(self.labels_)), 1.0 / len(self.labels_))
            for k in np.unique(row_fold):
                test = row_fold == k
                if test.all() or not test.any() or len(np.unique(targets[~test])) < 2:
                    continue
                head = StandardisedLogReg(C=C, max_iter=self.max_iter).fit(features[~test], targets[~test])
                probs[test] = head.predict_proba(features[test], len(self.labels_))
            out.append(probs)
        return out

    def _keep_stacker(self, aligned: Aligned, y_idx: np.ndarray, stacked: np.ndarray, fold_of: np.ndarray,
                      groups: np.ndarray | None = None) -> bool:
        """Does the stacker's held-out UA beat the NLL-weighted average's, on the same folds, by
        more than ``select_se`` standard errors?

        ``stacked``: held-out probabilities of every stacker row; the first mask keeps every member,
        so the first rows are the samples in order (those with at least one member present)."""
        rows = np.flatnonzero(aligned.present.any(axis=1))
        stacked = stacked[: len(rows)]
        weighted = np.full_like(stacked, 1.0 / len(self.labels_))
        for k in np.unique(fold_of[rows]):
            test, fit = rows[fold_of[rows] == k], rows[fold_of[rows] != k]
            if not len(fit):
                continue
            w = self._nll_weights(_take_aligned(aligned, fit), y_idx[fit])
            weighted[fold_of[rows] == k] = combine(_take_aligned(aligned, test), "weighted", weights=w)
        return beats_by_se(y_idx[rows], stacked, weighted, len(self.labels_), self.select_se,
                           groups=None if groups is None else groups[rows])

    def predict_proba(self, X: FusionInput) -> np.ndarray:
        check_fitted(self)
        aligned = self._align(X)
        if not self.stacker_kept_:
            return combine(aligned, "weighted", weights=self.weights_)
        probs = self.head_.predict_proba(self._features(aligned), len(self.labels_))
        nobody = ~aligned.present.any(axis=1)
        probs[nobody] = 1.0 / len(self.labels_)
        return probs

    def save(self, directory: str | Path) -> None:
        from emofuse.checkpoint import save_checkpoint

        check_fitted(self)
        save_checkpoint(directory, arrays={"weights": self.weights_, **self.head_.arrays()},
                        meta={**self._meta(), "selected_C": self.C_, "stacker_kept": self.stacker_kept_})

    def _restore(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
        from emofuse.models.linear import StandardisedLogReg

        super()._restore(arrays, meta)
        self.C_ = float(meta["selected_C"])
        if "stacker_kept" in meta:
            self.stacker_kept_ = bool(meta["stacker_kept"])
        else:  # checkpoints of earlier versions fell back to one member (or had no fallback)
            member = int(meta.get("fallback_member", -1))
            self.stacker_kept_ = member < 0
            if member >= 0:
                self.weights_ = np.eye(len(self.members_))[member]
        self.head_ = StandardisedLogReg.from_arrays(dict(arrays), C=self.C_)


def _take_aligned(aligned: Aligned, rows: np.ndarray) -> Aligned:
    return Aligned(aligned.members, aligned.labels, aligned.probs[:, rows], aligned.present[rows], aligned.covers)


def _cv_folds(n: int, groups: np.ndarray | None, *, max_group_folds: int = 5) -> np.ndarray:
    """Each sample's cross-validation fold ``(n,)``: 3 random folds of samples, or, with at least two
    groups, whole groups held out (one per fold, groups dealt round-robin beyond ``max_group_folds``)."""
    rng = np.random.default_rng(0)
    if groups is None or len(np.unique(groups)) < 2:
        return rng.permutation(n) % 3
    n_groups = int(groups.max()) + 1
    fold_of_group = rng.permutation(n_groups) % min(n_groups, max_group_folds)
    return fold_of_group[groups]


def _log_loss(probs: np.ndarray, targets: np.ndarray) -> float:
    return float(-np.log(np.clip(probs[np.arange(len(targets)), targets], 1e-12, None)).sum())
