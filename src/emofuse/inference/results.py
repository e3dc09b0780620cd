"""What a prediction is: one result per modality, the fused result, and where in time it applies.

Every modality always has a :class:`ModalityResult`, whether or not it could answer; ``status`` says
which:

* ``ok``: ``probabilities`` hold the model's answer (calibrated; ``uncertain`` when its confidence
  is below the model's threshold);
* ``no_face``: an image or frame without a face; ``no_speech``: audio without speech (or a video
  without an audio track); ``non_english``: the transcriber heard a language the text model can't read;
* ``unreadable``: the input of this modality could not be decoded (``detail`` says why);
* ``absent``: the input had nothing for this modality (an image has no voice);
* ``unavailable``: no model for this modality is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MODALITIES: tuple[str, ...] = ("voice", "face", "words")
STATUSES: tuple[str, ...] = ("ok", "no_face", "no_speech", "non_english", "unreadable", "absent", "unavailable")


@dataclass(frozen=True)
class FaceBoxOut:
    """A face's box in pixels of the image it was found in, and the image's size."""

    x: int
    y: int
    width: int
    height: int
    score: float
    image_width: int
    image_height: int


@dataclass(frozen=True)
class ModalityResult:
    """One modality's answer. ``probabilities`` follow ``labels`` (the model's own label set)."""

    status: str
    labels: tuple[str, ...] = ()
    probabilities: tuple[float, ...] = ()
    detail: str = ""
    box: FaceBoxOut | None = None  # face: the face the probabilities are for
    text: str | None = None  # words: what was read or heard
    # The calibrated confidence is below the model's threshold: on held-out data, answers this
    # unconfident were wrong more often than right (inference.calibration).
    uncertain: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def label(self) -> str | None:
        if not self.ok or not self.probabilities:
            return None
        return self.labels[max(range(len(self.probabilities)), key=self.probabilities.__getitem__)]

    @property
    def confidence(self) -> float | None:
        return max(self.probabilities) if self.ok and self.probabilities else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "label": self.label, "confidence": self.confidence,
                               "uncertain": self.uncertain,
                               "probabilities": dict(zip(self.labels, self.probabilities, strict=True))}
        if self.detail:
            out["detail"] = self.detail
        if self.box is not None:
            out["box"] = self.box.__dict__.copy()
        if self.text is not None:
            out["text"] = self.text
        return out


def status_only(status: str, detail: str = "") -> ModalityResult:
    return ModalityResult(status=status, detail=detail)


@dataclass(frozen=True)
class Prediction:
    """Every modality's result and the fused one (over the modalities that answered)."""

    modalities: dict[str, ModalityResult]
    fused: ModalityResult
    start_s: float | None = None
    end_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"modalities": {k: v.to_dict() for k, v in self.modalities.items()},
                               "fused": self.fused.to_dict()}
        if self.start_s is not None:
            out["start_s"], out["end_s"] = self.start_s, self.end_s
        return out


@dataclass(frozen=True)
class Segment:
    """A stretch of transcribed speech."""

    start_s: float
    end_s: float
    text: str


@dataclass(frozen=True)
class VideoResult:
    """A video's timeline: one prediction per window, and the transcript per speech segment."""

    duration_s: float
    windows: list[Prediction]
    segments: list[Segment] = field(default_factory=list)
    audio_status: str = "ok"  # "no_speech" when the video has no audio track
    frames_sampled: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"duration_s": self.duration_s, "audio_status": self.audio_status,
                "frames_sampled": self.frames_sampled,
                "segments": [s.__dict__.copy() for s in self.segments],
                "windows": [w.to_dict() for w in self.windows]}


@dataclass(frozen=True)
class FileResult:
    """One input file's outcome: a prediction (audio, image, text), a timeline (video), or a problem."""

    path: str
    kind: str  # "audio", "image", "video", "text" or "unknown"
    status: str  # "ok" or "unreadable"
    prediction: Prediction | None = None
    video: VideoResult | None = None
    problem: str = ""
