"""The JSON beside an exported ONNX graph (``FILE.onnx.json``): what the runtime rebuilds the
preprocessing from, and where the graph came from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SIDECAR_VERSION = 1


def sidecar_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".json")


def build_sidecar(meta: dict[str, Any], spec: Any, folder: Path, *, opset: int, max_abs_diff: float,
                  tolerance: float) -> dict[str, Any]:
    """The sidecar of an exported graph: the model's own ``model.json`` and the graph's inputs, axes,
    opset and check (``spec`` is the exporter's GraphSpec)."""
    import torch

    from emofuse import __version__
    from emofuse._io import file_digest

    inputs = []
    for inp in spec.inputs:
        shape: list[str | int] = [inp.axes.get(a, int(n)) for a, n in enumerate(inp.example.shape)]
        inputs.append({"name": inp.name, "dtype": inp.dtype, "shape": shape, "min": inp.min_size})
    return {
        "format_version": SIDECAR_VERSION,
        "model": meta["model"],
        "kind": spec.kind,
        "architecture": meta.get("architecture", {}),
        "labels": meta["labels"],
        "features": meta.get("features", {}),
        "inputs": inputs,
        "outputs": [{"name": "probabilities", "dtype": "float32", "shape": ["batch", len(meta["labels"])]}],
        "opset": opset,
        "exporter": f"torch.onnx.export(dynamo=True), torch {torch.__version__}",
        "emofuse_version": __version__,
        "source": {"folder": str(folder), "weights_sha256": file_digest(folder / "model.safetensors")},
        "check": {"max_abs_diff": max_abs_diff, "tolerance": tolerance},
        "checkpoint": meta,  # the model's own model.json: what the runtime rebuilds preprocessing from
    }
