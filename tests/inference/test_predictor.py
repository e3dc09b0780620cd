from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from emofuse.errors import DataError
from emofuse.inference import Predictor
from emofuse.inference.fusion import FUSED_LABELS
from emofuse.labels import FER7, RAVDESS8, align_probabilities
from emofuse.models import load_model
from tests._predictors import FakeSegment, KeywordTextModel, ScriptedTranscriber, astronaut, voiced

# Where the astronaut's face is in the 512 × 512 photo (as in tests/features/test_face.py).
FACE_CENTRE = (240, 120)


def _with_words(base: Predictor, transcriber: Any = None) -> Predictor:
    return Predictor(voice=base.voice, face=base.face, detector=base.detector, text_model=KeywordTextModel(),
                     transcriber=transcriber)


def test_audio_gives_voice_and_a_fused_answer(tiny_predictor: Predictor, media: dict[str, Path],
                                              tiny_model_dirs: dict[str, Path]) -> None:
    pred = tiny_predictor.predict_audio(media["voice"])
    voice = pred.modalities["voice"]
    assert voice.status == "ok" and voice.labels == RAVDESS8
    assert sum(voice.probabilities) == pytest.approx(1.0)
    # The same answer as the model itself gives the decoded file.
    direct = load_model(tiny_model_dirs["voice"]).predict_proba([str(media["voice"])])[0]
    np.testing.assert_allclose(voice.probabilities, direct, atol=1e-6)
    assert pred.modalities["face"].status == "absent"
    assert pred.modalities["words"].status == "unavailable"
    np.testing.assert_allclose(pred.fused.probabilities, align_probabilities(direct, RAVDESS8, FUSED_LABELS),
                               atol=1e-9)


def test_waveform_at_another_rate_is_resampled(tiny_predictor: Predictor) -> None:
    import soxr

    y16 = voiced("08", 1.0)
    y48 = soxr.resample(y16, 16_000, 48_000)
    a = tiny_predictor.predict(audio=y16).modalities["voice"]
    b = tiny_predictor.predict(audio=y48, sample_rate_hz=48_000).modalities["voice"]
    assert a.label == b.label


def test_silence_is_no_speech(tiny_predictor: Predictor, media: dict[str, Path]) -> None:
    pred = tiny_predictor.predict_audio(media["silence"])
    assert pred.modalities["voice"].status == "no_speech"
    assert pred.fused.status == "no_speech"


@pytest.mark.parametrize("name", ["text_as_wav", "truncated"])
def test_bad_audio_raises_a_data_error_naming_the_problem(tiny_predictor: Predictor, media: dict[str, Path],
                                                          name: str) -> None:
    with pytest.raises(DataError) as info:
        tiny_predictor.predict_audio(media[name])
    assert str(media[name]) in str(info.value)
    # predict() reports it as a status and still answers for the other modality.
    pred = tiny_predictor.predict(audio=media[name], image=media["face"])
    assert pred.modalities["voice"].status == "unreadable"
    assert pred.modalities["voice"].detail
    assert pred.modalities["face"].status == "ok" and pred.fused.status == "ok"


def test_image_face_is_found_and_classified(tiny_predictor: Predictor, media: dict[str, Path]) -> None:
    pred = tiny_predictor.predict_image(media["face"])
    face = pred.modalities["face"]
    assert face.status == "ok" and face.labels == FER7
    assert sum(face.probabilities) == pytest.approx(1.0)
    assert face.box is not None and (face.box.image_width, face.box.image_height) == (512, 512)
    cx, cy = face.box.x + face.box.width / 2, face.box.y + face.box.height / 2
    assert abs(cx - FACE_CENTRE[0]) < 60 and abs(cy - FACE_CENTRE[1]) < 60
    assert pred.fused.label == face.label


def test_image_without_a_face(tiny_predictor: Predictor, media: dict[str, Path]) -> None:
    pred = tiny_predictor.predict_image(media["blank"])
    assert pred.modalities["face"].status == "no_face"
    assert pred.fused.status == "no_face"


def test_truncated_image_raises(tiny_predictor: Predictor, media: dict[str, Path]) -> None:
    with pytest.raises(DataError, match="truncated or corrupt"):
        tiny_predictor.predict_image(media["truncated_image"])


def test_audio_and_image_fuse_to_the_mean(tiny_predictor: Predictor, media: dict[str, Path]) -> None:
    pred = tiny_predictor.predict(audio=media["voice"], image=astronaut())
    voice = align_probabilities(np.array(pred.modalities["voice"].probabilities), RAVDESS8, FUSED_LABELS)
    face = align_probabilities(np.array(pred.modalities["face"].probabilities), FER7, FUSED_LABELS)
    np.testing.assert_allclose(pred.fused.probabilities, (voice + face) / 2, atol=1e-9)


