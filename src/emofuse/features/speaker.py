"""Speaker adaptation of clip features: standardise each speaker with statistics of their own clips.

A voice model trained on some speakers meets a new one whose voice, microphone and room shift every
feature. Standardising a speaker's features with the mean and spread of that speaker's own
unlabelled clips removes much of that shift. With few clips the statistics are unreliable, so they
shrink towards the training population's: ``shrinkage`` pseudo-clips of the population mean and
spread, so 4 clips move the features a little and 60 clips almost all the way. Used offline over a
whole dataset (:class:`SpeakerNormaliser`) and online, clip after clip (:class:`RunningSpeakerStats`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class SpeakerNormaliser:
    """Per-speaker standardisation from unlabelled clips of the same speaker (``…+spk`` variants)."""

    shrinkage: float = 8.0
    min_clips_for_scale: int = 8
    population_mean_: np.ndarray = field(default_factory=lambda: np.zeros(0))
    population_std_: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def fit_population(self, features: np.ndarray, speakers: Sequence[str]) -> SpeakerNormaliser:
        """Population statistics: the average of per-speaker means and spreads of training speakers."""
        groups = group_by_speaker(speakers)
        self.population_mean_ = np.mean([features[idx].mean(axis=0) for idx in groups.values()], axis=0)
        self.population_std_ = np.mean([features[idx].std(axis=0) for idx in groups.values()], axis=0) + 1e-6
        return self

    def shrunk(self, k: int, mean_k: np.ndarray, std_k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The mean and std of a speaker heard in ``k`` clips (own statistics ``mean_k``, ``std_k``),
        shrunk towards the population's; the spread is the population's under ``min_clips_for_scale``."""
        weight = k / (k + self.shrinkage)
        mean = weight * mean_k + (1 - weight) * self.population_mean_
        std = weight * std_k + (1 - weight) * self.population_std_ if k >= self.min_clips_for_scale else self.population_std_
        return mean, np.maximum(std, 1e-6)

    def statistics(self, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Shrunk mean and std of one speaker from ``clips`` (k, d) of their unlabelled features."""
        return self.shrunk(len(clips), clips.mean(axis=0), clips.std(axis=0))

    def standardise(self, features: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        """Standardised with one speaker's statistics, mapped onto the population's scale so a head
        trained on normalised features sees familiar ranges."""
        return (features - mean) / std * self.population_std_ + self.population_mean_

    def transform(self, features: np.ndarray, speakers: Sequence[str],
                  adaptation: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """Standardise each row with its speaker's statistics, from ``adaptation[speaker]`` (the
        unlabelled clips to adapt on) or, when not given, from all of that speaker's rows here."""
        out = np.empty_like(features)
        for speaker, idx in group_by_speaker(speakers).items():
            clips = adaptation[speaker] if adaptation is not None else features[idx]
            out[idx] = self.standardise(features[idx], *self.statistics(clips))
        return out


def group_by_speaker(speakers: Sequence[str]) -> dict[str, np.ndarray]:
    """Speaker -> indices of their rows, in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(speakers):
        groups.setdefault(str(s), []).append(i)
    return {s: np.array(idx) for s, idx in groups.items()}


class RunningSpeakerStats:
    """Online speaker adaptation for ``predict``/``serve``: the statistics of one speaker's clips so far.

    Feed each new clip's features with :meth:`update`; :meth:`adapt` standardises a clip with the
    shrunk statistics of everything heard so far (the first clip moves little, a minute of speech
    almost fully), by the same rule as :class:`SpeakerNormaliser`.
    """

    def __init__(self, normaliser: SpeakerNormaliser, *, min_clips: int = 1) -> None:
        self.normaliser = normaliser
        self.min_clips = min_clips  # clips to hear before :attr:`ready`
        self.n = 0
        self._sum = np.zeros_like(normaliser.population_mean_, dtype=np.float64)
        self._sum_sq = np.zeros_like(normaliser.population_mean_, dtype=np.float64)

    def update(self, features: np.ndarray) -> None:
        """``features`` (d,) or (n, d) of new, unlabelled clips of this speaker."""
        rows = np.atleast_2d(features).astype(np.float64)
        self.n += len(rows)
        self._sum += rows.sum(axis=0)
        self._sum_sq += (rows**2).sum(axis=0)

    @property
    def ready(self) -> bool:
        return self.n >= self.min_clips

    def adapt(self, features: np.ndarray) -> np.ndarray:
        if self.n == 0:
            return np.asarray(features)
        mean_k = self._sum / self.n
        std_k = np.sqrt(np.maximum(self._sum_sq / self.n - mean_k**2, 0.0))
        return self.normaliser.standardise(features, *self.normaliser.shrunk(self.n, mean_k, std_k))
