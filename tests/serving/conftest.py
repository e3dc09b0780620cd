"""Tiny models, generated media and a Predictor of them (see tests/_predictors.py)."""

from tests._predictors import media, tiny_model_dirs, tiny_predictor

__all__ = ["media", "tiny_model_dirs", "tiny_predictor"]