def test_text_without_a_text_model_is_unavailable(tiny_predictor: Predictor) -> None:
    pred = tiny_predictor.predict_text("so happy")
    assert pred.modalities["words"].status == "unavailable"
    assert pred.fused.status == "absent"


def test_words_seam_text_model_and_transcriber(tiny_predictor: Predictor, media: dict[str, Path]) -> None:
    transcriber = ScriptedTranscriber("i feel so sad today")
    predictor = _with_words(tiny_predictor, transcriber)
    pred = predictor.predict_audio(media["voice"])
    words = pred.modalities["words"]
    assert transcriber.calls == 1
    assert words.status == "ok" and words.label == "sad" and words.text == "i feel so sad today"
    assert pred.fused.detail == "mean of voice, words"
    # Text given directly goes to the text model, without transcribing.
    assert predictor.predict(audio=media["voice"], text="angry angry").modalities["words"].label == "angry"
    assert transcriber.calls == 1


@pytest.mark.parametrize("status", ["no_speech", "non_english"])
def test_transcript_status_passes_through(tiny_predictor: Predictor, media: dict[str, Path], status: str) -> None:
    pred = _with_words(tiny_predictor, ScriptedTranscriber(status=status)).predict_audio(media["voice"])
    assert pred.modalities["words"].status == status
    assert pred.modalities["voice"].status == "ok"


def test_video_timeline(tiny_predictor: Predictor, media: dict[str, Path]) -> None:
    video = tiny_predictor.predict_video(media["video"])
    assert video.duration_s == pytest.approx(4.0, abs=0.2)
    assert [(w.start_s, w.end_s) for w in video.windows] == [(0.0, 2.0), (1.0, 3.0), (2.0, 4.0)]
    assert video.frames_sampled == 16  # 4 frames per second of 4 s
    assert all(w.modalities["voice"].status == "ok" for w in video.windows)
    # The face is on screen for the first 2 s only.
    assert [w.modalities["face"].status for w in video.windows] == ["ok", "ok", "no_face"]
    assert all(w.fused.status == "ok" for w in video.windows)
    assert video.windows[0].modalities["face"].box is not None


def test_video_words_per_segment(tiny_predictor: Predictor, media: dict[str, Path]) -> None:
    segments = [FakeSegment(0.2, 1.5, "happy happy"), FakeSegment(2.5, 3.8, "angry")]
    predictor = _with_words(tiny_predictor, ScriptedTranscriber("happy happy angry", segments=segments))
    video = predictor.predict_video(media["video"])
    assert [s.text for s in video.segments] == ["happy happy", "angry"]
    assert [w.modalities["words"].text for w in video.windows] == ["happy happy", "happy happy angry", "angry"]
    assert video.windows[0].modalities["words"].label == "happy"
    assert video.windows[2].modalities["words"].label == "angry"


def test_video_without_audio_track(tiny_predictor: Predictor, media: dict[str, Path]) -> None:
    video = tiny_predictor.predict_video(media["video_silent"])
    assert video.audio_status == "no_speech"
    first = video.windows[0]
    assert first.modalities["voice"].status == "no_speech"
    assert first.modalities["voice"].detail == "the video has no audio track"
    assert first.modalities["face"].status == "ok"
    # Speech-to-text off (or not loaded): words are unavailable, as for every other file.
    assert first.modalities["words"].status == "unavailable"
    off = tiny_predictor.predict_video(media["video_silent"], transcribe=False)
    assert off.windows[0].modalities["words"].status == "unavailable"
    listening = _with_words(tiny_predictor, ScriptedTranscriber("never heard"))
    assert listening.predict_video(media["video_silent"]).windows[0].modalities["words"].status == "no_speech"


@pytest.mark.parametrize("name", ["text_as_wav", "truncated"])
def test_non_video_raises(tiny_predictor: Predictor, media: dict[str, Path], name: str) -> None:
    with pytest.raises(DataError):
        tiny_predictor.predict_video(media[name])


def test_models_lists_what_is_loaded(tiny_predictor: Predictor) -> None:
    infos = {m.modality: m for m in tiny_predictor.models()}
    assert set(infos) == {"voice", "face"}
    assert infos["voice"].labels == RAVDESS8 and infos["face"].name == "face_logreg"
    assert tiny_predictor.label_sets()["fused"] == FUSED_LABELS


def test_missing_models_are_unavailable_everywhere(tiny_predictor: Predictor, media: dict[str, Path]) -> None:
    voice_only = Predictor(voice=tiny_predictor.voice)
    assert voice_only.predict_image(media["face"]).modalities["face"].status == "unavailable"
    video = voice_only.predict_video(media["video"])
    assert {w.modalities["face"].status for w in video.windows} == {"unavailable"}
    assert all(w.fused.status == "ok" for w in video.windows)
    face_only = Predictor(face=tiny_predictor.face, detector=tiny_predictor.detector)
    assert face_only.predict_audio(media["voice"]).modalities["voice"].status == "unavailable"
