"""Evaluating speaker adaptation honestly: the ``…+spk`` variants of the Whisper voice models.

A product can hear a few seconds of a new speaker before it must answer; per-speaker
standardisation uses those *unlabelled* clips. The benchmark reports it as its own variant, never
mixed with the plain numbers, and in realistic forms: statistics from ``k`` random unlabelled clips
of each test speaker (k = 4, 8, 16, repeated over several draws) besides all of their clips. Training
speakers are standardised with all their clips (they are labelled training data anyway); C is picked
on the (standardised) validation speakers, then the head is refitted on training + validation.

On a speaker-leaky protocol (``ravdess-random``) every test speaker is also a training speaker, so
their statistics can come from the clips already in training and validation instead
(:func:`enrolled_speaker_record`, variant ``+spk enrolled``): the speaker is enrolled once, no test
clip is used to adapt, and labels play no part in the statistics.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from emofuse.data import Dataset, get_protocol
from emofuse.errors import ConfigError
from emofuse.evaluation.metrics import compute_metrics, summarize_folds
from emofuse.evaluation.results import FoldResult, ResultRecord
from emofuse.features.speaker import SpeakerNormaliser
from emofuse.models.linear import fit_logreg_select
from emofuse.models.voice_whisper import VoiceWhisper


def _standardise_all(norm: SpeakerNormaliser, feats: np.ndarray, speakers: np.ndarray) -> np.ndarray:
    full = SpeakerNormaliser(shrinkage=0.0, min_clips_for_scale=1)
    full.population_mean_, full.population_std_ = norm.population_mean_, norm.population_std_
    return full.transform(feats, list(speakers))


def speaker_adapted_records(dataset: Dataset, *, model: str = "voice_whisper", protocol: str = "ravdess-6fold",
                            k_values: Sequence[int] = (4, 8, 16, 0), repeats: int = 5, seed: int = 0,
                            shrinkage: float | Sequence[float] = (2.0, 4.0, 8.0, 16.0),
                            model_params: Mapping[str, Any] | None = None,
                            progress: bool = False) -> list[ResultRecord]:
    """One record per k (``0`` = all of a test speaker's clips), variant ``+spk k=…``.

    With several ``shrinkage`` values, each fold picks one per k on its validation speakers: a head
    fitted on the training speakers alone is scored on the validation speakers adapted from k of
    their own clips, the same way the test speakers will be (test speakers play no part).
    """
    started = time.perf_counter()
    clf, views = _whisper_views(dataset, model, model_params, progress=progress)
    proto = get_protocol(protocol)
    data = _Speakers(np.array([str(s.speaker) for s in dataset.samples]), dataset.label_indices(), list(dataset.labels))
    shrinkages = [float(shrinkage)] if isinstance(shrinkage, int | float) else [float(x) for x in shrinkage]
    per_k: dict[int, list[tuple[str, np.ndarray, np.ndarray]]] = {k: [] for k in k_values}
    chosen: dict[int, list[float]] = {k: [] for k in k_values}
    for fold in proto.folds(dataset, seed=seed):
        fitted = _fit_fold_heads(data, views, fold, clf, model)
        train_only = None
        if len(shrinkages) > 1:  # picked on the first view, used for every view
            _, _, _, C0, train_x0, train_y0 = fitted[0]
            train_only, _, _, _ = fit_logreg_select(train_x0, train_y0, data.labels, C=C0, C_grid=(),
                                                    max_iter=clf.max_iter, val=None, name=model)
        for k in k_values:
            best = shrinkages[0]
            if train_only is not None and k:
                best = _choose_shrinkage(data, train_only, views[0][0], fold, k, shrinkages, repeats=repeats, seed=seed)
            chosen[k].append(best)
            truth, pred = _predict_adapted(data, fitted, fold.test, k, best, repeats=repeats, seed=seed)
            per_k[k].append((fold.name, truth, pred))
    seconds = time.perf_counter() - started
    records = []
    for k, rows in per_k.items():
        draws = f"{repeats} random draws of {k} unlabelled clips per test speaker" if k else \
            "all of each test speaker's clips, unlabelled"
        records.append(_record(dataset, proto.name, model, rows, labels=data.labels, seconds=seconds,
                               leaky=proto.leaky, seed=seed, variant=f"+spk k={k if k else 'all'}",
                               notes=f"per-speaker standardisation from {draws}; shrinkage towards the training "
                                     f"population, chosen per fold on validation speakers: {chosen[k]} pseudo-clips"))
    return records


@dataclass(frozen=True)
class _Speakers:
    """Each sample's speaker and target, and the label set."""

    speakers: np.ndarray
    targets: np.ndarray
    labels: list[str]

    def adapted(self, norm: SpeakerNormaliser, F: np.ndarray, idx: np.ndarray, k: int,
                rng: np.random.Generator) -> np.ndarray:
        """Samples ``idx`` standardised per speaker from ``k`` random clips of their own (0: all of them)."""
        speakers = self.speakers
        if k == 0:
            return _standardise_all(norm, F[idx], speakers[idx])
        adaptation = {}
        for speaker in np.unique(speakers[idx]):
            own = idx[speakers[idx] == speaker]
            adaptation[speaker] = F[own if k >= len(own) else rng.choice(own, size=k, replace=False)]
        return norm.transform(F[idx], list(speakers[idx]), adaptation)

    def stacked(self, norm: SpeakerNormaliser, copies: list[np.ndarray], idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Augmented copies of samples ``idx``, each copy standardised per speaker with its own statistics."""
        return (np.concatenate([_standardise_all(norm, c[idx], self.speakers[idx]) for c in copies]),
                np.tile(self.targets[idx], len(copies)))


def _fit_fold_heads(data: _Speakers, views: Any, fold: Any, clf: Any, model: str) -> list[tuple[Any, ...]]:
    """Per view: ``(normaliser, features, head, C, train_x, train_y)``, the head on speaker-standardised
    training (and copies), C chosen on the standardised validation speakers."""
    speakers, targets = data.speakers, data.targets
    known = np.concatenate([fold.train, fold.val])
    fitted = []
    for F, copies in views:
        norm = SpeakerNormaliser().fit_population(F[known], list(speakers[known]))
        train_x, train_y = _standardise_all(norm, F[fold.train], speakers[fold.train]), targets[fold.train]
        refit_extra = None
        if copies:
            extra_x, extra_y = data.stacked(norm, copies, fold.train)
            train_x, train_y = np.concatenate([train_x, extra_x]), np.concatenate([train_y, extra_y])
            refit_extra = data.stacked(norm, copies, fold.val)
        val_x = _standardise_all(norm, F[fold.val], speakers[fold.val])
        head, C, _, _ = fit_logreg_select(train_x, train_y, data.labels, C=clf.C, C_grid=clf.C_grid,
                                          max_iter=clf.max_iter, val=(val_x, targets[fold.val]), name=model,
                                          refit_with_val=clf.refit_with_val, refit_extra=refit_extra)
        fitted.append((norm, F, head, C, train_x, train_y))
    return fitted


def _choose_shrinkage(data: _Speakers, train_only: Any, feats: np.ndarray, fold: Any, k: int,
                      shrinkages: Sequence[float], *, repeats: int, seed: int) -> float:
    """The shrinkage whose k-clip adaptation of the validation speakers scores the best UA."""
    scores = {}
    for s in shrinkages:
        candidate = SpeakerNormaliser(shrinkage=s).fit_population(feats[fold.train], list(data.speakers[fold.train]))
        rng = np.random.default_rng(seed + 1)
        pred = np.concatenate([train_only.predict_proba(data.adapted(candidate, feats, fold.val, k, rng),
                                                        len(data.labels)).argmax(axis=1)
                               for _ in range(repeats)])
        scores[s] = compute_metrics(np.tile(data.targets[fold.val], repeats), y_pred=pred, labels=data.labels).ua
    return max(scores, key=lambda s: (scores[s], s))


def _predict_adapted(data: _Speakers, fitted: list[tuple[Any, ...]], test: np.ndarray, k: int, shrinkage: float, *,
                     repeats: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(truths, predictions)`` of the test samples adapted from k clips, views' probabilities summed,
    over ``repeats`` draws (one when k is 0: every clip)."""
    rngs = [np.random.default_rng(seed) for _ in fitted]  # the same draws of k clips in every view
    truths, preds = [], []
    for _ in range(repeats if k else 1):
        probs = np.zeros((len(test), len(data.labels)))
        for (norm, F, head, *_), rng in zip(fitted, rngs, strict=True):
            norm.shrinkage = shrinkage
            probs += head.predict_proba(data.adapted(norm, F, test, k, rng), len(data.labels))
        preds.append(probs.argmax(axis=1))
        truths.append(data.targets[test])
    return np.concatenate(truths), np.concatenate(preds)


def enrolled_speaker_record(dataset: Dataset, *, model: str = "voice_whisper_plus", protocol: str = "ravdess-random",
                            seed: int = 0, model_params: Mapping[str, Any] | None = None,
                            progress: bool = False) -> ResultRecord:
    """Variant ``+spk enrolled``: each speaker standardised with their own clips in training + validation.

    Only for protocols whose test speakers all have training clips (the speaker-leaky ones): a
    system that has already heard a speaker adapts to them before their next clip. C is chosen on
    the validation clips standardised with their speaker's *training* clips (as the test clips will
    be, with clips other than themselves); the head is then refitted on training + validation (on
    training alone if the model's ``refit_with_val`` is off), every row standardised with the
    statistics of its speaker's training + validation clips, and the test clips standardised with
    the same. No test clip enters any statistic.
    """
    started = time.perf_counter()
    proto = get_protocol(protocol)
    folds = proto.folds(dataset, seed=seed)
    speakers = np.array([str(s.speaker) for s in dataset.samples])
    for fold in folds:  # checked before any clip is encoded
        unseen = sorted(set(speakers[np.concatenate([fold.val, fold.test])]) - set(speakers[fold.train]))
        if unseen:
            raise ConfigError(f"{protocol} fold {fold.name}: speaker(s) {', '.join(unseen[:4])} have no "
                              "training clips to enrol from; '+spk enrolled' needs a speaker-leaky protocol "
                              "(ravdess-random)")
    clf, views = _whisper_views(dataset, model, model_params, progress=progress)
    targets = dataset.label_indices()
    labels = list(dataset.labels)
    rows = []
    for fold in folds:
        known = np.concatenate([fold.train, fold.val])
        probs = np.zeros((len(fold.test), len(labels)))
        for F, copies in views:
            norm = SpeakerNormaliser().fit_population(F[known], list(speakers[known]))
            # Speed-perturbed copies are extra training rows, each copy standardised with its own statistics.
            train_x = np.concatenate([_enrolled(norm, G, fold.train, fold.train, speakers) for G in (F, *copies)])
            val_x = _enrolled(norm, F, fold.val, fold.train, speakers)
            _, C, _, _ = fit_logreg_select(train_x, np.tile(targets[fold.train], 1 + len(copies)), labels, C=clf.C,
                                           C_grid=clf.C_grid, max_iter=clf.max_iter, val=(val_x, targets[fold.val]),
                                           name=f"{model}+spk enrolled")
            final = known if clf.refit_with_val else fold.train  # the rows of the final head
            final_x = np.concatenate([_enrolled(norm, G, final, known, speakers) for G in (F, *copies)])
            head, _, _, _ = fit_logreg_select(final_x, np.tile(targets[final], 1 + len(copies)), labels, C=C,
                                              C_grid=(), max_iter=clf.max_iter, val=None, name=f"{model}+spk enrolled")
            probs += head.predict_proba(_enrolled(norm, F, fold.test, known, speakers), len(labels))
        rows.append((fold.name, targets[fold.test], probs.argmax(axis=1)))
    return _record(dataset, proto.name, model, rows, labels=labels, seconds=time.perf_counter() - started,
                   leaky=proto.leaky, seed=seed, variant="+spk enrolled",
                   notes="per-speaker standardisation from each test speaker's own clips in training + validation "
                         "(features only, no labels, no test clip); C chosen on validation clips standardised "
                         "with their speaker's training clips")


def _enrolled(norm: SpeakerNormaliser, G: np.ndarray, idx: np.ndarray, source: np.ndarray,
              speakers: np.ndarray) -> np.ndarray:
    """Rows ``idx`` of ``G``, each standardised (no shrinkage) with its speaker's rows ``source`` of ``G``."""
    full = SpeakerNormaliser(shrinkage=0.0, min_clips_for_scale=1, population_mean_=norm.population_mean_,
                             population_std_=norm.population_std_)
    adaptation = {spk: G[source[speakers[source] == spk]] for spk in np.unique(speakers[idx])}
    return full.transform(G[idx], list(speakers[idx]), adaptation)


def _whisper_views(dataset: Dataset, model: str, model_params: Mapping[str, Any] | None, *,
                   progress: bool) -> tuple[VoiceWhisper, list[tuple[np.ndarray, list[np.ndarray]]]]:
    """The model, and its views of every clip: (features, speed-perturbed copies used only as extra
    training rows). The untrimmed view of voice_whisper_plus gets a head of its own; the views'
    probabilities are summed."""
    from emofuse.features.cache import FeatureCache
    from emofuse.models import create_model

    clf = create_model(model, **dict(model_params or {}), cache=FeatureCache(), progress=progress)
    if not isinstance(clf, VoiceWhisper):
        raise TypeError(f"speaker adaptation is implemented for the Whisper voice models, not {model}")
    paths = [s.path for s in dataset.samples]
    views = [(clf.featurize(paths), [clf.featurize(paths, speed=f) for f in clf.augment_speeds])]
    if clf.untrimmed_view:
        views.append((clf.featurize(paths, trim=False), []))
    return clf, views


def _record(dataset: Dataset, protocol: str, model: str, rows: list[tuple[str, np.ndarray, np.ndarray]], *,
            labels: list[str], seconds: float, leaky: bool, seed: int, variant: str, notes: str) -> ResultRecord:
    """One result record from per-fold ``(fold name, truth, prediction)``."""
    metrics = [compute_metrics(t, y_pred=p, labels=labels) for _, t, p in rows]
    summary = summarize_folds(metrics, pooled_true=np.concatenate([t for _, t, _ in rows]),
                              pooled_pred=np.concatenate([p for _, _, p in rows]), seed=seed)
    return ResultRecord.from_summary(
        dataset=dataset.name, protocol=protocol, model=model, summary=summary,
        folds=[FoldResult.from_metrics(name, m) for (name, _, _), m in zip(rows, metrics, strict=True)],
        labels=labels, device="cpu", train_seconds=round(seconds, 2), leaky=leaky, variant=variant, seed=seed,
        notes=notes)
