"""Augmentation: strict config, each waveform transform, reproducibility, SpecAugment and mixup."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("audiomentations")
pytest.importorskip("soxr")

from emofuse.training.augment import (  # noqa: E402
    PRESETS,
    AugmentConfig,
    WaveformAugmenter,
    mixup,
    spec_augment,
)

SR = 16_000


def tone(freq_hz: float = 440.0, seconds: float = 1.0, *, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def speech_like(seconds: float = 1.0, *, seed: int = 0) -> np.ndarray:
    """A tone with an amplitude envelope, so a time shift is visible anywhere in the clip."""
    rng = np.random.default_rng(seed)
    envelope = np.abs(np.sin(np.linspace(0, 7, int(seconds * SR)))).astype(np.float32)
    return tone(seconds=seconds) * envelope + 0.01 * rng.standard_normal(int(seconds * SR)).astype(np.float32)


def dominant_hz(y: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.fft.rfftfreq(len(y), 1 / SR)[np.argmax(spectrum)])


# --- config ---------------------------------------------------------------------------------------


def test_from_dict_converts_lists_and_round_trips_through_json() -> None:
    config = AugmentConfig.from_dict({"p": 0.8, "noise_snr_db": [10, 20], "speed": [0.9, 1.1], "time_masks": 3})
    assert config.noise_snr_db == (10, 20)
    assert isinstance(config.speed, tuple)
    assert config.time_masks == 3
    again = AugmentConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    assert AugmentConfig.from_dict({}) == AugmentConfig()


def test_from_dict_rejects_unknown_keys_and_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown augmentation option") as info:
        AugmentConfig.from_dict({"noise_snr": [10, 20], "gain_db": [-6, 6]})
    message = str(info.value)
    assert "noise_snr" in message
    assert "noise_snr_db" in message  # the known keys are listed
    assert "mixup_alpha" in message


@pytest.mark.parametrize(
    "bad",
    [
        {"p": 1.5},
        {"gain_db": [6, -6]},
        {"gain_db": [1, 2, 3]},
        {"noise_snr_db": "loud"},
        {"speed": [0.0, 1.1]},
        {"pitch_semitones": [-30, 2]},
        {"shift_seconds": -0.1},
        {"time_masks": 1.5},
        {"freq_masks": -1},
        {"mixup_alpha": -0.2},
    ],
)
def test_bad_values_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        AugmentConfig.from_dict(bad)


def test_presets_are_valid_and_ordered_by_strength() -> None:
    assert set(PRESETS) == {"none", "spec", "light", "strong"}
    for name, config in PRESETS.items():
        assert AugmentConfig.from_dict(config.to_dict()) == config, name
    none, light, strong = PRESETS["none"], PRESETS["light"], PRESETS["strong"]
    assert not none.waveform_enabled and not none.spec_enabled and none.mixup_alpha is None
    assert light.waveform_enabled and light.spec_enabled
    assert light.noise_snr_db == (15.0, 30.0) and light.gain_db == (-6.0, 6.0) and light.shift_seconds == 0.2
    assert (light.time_masks, light.freq_masks) == (2, 2)
    assert light.speed is None and light.pitch_semitones is None and light.mixup_alpha is None
    assert strong.speed == (0.9, 1.1) and strong.pitch_semitones == (-2.0, 2.0) and strong.mixup_alpha == 0.2
    assert strong.noise_snr_db == light.noise_snr_db and strong.time_masks == light.time_masks
    spec = PRESETS["spec"]  # batch-level only: features can stay cached
    assert not spec.waveform_enabled and spec.spec_enabled and spec.mixup_alpha == 0.2


def test_enabled_flags() -> None:
    assert AugmentConfig(gain_db=(-1, 1)).waveform_enabled
    assert not AugmentConfig(gain_db=(-1, 1), p=0.0).waveform_enabled
    assert not AugmentConfig(shift_seconds=0.0).waveform_enabled
    assert AugmentConfig(freq_masks=1).spec_enabled
    assert not AugmentConfig(mixup_alpha=0.4).spec_enabled


# --- waveform -------------------------------------------------------------------------------------


def test_empty_config_leaves_the_signal_unchanged() -> None:
    y = speech_like()
    out = WaveformAugmenter(AugmentConfig(p=1.0), seed=0)(y)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, y)


@pytest.mark.parametrize(
    "config",
    [
        AugmentConfig(p=1.0, noise_snr_db=(20, 20)),
        AugmentConfig(p=1.0, gain_db=(3, 6)),
        AugmentConfig(p=1.0, shift_seconds=0.1),
        AugmentConfig(p=1.0, speed=(1.1, 1.1)),
    ],
    ids=["noise", "gain", "shift", "speed"],
)
def test_each_transform_changes_the_signal_and_not_its_input(config: AugmentConfig) -> None:
    y = speech_like()
    before = y.copy()
    out = WaveformAugmenter(config, seed=1)(y)
    assert out.dtype == np.float32 and out.ndim == 1
    assert np.isfinite(out).all()
    assert out.shape != y.shape or not np.allclose(out, y, atol=1e-4)
    np.testing.assert_array_equal(y, before)


def test_gain_scales_by_the_drawn_decibels() -> None:
    y = speech_like()
    out = WaveformAugmenter(AugmentConfig(p=1.0, gain_db=(6, 6)), seed=0)(y)
    np.testing.assert_allclose(out, y * 10 ** (6 / 20), rtol=1e-5)


def test_shift_pads_with_silence_instead_of_wrapping() -> None:
    y = np.ones(SR, dtype=np.float32)
    out = WaveformAugmenter(AugmentConfig(p=1.0, shift_seconds=0.1), seed=3)(y)
    silent = np.flatnonzero(out == 0.0)
    assert 0 < len(silent) <= int(0.1 * SR) + 1
    # the silence is one block at one end of the clip
    assert silent[0] == 0 or silent[-1] == len(out) - 1
    assert np.all(np.diff(silent) == 1)


def test_speed_shortens_the_clip_and_raises_the_pitch() -> None:
    y = tone(440.0, seconds=1.0)
    out = WaveformAugmenter(AugmentConfig(p=1.0, speed=(1.1, 1.1)), seed=0)(y)
    assert abs(len(out) - len(y) / 1.1) <= 2
    assert dominant_hz(out) == pytest.approx(440.0 * 1.1, abs=3.0)  # Kaldi-style: pitch moves with tempo


def test_pitch_shift_keeps_length_and_moves_the_pitch() -> None:
    y = tone(440.0, seconds=0.5)
    out = WaveformAugmenter(AugmentConfig(p=1.0, pitch_semitones=(2, 2)), seed=0)(y)
    assert out.shape == y.shape and np.isfinite(out).all()
    # spectral resolution is 2 Hz for 0.5 s; 2 semitones up is about 494 Hz
    assert dominant_hz(out) == pytest.approx(440.0 * 2 ** (2 / 12), abs=4.0)


def test_noise_at_10_db_has_the_asked_snr() -> None:
    y = tone(440.0, seconds=1.0)
    out = WaveformAugmenter(AugmentConfig(p=1.0, noise_snr_db=(10, 10)), seed=0)(y)
    noise = out - y
    snr_db = 10 * np.log10(np.mean(y**2) / np.mean(noise**2))
    assert snr_db == pytest.approx(10.0, abs=1.5)


def test_p_zero_never_applies() -> None:
    y = speech_like()
    augment = WaveformAugmenter(AugmentConfig(p=0.0, noise_snr_db=(5, 5), gain_db=(6, 6), speed=(1.1, 1.1)), seed=0)
    for _ in range(3):
        np.testing.assert_array_equal(augment(y), y)


STRONG_WAVEFORM = AugmentConfig(p=0.7, noise_snr_db=(10, 30), gain_db=(-6, 6), shift_seconds=0.1, speed=(0.9, 1.1))


def test_same_seed_same_outputs_different_seed_different_outputs() -> None:
    clips = [speech_like(seed=i) for i in range(4)]
    a = WaveformAugmenter(STRONG_WAVEFORM, seed=7)
    b = WaveformAugmenter(STRONG_WAVEFORM, seed=7)
    c = WaveformAugmenter(STRONG_WAVEFORM, seed=8)
    outs_a, outs_b, outs_c = [a(y) for y in clips], [b(y) for y in clips], [c(y) for y in clips]
    for out_a, out_b in zip(outs_a, outs_b, strict=True):
        np.testing.assert_array_equal(out_a, out_b)
    assert any(oa.shape != oc.shape or not np.array_equal(oa, oc) for oa, oc in zip(outs_a, outs_c, strict=True))
    # successive calls draw fresh parameters
    assert any(oa.shape != outs_a[0].shape or not np.array_equal(oa, outs_a[0]) for oa in (a(clips[0]) for _ in range(3)))


def test_reproducible_whatever_the_global_rngs_and_leaves_them_alone() -> None:
    y = speech_like()
    random.seed(1)
    np.random.seed(1)
    first = WaveformAugmenter(STRONG_WAVEFORM, seed=3)(y)
    after_python, after_numpy = random.random(), np.random.random()
    random.seed(99)
    np.random.seed(99)
    second = WaveformAugmenter(STRONG_WAVEFORM, seed=3)(y)
    np.testing.assert_array_equal(first, second)
    # the training process's own global streams are not disturbed by augmenting
    random.seed(1)
    np.random.seed(1)
    assert (random.random(), np.random.random()) == (after_python, after_numpy)


def test_all_zero_input_stays_finite() -> None:
    augment = WaveformAugmenter(PRESETS["strong"], seed=0)
    for _ in range(5):
        out = augment(np.zeros(SR // 2, dtype=np.float32))
        assert np.isfinite(out).all()


def test_bad_waveform_input_is_refused() -> None:
    augment = WaveformAugmenter(AugmentConfig(p=1.0, gain_db=(0, 1)))
    with pytest.raises(ValueError, match="mono"):
        augment(np.zeros((2, 100), dtype=np.float32))
    with pytest.raises(ValueError, match="NaN"):
        augment(np.array([0.0, np.nan], dtype=np.float32))
    assert augment(np.zeros(0, dtype=np.float32)).shape == (0,)


# --- SpecAugment ----------------------------------------------------------------------------------


def test_spec_augment_time_masks_zero_whole_columns_within_the_budget() -> None:
    x = torch.ones(256, 40, 200)  # (batch, features, frames)
    config = AugmentConfig(time_masks=1, time_mask_frames=20)
    out = spec_augment(x, config, generator=torch.Generator().manual_seed(0))
    zero = out == 0
    assert torch.equal(x, torch.ones(256, 40, 200))  # input untouched
    # a masked frame is masked in every feature row: time masks are whole columns
    zero_columns = zero.all(dim=1)  # (batch, frames)
    assert torch.equal(zero.any(dim=1), zero_columns)
    counts = zero_columns.sum(dim=1)
    assert int(counts.max()) <= 20
    assert 7.0 < float(counts.float().mean()) < 13.0  # width uniform in [0, 20]: mean 10
    # one mask is one contiguous span
    for row in zero_columns[:32]:
        idx = torch.nonzero(row).flatten()
        if len(idx):
            assert int(idx[-1] - idx[0]) + 1 == len(idx)


def test_spec_augment_freq_masks_zero_whole_rows_within_the_budget() -> None:
    x = torch.ones(128, 40, 100)
    config = AugmentConfig(freq_masks=2, freq_mask_bins=8)
    out = spec_augment(x, config, generator=torch.Generator().manual_seed(0))
    zero = out == 0
    zero_rows = zero.all(dim=2)  # (batch, features)
    assert torch.equal(zero.any(dim=2), zero_rows)
    counts = zero_rows.sum(dim=1)
    assert int(counts.max()) <= 2 * 8
    assert int(counts.max()) > 8  # two masks do add up
    assert float(counts.float().mean()) > 4.0


def test_spec_augment_both_axes_and_disabled() -> None:
    x = torch.ones(16, 40, 100)
    g = torch.Generator().manual_seed(0)
    out = spec_augment(x, PRESETS["light"], generator=g)
    assert (out == 0).any() and (out == 1).any()
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    same = spec_augment(x, AugmentConfig(), generator=g)
    assert torch.equal(same, x) and same is not x


def test_spec_augment_is_reproducible_and_refuses_other_shapes() -> None:
    x = torch.randn(8, 40, 100)
    config = AugmentConfig(time_masks=2, freq_masks=2)
    a = spec_augment(x, config, generator=torch.Generator().manual_seed(5))
    b = spec_augment(x, config, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="batch"):
        spec_augment(torch.ones(40, 100), config, generator=torch.Generator())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_spec_augment_and_mixup_on_cuda() -> None:
    x = torch.ones(4, 40, 100, device="cuda")
    y = torch.eye(4, device="cuda")
    for g in (torch.Generator().manual_seed(0), torch.Generator(device="cuda").manual_seed(0)):
        out = spec_augment(x, PRESETS["light"], generator=g)
        assert out.device == x.device and (out == 0).any()
        mx, my = mixup(x, y, alpha=0.4, generator=g)
        assert mx.device == x.device and torch.allclose(my.sum(dim=1), torch.ones(4, device="cuda"))


# --- mixup ----------------------------------------------------------------------------------------


def test_mixup_keeps_soft_targets_normalised_and_mixes_pairs() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 40, 50)
    y = torch.nn.functional.one_hot(torch.arange(32) % 8, 8).float()
    mx, my = mixup(x, y, alpha=0.4, generator=g)
    assert mx.shape == x.shape and my.shape == y.shape
    torch.testing.assert_close(my.sum(dim=1), torch.ones(32))
    assert not torch.equal(mx, x)
    # each example keeps at least half its own label (lambda folded to >= 0.5)
    assert bool((my[torch.arange(32), torch.arange(32) % 8] >= 0.5 - 1e-6).all())
    # inputs and targets mix with the same partner and lambda: feed the targets as inputs
    mx_same, my_same = mixup(y.clone(), y, alpha=0.4, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(mx_same, my_same)
    assert not torch.equal(my_same, y)


def test_mixup_with_tiny_alpha_is_nearly_the_identity() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 10)
    y = torch.softmax(torch.randn(16, 5), dim=1)
    mx, my = mixup(x, y, alpha=1e-3, generator=g)
    torch.testing.assert_close(mx, x, atol=1e-2, rtol=0)
    torch.testing.assert_close(my, y, atol=1e-2, rtol=0)
    torch.testing.assert_close(my.sum(dim=1), torch.ones(16))


def test_mixup_is_reproducible_and_checks_its_input() -> None:
    x, y = torch.randn(8, 3), torch.softmax(torch.randn(8, 4), dim=1)
    a = mixup(x, y, alpha=0.2, generator=torch.Generator().manual_seed(1))
    b = mixup(x, y, alpha=0.2, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(ValueError):
        mixup(x, y[:4], alpha=0.2, generator=torch.Generator())
    with pytest.raises(ValueError):
        mixup(x, y, alpha=0.0, generator=torch.Generator())
