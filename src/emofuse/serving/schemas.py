"""Request and response bodies of the API (pydantic), one group per resource."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class BoxOut(BaseModel):
    x: int
    y: int
    width: int
    height: int
    score: float
    image_width: int
    image_height: int


class ModalityOut(BaseModel):
    status: str = Field(description="ok, no_face, no_speech, non_english, unreadable, absent or unavailable")
    label: str | None = None
    confidence: float | None = None
    uncertain: bool = Field(False, description="the calibrated confidence is below the model's threshold: on "
                                               "held-out data, answers this unconfident were wrong more often "
                                               "than right")
    probabilities: dict[str, float] = Field(default_factory=dict, description="in the model's label order")
    detail: str | None = None
    box: BoxOut | None = Field(None, description="face: the face the probabilities are for")
    text: str | None = Field(None, description="words: what was read or heard")


class PredictionOut(BaseModel):
    modalities: dict[str, ModalityOut] = Field(description="voice, face and words")
    fused: ModalityOut
    start_s: float | None = None
    end_s: float | None = None
    latency_ms: float | None = None

    @classmethod
    def from_prediction(cls, prediction: Any, latency_ms: float | None = None) -> PredictionOut:
        return cls.model_validate({**prediction.to_dict(), "latency_ms": latency_ms})


class SegmentOut(BaseModel):
    start_s: float
    end_s: float
    text: str


class VideoOut(BaseModel):
    duration_s: float
    audio_status: str
    frames_sampled: int
    segments: list[SegmentOut]
    windows: list[PredictionOut] = Field(description="the timeline: one fused prediction per window")
    latency_ms: float | None = None

    @classmethod
    def from_video(cls, video: Any, latency_ms: float | None = None) -> VideoOut:
        return cls.model_validate({**video.to_dict(), "latency_ms": latency_ms})


class TextIn(BaseModel):
    text: str = Field(min_length=1, description="English text")


class ModelOut(BaseModel):
    modality: str
    name: str
    version: str
    labels: list[str]
    source: str
    card: dict[str, Any] = Field(default_factory=dict, description="card.json: data, protocol, measured numbers")
    card_markdown: str = ""


class ModelsOut(BaseModel):
    models: list[ModelOut]
    unavailable: list[str] = Field(description="modalities without a model (they report status 'unavailable')")
    fused_labels: list[str]
    fusion: str


class HealthOut(BaseModel):
    status: str
    modalities: dict[str, bool]
    pending: int


class ErrorOut(BaseModel):
    detail: str
