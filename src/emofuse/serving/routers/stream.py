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
  * ``{"type": "transcript", "text", "status", "segments", "utterance_s", "delay_ms"}`` once per utterance,
    when the voice-activity detector hears it end (a pause of ``stream_words_pause_s``) or it has run
    ``stream_transcribe_window_s``: ``utterance_s`` is its span in stream seconds, ``delay_ms`` the time
    from the arrival of its last audio to this message;
  * ``{"type": "error", "message"}`` for a malformed message (the stream goes on; after
    ``stream_max_errors`` of them the socket is closed with code 1008).
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from emofuse.features.audio import SAMPLE_RATE_HZ
from emofuse.serving.deps import SettingsDep, StreamLanesDep, StreamPredictorDep
from emofuse.serving.session import StreamSession, TooManyErrors

router = APIRouter(prefix="/v1", tags=["stream"])


@router.websocket("/stream")
async def stream(ws: WebSocket, predictor: StreamPredictorDep, lanes: StreamLanesDep, settings: SettingsDep) -> None:
    await ws.accept()
    session = StreamSession(ws, predictor, lanes, settings)
    await session.send({"type": "ready", "labels": {k: list(v) for k, v in predictor.label_sets().items()},
                        "update_interval_s": settings.stream_update_s, "sample_rate_hz": SAMPLE_RATE_HZ})
    loops = [asyncio.create_task(session.ticker()), asyncio.create_task(session.words_loop())]
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            if loops[0].done():  # the update loop died (the client went away while we were sending)
                break
            if message.get("bytes") is not None:
                if len(message["bytes"]) > settings.stream_max_message_bytes:
                    await session.error(f"message over the {settings.stream_max_message_bytes}-byte limit")
                    continue
                await session.on_bytes(message["bytes"])
            elif message.get("text") is not None:
                await session.on_text(message["text"])
    except TooManyErrors:
        with contextlib.suppress(Exception):
            await ws.close(code=1008, reason="too many malformed messages")
    except (WebSocketDisconnect, RuntimeError):
        pass  # the client went away mid-stream: nothing to answer
    finally:
        if session.face_task is not None:
            loops.append(session.face_task)
        for task in loops:
            task.cancel()
        for task in loops:
            with contextlib.suppress(BaseException):
                await task
