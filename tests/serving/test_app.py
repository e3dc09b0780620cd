"""The HTTP API through FastAPI's TestClient, with the tiny models of tests/_predictors.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from emofuse.inference import Predictor
from emofuse.serving.app import create_app
from emofuse.serving.deps import get_predictor
from emofuse.serving.settings import ServeSettings
from tests._predictors import KeywordTextModel


@pytest.fixture(scope="module")
def client(tiny_predictor: Predictor) -> Iterator[TestClient]:
    settings = ServeSettings(max_upload_bytes=2_000_000, warm_up=False, max_text_chars=200)
    with TestClient(create_app(predictor=tiny_predictor, settings=settings)) as c:
        yield c


def _post(client: TestClient, route: str, path: Path, name: str | None = None) -> Any:
    return client.post(route, files={"file": (name or path.name, path.read_bytes())})


def test_health_and_models(client: TestClient) -> None:
    health = client.get("/healthz").json()
    assert health["status"] == "ok"
    assert health["modalities"] == {"voice": True, "face": True, "words": False, "transcriber": False}
    models = client.get("/v1/models").json()
    assert {m["modality"] for m in models["models"]} == {"voice", "face"}
    assert models["unavailable"] == ["words"]
    voice = next(m for m in models["models"] if m["modality"] == "voice")
    assert voice["name"] == "voice_logreg" and len(voice["labels"]) == 8
    assert models["fused_labels"] == ["neutral", "happy", "sad", "angry", "fear", "disgust", "surprise"]


def test_openapi_docs(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/predict/audio", "/v1/predict/image", "/v1/predict/video", "/v1/predict/text", "/v1/predict",
            "/v1/models", "/healthz"} <= set(paths)


def test_predict_audio(client: TestClient, media: dict[str, Path]) -> None:
    r = _post(client, "/v1/predict/audio", media["voice"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["modalities"]["voice"]["status"] == "ok"
    assert sum(body["modalities"]["voice"]["probabilities"].values()) == pytest.approx(1.0)
    assert body["modalities"]["face"]["status"] == "absent"
    assert body["fused"]["status"] == "ok" and body["latency_ms"] > 0


def test_predict_image(client: TestClient, media: dict[str, Path]) -> None:
    body = _post(client, "/v1/predict/image", media["face"]).json()
    assert body["modalities"]["face"]["status"] == "ok"
    assert body["modalities"]["face"]["box"]["image_width"] == 512
    assert _post(client, "/v1/predict/image", media["blank"]).json()["modalities"]["face"]["status"] == "no_face"


def test_predict_video(client: TestClient, media: dict[str, Path]) -> None:
    r = _post(client, "/v1/predict/video", media["video"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert [w["start_s"] for w in body["windows"]] == [0.0, 1.0, 2.0]
    assert [w["modalities"]["face"]["status"] for w in body["windows"]] == ["ok", "ok", "no_face"]
    silent = _post(client, "/v1/predict/video", media["video_silent"]).json()
    assert silent["audio_status"] == "no_speech"
    assert silent["windows"][0]["modalities"]["voice"]["detail"] == "the video has no audio track"


@pytest.mark.parametrize(("route", "name", "message"), [
    ("/v1/predict/audio", "text_as_wav", "text"),
    ("/v1/predict/audio", "truncated", "truncated"),
    ("/v1/predict/audio", "face", "no audio stream"),
    ("/v1/predict/image", "text_as_wav", "not an image"),
    ("/v1/predict/image", "truncated_image", "truncated or corrupt"),
    ("/v1/predict/video", "text_as_wav", "text"),
    ("/v1/predict/video", "truncated", "no video stream"),
])
def test_bad_media_is_a_clear_422(client: TestClient, media: dict[str, Path], route: str, name: str,
                                  message: str) -> None:
    r = _post(client, route, media[name])
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert message in detail and "/tmp" not in detail  # the server's temporary path is not leaked


def test_empty_upload_and_missing_field(client: TestClient) -> None:
    r = client.post("/v1/predict/audio", files={"file": ("a.wav", b"")})
    assert r.status_code == 422 and "empty" in r.json()["detail"]
    assert client.post("/v1/predict/image").status_code == 422


def test_upload_over_the_limit_is_413_before_it_is_read(client: TestClient) -> None:
    sent = 0

    def two_gigabytes() -> Iterator[bytes]:
        nonlocal sent
        block = b"\0" * (1 << 20)
        for _ in range(2048):
            sent += len(block)
            yield block

    r = client.post("/v1/predict/video", content=two_gigabytes(),
                    headers={"content-type": "application/octet-stream", "content-length": str(2048 << 20)})
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    assert sent < 10 << 20  # refused from the header, not after reading 2 GB


def test_streamed_upload_without_length_is_cut_at_the_limit(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(5):
            yield b"\0" * 1_000_000

    boundary = "xyz"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.wav\"\r\n"
            "Content-Type: audio/wav\r\n\r\n").encode()

    def body() -> Iterator[bytes]:
        yield head
        yield from chunks()
        yield f"\r\n--{boundary}--\r\n".encode()

    r = client.post("/v1/predict/audio", content=body(),
                    headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 413


def test_text_route(client: TestClient, tiny_predictor: Predictor) -> None:
    # No text model in the tiny predictor: the answer says so.
    body = client.post("/v1/predict/text", json={"text": "so happy"}).json()
    assert body["modalities"]["words"]["status"] == "unavailable"
    assert client.post("/v1/predict/text", json={"text": "x" * 201}).status_code == 422
    assert client.post("/v1/predict/text", json={"words": "hi"}).status_code == 422
    # With a text model injected through the dependency.
    app = client.app
    with_text = Predictor(voice=tiny_predictor.voice, face=tiny_predictor.face, detector=tiny_predictor.detector,
                          text_model=KeywordTextModel())
    app.dependency_overrides[get_predictor] = lambda: with_text  # type: ignore[attr-defined]
    try:
        body = client.post("/v1/predict/text", json={"text": "sad sad day"}).json()
    finally:
        app.dependency_overrides.clear()  # type: ignore[attr-defined]
    assert body["modalities"]["words"]["label"] == "sad" and body["fused"]["label"] == "sad"


def test_any_combination(client: TestClient, media: dict[str, Path]) -> None:
    files = {"audio": ("voice.wav", media["voice"].read_bytes()), "image": ("face.png", media["face"].read_bytes())}
    body = client.post("/v1/predict", files=files).json()
    assert body["modalities"]["voice"]["status"] == "ok" and body["modalities"]["face"]["status"] == "ok"
    assert body["fused"]["detail"] == "mean of voice, face"
    # One unreadable input: reported in its status, the other still answers.
    files = {"audio": ("bad.wav", b"not audio at all"), "image": ("face.png", media["face"].read_bytes())}
    body = client.post("/v1/predict", files=files).json()
    assert body["modalities"]["voice"]["status"] == "unreadable" and body["fused"]["status"] == "ok"
    # Every input unreadable, or none given: 422.
    r = client.post("/v1/predict", files={"audio": ("bad.wav", b"not audio at all")})
    assert r.status_code == 422 and r.json()["detail"].startswith("voice:")
    assert client.post("/v1/predict", data={}).status_code == 422


def test_cors_is_off_by_default_and_on_when_asked(tiny_predictor: Predictor) -> None:
    origin = {"origin": "http://example.test"}
    with TestClient(create_app(tiny_predictor, ServeSettings(warm_up=False))) as c:
        assert "access-control-allow-origin" not in c.get("/healthz", headers=origin).headers
    settings = ServeSettings(warm_up=False, cors_origins=["http://example.test"])
    with TestClient(create_app(tiny_predictor, settings)) as c:
        assert c.get("/healthz", headers=origin).headers["access-control-allow-origin"] == "http://example.test"


def test_page_and_assets(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "emofuse" in page.text
    assert "http" not in page.text.split("<footer")[0].replace("http-equiv", "")  # no CDN, nothing external
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    assert client.get("/static/..%2Fapp.py").status_code == 404
    assert client.get("/static/missing.js").status_code == 404


def test_no_work_at_import_or_creation() -> None:
    """Creating the app loads nothing; the shipped models are loaded by the lifespan, not before."""
    app = create_app(settings=ServeSettings(warm_up=False))
    assert app.state.predictor is None
