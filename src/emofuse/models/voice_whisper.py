"""Voice emotion from a frozen Whisper encoder: pooled states of every layer, a trained head on top.

The encoder is pretrained on 680 000 hours of speech and never sees emotion labels; a head trained
on RAVDESS reads emotion out of its states. Features of a clip are the mean and standard deviation
over its frames of each layer's states (the convolutional embedding and every block), for each
Whisper model named, computed once per file and cached (content hash + settings). Which layers the
head reads, and how, is the model's choice, so one extraction serves every variant.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from emofuse.errors import ConfigError, checked_options
from emofuse.features.audio import SAMPLE_RATE_HZ, load_waveform, trim_silence
from emofuse.features.cache import FeatureCache
from emofuse.features.corrupt import speed_perturb
from emofuse.models.base import check_fitted, label_targets
from emofuse.models.linear import StandardisedLogReg, fit_logreg_select
from emofuse.training.checkpoint import load_checkpoint, save_checkpoint

AudioInput = str | Path | np.ndarray
FEATURE_VERSION = 1
HEADS = {"logreg": "torch", "ridge": "ridge"}  # head -> StandardisedLogReg solver
LOGREG_C_GRID = (0.003, 0.01, 0.03)
RIDGE_C_GRID = (1e-4, 3e-4, 1e-3)  # alpha 10,000, 3,333, 1,000 on thousands of standardised states


@dataclass(frozen=True)
class WhisperFeatures:
    """Which encoder states a model reads.

    ``models``: offline Whisper models (``tiny.en``, ``base``) or CTranslate2 model folders; their
    features are concatenated. ``layers``: ``"all"``, or indices into each model's states (0 = the
    convolutional embedding, -1 = the last block); negative indices count from the end, so one
    setting fits models of different depth. ``pooling``: ``mean`` or ``mean_std`` over frames, or
    ``attention``: the frames themselves are kept (averaged in groups of ``frame_stride``, 20 ms
    each) and the model learns how to pool them (``voice_whisper_attn``).
    ``trim`` drops leading and trailing silence first (RAVDESS clips open with about a second of it),
    so only frames of real audio are pooled. ``speech_crop`` crops instead to the span Silero VAD
    hears as speech (an energy trim keeps everything once noise fills the silence), falling back to
    the energy trim where it hears none; ``loudness_dbfs`` then scales the clip to that RMS level, so
    a quiet and a loud recording of one voice give the encoder the same input.
    """

    models: tuple[str, ...] = ("tiny.en",)
    layers: str | tuple[int, ...] = "all"
    pooling: str = "mean_std"
    trim: bool = True
    top_db: float = 40.0
    batch_size: int = 8
    frame_stride: int = 2
    speech_crop: bool = False
    loudness_dbfs: float | None = None

    def __post_init__(self) -> None:
        from emofuse.features.whisper import POOLINGS

        object.__setattr__(self, "models", tuple(self.models))
        if not self.models:
            raise ConfigError("WhisperFeatures needs at least one model")
        if isinstance(self.layers, str):
            if self.layers != "all":
                raise ConfigError(f"layers must be 'all' or a list of layer indices, not {self.layers!r}")
        else:
            object.__setattr__(self, "layers", tuple(int(i) for i in self.layers))
        if self.pooling not in (*POOLINGS, "attention"):
            raise ConfigError(f"pooling must be one of {', '.join(POOLINGS)}, attention, not {self.pooling!r}")
        if self.frame_stride < 1:
            raise ConfigError(f"frame_stride must be at least 1, not {self.frame_stride}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> WhisperFeatures:
        return cls(**checked_options(cls, d, what="Whisper feature"))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["models"] = list(self.models)
        d["layers"] = self.layers if isinstance(self.layers, str) else list(self.layers)
        return d

    def cache_settings(self, model: str) -> dict[str, Any]:
        """What the cached array of one model depends on (not the layer choice: all layers are stored)."""
        # The two later options enter the key only when on, so the arrays cached before them stay valid.
        extra = {k: v for k, v in (("speech_crop", self.speech_crop), ("loudness_dbfs", self.loudness_dbfs)) if v}
        if self.pooling == "attention":
            return {"kind": "whisper_frames", "model": model, "frame_stride": self.frame_stride, "trim": self.trim,
                    "top_db": self.top_db, "version": FEATURE_VERSION, **extra}
        return {"kind": "whisper", "model": model, "pooling": self.pooling, "trim": self.trim,
                "top_db": self.top_db, "version": FEATURE_VERSION, **extra}


def prepare_waveform(item: AudioInput, features: WhisperFeatures, *, speed: float = 1.0) -> np.ndarray:
    """A clip as the Whisper features take it: decoded at 16 kHz, checked, trimmed, sped up or down."""
    y = load_waveform(item, sample_rate_hz=SAMPLE_RATE_HZ)
    if speed != 1.0:
        y = speed_perturb(y, factor=speed)
    span = None
    if features.speech_crop:
        from emofuse.features.vad import speech_span

        span = speech_span(y)
        if span is not None:
            y = y[span[0] : span[1]]
    if features.trim and span is None:
        y = trim_silence(y, sr=SAMPLE_RATE_HZ, top_db=features.top_db)
    if features.loudness_dbfs is not None:
        rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if len(y) else 0.0
        if rms > 0:
            y = np.clip(y * (10 ** (features.loudness_dbfs / 20) / rms), -1.0, 1.0).astype(np.float32)
    if len(y) < 800:  # under 50 ms: pad with silence so the encoder has a few frames
        y = np.pad(y, (0, 800 - len(y)))
    return y[: 30 * SAMPLE_RATE_HZ]  # the encoder's window; longer audio is chunked by callers


def pooled_states(items: Sequence[AudioInput], features: WhisperFeatures, *, model: str,
                  cache: FeatureCache | None = None, device: str = "cpu", progress: bool = False,
                  speed: float = 1.0) -> np.ndarray:
    """``(len(items), n_layers + 1, d)`` pooled states of one Whisper model for each item.

    Files already in ``cache`` are read back; the rest are encoded in batches of similar length
    (sorting by length keeps padding, and so wasted work, small). ``speed`` != 1 encodes a
    speed-perturbed copy of each item (training augmentation), cached under its own key.
    """
    from emofuse.features.whisper import pool_states

    if features.pooling == "attention":
        raise ConfigError("pooling 'attention' keeps the frames: use frame_states")
    return np.stack(_encoded(items, features, model=model, cache=cache, device=device, progress=progress,
                             speed=speed, reduce=lambda states: pool_states(states, kind=features.pooling)))


def frame_states(items: Sequence[AudioInput], features: WhisperFeatures, *, model: str,
                 cache: FeatureCache | None = None, device: str = "cpu", progress: bool = False) -> list[np.ndarray]:
    """Per item, ``(n_layers + 1, frames, d)`` float16 states of one Whisper model, every
    ``features.frame_stride`` encoder frames averaged into one (``pooling="attention"``), cached like
    :func:`pooled_states`."""
    if features.pooling != "attention":
        raise ConfigError(f"frame_states keeps the frames of pooling 'attention', not {features.pooling!r}")
    return _encoded(items, features, model=model, cache=cache, device=device, progress=progress,
                    reduce=lambda states: stride_frames(states, stride=features.frame_stride))


def stride_frames(states: np.ndarray, *, stride: int) -> np.ndarray:
    """``(layers, frames, d)`` -> ``(layers, ceil(frames / stride), d)`` float16: the mean of each
    group of ``stride`` frames (the last group may be shorter), halving storage once more."""
    layers, frames, d = states.shape
    groups = -(-frames // stride)
    padded = np.zeros((layers, groups * stride, d), dtype=np.float32)
    padded[:, :frames] = states
    counts = np.full(groups, stride, dtype=np.float32)
    counts[-1] = frames - (groups - 1) * stride
    sums = padded.reshape(layers, groups, stride, d).sum(axis=2)
    return (sums / counts[None, :, None]).astype(np.float16)


def _encoded(items: Sequence[AudioInput], features: WhisperFeatures, *, model: str, cache: FeatureCache | None,
             device: str, progress: bool, reduce: Callable[[np.ndarray], np.ndarray],
             speed: float = 1.0) -> list[np.ndarray]:
    """``reduce(states)`` of each item, read from ``cache`` or encoded in length-sorted batches."""
    from emofuse._progress import track
    from emofuse.features.whisper import encode_batch, load_whisper_encoder

    settings = features.cache_settings(model)
    if speed != 1.0:
        settings = {**settings, "speed": float(speed)}
    out: list[np.ndarray | None] = [None] * len(items)
    todo: list[int] = []
    for i, item in enumerate(items):
        if cache is not None and isinstance(item, str | Path):
            hit = cache.lookup(item, settings)
            if hit is not None:
                out[i] = hit
                continue
        todo.append(i)
    if todo:
        encoder = load_whisper_encoder(model, device=device)
        waves = {i: prepare_waveform(items[i], features, speed=speed) for i in todo}
        order = sorted(todo, key=lambda i: len(waves[i]))
        batches = [order[s : s + features.batch_size] for s in range(0, len(order), features.batch_size)]
        for batch in track(batches, description=f"Whisper {model}", total=len(batches), enabled=progress):
            for i, states in zip(batch, encode_batch(encoder, [waves[i] for i in batch]), strict=True):
                reduced = reduce(states)
                item = items[i]
                if cache is not None and isinstance(item, str | Path):
                    cache.store(item, settings, reduced)
                out[i] = reduced
    return [o for o in out if o is not None]


def select_layers(pooled: np.ndarray, layers: str | tuple[int, ...]) -> np.ndarray:
    """``(n, n_layers + 1, d)`` -> ``(n, len(layers) * d)``: the chosen layers side by side."""
    if isinstance(layers, str):
        chosen = pooled
    else:
        n = pooled.shape[1]
        bad = [i for i in layers if not -n <= i < n]
        if bad:
            raise ConfigError(f"layer index {bad[0]} out of range for an encoder with {n} states")
        chosen = pooled[:, list(layers)]
    return chosen.reshape(len(pooled), -1)


@dataclass
class SpeakerNormaliser:
    """Per-speaker standardisation from unlabelled clips of the same speaker (``…+spk`` variants).

    Each speaker's features are centred (and, given enough clips, scaled) with statistics of that
    speaker's own unlabelled clips; with few clips the statistics shrink towards the training
    population's (``shrinkage`` pseudo-clips of the population mean and spread), so 4 clips move the
    features a little and 60 clips almost all the way.
    """

    shrinkage: float = 8.0
    min_clips_for_scale: int = 8
    population_mean_: np.ndarray = field(default_factory=lambda: np.zeros(0))
    population_std_: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def fit_population(self, features: np.ndarray, speakers: Sequence[str]) -> SpeakerNormaliser:
        """Population statistics: the average of per-speaker means and spreads of training speakers."""
        groups = _group(speakers)
        self.population_mean_ = np.mean([features[idx].mean(axis=0) for idx in groups.values()], axis=0)
        self.population_std_ = np.mean([features[idx].std(axis=0) for idx in groups.values()], axis=0) + 1e-6
        return self

    def statistics(self, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Shrunk mean and std of one speaker from ``clips`` (k, d) of their unlabelled features."""
        k = len(clips)
        weight = k / (k + self.shrinkage)
        mean = weight * clips.mean(axis=0) + (1 - weight) * self.population_mean_
        if k >= self.min_clips_for_scale:
            std = weight * clips.std(axis=0) + (1 - weight) * self.population_std_
        else:
            std = self.population_std_
        return mean, np.maximum(std, 1e-6)

    def transform(self, features: np.ndarray, speakers: Sequence[str],
                  adaptation: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """Standardise each row with its speaker's statistics, from ``adaptation[speaker]`` (the
        unlabelled clips to adapt on) or, when not given, from all of that speaker's rows here."""
        out = np.empty_like(features)
        for speaker, idx in _group(speakers).items():
            clips = adaptation[speaker] if adaptation is not None else features[idx]
            mean, std = self.statistics(clips)
            # Map onto the population's scale so a head trained on normalised features sees familiar ranges.
            out[idx] = (features[idx] - mean) / std * self.population_std_ + self.population_mean_
        return out


def _group(speakers: Sequence[str]) -> dict[str, np.ndarray]:
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(speakers):
        groups.setdefault(str(s), []).append(i)
    return {s: np.array(idx) for s, idx in groups.items()}


class VoiceWhisper:
    """Logistic regression on pooled Whisper encoder states (one or several models, chosen layers).

    ``C`` is the inverse regularisation strength; with ``C="val"`` (the default) it is chosen from
    ``C_grid`` by unweighted accuracy on the validation speakers (never the test ones), and with
    ``refit_with_val`` the final head is then fitted on training and validation speakers together.

    Two levers beyond the plain head: ``augment_speeds`` adds speed-perturbed copies of every
    training clip (e.g. 0.9 and 1.1, cached like the originals) to the head's training set, and
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
                 refit_with_val: bool = True, augment_speeds: Sequence[float] = (), untrimmed_view: bool = False,
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
        if self.mfcc_stats and (self.augment_speeds or untrimmed_view):
            raise ConfigError("mfcc_stats combines with the plain Whisper view only (no augment_speeds, untrimmed_view)")
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
                "augment_speeds": list(self.augment_speeds), "untrimmed_view": self.untrimmed_view,
                "mfcc_stats": self.mfcc_stats, "head": self.head, "tta": self.tta}

    def featurize(self, X: Sequence[AudioInput], *, speed: float = 1.0, trim: bool | None = None) -> np.ndarray:
        """``(len(X), n_features)``: chosen layers of every model, side by side (of speed-perturbed
        copies for ``speed`` != 1; ``trim=False`` for the untrimmed view)."""
        features = self.features if trim is None else replace(self.features, trim=trim)
        parts = [select_layers(pooled_states(X, features, model=m, cache=self.cache, device=self.device,
                                             progress=self.progress, speed=speed), features.layers)
                 for m in features.models]
        if self.mfcc_stats:
            from emofuse.features.audio import utterance_stats
            from emofuse.models.voice import VoiceFeatures, featurize

            mfcc = featurize(X, VoiceFeatures(), cache=self.cache, progress=self.progress)
            parts.append(np.stack([utterance_stats(f) for f in mfcc]))  # (n, 4 * MFCC rows)
        return np.concatenate(parts, axis=1)

    def _augmented(self, X: Sequence[AudioInput], targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The speed-perturbed copies of ``X`` (one per ``augment_speeds`` factor), stacked, with their targets."""
        copies = [self.featurize(X, speed=f) for f in self.augment_speeds]
        return np.concatenate(copies), np.tile(targets, len(copies))

    def fit(self, X: Sequence[AudioInput], y: Sequence[str], *, labels: Sequence[str],
            X_val: Sequence[AudioInput] | None = None, y_val: Sequence[str] | None = None, **_: Any) -> VoiceWhisper:
        targets = label_targets(y, labels)
        feats = self.featurize(X)
        refit_extra = None
        if self.augment_speeds:
            extra, extra_targets = self._augmented(X, targets)
            feats, targets = np.concatenate([feats, extra]), np.concatenate([targets, extra_targets])
        val = None
        val_views: list[np.ndarray] = []
        if X_val is not None and y_val is not None:
            val_targets = label_targets(y_val, labels)
            val = (self.featurize(X_val), val_targets)
            if self.augment_speeds and (self.refit_with_val or self.tta):
                refit_extra = self._augmented(X_val, val_targets)
                if self.tta:  # the copies, one factor after another, as _augmented stacks them
                    val_views = np.split(refit_extra[0], len(self.augment_speeds))
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


class RunningSpeakerStats:
    """Online speaker adaptation for ``predict``/``serve``: the statistics of one speaker's clips so far.

    Feed each new clip's features with :meth:`update`; :meth:`adapt` standardises a clip with the
    shrunk statistics of everything heard so far (the first clip moves little, a minute of speech
    almost fully), using the same rule as the ``+spk`` benchmark variants.
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
        norm = self.normaliser
        if self.n == 0:
            return np.asarray(features)
        k = self.n
        weight = k / (k + norm.shrinkage)
        mean_k = self._sum / k
        mean = weight * mean_k + (1 - weight) * norm.population_mean_
        if k >= norm.min_clips_for_scale:
            std_k = np.sqrt(np.maximum(self._sum_sq / k - mean_k**2, 0.0))
            std = weight * std_k + (1 - weight) * norm.population_std_
        else:
            std = norm.population_std_
        return (features - mean) / np.maximum(std, 1e-6) * norm.population_std_ + norm.population_mean_
