"""emofuse serve: the web service and the live page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emofuse.cli.common import Runtime, RuntimeOption, guarded


def serve(
    host: Annotated[str, typer.Option(help="Address to bind; 0.0.0.0 exposes the service to the network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Inference threads (requests beyond them wait).")] = 2,
    max_upload_mb: Annotated[float, typer.Option(help="Largest upload accepted, in MB (413 beyond).")] = 50.0,
    timeout: Annotated[float, typer.Option(help="Seconds one request may take before a 504.")] = 60.0,
    cors_origin: Annotated[list[str] | None, typer.Option(help="Allow this browser origin (CORS is off by default).")] = None,
    voice_model: Annotated[Path | None, typer.Option(help="A saved voice model (or, with --runtime onnx, an exported .onnx) instead of the shipped one.")] = None,
    face_model: Annotated[Path | None, typer.Option(help="A saved face model (or, with --runtime onnx, an exported .onnx) instead of the shipped one.")] = None,
    words: Annotated[bool, typer.Option(help="Speech-to-text and the text model, when installed.")] = True,
    runtime: RuntimeOption = Runtime.torch,
) -> None:
    """The web service and the live page at http://HOST:PORT/ (API docs at /docs)."""
    from emofuse.serving.app import run_server
    from emofuse.serving.settings import ServeSettings

    settings = guarded(ServeSettings.from_dict, {
        "host": host, "port": port, "workers": workers, "max_upload_bytes": int(max_upload_mb * 1_000_000),
        "request_timeout_s": timeout, "cors_origins": list(cors_origin or []),
        "voice_model": str(voice_model) if voice_model else None,
        "face_model": str(face_model) if face_model else None, "words": words, "runtime": runtime.value})
    guarded(run_server, settings)
