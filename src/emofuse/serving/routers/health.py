"""GET /healthz: is the service up, and which modalities can answer."""

from __future__ import annotations

from fastapi import APIRouter

from emofuse.serving.deps import PredictorDep, RunnerDep
from emofuse.serving.schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut)
async def healthz(predictor: PredictorDep, runner: RunnerDep) -> HealthOut:
    return HealthOut(status="ok", pending=runner.pending,
                     modalities={"voice": predictor.voice is not None, "face": predictor.face is not None,
                                 "words": predictor.text_model is not None,
                                 "transcriber": predictor.transcriber is not None})
