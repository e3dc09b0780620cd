"""WS /v1/stream: audio chunks and JPEG frames in, face / update messages out; bad messages are errors."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from emofuse.inference import Predictor
from emofuse.serving.app import create_app
from emofuse.serving.settings import ServeSettings
from tests._predictors import astronaut, voiced


@pytest.fixture(scope="module")
def client(tiny_predictor: Predictor) -> Iterator[TestClient]:
    settings = ServeSettings(warm_up=False, stream_update_s=0.2, stream_max_errors=5)
    with TestClient(create_app(predictor=tiny_predictor, settings=settings)) as c:
        yield c


def _jpeg(image: np.ndarray) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(image).save(out, format="JPEG", quality=80)
    return out.getvalue()


def _pcm(y: np.ndarray) -> bytes:
    return b"\x01" + (np.clip(y, -1, 1) * 32767).astype("<i2").tobytes()


def _until(ws: Any, kind: str, limit: int = 50) -> dict[str, Any]:
    for _ in range(limit):
        message = json.loads(ws.receive_text())
        if message["type"] == kind:
            return message
    raise AssertionError(f"no {kind!r} message in {limit}")


def test_face_and_voice_arrive_and_update(client: TestClient) -> None:
    with client.websocket_connect("/v1/stream") as ws:
        ready = json.loads(ws.receive_text())
        assert ready["type"] == "ready" and ready["sample_rate_hz"] == 16_000
        assert ready["labels"]["fused"][0] == "neutral"
        ws.send_bytes(b"\x02" + _jpeg(astronaut()))
        face = _until(ws, "face")
        assert face["face"]["status"] == "ok" and face["face"]["box"]["image_width"] == 512
        assert face["latency_ms"] > 0
        y = voiced("05", 1.0)
        for start in range(0, len(y), 4000):  # 250 ms chunks
            ws.send_bytes(_pcm(y[start : start + 4000]))
        update = _until(ws, "update")
        while update["modalities"]["voice"]["status"] != "ok":
            update = _until(ws, "update")
        assert update["latency_ms"]["voice_inference"] is not None
        assert update["modalities"]["face"]["status"] == "ok"
        assert update["fused"]["status"] == "ok" and update["fused"]["detail"] == "mean of voice, face"
        # Updates keep coming, and a blank frame turns the face to no_face.
        ws.send_bytes(b"\x02" + _jpeg(np.full((240, 320, 3), 90, np.uint8)))
        assert _until(ws, "face")["face"]["status"] == "no_face"
        later = _until(ws, "update")
        assert later["t"] > update["t"]


@pytest.mark.parametrize(("message", "expected"), [
    (b"", "empty binary message"),
    (b"\x07abc", "unknown message tag 7"),
    (b"\x01abc", "even number of bytes"),
    (b"\x02", "empty frame"),
    (b"\x02not a jpeg", "frame is not a readable image"),
    ("not json", "not JSON"),
    (json.dumps({"type": "dance"}), "unknown message type"),
    (json.dumps([1, 2]), "unknown message type"),
    (json.dumps({"type": "text", "text": 5}), "'text' must be a string"),
])
def test_malformed_messages_get_an_error_and_the_stream_goes_on(client: TestClient, message: Any,
                                                                expected: str) -> None:
    with client.websocket_connect("/v1/stream") as ws:
        _until(ws, "ready")
        if isinstance(message, bytes):
            ws.send_bytes(message)
        else:
            ws.send_text(message)
        assert expected in _until(ws, "error")["message"]
        ws.send_text(json.dumps({"type": "ping"}))
        assert _until(ws, "pong")["type"] == "pong"


def test_too_many_errors_close_the_socket(client: TestClient) -> None:
    from starlette.websockets import WebSocketDisconnect

    with client.websocket_connect("/v1/stream") as ws:
        _until(ws, "ready")
        for _ in range(5):
            ws.send_bytes(b"\x09")
        with pytest.raises(WebSocketDisconnect) as info:
            for _ in range(50):
                ws.receive_text()
        assert info.value.code == 1008


def test_client_leaving_mid_stream_leaves_the_server_serving(client: TestClient) -> None:
    with client.websocket_connect("/v1/stream") as ws:
        _until(ws, "ready")
        ws.send_bytes(_pcm(voiced("03", 0.5)))
        ws.send_bytes(b"\x02" + _jpeg(astronaut()))
    # Gone without a goodbye while its frame was being analysed; others are still served.
    assert client.get("/healthz").json()["status"] == "ok"
    with client.websocket_connect("/v1/stream") as ws:
        assert _until(ws, "ready")["type"] == "ready"


def test_streams_share_the_models_but_not_the_face_detector(client: TestClient) -> None:
    state = client.app.state  # type: ignore[attr-defined]
    assert state.stream_predictor.voice is state.predictor.voice
    assert state.stream_predictor.face is state.predictor.face
    assert state.stream_predictor.detector is not state.predictor.detector
    assert state.runner not in list(state.stream_lanes)
    assert len({id(lane) for lane in state.stream_lanes}) == 3  # face, voice, words: a lane each


def test_words_from_the_transcriber_and_from_typed_text(tiny_predictor: Predictor) -> None:
    from tests._predictors import KeywordTextModel, ScriptedTranscriber

    predictor = Predictor(voice=tiny_predictor.voice, face=tiny_predictor.face, detector=tiny_predictor.detector,
                          text_model=KeywordTextModel(), transcriber=ScriptedTranscriber("so happy happy"))
    settings = ServeSettings(warm_up=False, stream_update_s=0.2, stream_transcribe_every_s=0.5)
    with TestClient(create_app(predictor=predictor, settings=settings)) as c, c.websocket_connect("/v1/stream") as ws:
        _until(ws, "ready")
        y = voiced("03", 1.0)
        for start in range(0, len(y), 4000):
            ws.send_bytes(_pcm(y[start : start + 4000]))
        transcript = _until(ws, "transcript")
        assert transcript["text"] == "so happy happy" and transcript["status"] == "ok"
        update = _until(ws, "update")
        assert update["modalities"]["words"]["label"] == "happy"
        assert update["fused"]["detail"] == "mean of voice, words"
        ws.send_text(json.dumps({"type": "text", "text": "angry angry angry"}))
        update = _until(ws, "update")
        while update["modalities"]["words"]["text"] != "angry angry angry":
            update = _until(ws, "update")
        assert update["modalities"]["words"]["label"] == "angry"


def test_words_come_when_an_utterance_ends_and_never_hold_up_the_face(tiny_predictor: Predictor) -> None:
    """Audio keeps flowing (speech, then silence, as from a microphone): the utterance is transcribed
    once the pause is heard, with its span and delay; meanwhile a slow transcription (1.5 s here) runs
    on the words lane, and frames sent during it are still answered."""
    from tests._predictors import KeywordTextModel, ScriptedTranscriber

    slow = ScriptedTranscriber("happy happy", seconds=1.5)
    predictor = Predictor(voice=tiny_predictor.voice, face=tiny_predictor.face, detector=tiny_predictor.detector,
                          text_model=KeywordTextModel(), transcriber=slow)
    settings = ServeSettings(warm_up=False, stream_update_s=0.2, stream_words_pause_s=0.4)
    with TestClient(create_app(predictor=predictor, settings=settings)) as c, c.websocket_connect("/v1/stream") as ws:
        _until(ws, "ready")
        y = np.concatenate([voiced("03", 1.0), np.zeros(16_000, np.float32)])
        for start in range(0, len(y), 2000):
            ws.send_bytes(_pcm(y[start : start + 2000]))
        frame = b"\x02" + _jpeg(astronaut())
        seen: list[str] = []
        deadline = time.monotonic() + 20
        while "transcript" not in seen and time.monotonic() < deadline:
            ws.send_bytes(frame)
            message = json.loads(ws.receive_text())
            seen.append(message["type"])
            if message["type"] == "transcript":
                transcript = message
        assert "transcript" in seen
        assert transcript["text"] == "happy happy" and transcript["delay_ms"] > 0
        start_s, end_s = transcript["utterance_s"]
        assert start_s < 0.2 and 0.9 < end_s < 1.3  # the voiced second, padded; not the silence after it
        assert slow.calls == 1 and abs(slow.lengths[0] - 16_000 * (end_s - start_s)) <= 1
        # The face went on while the words lane was busy: answers arrived between speech end and the transcript.
        assert seen.count("face") >= 2
