"""Speech or not: tones, hums, chords, melodies, noise and silence are refused; speech, speech in
noise, voice-like synthetic vowels and every real RAVDESS clip pass."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from emofuse.data.synthetic import non_speech_sounds, voiced_clip
from emofuse.features.vad import (
    SILERO_WINDOW,
    SileroStream,
    check_speech,
    silero_model,
    silero_probabilities,
    utterance_span,
)

needs_silero = pytest.mark.skipif(silero_model() is None, reason="Silero VAD needs faster-whisper and onnxruntime")


@needs_silero
@pytest.mark.parametrize("seed", [0, 1])
def test_non_speech_is_refused(seed):
    for name, y in non_speech_sounds(seed=seed).items():
        check = check_speech(y)
        assert not check.is_speech, (name, check)
        assert check.reason in ("silence", "tone", "noise", "no_voice")


def test_short_or_quiet_is_silence():
    assert check_speech(np.zeros(16_000, np.float32)).reason == "silence"
    assert check_speech(np.zeros(0, np.float32)).reason == "silence"
    assert check_speech(voiced_clip(seconds=0.1)).reason == "silence"  # under 0.2 s of sound
    with pytest.raises(ValueError, match="16000"):
        check_speech(np.zeros(8000, np.float32), sr=8000)


@needs_silero
def test_voice_like_vowels_pass():
    for seed in range(3):
        for f0 in (110.0, 220.0):
            check = check_speech(voiced_clip(seconds=1.0, f0_hz=f0, seed=seed))
            assert check.is_speech and check.silero_max is not None and check.silero_max > 0.5, check


def _espeak(text: str, tmp_path: Path) -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    from emofuse.features.audio import load_audio

    wav = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), text], check=True, capture_output=True)
    return load_audio(wav)


@needs_silero
def test_speech_and_speech_in_noise_pass(tmp_path):
    y = _espeak("Please tell me how you feel about the weather today.", tmp_path)
    assert check_speech(y).is_speech
    rng = np.random.default_rng(0)
    for snr_db in (20, 10, 5, 0):
        noise = rng.standard_normal(y.size)
        noise *= np.sqrt(np.mean(y**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
        check = check_speech((y + noise).astype(np.float32))
        assert check.is_speech, (snr_db, check)


def test_without_silero_the_spectral_checks_decide(monkeypatch):
    import emofuse.features.vad as vad

    monkeypatch.setattr(vad, "silero_probabilities", lambda y: None)
    sounds = non_speech_sounds()
    assert vad.check_speech(sounds["tone_220hz"]).reason == "tone"
    assert vad.check_speech(sounds["white_noise"]).reason == "noise"
    assert vad.check_speech(sounds["silence"]).reason == "silence"
    check = vad.check_speech(voiced_clip(seconds=1.0))
    assert check.is_speech and check.vad == "spectral only"


@pytest.mark.realdata
def test_no_ravdess_clip_is_gated_out(real_data):
    if silero_model() is None:
        pytest.skip("Silero VAD needs faster-whisper and onnxruntime")
    from emofuse.features.audio import load_audio

    clips = sorted((real_data / "ravdess-speech-16k").glob("Actor_*/*.flac"))
    assert len(clips) == 1440
    refused = [(p.name, check_speech(load_audio(p)).reason) for p in clips]
    refused = [r for r in refused if r[1] != "speech"]
    assert refused == []


def _probs(pattern: str) -> np.ndarray:
    """Silero-like probabilities from a pattern: '#' a window of speech (32 ms), '.' one of silence."""
    return np.array([0.9 if c == "#" else 0.05 for c in pattern])


def test_an_utterance_ends_with_a_pause_or_its_length_or_a_flush():
    pause = 0.4  # 13 windows of 32 ms
    assert utterance_span(_probs("." * 30), pause_s=pause, max_s=6.0) is None  # no speech at all
    assert utterance_span(_probs("...####..."), pause_s=pause, max_s=6.0) is None  # still speaking, maybe
    span = utterance_span(_probs("..." + "#" * 20 + "." * 13 + "###"), pause_s=pause, max_s=6.0, pad_seconds=0)
    assert span == (3 * SILERO_WINDOW, 23 * SILERO_WINDOW)  # the pause ends it; the next one waits its turn
    short_gap = "#" * 10 + "." * 5 + "#" * 10 + "." * 13
    assert utterance_span(_probs(short_gap), pause_s=pause, max_s=6.0, pad_seconds=0) == (0, 25 * SILERO_WINDOW)
    assert utterance_span(_probs("#" * 200), pause_s=pause, max_s=2.0, pad_seconds=0) == (0, 62 * SILERO_WINDOW)
    assert utterance_span(_probs("..####"), pause_s=pause, max_s=6.0, flush=True, pad_seconds=0) == (
        2 * SILERO_WINDOW, 6 * SILERO_WINDOW)
    padded = utterance_span(_probs("#####" + "." * 20), pause_s=pause, max_s=6.0, pad_seconds=0.1)
    assert padded == (0, 5 * SILERO_WINDOW + 1600)


@needs_silero
def test_a_stream_gets_one_pass_of_silero_in_pieces(tmp_path):
    """Chunks of any size, resent from the last window seen, give the probabilities of one pass over
    the whole stream; a gap restarts on the grid; windows before the one asked for are forgotten."""
    speech = _espeak("Good morning. I am very happy to see you again.", tmp_path)
    y = np.concatenate([np.zeros(5000, np.float32), speech, np.zeros(9000, np.float32)])
    whole = silero_probabilities(y[: len(y) // SILERO_WINDOW * SILERO_WINDOW])
    vad = SileroStream()
    received = 0
    for size in (700, 3000, 10, 4096, 20_000, 100_000):  # none a whole number of windows
        received = min(len(y), received + size)
        start = vad.next_window * SILERO_WINDOW
        vad.extend(start, y[start:received])
    assert vad.next_window == len(whole)
    np.testing.assert_allclose(vad.since(0), whole, atol=0.01)
    assert whole.max() > 0.5  # the speech is heard
    tail = vad.since(40)
    assert vad.first_window == 40 and len(tail) == len(whole) - 40
    np.testing.assert_allclose(tail, whole[40:], atol=0.01)
    vad.extend(len(y) + 1000, np.zeros(3000, np.float32))  # audio lost in between: a fresh start on the grid
    restart = -(-(len(y) + 1000) // SILERO_WINDOW)
    assert vad.first_window == restart
    assert len(vad.since(0)) == (len(y) + 1000 + 3000 - restart * SILERO_WINDOW) // SILERO_WINDOW

