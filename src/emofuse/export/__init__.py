"""Deployment formats: ONNX export of saved models, and an onnxruntime runtime for them.

>>> from emofuse.export import export_onnx, OnnxModel
>>> export_onnx("voice", "voice.onnx")                 # voice.onnx + voice.onnx.json
>>> OnnxModel.load("voice.onnx").predict_proba(["clip.wav"])

Importing this package is cheap; torch, onnx and onnxruntime load inside the functions that use them.
"""

from emofuse.export.onnx import ExportError, OnnxExport, export_onnx, resolve_model_dir
from emofuse.export.runtime import OnnxModel, cached_onnx_model

__all__ = ["ExportError", "OnnxExport", "OnnxModel", "cached_onnx_model", "export_onnx", "resolve_model_dir"]
