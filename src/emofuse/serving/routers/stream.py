"""WS /v1/stream: live emotion from a microphone and a camera.

Client -> server
  * binary, first byte ``0x01``: audio, 16 kHz mono PCM16 little-endian (any chunk length);
  * binary, first byte ``0x02``: one camera frame as JPEG (or PNG);
  * text, JSON: ``{"type": "text", "text": "..."}`` (typed words), ``{"type": "reset"}`` (also forgets the
    speaker), ``{"type": "ping"}``.

The voice model adapts to the stream's speaker (``stream_adapt_speaker``, when the model has a
speaker-adapted head): every non-overlapping voice window with speech joins the speaker's running
statistics, and from the model's ``min_clips`` windows on, the voice answer's ``detail`` says it
was adapted.

Server -> client (JSON text)
  * ``{"type": "ready", ...}`` once, with the label sets and the update interval;
  * ``{"type": "face", "t", "face", "latency_ms", "frames_dropped"}`` for every frame analysed; a frame
    that arrives while the previous one is still being analysed replaces any waiting one, so the
    answer is always about the newest frame and a slow server never builds a backlog;
  * ``{"type": "update", "t", "modalities", "fused", "latency_ms"}`` every ``stream_update_s`` (0.45 s, so that one arrives at least every 0.5 s):
    voice on the last ``stream_voice_window_s`` of audio, the latest face and words, and the fusion;
  * ``{"type": "transcript", "text", "segments"}`` when speech-to-text hears new words;
  * ``{"type": "error", "message"}`` for a malformed message (the stream goes on; after
    ``stream_max_errors`` of them the socket is closed with code 1008).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import numpy as np
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from emofuse.errors import DataError
from emofuse.features.audio import SAMPLE_RATE_HZ
from emofuse.inference.fusion import fuse_modalities
from emofuse.inference.predictor import Predictor
from emofuse.inference.results import ModalityResult, status_only
from emofuse.serving.deps import SettingsDep, StreamPredictorDep, StreamRunnerDep
from emofuse.serving.runner import InferenceRunner, Overloaded
from emofuse.serving.settings import ServeSettings

router = APIRouter(prefix="/v1", tags=["stream"])

AUDIO, FRAME = 0x01, 0x02


class _TooManyErrors(Exception):
    pass


class StreamSession:
    """The state of one live connection: an audio ring buffer, the newest frame, the latest answers."""

    def __init__(self, ws: WebSocket, predictor: Predictor, runner: InferenceRunner, settings: ServeSettings) -> None:
        self.ws, self.predictor, self.runner, self.settings = ws, predictor, runner, settings
        self.started = time.perf_counter()
        keep = int(max(settings.stream_voice_window_s, settings.stream_transcribe_window_s) * SAMPLE_RATE_HZ)
        self.audio = np.zeros(keep, np.float32)  # ring buffer: the last `keep` samples, newest at the end
        self.audio_total = 0  # samples received since the start
        self.audio_at_voice = 0  # audio_total when voice last ran
        self.audio_at_words = 0
        self.audio_at_speaker = 0  # audio_total when a window last joined the speaker statistics
        self.speaker = predictor.new_speaker() if settings.stream_adapt_speaker else None
        self.last_audio_time = 0.0
        self.pending_frame: tuple[bytes, float] | None = None
        self.frames_dropped = 0
        self.face_task: asyncio.Task[None] | None = None
        self.voice: ModalityResult = status_only("absent", "no audio received yet")
        self.face: ModalityResult = status_only("absent", "no frame received yet")
        self.words: ModalityResult = (status_only("absent", "nothing heard or typed yet")
                                      if predictor.transcriber is not None or predictor.text_model is not None
                                      else status_only("unavailable", "no text model loaded"))
        self.typed_text: str | None = None
        self.errors = 0
        self.send_lock = asyncio.Lock()

    def now(self) -> float:
        return round(time.perf_counter() - self.started, 3)

    async def send(self, message: dict[str, Any]) -> None:
        async with self.send_lock:
            await self.ws.send_text(json.dumps(message))

    async def error(self, message: str) -> None:
        self.errors += 1
        await self.send({"type": "error", "message": message})
        if self.errors >= self.settings.stream_max_errors:
            raise _TooManyErrors

    # -- incoming --------------------------------------------------------------------------------

    async def on_bytes(self, data: bytes) -> None:
        if not data:
            await self.error("empty binary message: expected a 1-byte tag (1 audio, 2 frame) and a payload")
            return
        tag, payload = data[0], data[1:]
        if tag == AUDIO:
            if len(payload) % 2:
                await self.error(f"audio chunk of {len(payload)} bytes: PCM16 needs an even number of bytes")
                return
            samples = np.frombuffer(payload, dtype="<i2").astype(np.float32) / 32768.0
            self._push_audio(samples)
        elif tag == FRAME:
            if not payload:
                await self.error("empty frame")
                return
            if self.pending_frame is not None:
                self.frames_dropped += 1
            self.pending_frame = (bytes(payload), time.perf_counter())
            if self.face_task is None or self.face_task.done():
                self.face_task = asyncio.create_task(self._face_loop())
        else:
            await self.error(f"unknown message tag {tag}: expected 1 (audio) or 2 (frame)")

    def _push_audio(self, samples: np.ndarray) -> None:
        n = len(samples)
        if n == 0:
            return
        if n >= len(self.audio):
            self.audio[:] = samples[-len(self.audio):]
        else:
            self.audio[:-n] = self.audio[n:]
            self.audio[-n:] = samples
        self.audio_total += n
        self.last_audio_time = time.perf_counter()

    async def on_text(self, text: str) -> None:
        try:
            message = json.loads(text)
        except json.JSONDecodeError:
            await self.error("text message is not JSON")
            return
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "ping":
            await self.send({"type": "pong", "t": self.now()})
        elif kind == "reset":
            self.audio[:] = 0
            self.audio_total = self.audio_at_voice = self.audio_at_words = self.audio_at_speaker = 0
            self.speaker = self.predictor.new_speaker() if self.settings.stream_adapt_speaker else None
            self.voice = status_only("absent", "no audio received yet")
            self.face = status_only("absent", "no frame received yet")
            self.typed_text = None
        elif kind == "text":
            value = message.get("text")
            if not isinstance(value, str) or len(value) > self.settings.max_text_chars:
                await self.error(f"'text' must be a string of at most {self.settings.max_text_chars} characters")
                return
            self.typed_text = value
            try:
                [self.words] = await self.runner.run(self.predictor.words_results, [value])
            except (Overloaded, TimeoutError):
                await self.error("server busy: the text was not analysed")
        else:
            await self.error(f"unknown message type {kind!r}: expected text, reset or ping")

    # -- work --------------------------------------------------------------------------------------

    async def _face_loop(self) -> None:
        """Analyse the newest frame until none is waiting; ends quietly if the client has gone."""
        with contextlib.suppress(Exception):
            await self._analyse_frames()

    async def _analyse_frames(self) -> None:
        while self.pending_frame is not None:
            data, received = self.pending_frame
            self.pending_frame = None
            try:
                face = await self.runner.run(_face_of_jpeg, self.predictor, data)
            except DataError as exc:
                await self.error(f"frame is not a readable image: {exc.problem}")
                continue
            except (Overloaded, TimeoutError) as exc:
                await self.error(f"frame skipped: {exc or 'timed out'}")
                continue
            self.face = face
            await self.send({"type": "face", "t": self.now(), "face": face.to_dict(),
                             "latency_ms": round((time.perf_counter() - received) * 1000, 2),
                             "frames_dropped": self.frames_dropped})

    async def tick(self) -> None:
        """One update: voice on the newest audio (if any arrived), then everything fused."""
        s = self.settings
        voice_ms = None
        if self.audio_total > self.audio_at_voice:
            self.audio_at_voice = self.audio_total
            window = self._latest_audio(s.stream_voice_window_s)
            started = time.perf_counter()
            # A window joins the speaker statistics only when it does not overlap the last one that did.
            fresh = self.audio_total - self.audio_at_speaker >= s.stream_voice_window_s * SAMPLE_RATE_HZ
            try:
                [self.voice] = await self.runner.run(self.predictor.voice_results, [window], speaker=self.speaker,
                                                     update_speaker=fresh)
                if fresh and self.speaker is not None:
                    self.audio_at_speaker = self.audio_total
            except (Overloaded, TimeoutError):
                self.voice = status_only("unavailable", "server busy: voice skipped this update")
            voice_ms = round((time.perf_counter() - started) * 1000, 2)
        if (self.predictor.transcriber is not None and self.typed_text is None
                and self.audio_total - self.audio_at_words >= s.stream_transcribe_every_s * SAMPLE_RATE_HZ):
            self.audio_at_words = self.audio_total
            window = self._latest_audio(s.stream_transcribe_window_s)
            try:
                words, segments = await self.runner.run(self.predictor.transcribe, window)
            except (Overloaded, TimeoutError):
                words, segments = status_only("unavailable", "server busy: speech-to-text skipped"), []
            self.words = words
            await self.send({"type": "transcript", "t": self.now(), "text": words.text or "",
                             "status": words.status, "segments": [seg.__dict__ for seg in segments]})
        modalities = {"voice": self.voice, "face": self.face, "words": self.words}
        audio_lag = round((time.perf_counter() - self.last_audio_time) * 1000, 2) if self.audio_total else None
        await self.send({"type": "update", "t": self.now(),
                         "modalities": {k: v.to_dict() for k, v in modalities.items()},
                         "fused": fuse_modalities(modalities).to_dict(),
                         "latency_ms": {"voice_inference": voice_ms, "since_last_audio": audio_lag},
                         "audio_seconds": round(self.audio_total / SAMPLE_RATE_HZ, 3)})

    def _latest_audio(self, seconds: float) -> np.ndarray:
        n = min(self.audio_total, int(seconds * SAMPLE_RATE_HZ), len(self.audio))
        return self.audio[len(self.audio) - n :].copy()

    async def ticker(self) -> None:
        """Updates on a fixed clock (not "interval after the last one"), so their spacing never drifts
        past ``stream_update_s``; a tick that overran is followed at once by the next."""
        interval = self.settings.stream_update_s
        next_at = time.perf_counter()
        while True:
            await self.tick()
            next_at = max(next_at + interval, time.perf_counter() - interval)
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))


def _face_of_jpeg(predictor: Predictor, data: bytes) -> ModalityResult:
    from emofuse.features.face import load_image

    return predictor.face_results([load_image(data)])[0]


@router.websocket("/stream")
async def stream(ws: WebSocket, predictor: StreamPredictorDep, runner: StreamRunnerDep, settings: SettingsDep) -> None:
    await ws.accept()
    session = StreamSession(ws, predictor, runner, settings)
    await session.send({"type": "ready", "labels": {k: list(v) for k, v in predictor.label_sets().items()},
                        "update_interval_s": settings.stream_update_s, "sample_rate_hz": SAMPLE_RATE_HZ})
    ticker = asyncio.create_task(session.ticker())
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            if ticker.done():  # the update loop died (the client went away while we were sending)
                break
            if message.get("bytes") is not None:
                if len(message["bytes"]) > settings.stream_max_message_bytes:
                    await session.error(f"message over the {settings.stream_max_message_bytes}-byte limit")
                    continue
                await session.on_bytes(message["bytes"])
            elif message.get("text") is not None:
                await session.on_text(message["text"])
    except _TooManyErrors:
        with contextlib.suppress(Exception):
            await ws.close(code=1008, reason="too many malformed messages")
    except (WebSocketDisconnect, RuntimeError):
        pass  # the client went away mid-stream: nothing to answer
    finally:
        ticker.cancel()
        if session.face_task is not None:
            session.face_task.cancel()
        with contextlib.suppress(BaseException):
            await ticker
