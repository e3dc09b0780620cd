"""The inference runner: bounded queue (503), timeout (504), work off the event loop."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from fastapi.testclient import TestClient

from emofuse.inference import Predictor
from emofuse.serving.app import create_app
from emofuse.serving.runner import InferenceRunner, Overloaded
from emofuse.serving.settings import ServeSettings


def test_runs_in_worker_threads_and_bounds_the_queue() -> None:
    runner = InferenceRunner(workers=1, max_pending=2, timeout_s=5)
    gate = threading.Event()

    async def main() -> None:
        loop_thread = threading.get_ident()
        first = asyncio.create_task(runner.run(lambda: (gate.wait(5), threading.get_ident())[1]))
        second = asyncio.create_task(runner.run(lambda: 2))
        await asyncio.sleep(0.05)
        assert runner.pending == 2
        with pytest.raises(Overloaded):
            await runner.run(lambda: 3)
        gate.set()
        assert await first != loop_thread
        assert await second == 2
        assert runner.pending == 0

    try:
        asyncio.run(main())
    finally:
        runner.stop()


def test_timeout_frees_the_slot_only_when_the_work_ends() -> None:
    runner = InferenceRunner(workers=1, max_pending=4, timeout_s=0.05)

    async def main() -> None:
        with pytest.raises(TimeoutError):
            await runner.run(time.sleep, 0.3)
        assert runner.pending == 1  # still running in its thread
        await asyncio.sleep(0.4)
        assert runner.pending == 0

    try:
        asyncio.run(main())
    finally:
        runner.stop()


def test_service_answers_503_and_504(tiny_predictor: Predictor, media: dict) -> None:
    slow = Predictor(voice=tiny_predictor.voice, face=tiny_predictor.face, detector=tiny_predictor.detector)
    slow.predict_image = lambda data: time.sleep(0.5)  # type: ignore[method-assign,assignment,return-value]
    settings = ServeSettings(warm_up=False, request_timeout_s=0.1)
    with TestClient(create_app(slow, settings)) as client:
        r = client.post("/v1/predict/image", files={"file": ("f.png", media["face"].read_bytes())})
        assert r.status_code == 504 and "timeout" in r.json()["detail"]
    settings = ServeSettings(warm_up=False, max_pending=1, workers=1)
    app = create_app(slow, settings)
    with TestClient(app) as client:
        app.state.runner._pending = 1  # one request already waiting
        r = client.post("/v1/predict/image", files={"file": ("f.png", media["face"].read_bytes())})
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
