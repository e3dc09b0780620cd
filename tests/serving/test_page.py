"""The live page in a real browser: Debian's Chromium, headless, driven by Playwright, against a real
uvicorn server on 127.0.0.1 serving the tiny models.

Chromium's fake media devices play a generated WAV (a tone clip) as the microphone and a generated
Y4M video of a real face (scikit-image's astronaut) as the camera, so the page's own capture code,
its WebSocket client and the server's stream all run for real. Screenshots are saved under
``test-artifacts/`` (or ``$EMOFUSE_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from emofuse.inference import Predictor
from emofuse.serving.app import create_app
from emofuse.serving.settings import ServeSettings
from tests._predictors import astronaut, voiced, write_wav

CHROMIUM = Path(os.environ.get("EMOFUSE_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(os.environ.get("EMOFUSE_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (dev extra)")
if not CHROMIUM.is_file():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 15) -> Path:
    """An uncompressed YUV4MPEG2 (4:2:0) video: what Chromium's fake camera reads."""
    import cv2

    height, width = frames[0].shape[:2]
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in frames:
            out.write(b"FRAME\n")
            out.write(np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)).tobytes())
    return path


@pytest.fixture(scope="module")
def fake_devices(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import cv2

    root = tmp_path_factory.mktemp("fake_devices")
    face = cv2.resize(astronaut()[:400, 40:440], (240, 240), interpolation=cv2.INTER_AREA)
    frame = np.full((240, 320, 3), 60, np.uint8)
    frames = []
    for k in range(30):  # the face drifts a little, as a person in front of a webcam does
        moving = frame.copy()
        dx = 40 + int(8 * np.sin(k / 5))
        moving[:, dx : dx + 240] = face
        frames.append(moving)
    y = np.concatenate([voiced("05", 1.0, seed=k) for k in range(4)])
    return {"video": write_y4m(root / "camera.y4m", frames), "audio": write_wav(root / "microphone.wav", y)}


@pytest.fixture(scope="module")
def server(tiny_predictor: Predictor) -> Iterator[str]:
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(predictor=tiny_predictor, settings=ServeSettings(warm_up=True, port=port))
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws_max_size=2_000_000)
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(fake_devices: dict[str, Path]) -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=[
            "--no-sandbox",  # CI runs as root
            "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
            "--disable-gpu",
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={fake_devices['video']}",
            f"--use-file-for-fake-audio-capture={fake_devices['audio']}",
            "--autoplay-policy=no-user-gesture-required",
        ])
        yield b
        b.close()


@pytest.fixture()
def page(browser: Any, server: str) -> Iterator[Any]:
    context = browser.new_context(permissions=["camera", "microphone"], viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server + "/")
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def _screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_live_face_and_voice_appear_and_update(page: Any) -> None:
    page.click("#start")
    page.wait_for_function("window.emofuse.counters.face >= 3 && window.emofuse.counters.voice >= 2", timeout=20_000)
    assert page.get_attribute("#bars-face", "data-status") == "ok"
    assert page.get_attribute("#bars-voice", "data-status") == "ok"
    assert page.get_attribute("#bars-fused", "data-status") == "ok"
    assert page.locator("#bars-face .row").count() == 7
    assert page.locator("#bars-voice .row").count() == 8
    assert page.get_attribute("#bars-words", "data-status") == "unavailable"  # no text model in the tiny predictor
    assert page.get_attribute("#connection", "data-state") == "open"
    before = page.evaluate("({...window.emofuse.counters})")
    page.wait_for_function(
        f"window.emofuse.counters.face >= {before['face'] + 3} && window.emofuse.counters.voice >= {before['voice'] + 2}",
        timeout=20_000)
    face_fps = float(page.inner_text("#face-fps"))
    assert face_fps > 0
    # The face box is drawn over the video: the overlay has painted (non-transparent) pixels.
    painted = page.evaluate("""() => { const c = document.getElementById('overlay');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }""")
    assert painted > 100
    assert page.evaluate("window.emofuse.history.length") >= 1  # the timeline has points
    _screenshot(page, "page-live.png")
    page.click("#stop")


def test_upload_shows_the_result(page: Any, media: dict[str, Path]) -> None:
    page.set_input_files("#upload-file", str(media["face"]))
    page.click("#upload-button")
    page.wait_for_selector("#upload-status[data-kind='done']", timeout=20_000)
    face = page.locator("#upload-result [data-modality='face']")
    assert face.get_attribute("data-status") == "ok"
    assert face.locator(".row").count() == 7
    assert page.locator("#upload-result [data-modality='fused']").get_attribute("data-status") == "ok"

    page.set_input_files("#upload-file", str(media["video"]))
    page.click("#upload-button")
    page.wait_for_function("document.querySelector('#upload-status').dataset.kind === 'done' "
                           "&& document.querySelectorAll('table.windows tr').length > 1", timeout=20_000)
    assert page.locator("table.windows tr").count() == 1 + 3  # header + three windows
    assert page.is_visible("#upload-timeline")
    _screenshot(page, "page-upload-video.png")

    page.set_input_files("#upload-file", str(media["text_as_wav"]))
    page.click("#upload-button")
    page.wait_for_selector("#upload-status[data-kind='error']", timeout=20_000)
    assert "422" in page.inner_text("#upload-status")



def test_transcript_never_cuts_a_line_and_a_late_face_is_marked_stale(page: Any) -> None:
    """Many transcripts scroll the box to its end with whole lines only; a face answer older than
    1.5 s greys the face bars and says how old it is; an uncertain answer says so."""
    page.evaluate("""() => { for (let k = 0; k < 12; k++)
        onMessage({ data: JSON.stringify({ type: "transcript", text: "utterance number " + k + " of a long talk" }) }); }""")
    box = page.evaluate("""() => { const t = document.getElementById('transcript');
        return { top: t.scrollTop, client: t.clientHeight, height: t.scrollHeight, lines: t.querySelectorAll('p').length }; }""")
    assert box["lines"] == 12 and box["height"] > box["client"]  # it scrolled
    assert box["client"] % 20 == 0 and round(box["top"]) % 20 == 0  # whole 20 px lines at the top edge
    page.wait_for_function("performance.now() > 2000")
    page.evaluate("""() => { window.emofuse.lastFaceAt = 1;
        renderModality(document.getElementById('bars-face'), { status: 'ok', label: 'sad', confidence: 0.31,
            uncertain: true, probabilities: { sad: 0.31, happy: 0.3 } });
        updateRates(); }""")
    assert page.get_attribute("#bars-face", "data-uncertain") == "true"
    assert page.get_attribute("#bars-face", "data-stale") == "true"
    assert "last face answer" in page.inner_text("#bars-face .status")
