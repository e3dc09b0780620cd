"""On-the-fly data augmentation for training voice models.

Two stages, because they see different data:

* :class:`WaveformAugmenter` works on one clip at a time, in the dataset, before features are
  computed: additive noise, gain, time shift, speed perturbation and pitch shift. It wraps
  `audiomentations <https://iver56.github.io/audiomentations/>`_ and adds Kaldi-style speed
  perturbation (a soxr resample), which audiomentations does not offer.
* :func:`spec_augment` and :func:`mixup` work on a batch of features in the training loop, on
  whatever device the batch is on, drawing from the loop's ``torch.Generator``.

Everything is off unless an :class:`AugmentConfig` turns it on; :data:`PRESETS` holds the values we
use for emotional speech.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from numbers import Real
from typing import Any

import numpy as np
import torch

from emofuse.errors import EmofuseError, checked_options
from emofuse.features.corrupt import speed_perturb

_RANGE_FIELDS = ("noise_snr_db", "gain_db", "speed", "pitch_semitones")
_INT_FIELDS = ("time_masks", "time_mask_frames", "freq_masks", "freq_mask_bins")


class AugmentConfigError(EmofuseError, ValueError):
    """An augmentation config with an unknown key or a value out of range."""


@dataclass(frozen=True)
class AugmentConfig:
    """What to augment and how hard. Each augmentation is off when its field is None / 0.

    Strict: :meth:`from_dict` refuses unknown keys, and every value is checked on construction.
    """

    p: float = 0.5  # probability of each enabled waveform transform, drawn independently per clip
    noise_snr_db: tuple[float, float] | None = None  # additive Gaussian noise, SNR uniform in this range
    gain_db: tuple[float, float] | None = None
    shift_seconds: float | None = None  # max time shift either way; padded with silence, not wrapped
    speed: tuple[float, float] | None = None  # factor range, e.g. (0.9, 1.1): tempo AND pitch, Kaldi-style
    pitch_semitones: tuple[float, float] | None = None  # pitch only, duration kept
    time_masks: int = 0  # SpecAugment: number of time masks per example
    time_mask_frames: int = 20  # max width of each
    freq_masks: int = 0
    freq_mask_bins: int = 8
    mixup_alpha: float | None = None  # lambda ~ Beta(alpha, alpha)

    def __post_init__(self) -> None:
        def fail(name: str, problem: str) -> AugmentConfigError:
            return AugmentConfigError(f"augment config: {name} {problem} (got {getattr(self, name)!r})")

        if not _is_number(self.p) or not 0.0 <= self.p <= 1.0:
            raise fail("p", "must be a probability in [0, 1]")
        for name in _RANGE_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            if not (isinstance(value, tuple) and len(value) == 2 and all(_is_number(v) for v in value)):
                raise fail(name, "must be a (low, high) pair of numbers or None")
            if value[0] > value[1]:
                raise fail(name, "must have low <= high")
        if self.speed is not None and self.speed[0] <= 0:
            raise fail("speed", "factors must be > 0")
        # audiomentations' PitchShift refuses more than two octaves either way.
        if self.pitch_semitones is not None and (self.pitch_semitones[0] < -24 or self.pitch_semitones[1] > 24):
            raise fail("pitch_semitones", "must lie within [-24, 24]")
        if self.shift_seconds is not None and (not _is_number(self.shift_seconds) or self.shift_seconds < 0):
            raise fail("shift_seconds", "must be a number >= 0 or None")
        for name in _INT_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise fail(name, "must be an integer >= 0")
        if self.mixup_alpha is not None and (not _is_number(self.mixup_alpha) or self.mixup_alpha < 0):
            raise fail("mixup_alpha", "must be a number >= 0 or None")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AugmentConfig:
        """Build from a parsed YAML/JSON mapping; lists become tuples, an unknown key is an error."""
        values = checked_options(cls, d, what="augmentation", error=AugmentConfigError)
        for name in _RANGE_FIELDS:
            if isinstance(values.get(name), list):
                values[name] = tuple(values[name])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """A plain mapping (ranges as lists) that JSON and YAML can write and :meth:`from_dict` reads back."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @property
    def waveform_enabled(self) -> bool:
        """Whether :class:`WaveformAugmenter` would ever change a clip (False when ``p`` is 0)."""
        transforms = (self.noise_snr_db, self.gain_db, self.shift_seconds or None, self.speed, self.pitch_semitones)
        return self.p > 0 and any(t is not None for t in transforms)

    @property
    def spec_enabled(self) -> bool:
        """Whether :func:`spec_augment` would mask anything."""
        return (self.time_masks > 0 and self.time_mask_frames > 0) or (self.freq_masks > 0 and self.freq_mask_bins > 0)


def _is_number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and bool(np.isfinite(float(value)))


