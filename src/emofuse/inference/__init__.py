"""Inference: the Predictor (models loaded once, any mix of audio, image, text and video), folder
batching, and the writers behind ``emofuse predict``. The service in :mod:`emofuse.serving` uses it."""

from emofuse.inference.fusion import FUSED_LABELS, fuse_modalities
from emofuse.inference.predictor import Predictor, PredictorConfig
from emofuse.inference.results import FileResult, ModalityResult, Prediction, VideoResult

__all__ = ["FUSED_LABELS", "FileResult", "ModalityResult", "Prediction", "Predictor", "PredictorConfig",
           "VideoResult", "fuse_modalities"]
