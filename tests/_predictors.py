"""Fixtures shared by tests/inference and tests/serving: tiny models trained on generated data, media
files made on the spot, and a Predictor built from them. Nothing here needs the real datasets.

The voice model is a logistic regression on synthetic tone clips and the face model a pixel logistic
regression on drawn faces: both fit in about a second and follow the same contract as the shipped
models, so every path of the Predictor runs for real.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from emofuse.data.synthetic import draw_face, tone_clip, voiced_clip
from emofuse.labels import CARER6, FER7, RAVDESS_CODES

SR = 16_000


def astronaut() -> np.ndarray:
    """scikit-image's astronaut portrait (512 × 512 RGB, shipped in the package): a real face."""
    from skimage import data

    return np.asarray(data.astronaut())


def write_wav(path: Path, y: np.ndarray, sr: int = SR) -> Path:
    import soundfile as sf

    sf.write(path, y, sr)
    return path


def voiced(code: str = "03", seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """Voice-like synthetic audio (vowels with a moving pitch) that the voice-activity detector passes;
    ``code`` (a RAVDESS emotion code) sets the pitch."""
    return voiced_clip(seconds=seconds, f0_hz=100.0 + 15.0 * int(code), seed=seed)


def tone(code: str = "03", seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """A steady two-partial tone: sound that is not speech (``no_speech`` for the predictor)."""
    return tone_clip(code, actor=1, seconds=seconds, seed=seed)


def write_video(path: Path, frames: Sequence[np.ndarray], *, fps: int = 10, audio: np.ndarray | None = None,
                codec: str = "libx264", audio_codec: str = "aac") -> Path:
    """An MP4 (or any container PyAV knows from the suffix) of RGB ``frames``, with mono ``audio`` at 16 kHz."""
    from emofuse.inference.media import write_video as write

    return write(path, list(frames), fps=fps, audio=audio, sample_rate_hz=SR, codec=codec, audio_codec=audio_codec)


class KeywordTextModel:
    """A stand-in text classifier with the registry contract (``labels_``, ``predict_proba``), for the
    words seam until the real text model is on this branch: "happy"/"sad"/... words vote."""

    name = "keyword_text"
    labels_ = CARER6

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        out = np.full((len(texts), len(self.labels_)), 0.1)
        for i, text in enumerate(texts):
            for j, label in enumerate(self.labels_):
                out[i, j] += 5.0 * text.lower().count(label)
        return out / out.sum(axis=1, keepdims=True)


class FakeTranscript:
    def __init__(self, text: str, status: str, segments: list[Any]) -> None:
        self.text, self.status, self.segments = text, status, segments
        self.language, self.language_probability = "en", 1.0


class FakeSegment:
    def __init__(self, start_s: float, end_s: float, text: str) -> None:
        self.start_s, self.end_s, self.text = start_s, end_s, text


class ScriptedTranscriber:
    """Answers every call with the same transcript (the interface of emofuse.speech.Transcriber)."""

    def __init__(self, text: str = "i am so happy", status: str = "ok",
                 segments: list[FakeSegment] | None = None, seconds: float = 0.0) -> None:
        self.text, self.status = text, status
        self.segments = segments if segments is not None else [FakeSegment(0.0, 1.0, text)]
        self.seconds = seconds  # how long each call takes, as a real model's would
        self.calls = 0
        self.lengths: list[int] = []  # samples of audio of each call

    def transcribe(self, audio: Any, *, sample_rate_hz: int = SR) -> FakeTranscript:
        self.calls += 1
        self.lengths.append(len(audio))
        if self.seconds:
            time.sleep(self.seconds)
        return FakeTranscript(self.text if self.status == "ok" else "", self.status,
                              self.segments if self.status == "ok" else [])


@functools.cache
def _scratch() -> Path:
    """One folder for the whole test run: the fixtures below are imported by several conftests, and
    pytest would build each of them once per conftest; caching here builds each once."""
    folder = Path(tempfile.mkdtemp(prefix="emofuse-test-predictors-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


@functools.cache
def _tiny_model_dirs() -> dict[str, Path]:
    from emofuse.labels import RAVDESS8
    from emofuse.models import create_model

    root = _scratch() / "tiny_models"
    clips, labels = [], []
    for code, label in RAVDESS_CODES.items():
        for actor in range(6):
            clips.append(tone_clip(code, actor=actor, seconds=0.8, seed=actor))
            labels.append(label)
    voice = create_model("voice_logreg").fit(clips, labels, labels=RAVDESS8)
    voice.save(root / "voice")
    faces = np.stack([draw_face(label, seed=k) for label in FER7 for k in range(8)])
    face_labels = [label for label in FER7 for _ in range(8)]
    face = create_model("face_logreg").fit(faces, face_labels, labels=FER7)
    face.save(root / "face")
    return {"voice": root / "voice", "face": root / "face"}


@pytest.fixture(scope="session")
def tiny_model_dirs() -> dict[str, Path]:
    """``{"voice": dir, "face": dir}``: saved logistic regressions fitted on generated data."""
    return _tiny_model_dirs()


@pytest.fixture(scope="session")
def tiny_predictor(tiny_model_dirs: dict[str, Path]) -> Any:
    """A Predictor of the tiny models, without the words branch."""
    return _tiny_predictor()


@functools.cache
def _tiny_predictor() -> Any:
    from emofuse.inference import Predictor

    dirs = _tiny_model_dirs()
    return Predictor.from_shipped(voice_dir=dirs["voice"], face_dir=dirs["face"], words=False)


@pytest.fixture(scope="session")
def media() -> dict[str, Path]:
    """Files of every kind, good and bad."""
    return _media()


@functools.cache
def _media() -> dict[str, Path]:
    from PIL import Image

    root = _scratch() / "media"
    root.mkdir()
    out = {
        "voice": write_wav(root / "voice.wav", voiced("03", 1.0)),
        "tone": write_wav(root / "tone.wav", tone("03", 1.0)),
        "silence": write_wav(root / "silence.wav", np.zeros(SR, np.float32)),
    }
    Image.fromarray(astronaut()).save(root / "face.png")
    out["face"] = root / "face.png"
    Image.fromarray(np.full((240, 320, 3), 200, np.uint8)).save(root / "blank.jpg")
    out["blank"] = root / "blank.jpg"
    (root / "notes.wav").write_text("this is not audio\n")
    out["text_as_wav"] = root / "notes.wav"
    good = (root / "voice.wav").read_bytes()
    (root / "truncated.wav").write_bytes(good[: len(good) // 3])
    out["truncated"] = root / "truncated.wav"
    jpeg = (root / "blank.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    out["truncated_image"] = root / "truncated.jpg"
    (root / "hello.txt").write_text("what a happy day\n")
    out["text"] = root / "hello.txt"
    (root / "data.xyz").write_bytes(b"\x00\x01")
    out["unknown"] = root / "data.xyz"
    small = np.asarray(Image.fromarray(astronaut()).resize((256, 256)))
    blank = np.full_like(small, 128)
    frames = [small] * 20 + [blank] * 20  # 4 s at 10 fps: a face for 2 s, then none
    out["video"] = write_video(root / "talk.mp4", frames, fps=10, audio=np.concatenate([voiced("05", 2.0), voiced("05", 2.0, seed=1)]))
    out["video_silent"] = write_video(root / "mute.mp4", frames[:20], fps=10)
    return out
