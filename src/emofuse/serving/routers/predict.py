"""POST /v1/predict/{audio,image,video,text} and /v1/predict (any combination, multipart).

Uploads are read whole (the body limit caps them), decoded and classified in the inference threads.
Media that cannot be decoded is a 422 naming the problem; nothing a client sends is a 500.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, File, Form, HTTPException, UploadFile

from emofuse.serving.deps import PredictorDep, RunnerDep, SettingsDep
from emofuse.serving.schemas import ErrorOut, PredictionOut, TextIn, VideoOut

router = APIRouter(prefix="/v1/predict", tags=["predict"])

T = TypeVar("T")
ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorOut, "description": "upload over the size limit"},
    422: {"model": ErrorOut, "description": "the media could not be decoded, or the request is malformed"},
    503: {"model": ErrorOut, "description": "too many requests waiting"},
    504: {"model": ErrorOut, "description": "inference took longer than the request timeout"},
}
Upload = Annotated[UploadFile, File(description="the media file")]


def _suffix(filename: str | None) -> str:
    """The upload's extension, if it is a plain one: decoders use it as a hint (never as a path)."""
    suffix = Path(filename or "").suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""


def _on_temp_file(data: bytes, filename: str | None, fn: Callable[[Path], T]) -> T:
    with tempfile.TemporaryDirectory(prefix="emofuse-upload-") as folder:
        path = Path(folder) / f"upload{_suffix(filename)}"
        path.write_bytes(data)
        return fn(path)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


@router.post("/audio", response_model=PredictionOut, responses=ERRORS)
async def predict_audio(file: Upload, predictor: PredictorDep, runner: RunnerDep, transcribe: bool = True) -> PredictionOut:
    """Voice (and words, when speech-to-text is installed) of an audio file in any common format."""
    data = await file.read()
    started = time.perf_counter()
    prediction = await runner.run(_on_temp_file, data, file.filename,
                                  lambda p: predictor.predict_audio(p, transcribe=transcribe))
    return PredictionOut.from_prediction(prediction, _ms(started))


@router.post("/image", response_model=PredictionOut, responses=ERRORS)
async def predict_image(file: Upload, predictor: PredictorDep, runner: RunnerDep) -> PredictionOut:
    """The largest face in an image, its box and its emotion; ``no_face`` when there is none."""
    data = await file.read()
    started = time.perf_counter()
    prediction = await runner.run(predictor.predict_image, data)
    return PredictionOut.from_prediction(prediction, _ms(started))


@router.post("/video", response_model=VideoOut, responses=ERRORS)
async def predict_video(file: Upload, predictor: PredictorDep, runner: RunnerDep, transcribe: bool = True) -> VideoOut:
    """A timeline: faces on sampled frames, voice on sliding windows, words per speech segment, fused per window."""
    data = await file.read()
    started = time.perf_counter()
    video = await runner.run(_on_temp_file, data, file.filename,
                             lambda p: predictor.predict_video(p, transcribe=transcribe))
    return VideoOut.from_video(video, _ms(started))


@router.post("/text", response_model=PredictionOut, responses=ERRORS)
async def predict_text(body: TextIn, predictor: PredictorDep, runner: RunnerDep, settings: SettingsDep) -> PredictionOut:
    """Emotion in a piece of English text."""
    _check_text(body.text, settings.max_text_chars)
    started = time.perf_counter()
    prediction = await runner.run(predictor.predict_text, body.text)
    return PredictionOut.from_prediction(prediction, _ms(started))


def _check_text(text: str, limit: int) -> None:
    if len(text) > limit:
        raise HTTPException(422, f"text is {len(text):,} characters, over the {limit:,} limit")


@router.post("", response_model=PredictionOut, responses=ERRORS)
async def predict_any(predictor: PredictorDep, runner: RunnerDep, settings: SettingsDep,
                      audio: Annotated[UploadFile | None, File(description="an audio file")] = None,
                      image: Annotated[UploadFile | None, File(description="an image")] = None,
                      text: Annotated[str | None, Form(description="English text")] = None) -> PredictionOut:
    """Any combination of audio, image and text, fused. An input that does not decode is reported in
    its modality's status (``unreadable``) while the others answer; 422 if none of them can be used."""
    if audio is None and image is None and not text:
        raise HTTPException(422, "give at least one of the form fields audio, image, text")
    if text:
        _check_text(text, settings.max_text_chars)
    audio_bytes = await audio.read() if audio is not None else None
    image_bytes = await image.read() if image is not None else None
    started = time.perf_counter()

    def run() -> Any:
        if audio_bytes is None:
            return predictor.predict(image=image_bytes, text=text or None)
        return _on_temp_file(audio_bytes, audio.filename if audio else None,
                             lambda p: predictor.predict(audio=p, image=image_bytes, text=text or None))

    prediction = await runner.run(run)
    given = [name for name, value in (("voice", audio_bytes), ("face", image_bytes)) if value is not None]
    unreadable = [name for name in given if prediction.modalities[name].status == "unreadable"]
    if unreadable and len(unreadable) == len(given) and not text:
        raise HTTPException(422, "; ".join(f"{name}: {prediction.modalities[name].detail}" for name in unreadable))
    return PredictionOut.from_prediction(prediction, _ms(started))
