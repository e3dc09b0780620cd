"""The one way emofuse opens an ONNX graph in onnxruntime (the exporter's check and the runtime both)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def new_session(path: str | Path, *, threads: int | None = None) -> Any:
    """An onnxruntime CPU session with every graph optimisation on; ``threads`` intra-op threads
    (None or 0: onnxruntime's default, one per physical core)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    if threads:
        options.intra_op_num_threads = int(threads)
    options.log_severity_level = 3  # warnings about unused initialisers are noise here
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
