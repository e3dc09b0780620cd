"""GET /v1/models: labels, versions and model cards of what is loaded."""

from __future__ import annotations

from fastapi import APIRouter

from emofuse.inference.fusion import FUSED_LABELS
from emofuse.serving.deps import PredictorDep
from emofuse.serving.schemas import ModelOut, ModelsOut

router = APIRouter(prefix="/v1", tags=["models"])


@router.get("/models", response_model=ModelsOut)
async def list_models(predictor: PredictorDep) -> ModelsOut:
    infos = predictor.models()
    loaded = {m.modality for m in infos}
    return ModelsOut(
        models=[ModelOut(modality=m.modality, name=m.name, version=m.version, labels=list(m.labels), source=m.source,
                         card=m.card, card_markdown=m.card_markdown) for m in infos],
        unavailable=[name for name in ("voice", "face", "words") if name not in loaded],
        fused_labels=list(FUSED_LABELS),
        fusion="mean of the answering modalities' probabilities, aligned to the shared label set (calm -> neutral)",
    )