_LIGHT = AugmentConfig(
    p=0.5,
    noise_snr_db=(15.0, 30.0),  # audible but never masking the voice
    gain_db=(-6.0, 6.0),  # recording level varies between corpora and microphones
    shift_seconds=0.2,
    time_masks=2,
    time_mask_frames=20,  # 0.2 s at a 10 ms hop: about a syllable
    freq_masks=2,
    freq_mask_bins=8,
)
PRESETS: dict[str, AugmentConfig] = {
    "none": AugmentConfig(),
    "light": _LIGHT,
    # Batch-level only (SpecAugment + mixup): no waveform work, so features stay cached and an
    # epoch costs what it costs without augmentation. The regulariser of choice on a CPU.
    "spec": AugmentConfig(time_masks=2, time_mask_frames=20, freq_masks=2, freq_mask_bins=8, mixup_alpha=0.2),
    # ±10 % speed and ±2 semitones stay inside normal speaker variation, so the emotion label still holds.
    "strong": replace(_LIGHT, speed=(0.9, 1.1), pitch_semitones=(-2.0, 2.0), mixup_alpha=0.2),
}


# audiomentations draws from the global `random` and `np.random` and takes no generator (0.43.1), so each
# call seeds them from the augmenter's own generator and then puts them back. The lock keeps two
# augmenters in threads of one process from interleaving; worker processes each have their own globals.
_GLOBAL_RNG_LOCK = threading.Lock()


@contextmanager
def _seeded_global_rngs(seed: int) -> Iterator[None]:
    with _GLOBAL_RNG_LOCK:
        python_state = random.getstate()
        numpy_state = np.random.get_state()
        random.seed(seed)
        np.random.seed(seed)
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)


class WaveformAugmenter:
    """Random waveform transforms for one training process (numpy in, numpy out).

    Order: speed, pitch, shift, gain, then noise, so the SNR is measured against the clip as the
    model hears it. Each transform fires independently with probability ``config.p``. Two augmenters
    built with the same seed give the same outputs for the same inputs, call after call.

    With DataLoader worker processes every worker gets a copy of the same generator state; build the
    augmenter again inside each worker, seeded with the worker's seed, so workers do not repeat each
    other's augmentations (the training loop's ``reseed_worker`` does, through the dataset's ``reseed``).
    """

    def __init__(self, config: AugmentConfig, *, sample_rate_hz: int = 16_000, seed: int = 0) -> None:
        import audiomentations as am  # only training needs it, and importing it loads librosa

        self.config = config
        self.sample_rate_hz = sample_rate_hz
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        c = config
        transforms: list[Any] = []
        if c.pitch_semitones is not None:
            # signalsmith_stretch (the default) is fast and keeps the length; librosa's vocoder is neither.
            transforms.append(am.PitchShift(min_semitones=c.pitch_semitones[0], max_semitones=c.pitch_semitones[1], p=c.p))
        if c.shift_seconds:
            transforms.append(am.Shift(min_shift=-c.shift_seconds, max_shift=c.shift_seconds, shift_unit="seconds",
                                       rollover=False, p=c.p))
        if c.gain_db is not None:
            transforms.append(am.Gain(min_gain_db=c.gain_db[0], max_gain_db=c.gain_db[1], p=c.p))
        if c.noise_snr_db is not None:
            transforms.append(am.AddGaussianSNR(min_snr_db=c.noise_snr_db[0], max_snr_db=c.noise_snr_db[1], p=c.p))
        self._transforms = transforms

    def __call__(self, y: np.ndarray) -> np.ndarray:
        """(samples,) float mono -> (samples',) float32; samples' differs from samples only under speed."""
        y = np.asarray(y, dtype=np.float32)
        if y.ndim != 1:
            raise ValueError(f"WaveformAugmenter expects mono audio of shape (samples,), got shape {y.shape}")
        if not np.isfinite(y).all():
            raise ValueError("WaveformAugmenter got audio with NaN or inf samples")
        if y.size == 0:
            return y
        # The same three draws every call, whatever fires, so the n-th clip's randomness depends on seed and n only.
        apply_speed = self._rng.random() < self.config.p
        speed_u = self._rng.random()
        library_seed = int(self._rng.integers(2**32))

        if self.config.speed is not None and apply_speed:
            low, high = self.config.speed
            y = speed_perturb(y, factor=low + (high - low) * speed_u, sr=self.sample_rate_hz)
        if self._transforms:
            with _seeded_global_rngs(library_seed):
                for transform in self._transforms:
                    y = transform(y, sample_rate=self.sample_rate_hz)
        # The transforms keep finite input finite (noise on silence has zero power); this is a cheap guard.
        return np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32, copy=False)


