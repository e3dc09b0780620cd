"""One live connection of WS /v1/stream: its audio, its newest frame, its latest answers, and the three
loops that keep them fresh (the protocol is in :mod:`emofuse.serving.routers.stream`).

Each modality runs on its own lane (:class:`~emofuse.serving.runner.StreamLanes`), so none waits
for another: the face analyses the newest frame whenever one is waiting (older ones are dropped, never
queued); the voice answers on a fixed clock; the words of an utterance are transcribed when the
voice-activity detector hears it end, by a loop of their own that the update clock never waits for.
docs/live.md says who runs where, with which threads.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import time
from typing import Any

import numpy as np
from fastapi import WebSocket

from emofuse.errors import DataError
from emofuse.features.audio import SAMPLE_RATE_HZ
from emofuse.features.vad import SILERO_WINDOW, STRONG_SPEECH, SileroStream, utterance_span
from emofuse.inference.fusion import fuse_modalities
from emofuse.inference.predictor import Predictor
from emofuse.inference.results import ModalityResult, Segment, status_only
from emofuse.serving.runner import Overloaded, StreamLanes
from emofuse.serving.settings import ServeSettings

AUDIO, FRAME = 0x01, 0x02
WORDS_CHECK_S = 0.15  # how often the words loop looks for a finished utterance


class TooManyErrors(Exception):
    """The client sent ``stream_max_errors`` malformed messages: the socket is closed."""


class StreamSession:
    """The state of one live connection: an audio ring buffer, the newest frame, the latest answers."""

    def __init__(self, ws: WebSocket, predictor: Predictor, lanes: StreamLanes, settings: ServeSettings) -> None:
        self.ws, self.predictor, self.lanes, self.settings = ws, predictor, lanes, settings
        self.started = time.perf_counter()
        keep = int(max(settings.stream_voice_window_s, settings.stream_transcribe_window_s + 1.0) * SAMPLE_RATE_HZ)
        self.audio = np.zeros(keep, np.float32)  # ring buffer: the last `keep` samples, newest at the end
        self.audio_total = 0  # samples received since the start
        self.arrivals: list[tuple[int, float]] = []  # (audio_total after a chunk, when it arrived), recent ones
        self.audio_at_voice = 0  # audio_total when voice last ran
        self.audio_at_speaker = 0  # audio_total when a window last joined the speaker statistics
        self.words_from = 0  # the first sample not yet looked at (or transcribed) for words
        self.vad = SileroStream()  # speech probabilities of the stream so far, for the words loop
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
            raise TooManyErrors

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
            self.push_audio(np.frombuffer(payload, dtype="<i2").astype(np.float32) / 32768.0)
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

    def push_audio(self, samples: np.ndarray) -> None:
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
        self.arrivals.append((self.audio_total, self.last_audio_time))
        if len(self.arrivals) > 512:
            del self.arrivals[:256]

    def arrival_time(self, sample: int) -> float | None:
        """When the chunk holding audio sample ``sample`` (counted from the start) reached the server."""
        k = bisect.bisect_left(self.arrivals, (sample + 1, -1.0))
        return self.arrivals[k][1] if k < len(self.arrivals) else None

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
            self.audio_total = self.audio_at_voice = self.audio_at_speaker = self.words_from = 0
            self.arrivals.clear()
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
                [self.words] = await self.lanes.words.run(self.predictor.words_results, [value])
            except (Overloaded, TimeoutError):
                await self.error("server busy: the text was not analysed")
        else:
            await self.error(f"unknown message type {kind!r}: expected text, reset or ping")

    # -- face ----------------------------------------------------------------------------------------

    async def _face_loop(self) -> None:
        """Analyse the newest frame until none is waiting; ends quietly if the client has gone."""
        with contextlib.suppress(Exception):
            await self._analyse_frames()

    async def _analyse_frames(self) -> None:
        while self.pending_frame is not None:
            data, received = self.pending_frame
            self.pending_frame = None
            try:
                face = await self.lanes.face.run(_face_of_jpeg, self.predictor, data)
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

    # -- voice and the fused update --------------------------------------------------------------

    async def tick(self) -> None:
        """One update: voice on the newest audio (if any arrived), then everything fused."""
        s = self.settings
        voice_ms = None
        if self.audio_total > self.audio_at_voice:
            self.audio_at_voice = self.audio_total
            window = self.latest_audio(s.stream_voice_window_s)
            started = time.perf_counter()
            # A window joins the speaker statistics only when it does not overlap the last one that did.
            fresh = self.audio_total - self.audio_at_speaker >= s.stream_voice_window_s * SAMPLE_RATE_HZ
            try:
                [self.voice] = await self.lanes.voice.run(self.predictor.voice_results, [window],
                                                          speaker=self.speaker, update_speaker=fresh)
                if fresh and self.speaker is not None:
                    self.audio_at_speaker = self.audio_total
            except (Overloaded, TimeoutError):
                self.voice = status_only("unavailable", "server busy: voice skipped this update")
            voice_ms = round((time.perf_counter() - started) * 1000, 2)
        modalities = {"voice": self.voice, "face": self.face, "words": self.words}
        audio_lag = round((time.perf_counter() - self.last_audio_time) * 1000, 2) if self.audio_total else None
        await self.send({"type": "update", "t": self.now(),
                         "modalities": {k: v.to_dict() for k, v in modalities.items()},
                         "fused": fuse_modalities(modalities).to_dict(),
                         "latency_ms": {"voice_inference": voice_ms, "since_last_audio": audio_lag},
                         "audio_seconds": round(self.audio_total / SAMPLE_RATE_HZ, 3)})

    def latest_audio(self, seconds: float) -> np.ndarray:
        n = min(self.audio_total, int(seconds * SAMPLE_RATE_HZ), len(self.audio))
        return self.audio[len(self.audio) - n :].copy()

    def audio_since(self, sample: int) -> tuple[int, np.ndarray]:
        """``(first, audio)``: the audio from sample ``sample`` on (counted from the start), or from the
        oldest sample the ring buffer still holds."""
        first = max(sample, self.audio_total - len(self.audio))
        return first, self.audio[len(self.audio) - (self.audio_total - first) :].copy()

    async def ticker(self) -> None:
        """Updates on a fixed clock (not "interval after the last one"), so their spacing never drifts
        past ``stream_update_s``; a tick that overran is followed at once by the next."""
        interval = self.settings.stream_update_s
        next_at = time.perf_counter()
        while True:
            await self.tick()
            next_at = max(next_at + interval, time.perf_counter() - interval)
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

    # -- words ---------------------------------------------------------------------------------------

    async def words_loop(self) -> None:
        """Speech-to-text of each utterance once it ends, on the words lane; never holds up an update."""
        if self.predictor.transcriber is None:
            return
        while True:
            await asyncio.sleep(WORDS_CHECK_S)
            if self.typed_text is None and self.audio_total > self.words_from:
                await self.words_step()

    async def words_step(self) -> None:
        s = self.settings
        # Silero has seen everything before its next window: only the audio from there on is needed.
        look_from = min(self.words_from, self.vad.next_window * SILERO_WINDOW) if self.vad.available else self.words_from
        first, audio = self.audio_since(look_from)
        flush = time.perf_counter() - self.last_audio_time > 2 * s.stream_words_pause_s  # the microphone stopped
        try:
            found = await self.lanes.words.run(_utterance_words, self.predictor, self.vad, first, audio, self.words_from,
                                               pause_s=s.stream_words_pause_s, max_s=s.stream_transcribe_window_s,
                                               flush=flush, every_s=s.stream_transcribe_every_s)
        except (Overloaded, TimeoutError):
            self.words = status_only("unavailable", "server busy: speech-to-text skipped")
            return
        if isinstance(found, int):  # nothing finished: the first sample that can still start an utterance
            self.words_from = max(self.words_from, found)
            return
        (start, stop), words, segments = found
        self.words_from = stop
        self.words = words
        heard = self.arrival_time(stop - 1)
        await self.send({"type": "transcript", "t": self.now(), "text": words.text or "", "status": words.status,
                         "segments": [seg.__dict__ for seg in segments],
                         "utterance_s": [round(start / SAMPLE_RATE_HZ, 3), round(stop / SAMPLE_RATE_HZ, 3)],
                         "delay_ms": None if heard is None else round((time.perf_counter() - heard) * 1000, 1)})


def _utterance_words(predictor: Predictor, vad: SileroStream, first: int, audio: np.ndarray, words_from: int, *,
                     pause_s: float, max_s: float, flush: bool,
                     every_s: float) -> tuple[tuple[int, int], ModalityResult, list[Segment]] | int:
    """The words of the first finished utterance from stream sample ``words_from`` on, ``audio`` being
    the stream from sample ``first``: ``((start, stop), words, segments)`` in stream samples; or, when
    none has finished, the first sample that can still start one (silence before any speech is
    skipped, keeping the last pause's worth). Silero sees each 32 ms once (``vad`` keeps its state
    between calls); without it, everything is transcribed every ``every_s``."""
    words_from = max(words_from, first)
    if vad.available:
        vad.extend(first, audio)
        window = -(-words_from // SILERO_WINDOW)
        probs = vad.since(window)
        base = max(window, vad.first_window) * SILERO_WINDOW  # where probs[0] starts
        audio = audio[base - first : base - first + len(probs) * SILERO_WINDOW]
        span = utterance_span(probs, pause_s=pause_s, max_s=max_s, flush=flush)
        if span is None:
            if (probs >= STRONG_SPEECH).any():
                return words_from  # an utterance has begun: keep it all
            return max(words_from, base + len(audio) - int(pause_s * SAMPLE_RATE_HZ))
    else:
        base, audio = words_from, audio[words_from - first :]
        if len(audio) < every_s * SAMPLE_RATE_HZ and not flush:
            return words_from
        span = (0, len(audio))
    words, segments = predictor.transcribe(audio[span[0] : span[1]])
    return (base + span[0], base + min(span[1], len(audio))), words, segments


def _face_of_jpeg(predictor: Predictor, data: bytes) -> ModalityResult:
    from emofuse.features.image import load_image

    return predictor.face_results([load_image(data)])[0]
