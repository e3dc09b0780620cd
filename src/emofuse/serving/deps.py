"""Typed dependencies: everything a route needs comes from here, and tests override it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from emofuse.inference.predictor import Predictor
from emofuse.serving.runner import InferenceRunner, StreamLanes
from emofuse.serving.settings import ServeSettings


def get_predictor(conn: HTTPConnection) -> Predictor:
    predictor: Predictor = conn.app.state.predictor
    return predictor


def get_stream_predictor(conn: HTTPConnection) -> Predictor:
    """The predictor of live streams: the same models, a face detector of its own."""
    predictor: Predictor = getattr(conn.app.state, "stream_predictor", None) or conn.app.state.predictor
    return predictor


def get_settings(conn: HTTPConnection) -> ServeSettings:
    settings: ServeSettings = conn.app.state.settings
    return settings


def get_runner(conn: HTTPConnection) -> InferenceRunner:
    runner: InferenceRunner = conn.app.state.runner
    return runner


def get_stream_lanes(conn: HTTPConnection) -> StreamLanes:
    lanes: StreamLanes = conn.app.state.stream_lanes
    return lanes


PredictorDep = Annotated[Predictor, Depends(get_predictor)]
StreamPredictorDep = Annotated[Predictor, Depends(get_stream_predictor)]
SettingsDep = Annotated[ServeSettings, Depends(get_settings)]
RunnerDep = Annotated[InferenceRunner, Depends(get_runner)]
StreamLanesDep = Annotated[StreamLanes, Depends(get_stream_lanes)]
