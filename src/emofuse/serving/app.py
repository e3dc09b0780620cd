"""The FastAPI application: ``create_app(predictor=..., settings=...)`` builds it, nothing happens at import.

Routers, one per resource: ``health`` (/healthz), ``models`` (/v1/models), ``predict``
(/v1/predict/...), ``stream`` (WS /v1/stream) and ``page`` (the live web page at /). Inference runs
in the :class:`~emofuse.serving.runner.InferenceRunner`'s threads, never on the event loop.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from emofuse.errors import DataError, EmofuseError
from emofuse.serving.runner import InferenceRunner, Overloaded, StreamLanes
from emofuse.serving.settings import ServeSettings

log = logging.getLogger("emofuse.serving")


def create_app(predictor: Any = None, settings: ServeSettings | None = None) -> FastAPI:
    """The service. Without ``predictor``, the shipped models are loaded when the app starts."""
    from emofuse import __version__
    from emofuse.serving.routers import health, models, page, predict, stream

    settings = settings or ServeSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runner: InferenceRunner = app.state.runner
        runner.start()
        app.state.stream_lanes.start()
        if app.state.predictor is None:
            app.state.predictor = await runner.run(_load_predictor, settings, timeout_s=600)
        app.state.stream_predictor = app.state.predictor.for_stream(words_threads=settings.stream_words_threads,
                                                                    beam_size=settings.stream_words_beam_size)
        if settings.warm_up:
            await runner.run(_warm_up, app.state.predictor, timeout_s=600)
            await runner.run(_warm_up, app.state.stream_predictor, timeout_s=600)
        try:
            yield
        finally:
            runner.stop()
            app.state.stream_lanes.stop()

    app = FastAPI(title="emofuse", version=__version__, lifespan=lifespan,
                  description="Emotion from voice, face and words, alone or fused. The live page is at /.")
    app.state.predictor = predictor
    app.state.settings = settings
    app.state.runner = InferenceRunner(workers=settings.workers, max_pending=settings.max_pending,
                                       timeout_s=settings.request_timeout_s, torch_threads=settings.torch_threads)
    app.state.stream_lanes = StreamLanes(max_pending=settings.max_pending, timeout_s=settings.request_timeout_s,
                                         torch_threads=settings.torch_threads)
    for router in (health.router, models.router, predict.router, stream.router, page.router):
        app.include_router(router)
    _add_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_upload_bytes)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["*"],
                           allow_headers=["*"])
    return app


def _load_predictor(settings: ServeSettings) -> Any:
    from emofuse.inference.predictor import Predictor

    return Predictor.from_shipped(voice_dir=settings.voice_model, face_dir=settings.face_model, words=settings.words,
                                  runtime=settings.runtime, onnx_threads=settings.torch_threads)


def _warm_up(predictor: Any) -> None:
    """One small prediction per modality: the first real request should not pay for lazy set-up."""
    import numpy as np

    from emofuse.data.synthetic import tone_clip

    predictor.predict(audio=tone_clip("03", actor=1, seconds=1.0), image=np.full((240, 320, 3), 128, np.uint8))


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DataError)
    async def bad_media(request: Request, exc: DataError) -> JSONResponse:
        # The server's temporary file name means nothing to the client: say what was wrong.
        return JSONResponse({"detail": exc.problem}, status_code=422)

    @app.exception_handler(EmofuseError)
    async def bad_request(request: Request, exc: EmofuseError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(Overloaded)
    async def overloaded(request: Request, exc: Overloaded) -> JSONResponse:
        return JSONResponse({"detail": f"server busy: {exc}"}, status_code=503, headers={"Retry-After": "1"})

    @app.exception_handler(TimeoutError)
    async def timed_out(request: Request, exc: TimeoutError) -> JSONResponse:
        return JSONResponse({"detail": "inference took longer than the request timeout"}, status_code=504)


class TooLarge(HTTPException):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(status_code=413, detail=f"upload larger than the {max_bytes:,}-byte limit")


class BodyLimit:
    """413 for a request body over ``max_bytes``: at once from Content-Length, else while it streams in
    (FastAPI re-raises the HTTPException from the body reader, so the route never sees the rest)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _send_413(send, self.max_bytes)
            return
        received = 0
        started = False

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise TooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracking_send)
        except TooLarge:
            if not started:
                await _send_413(send, self.max_bytes)


async def _send_413(send: Send, max_bytes: int) -> None:
    import json

    body = json.dumps({"detail": f"upload larger than the {max_bytes:,}-byte limit"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def run_server(settings: ServeSettings) -> None:
    """``emofuse serve``: uvicorn on ``settings.host:port`` (127.0.0.1 by default)."""
    import uvicorn

    if settings.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("binding %s: the service is reachable from other machines", settings.host)
    uvicorn.run(create_app(settings=settings), host=settings.host, port=settings.port, log_level="info",
                ws_max_size=settings.stream_max_message_bytes)