def spec_augment(x: torch.Tensor, config: AugmentConfig, *, generator: torch.Generator) -> torch.Tensor:
    """SpecAugment on a batch of features (batch, features, frames); returns a new tensor.

    Each example gets ``config.time_masks`` time spans of width uniform in [0, time_mask_frames] and
    ``config.freq_masks`` feature bands of width uniform in [0, freq_mask_bins], set to zero (as in
    torchaudio and SpeechBrain); normalise features first so zero is their mean. Masks may overlap.
    Random numbers come from ``generator`` on its own device; masks are built on ``x.device``.
    """
    if x.ndim != 3:
        raise ValueError(f"spec_augment expects (batch, features, frames), got shape {tuple(x.shape)}")
    batch, n_features, n_frames = x.shape
    masked = torch.zeros(batch, n_features, n_frames, dtype=torch.bool, device=x.device)
    if config.time_masks > 0 and config.time_mask_frames > 0:
        spans = _random_spans(batch, config.time_masks, config.time_mask_frames, n_frames, generator, x.device)
        masked |= spans[:, None, :]  # (batch, 1, frames)
    if config.freq_masks > 0 and config.freq_mask_bins > 0:
        bands = _random_spans(batch, config.freq_masks, config.freq_mask_bins, n_features, generator, x.device)
        masked |= bands[:, :, None]  # (batch, features, 1)
    return x.masked_fill(masked, 0.0)


def _random_spans(batch: int, n_spans: int, max_width: int, length: int, generator: torch.Generator,
                  device: torch.device) -> torch.Tensor:
    """(batch, length) bool: the union of n_spans spans per row, each of width uniform in [0, max_width]."""
    max_width = min(max_width, length)
    widths = torch.randint(0, max_width + 1, (batch, n_spans), generator=generator, device=generator.device)
    # start uniform in [0, length - width], so the span always fits
    u = torch.rand(batch, n_spans, generator=generator, device=generator.device)
    starts = (u * (length - widths + 1)).long()
    widths, starts = widths.to(device), starts.to(device)
    positions = torch.arange(length, device=device)  # (length,)
    inside = (positions >= starts[..., None]) & (positions < (starts + widths)[..., None])  # (batch, n_spans, length)
    return inside.any(dim=1)


def mixup(x: torch.Tensor, y: torch.Tensor, *, alpha: float,
          generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix each example with a random partner from the same batch (Zhang et al., 2018).

    ``x`` is (batch, ...), ``y`` (batch, n_classes) soft targets. Each example draws its own
    lambda ~ Beta(alpha, alpha), folded to max(lambda, 1 - lambda) so every mixed example stays
    closest to its own original (the pair distribution is unchanged, the Beta being symmetric).
    Returns new ``(x, y)``; each row of the mixed ``y`` still sums to 1.
    """
    if alpha <= 0:
        raise ValueError(f"mixup alpha must be > 0, got {alpha}")
    if y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"mixup expects x (batch, ...) and y (batch, n_classes), got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")
    batch = x.shape[0]
    partner = torch.randperm(batch, generator=generator, device=generator.device).to(x.device)
    # torch's Beta sampler takes no generator; seed numpy's from ours so runs stay reproducible.
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
    lam_np = np.random.default_rng(seed).beta(alpha, alpha, size=batch)
    lam = torch.from_numpy(np.maximum(lam_np, 1.0 - lam_np)).to(x.device)  # (batch,)
    lam_x = lam.to(x.dtype).view(batch, *([1] * (x.ndim - 1)))
    lam_y = lam.to(y.dtype).view(batch, 1)
    return lam_x * x + (1 - lam_x) * x[partner], lam_y * y + (1 - lam_y) * y[partner]


def cutmix(x: torch.Tensor, y: torch.Tensor, *, alpha: float,
           generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Paste a random box of a partner example into each image (Yun et al., 2019).

    ``x`` is (batch, channels, h, w), ``y`` (batch, n_classes) soft targets. The box's area is
    ``1 - lambda`` of the image, lambda ~ Beta(alpha, alpha) per example; targets are mixed by the
    area actually pasted (a box clipped at the border pastes less).
    """
    if alpha <= 0:
        raise ValueError(f"cutmix alpha must be > 0, got {alpha}")
    batch, _, h, w = x.shape
    partner = torch.randperm(batch, generator=generator, device=generator.device).to(x.device)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
    rng = np.random.default_rng(seed)
    lam = rng.beta(alpha, alpha, size=batch)
    cut_h, cut_w = np.sqrt(1 - lam) * h, np.sqrt(1 - lam) * w
    cy, cx = rng.uniform(0, h, size=batch), rng.uniform(0, w, size=batch)
    top, bottom = np.clip(cy - cut_h / 2, 0, h).astype(int), np.clip(cy + cut_h / 2, 0, h).astype(int)
    left, right = np.clip(cx - cut_w / 2, 0, w).astype(int), np.clip(cx + cut_w / 2, 0, w).astype(int)
    rows, cols = torch.arange(h, device=x.device), torch.arange(w, device=x.device)

    def column(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).to(x.device)[:, None]

    inside = (((rows[None] >= column(top)) & (rows[None] < column(bottom)))[:, :, None]
              & ((cols[None] >= column(left)) & (cols[None] < column(right)))[:, None, :])  # (batch, h, w)
    pasted = inside.flatten(1).float().mean(dim=1).to(y.dtype)[:, None]  # (batch, 1)
    return torch.where(inside[:, None], x[partner], x), (1 - pasted) * y + pasted * y[partner]
