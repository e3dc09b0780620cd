"""Voice emotion from a frozen Whisper encoder: a trained head on the pooled states of its layers.

The encoder is pretrained on 680 000 hours of speech and never sees emotion labels; a head trained
on RAVDESS reads emotion out of its states (:mod:`emofuse.features.whisper_states`, cached per file).
Speaker adaptation, an optional second head, standardises each speaker with their own clips
(:mod:`emofuse.features.speaker`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from emofuse.checkpoint import load_checkpoint, save_checkpoint
from emofuse.errors import ConfigError
from emofuse.features.cache import FeatureCache
from emofuse.features.speaker import RunningSpeakerStats, SpeakerNormaliser
from emofuse.features.whisper_states import AudioInput, WhisperFeatures, pooled_states, select_layers
from emofuse.models.base import check_fitted, label_targets
from emofuse.models.linear import StandardisedLogReg, fit_logreg_select

HEADS = {"logreg": "torch", "ridge": "ridge"}  # head -> StandardisedLogReg solver
LOGREG_C_GRID = (0.003, 0.01, 0.03)
RIDGE_C_GRID = (1e-4, 3e-4, 1e-3)  # alpha 10,000, 3,333, 1,000 on thousands of standardised states


class VoiceWhisper:
    """Logistic regression on pooled Whisper encoder states (one or several models, chosen layers).

    ``C`` is the inverse regularisation strength; with ``C="val"`` (the default) it is chosen from
    ``C_grid`` by unweighted accuracy on the validation speakers (never the test ones), and with
    ``refit_with_val`` the final head is then fitted on training and validation speakers together.

    Levers beyond the plain head: ``augment_speeds`` adds speed-perturbed copies of every
    training clip (e.g. 0.9 and 1.1, cached like the originals) to the head's training set,
    ``augment_channels`` N adds N copies of each through a random microphone, room and line
    (:func:`emofuse.features.corrupt.channel_copy`: reverb, band limits, codecs, coloured noise,
    level; the same copies in every run, cached), so the head learns what they do not change, and
    ``untrimmed_view`` fits a second head on states of the untrimmed clips (silence included) and
    averages the two heads' probabilities. ``mfcc_stats`` appends the clip's MFCC (+Δ, ΔΔ) utterance
    statistics (``voice_logreg``'s features) to the Whisper states: the combined model.

    ``head="ridge"``: a class-balanced ridge classifier instead of the logistic regression (C is then
    1 / alpha; its default grid is ``RIDGE_C_GRID``), its scores turned into probabilities by a
    temperature fitted on its exact leave-one-out scores; saved, loaded and exported as the logistic
    head is. Measured on RAVDESS in docs/words.md.

    ``tta``: test-time augmentation. The head trained with the speed copies also scores the speed
    copies of the clip it predicts (``augment_speeds``), and its probabilities are averaged over the
    clip and its copies (the untrimmed view's head, trained without copies, scores the clip alone).
    C is chosen on the validation speakers with the same averaging. It costs one more encoding per
    factor at prediction time.
    """

    def __init__(self, name: str = "voice_whisper_tiny", *, features: WhisperFeatures | Mapping[str, Any] | None = None,
                 C: float | str = "val", C_grid: Sequence[float] | None = None, max_iter: int = 300,
                 refit_with_val: bool = True, augment_speeds: Sequence[float] = (), augment_channels: int = 0,
                 untrimmed_view: bool = False,
                 mfcc_stats: bool = False, head: str = "logreg", tta: bool = False, cache: FeatureCache | None = None,
                 device: str = "cpu", progress: bool = False) -> None:
        self.name = name
        if head not in HEADS:
            raise ConfigError(f"head must be one of {', '.join(HEADS)}, not {head!r}")
        self.head = head
        self.mfcc_stats = bool(mfcc_stats)
        self.augment_speeds = tuple(float(f) for f in augment_speeds)
        if any(not 0.5 <= f <= 2.0 or f == 1.0 for f in self.augment_speeds):
            raise ConfigError(f"augment_speeds must be factors in [0.5, 2] other than 1, not {list(augment_speeds)}")
        self.augment_channels = int(augment_channels)
        if not 0 <= self.augment_channels <= 16:
            raise ConfigError(f"augment_channels must be a number of copies from 0 to 16, not {augment_channels!r}")
        if self.mfcc_stats and (self.augment_speeds or self.augment_channels or untrimmed_view):
            raise ConfigError("mfcc_stats combines with the plain Whisper view only "
                              "(no augment_speeds, augment_channels, untrimmed_view)")
        self.untrimmed_view = bool(untrimmed_view)
        self.tta = bool(tta)
        if self.tta and not self.augment_speeds:
            raise ConfigError("tta scores the clip's speed copies with the head trained on them: it needs augment_speeds")
        if isinstance(features, Mapping):
            features = WhisperFeatures.from_dict(features)
        self.features = features or WhisperFeatures()
        if self.features.pooling == "attention":
            raise ConfigError(f"{name}: a logistic regression reads pooled states (mean, mean_std); "
                              "attention pooling is voice_whisper_attn's")
        if isinstance(C, str) and C != "val":
            raise ConfigError(f"C must be a number or 'val', not {C!r}")
        self.C = C
        if C_grid is None:
            C_grid = RIDGE_C_GRID if head == "ridge" else LOGREG_C_GRID
        self.C_grid = tuple(float(c) for c in C_grid)
        if not isinstance(C, str) and not float(C) > 0:
            raise ConfigError(f"C must be positive (the inverse regularisation strength), not {C!r}")
        if not self.C_grid or not all(c > 0 for c in self.C_grid):
            raise ConfigError(f"C_grid must hold positive values, not {list(self.C_grid)}")
        self.max_iter = max_iter
        self.refit_with_val = refit_with_val
        self.cache = cache
        self.device = device
        self.progress = progress
        self.labels_: tuple[str, ...] = ()

    def get_params(self) -> dict[str, Any]:
        return {"features": self.features.to_dict(), "C": self.C, "C_grid": list(self.C_grid),
                "max_iter": self.max_iter, "refit_with_val": self.refit_with_val,
                "augment_speeds": list(self.augment_speeds), "augment_channels": self.augment_channels,
                "untrimmed_view": self.untrimmed_view,
                "mfcc_stats": self.mfcc_stats, "head": self.head, "tta": self.tta}

    def featurize(self, X: Sequence[AudioInput], *, speed: float = 1.0, channel: int = 0,
                  trim: bool | None = None) -> np.ndarray:
        """``(len(X), n_features)``: chosen layers of every model, side by side (of speed-perturbed
        copies for ``speed`` != 1, of the ``channel``-th channel copies; ``trim=False`` for the
        untrimmed view)."""
        features = self.features if trim is None else replace(self.features, trim=trim)
        parts = [select_layers(pooled_states(X, features, model=m, cache=self.cache, device=self.device,
                                             progress=self.progress, speed=speed, channel=channel),
                               features.layers)
                 for m in features.models]
        if self.mfcc_stats:
            from emofuse.features.spectral import utterance_stats
            from emofuse.models.voice import VoiceFeatures, featurize

            mfcc = featurize(X, VoiceFeatures(), cache=self.cache, progress=self.progress)
            parts.append(np.stack([utterance_stats(f) for f in mfcc]))  # (n, 4 * MFCC rows)
        return np.concatenate(parts, axis=1)

    def _augmented(self, X: Sequence[AudioInput], targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The copies of ``X``, stacked, with their targets: one per ``augment_speeds`` factor (first,
        in order: TTA splits them back), then ``augment_channels`` channel copies."""
        copies = [self.featurize(X, speed=f) for f in self.augment_speeds]
        copies += [self.featurize(X, channel=k) for k in range(1, self.augment_channels + 1)]
        return np.concatenate(copies), np.tile(targets, len(copies))

    def fit(self, X: Sequence[AudioInput], y: Sequence[str], *, labels: Sequence[str],
            X_val: Sequence[AudioInput] | None = None, y_val: Sequence[str] | None = None, **_: Any) -> VoiceWhisper:
        targets = label_targets(y, labels)
        feats = self.featurize(X)
        refit_extra = None
        augmented = bool(self.augment_speeds or self.augment_channels)
        if augmented:
            extra, extra_targets = self._augmented(X, targets)
            feats, targets = np.concatenate([feats, extra]), np.concatenate([targets, extra_targets])
        val = None
        val_views: list[np.ndarray] = []
        if X_val is not None and y_val is not None:
            val_targets = label_targets(y_val, labels)
            val = (self.featurize(X_val), val_targets)
            if augmented and (self.refit_with_val or self.tta):
                refit_extra = self._augmented(X_val, val_targets)
                if self.tta:  # the speed copies, one factor after another, as _augmented stacks them
                    n_val = len(val_targets)
                    val_views = [refit_extra[0][k * n_val : (k + 1) * n_val] for k in range(len(self.augment_speeds))]
                if not self.refit_with_val:
                    refit_extra = None
        self.head_, self.C_, self.val_scores_, val_proba = fit_logreg_select(
            feats, targets, labels, C=self.C, C_grid=self.C_grid, max_iter=self.max_iter, val=val, name=self.name,
            refit_with_val=self.refit_with_val, refit_extra=refit_extra, solver=HEADS[self.head], val_views=val_views)
        if self.untrimmed_view:
            untrimmed_val = None if val is None else (self.featurize(X_val, trim=False), val[1])  # type: ignore[arg-type]
            self.untrimmed_head_, self.untrimmed_C_, self.untrimmed_val_scores_, untrimmed_proba = fit_logreg_select(
                self.featurize(X, trim=False), label_targets(y, labels), labels, C=self.C, C_grid=self.C_grid,
                max_iter=self.max_iter, val=untrimmed_val, name=f"{self.name} (untrimmed view)",
                refit_with_val=self.refit_with_val, solver=HEADS[self.head])
            if val_proba is not None and untrimmed_proba is not None:
                val_proba = (val_proba + untrimmed_proba) / 2  # as predict_proba averages the two heads
        # Validation probabilities from heads that never saw the validation clips: what late fusion
        # fits on (predict_proba(X_val) is in-sample once the final heads are refitted with them).
        self.heldout_val_proba_ = val_proba
        self.labels_ = tuple(labels)
        return self

    @property
    def fits_on_validation(self) -> bool:
        """True when the final heads are fitted on the validation clips too (``refit_with_val``)."""
        return bool(self.refit_with_val)

    def predict_proba(self, X: Sequence[AudioInput]) -> np.ndarray:
        check_fitted(self)
        probs = self.head_.predict_proba(self.featurize(X), len(self.labels_))
        if self.tta:
            copies = [self.head_.predict_proba(self.featurize(X, speed=f), len(self.labels_)) for f in self.augment_speeds]
            probs = np.mean([probs, *copies], axis=0)
        if self.untrimmed_view:
            probs = (probs + self.untrimmed_head_.predict_proba(self.featurize(X, trim=False), len(self.labels_))) / 2
        return probs

    # -- speaker adaptation (optional second head) -------------------------------------------------

    def fit_speaker_head(self, X: Sequence[AudioInput], y: Sequence[str], speakers: Sequence[str], *,
                         X_val: Sequence[AudioInput] | None = None, y_val: Sequence[str] | None = None,
                         val_speakers: Sequence[str] | None = None, shrinkage: float = 8.0,
                         min_clips: int = 4, C: float | str | None = None) -> VoiceWhisper:
        """A second head, on per-speaker standardised features, for :meth:`predict_proba_for_speaker`.

        Training (and validation) speakers are standardised with all their clips, as in the ``+spk``
        benchmark variants; ``C`` (default: the model's own, so ``"val"`` picks it on the validation
        speakers) is the head's inverse regularisation strength. Until a speaker has
        been heard in ``min_clips`` clips, the plain head answers (the ``+spk k=4`` variant is the
        smallest k that beat the plain model on ravdess-6fold).
        """
        check_fitted(self)
        labels = self.labels_
        feats = self.featurize(X)
        norm = SpeakerNormaliser(shrinkage=shrinkage)
        known_feats, known_speakers = feats, list(speakers)
        val = None
        if X_val is not None and y_val is not None and val_speakers is not None:
            val_feats = self.featurize(X_val)
            known_feats = np.concatenate([feats, val_feats])
            known_speakers = [*speakers, *val_speakers]
        norm.fit_population(known_feats, known_speakers)
        everything = SpeakerNormaliser(shrinkage=0.0, min_clips_for_scale=1,
                                       population_mean_=norm.population_mean_, population_std_=norm.population_std_)
        if X_val is not None and y_val is not None and val_speakers is not None:
            val = (everything.transform(val_feats, list(val_speakers)), label_targets(y_val, labels))
        self.speaker_head_, self.speaker_C_, _, _ = fit_logreg_select(
            everything.transform(feats, list(speakers)), label_targets(y, labels), labels,
            C=self.C if C is None else C,
            C_grid=self.C_grid, max_iter=self.max_iter, val=val, name=f"{self.name}+spk",
            refit_with_val=self.refit_with_val, solver=HEADS[self.head])
        self.speaker_norm_ = norm
        self.speaker_min_clips = int(min_clips)
        return self

    @property
    def adapts_to_speakers(self) -> bool:
        return getattr(self, "speaker_head_", None) is not None

    def new_speaker(self) -> RunningSpeakerStats:
        """Running statistics for one new speaker: feed them to :meth:`predict_proba_for_speaker`."""
        if not self.adapts_to_speakers:
            raise ConfigError(f"{self.name} has no speaker-adapted head (see fit_speaker_head)")
        return RunningSpeakerStats(self.speaker_norm_, min_clips=self.speaker_min_clips)

    def predict_proba_for_speaker(self, X: Sequence[AudioInput], speaker: RunningSpeakerStats, *,
                                  update: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Clips of one speaker, in the order they were heard: ``(probabilities, adapted_from)``.

        Each clip first joins the speaker's running statistics (``update``), then is scored by the
        speaker-adapted head once ``min_clips`` clips have been heard, by the plain head before.
        ``adapted_from`` (n,) int: how many clips the statistics that adapted each clip held (0 where
        the plain head answered).
        """
        check_fitted(self)
        feats = self.featurize(X)
        probs = np.empty((len(feats), len(self.labels_)))
        adapted_from = np.zeros(len(feats), dtype=int)
        for i, f in enumerate(feats):
            if update:
                speaker.update(f)
            if speaker.ready:
                probs[i] = self.speaker_head_.predict_proba(speaker.adapt(f[None, :]), len(self.labels_))[0]
                adapted_from[i] = speaker.n
            else:
                probs[i] = self.head_.predict_proba(f[None, :], len(self.labels_))[0]
        return probs, adapted_from

    def save(self, directory: str | Path) -> None:
        check_fitted(self)
        arrays = self.head_.arrays()
        if self.untrimmed_view:
            arrays.update({f"untrimmed.{k}": v for k, v in self.untrimmed_head_.arrays().items()})
        meta: dict[str, Any] = {
            "model": self.name,
            "architecture": {"kind": "whisper_logreg", "C": self.C_, "augment_speeds": list(self.augment_speeds),
                             **({"augment_channels": self.augment_channels} if self.augment_channels else {}),
                             **({"mfcc_stats": True} if self.mfcc_stats else {}),
                             **({"head": self.head} if self.head != "logreg" else {}),
                             **({"tta": True} if self.tta else {}),
                             **({"untrimmed_view": True, "untrimmed_C": self.untrimmed_C_} if self.untrimmed_view
                                else {})},
            "labels": list(self.labels_),
            "features": self.features.to_dict(),
            "normalisation": "feature mean / scale arrays in the weights, fitted on the training set",
        }
        if self.adapts_to_speakers:
            arrays.update({f"speaker.{k}": v for k, v in self.speaker_head_.arrays().items()})
            arrays["speaker.population_mean"] = self.speaker_norm_.population_mean_
            arrays["speaker.population_std"] = self.speaker_norm_.population_std_
            meta["speaker_adaptation"] = {"C": self.speaker_C_, "shrinkage": self.speaker_norm_.shrinkage,
                                          "min_clips_for_scale": self.speaker_norm_.min_clips_for_scale,
                                          "min_clips": self.speaker_min_clips}
        save_checkpoint(directory, arrays=arrays, meta=meta)

    @classmethod
    def load(cls, directory: str | Path, **kwargs: Any) -> VoiceWhisper:
        arrays, meta = load_checkpoint(directory)
        architecture = meta["architecture"]
        C = float(architecture["C"])
        model = cls(meta["model"], features=WhisperFeatures.from_dict(meta["features"]), C=C,
                    augment_speeds=architecture.get("augment_speeds", ()),
                    augment_channels=architecture.get("augment_channels", 0),
                    untrimmed_view=architecture.get("untrimmed_view", False),
                    mfcc_stats=architecture.get("mfcc_stats", False),
                    head=architecture.get("head", "logreg"), tta=architecture.get("tta", False), **kwargs)
        model.C_ = C
        model.head_ = StandardisedLogReg.from_arrays({k: v for k, v in arrays.items() if "." not in k}, C=C)
        if model.untrimmed_view:
            model.untrimmed_C_ = float(architecture["untrimmed_C"])
            model.untrimmed_head_ = StandardisedLogReg.from_arrays(
                {k.removeprefix("untrimmed."): v for k, v in arrays.items() if k.startswith("untrimmed.")},
                C=model.untrimmed_C_)
        model.labels_ = tuple(meta["labels"])
        spk = meta.get("speaker_adaptation")
        if spk is not None:
            model.speaker_C_ = float(spk["C"])
            model.speaker_head_ = StandardisedLogReg.from_arrays(
                {k.removeprefix("speaker."): v for k, v in arrays.items() if k.startswith("speaker.")}, C=model.speaker_C_)
            model.speaker_norm_ = SpeakerNormaliser(
                shrinkage=float(spk["shrinkage"]), min_clips_for_scale=int(spk["min_clips_for_scale"]),
                population_mean_=arrays["speaker.population_mean"], population_std_=arrays["speaker.population_std"])
            model.speaker_min_clips = int(spk["min_clips"])
        return model
