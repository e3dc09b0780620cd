"""The Predictor: loads the models once and answers for audio, images, text, video and any mix.

>>> predictor = Predictor.from_shipped()           # the default models inside the package
>>> predictor.predict(audio="clip.wav", image="me.jpg").fused.label
>>> predictor.predict_video("talk.mp4").windows     # a timeline, one prediction per window

Every component is injected (``Predictor(voice=..., face=..., text_model=..., transcriber=...)``), so
tests and the service can use any model that follows the classifier contract. A missing component
makes its modality ``unavailable``; fusion (:func:`emofuse.inference.fusion.fuse_modalities`) uses the others.
The Predictor holds no per-request state: one instance serves many threads at once (the torch
models run under ``no_grad`` and the face detector serialises its own calls).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from emofuse.errors import ConfigError, DataError
from emofuse.features.audio import SAMPLE_RATE_HZ
from emofuse.inference.calibration import Calibration
from emofuse.inference.fusion import FUSED_LABELS, fuse_modalities
from emofuse.inference.models import ModelInfo
from emofuse.inference.results import (
    FaceBoxOut,
    ModalityResult,
    Prediction,
    Segment,
    VideoResult,
    status_only,
)
from emofuse.models.shipped import read_card, shipped_model_dir

AudioIn = str | Path | np.ndarray
ImageIn = str | Path | bytes | np.ndarray


@runtime_checkable
class Transcriber(Protocol):
    """What :class:`emofuse.speech.Transcriber` offers: ``transcribe(audio, sample_rate_hz=...)`` returns
    an object with ``text``, ``status`` (``ok`` / ``no_speech`` / ``non_english``) and ``segments``
    (each with ``start_s``, ``end_s``, ``text``)."""

    def transcribe(self, audio: Any, *, sample_rate_hz: int = SAMPLE_RATE_HZ) -> Any: ...


@dataclass(frozen=True)
class PredictorConfig:
    """How inputs are cut and checked. Strict: :meth:`from_dict` rejects unknown keys."""

    video_window_s: float = 2.0  # one timeline row per window
    video_hop_s: float = 1.0
    video_frame_rate_hz: float = 4.0  # frames sampled for faces
    max_audio_seconds: float = 600.0
    max_video_seconds: float = 600.0
    speech_threshold_dbfs: float = -60.0  # RMS of a 30 ms frame that counts as sound (RAVDESS peaks at -33 dBFS)
    min_speech_seconds: float = 0.2  # less sound than this is "no_speech"
    # Voice-activity detection before any voice model answers (features.vad.check_speech); off: the
    # loudness check alone, as before (tones and noise then get an emotion too).
    vad: bool = True
    voice_batch_size: int = 32
    face_batch_size: int = 256

    def __post_init__(self) -> None:
        if self.video_window_s <= 0 or self.video_hop_s <= 0 or self.video_frame_rate_hz <= 0:
            raise ConfigError("video window, hop and frame rate must be positive")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PredictorConfig:
        from emofuse.errors import checked_options

        return cls(**checked_options(cls, d, what="predictor"))


class Predictor:
    def __init__(self, *, voice: Any = None, face: Any = None, text_model: Any = None,
                 transcriber: Transcriber | None = None, detector: Any = None,
                 config: PredictorConfig | None = None, sources: dict[str, Path | None] | None = None) -> None:
        self.voice = voice
        self.face = face
        self.text_model = text_model
        self.transcriber = transcriber
        self.detector = detector
        self.config = config or PredictorConfig()
        self.sources = dict(sources or {})
        # Each model's temperature and uncertainty threshold, from the calibration in its card.
        self.calibrations = {modality: Calibration.from_card(read_card(source)[0] if source else {})
                             for modality, source in self.sources.items()}

    def _answers(self, modality: str, probs: Any) -> list[tuple[tuple[float, ...], bool]]:
        """Each row of ``probs`` calibrated, with whether it is uncertain."""
        calibration = self.calibrations.get(modality) or Calibration()
        if len(probs) == 0:
            return []
        calibrated = calibration.apply(np.asarray(probs, dtype=np.float64))
        return [(_floats(p), bool(u)) for p, u in zip(calibrated, calibration.uncertain(calibrated), strict=True)]

    # -- construction --------------------------------------------------------------------------

    @classmethod
    def from_shipped(cls, *, voice_dir: str | Path | None = None, face_dir: str | Path | None = None,
                     words: bool = True, detector_backend: str = "auto",
                     config: PredictorConfig | None = None, runtime: str = "torch",
                     onnx_threads: int | None = None) -> Predictor:
        """The default models shipped in the package (or the saved models in ``voice_dir`` / ``face_dir``).

        A model that is not installed leaves its modality ``unavailable``; nothing is downloaded.
        ``runtime="onnx"`` runs each model's exported graph in onnxruntime instead (exported into
        the cache on first use; ``voice_dir`` / ``face_dir`` may also name ``.onnx`` files), with
        ``onnx_threads`` intra-op threads per call (None: onnxruntime's default).
        """
        from emofuse.features.face import FaceDetector

        load = _model_loader(runtime, onnx_threads)
        sources: dict[str, Path | None] = {
            "voice": Path(voice_dir) if voice_dir else shipped_model_dir("voice"),
            "face": Path(face_dir) if face_dir else shipped_model_dir("face"),
        }
        voice = load(sources["voice"]) if sources["voice"] else None
        face = load(sources["face"]) if sources["face"] else None
        text_model, transcriber = load_words_components(load=load) if words else (None, None)
        sources["words"] = shipped_model_dir("text") if text_model is not None else None
        return cls(voice=voice, face=face, text_model=text_model, transcriber=transcriber,
                   detector=FaceDetector(backend=detector_backend), config=config, sources=sources)

    def for_stream(self, *, words_threads: int = 1, beam_size: int = 1) -> Predictor:
        """The same models for live streams, with a face detector of their own (the detector runs one
        image at a time, so a stream never waits behind uploads; the models are shared, read-only) and,
        when the transcriber is faster-whisper's, a copy of it on ``words_threads`` CPU threads with
        ``beam_size`` (greedy by default: live words must come fast) and no transcript cache."""
        import copy
        import dataclasses

        from emofuse.features.face import FaceDetector

        clone = copy.copy(self)
        backend = getattr(self.detector, "backend", "auto")
        clone.detector = FaceDetector(backend=backend)
        if dataclasses.is_dataclass(self.transcriber) and hasattr(self.transcriber, "cpu_threads"):
            clone.transcriber = dataclasses.replace(self.transcriber, cpu_threads=words_threads, beam_size=beam_size,
                                                    cache_dir=None)
        return clone

    def _detector(self) -> Any:
        if self.detector is None:
            from emofuse.features.face import FaceDetector

            self.detector = FaceDetector(backend="auto")
        return self.detector

    def label_sets(self) -> dict[str, tuple[str, ...]]:
        """Column order of each modality's probabilities (empty for a modality without a model)."""
        return {
            "voice": tuple(self.voice.labels_) if self.voice is not None else (),
            "face": tuple(self.face.labels_) if self.face is not None else (),
            "words": tuple(self.text_model.labels_) if self.text_model is not None else (),
            "fused": FUSED_LABELS,
        }

    def models(self) -> list[ModelInfo]:
        out = []
        for modality, model in (("voice", self.voice), ("face", self.face), ("words", self.text_model)):
            if model is None:
                continue
            source = self.sources.get(modality)
            card, markdown = read_card(source)
            out.append(ModelInfo(modality=modality, name=getattr(model, "name", type(model).__name__),
                                 version=str(card.get("version", "unversioned")), labels=tuple(model.labels_),
                                 source=str(source) if source else "injected", card=card, card_markdown=markdown))
        if self.transcriber is not None:
            out.append(ModelInfo(modality="transcriber", name=str(getattr(self.transcriber, "model", "transcriber")),
                                 version="", labels=(), source="injected"))
        return out

    # -- one modality at a time (batched) ------------------------------------------------------

    def new_speaker(self) -> Any:
        """Running statistics of one speaker, for ``voice_results(..., speaker=)``; None when the voice
        model has no speaker-adapted head."""
        return self.voice.new_speaker() if getattr(self.voice, "adapts_to_speakers", False) else None

    def voice_results(self, waveforms: Sequence[np.ndarray], *, speaker: Any = None,
                      update_speaker: bool = True) -> list[ModalityResult]:
        """Voice for each mono 16 kHz waveform; quiet ones are ``no_speech``, the rest run in batches.

        With ``speaker`` (from :meth:`new_speaker`), the waveforms are one speaker's clips in the order
        heard: each joins the speaker's running statistics and, once enough have been heard, is
        scored by the speaker-adapted head (``detail`` says so). ``update_speaker=False`` scores
        without adding the clips to the statistics (overlapping windows of a stream).
        """
        if self.voice is None:
            return [status_only("unavailable", "no voice model loaded") for _ in waveforms]
        results: list[ModalityResult | None] = [None] * len(waveforms)
        loud = []
        for i, y in enumerate(waveforms):
            check = self.speech_check(y)
            if not check.is_speech:
                results[i] = status_only("no_speech", check.detail)
            else:
                loud.append(i)
        labels = tuple(self.voice.labels_)
        size = self.config.voice_batch_size
        for start in range(0, len(loud), size):
            batch = loud[start : start + size]
            clips = [waveforms[i] for i in batch]
            if speaker is None:
                probs, adapted_from = self.voice.predict_proba(clips), np.zeros(len(batch), dtype=int)
            else:
                probs, adapted_from = self.voice.predict_proba_for_speaker(clips, speaker, update=update_speaker)
            for i, (p, unsure), a in zip(batch, self._answers("voice", probs), adapted_from, strict=True):
                detail = f"adapted to the speaker from {a} clip(s) heard" if a else ""
                results[i] = ModalityResult(status="ok", labels=labels, probabilities=p, detail=detail,
                                            uncertain=unsure)
        return [r for r in results if r is not None]

    def speech_check(self, y: np.ndarray) -> Any:
        """:func:`emofuse.features.vad.check_speech` with this predictor's thresholds: whether a voice
        model may answer for ``y`` at all (tones, hums, noise and silence are ``no_speech``)."""
        from emofuse.features.vad import check_speech

        if not self.config.vad:
            from emofuse.features.vad import SpeechCheck, speech_seconds

            loud = speech_seconds(y, sr=SAMPLE_RATE_HZ, threshold_dbfs=self.config.speech_threshold_dbfs)
            ok = loud >= self.config.min_speech_seconds
            return SpeechCheck(ok, "speech" if ok else "silence", loud, None, 0.0, 0.0)
        return check_speech(y, sr=SAMPLE_RATE_HZ, threshold_dbfs=self.config.speech_threshold_dbfs,
                            min_loud_seconds=self.config.min_speech_seconds)

    def face_results(self, images: Sequence[np.ndarray]) -> list[ModalityResult]:
        """Face for each RGB image: the largest face found, classified; ``no_face`` when there is none."""
        if self.face is None:
            return [status_only("unavailable", "no face model loaded") for _ in images]
        detector = self._detector()
        found = [detector.detect(image) for image in images]
        with_face = [i for i, r in enumerate(found) if r.status == "ok"]
        probs = self.face.predict_proba(np.stack([found[i].faces[0].crop for i in with_face])) if with_face else []
        labels = tuple(self.face.labels_)
        out = [status_only("no_face", "no face found in the image") for _ in images]
        for i, (p, unsure) in zip(with_face, self._answers("face", probs), strict=True):
            face, (width, height) = found[i].faces[0], found[i].image_size
            box = FaceBoxOut(x=face.box.x, y=face.box.y, width=face.box.width, height=face.box.height,
                             score=face.box.score, image_width=width, image_height=height)
            out[i] = ModalityResult(status="ok", labels=labels, probabilities=p, box=box, uncertain=unsure,
                                    detail=f"{len(found[i].faces)} face(s); the largest is classified")
        return out

    def words_results(self, texts: Sequence[str]) -> list[ModalityResult]:
        """Words for each text; an empty text is ``no_speech``."""
        if self.text_model is None:
            return [status_only("unavailable", "no text model loaded") for _ in texts]
        present = [i for i, t in enumerate(texts) if t.strip()]
        out = [ModalityResult(status="no_speech", detail="no words", text="") for _ in texts]
        if present:
            labels = tuple(self.text_model.labels_)
            probs = self.text_model.predict_proba([texts[i].strip() for i in present])
            for i, (p, unsure) in zip(present, self._answers("words", probs), strict=True):
                out[i] = ModalityResult(status="ok", labels=labels, probabilities=p, text=texts[i].strip(),
                                        uncertain=unsure)
        return out

    def transcribe(self, y: np.ndarray) -> tuple[ModalityResult, list[Segment]]:
        """Speech to text, then the text model: the words of a waveform, and its segments.

        The one place where the transcriber meets the text model: ``status`` is the transcript's
        (``no_speech``, ``non_english``) unless it is ``ok``, when the text model decides.
        """
        if self.transcriber is None:
            return status_only("unavailable", "no speech-to-text model loaded"), []
        transcript = self.transcriber.transcribe(y, sample_rate_hz=SAMPLE_RATE_HZ)
        segments = [Segment(start_s=float(s.start_s), end_s=float(s.end_s), text=str(s.text).strip())
                    for s in getattr(transcript, "segments", [])]
        text = str(getattr(transcript, "text", "")).strip()
        status = str(getattr(transcript, "status", "ok"))
        if status != "ok":
            return ModalityResult(status=status, text=text, detail=f"transcript: {status}"), segments
        return self.words_results([text])[0], segments

    # -- whole predictions ---------------------------------------------------------------------

    def load_audio(self, audio: AudioIn, *, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
        """A path is decoded (any format); an array is mono audio at ``sample_rate_hz``, resampled to 16 kHz."""
        from emofuse.features.audio import load_audio, prepare_waveform

        if isinstance(audio, str | Path):
            return load_audio(audio, sample_rate_hz=SAMPLE_RATE_HZ, max_seconds=self.config.max_audio_seconds)
        try:
            return prepare_waveform(audio, sr=sample_rate_hz)
        except ValueError as exc:
            raise DataError("<audio>", str(exc)) from None

    def predict(self, *, audio: AudioIn | None = None, image: ImageIn | None = None, text: str | None = None,
                sample_rate_hz: int = SAMPLE_RATE_HZ, transcribe: bool = True) -> Prediction:
        """Any combination of one audio clip, one image and one text, fused.

        A given input that cannot be decoded makes its modality ``unreadable`` (the others still
        answer); use :meth:`predict_audio` / :meth:`predict_image` to get the error instead.
        """
        modalities = {"voice": status_only("absent"), "face": status_only("absent"), "words": status_only("absent")}
        if audio is not None:
            try:
                y = self.load_audio(audio, sample_rate_hz=sample_rate_hz)
            except DataError as exc:
                modalities["voice"] = status_only("unreadable", exc.problem)
            else:
                modalities["voice"] = self.voice_results([y])[0]
                if text is None and transcribe:
                    modalities["words"] = self.transcribe(y)[0]
        if image is not None:
            from emofuse.features.image import load_image

            try:
                rgb = load_image(image)
            except DataError as exc:
                modalities["face"] = status_only("unreadable", exc.problem)
            else:
                modalities["face"] = self.face_results([rgb])[0]
        if text is not None:
            modalities["words"] = self.words_results([text])[0]
        return Prediction(modalities=modalities, fused=fuse_modalities(modalities))

    def predict_audio(self, audio: AudioIn, *, sample_rate_hz: int = SAMPLE_RATE_HZ, transcribe: bool = True) -> Prediction:
        """Voice (and words, with a transcriber) of one clip; raises DataError if it does not decode."""
        y = self.load_audio(audio, sample_rate_hz=sample_rate_hz)
        return self.predict(audio=y, transcribe=transcribe)

    def predict_image(self, image: ImageIn) -> Prediction:
        """Face of one image; raises DataError if it does not decode."""
        from emofuse.features.image import load_image

        rgb = load_image(image)
        return self.predict(image=rgb)

    def predict_text(self, text: str) -> Prediction:
        return self.predict(text=text)

    def predict_video(self, path: str | Path, *, transcribe: bool = True) -> VideoResult:
        """A timeline: faces on sampled frames, voice on sliding windows, words per speech segment,
        fused per window (:func:`emofuse.inference.timeline.video_timeline`). Raises DataError for a
        file that is not a readable video."""
        from emofuse.inference.timeline import video_timeline

        return video_timeline(self, path, transcribe=transcribe)


def _floats(p: Any) -> tuple[float, ...]:
    return tuple(float(x) for x in np.asarray(p, dtype=np.float64))


def _model_loader(runtime: str, onnx_threads: int | None) -> Any:
    """``load(path)`` for the runtime: a saved model in torch, or its exported graph in onnxruntime."""
    if runtime == "torch":
        from emofuse.models import load_model

        return load_model
    if runtime == "onnx":
        from emofuse.export.runtime import cached_onnx_model

        return lambda source: cached_onnx_model(source, threads=onnx_threads)
    raise ConfigError(f"runtime must be 'torch' or 'onnx', not {runtime!r}")


def load_words_components(*, load: Any = None) -> tuple[Any, Any]:
    """The text model and the transcriber, when this installation has them; ``(None, None)`` otherwise.

    The one seam where the words branch plugs in: the text classifier shipped in
    ``assets/models/text`` (registry model, e.g. ``text_minilm``) and ``emofuse.speech.Transcriber``.
    Either may be missing (an install without the ``words`` extra, or before that branch lands); the
    Predictor then reports words as ``unavailable``.
    """
    import importlib

    from emofuse.models import load_model

    text_dir = shipped_model_dir("text")
    text_model = (load or load_model)(text_dir) if text_dir is not None else None
    transcriber = None
    try:
        speech = importlib.import_module("emofuse.speech")
    except ImportError:
        speech = None
    if speech is not None and hasattr(speech, "Transcriber"):
        transcriber = speech.Transcriber(model="tiny.en", beam_size=5, vad=True)
    return text_model, transcriber


__all__ = ["Predictor", "PredictorConfig", "Transcriber", "load_words_components"]
