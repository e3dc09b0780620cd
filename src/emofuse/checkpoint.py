"""Checkpoints: tensors in safetensors, everything else in a JSON sidecar. Nothing is ever unpickled.

A model checkpoint is two files side by side::

    model.safetensors   the weights (and any array state: normalisation statistics, sklearn coefficients)
    model.json          {"model": registry name, "architecture": {...}, "labels": [...], "features": {...}, ...}

A training state (for ``--resume``) is the same pair, holding the optimiser's tensors too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from emofuse._io import atomic_write, write_json
from emofuse.errors import EmofuseError

FORMAT_VERSION = 1


class CheckpointError(EmofuseError):
    """A checkpoint that is missing, incomplete or not one of ours."""


def save_arrays(path: str | Path, arrays: dict[str, Any]) -> None:
    """Write named tensors / numpy arrays to ``path`` (safetensors), atomically."""
    from safetensors.numpy import save as save_np

    flat: dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        if hasattr(value, "detach"):  # a torch tensor
            value = value.detach().cpu().contiguous().numpy()
        # ascontiguousarray makes a 0-d array 1-d; keep the shape (a batch norm's step counter is 0-d).
        flat[name] = np.ascontiguousarray(value).reshape(np.shape(value))
    with atomic_write(path, "wb") as handle:
        handle.write(save_np(flat))


def load_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Read every array of a safetensors file as numpy."""
    from safetensors.numpy import load_file

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for a corrupt header
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None


def save_checkpoint(directory: str | Path, *, arrays: dict[str, Any], meta: dict[str, Any], stem: str = "model") -> None:
    """Write ``<stem>.safetensors`` and ``<stem>.json``; the JSON goes last so its presence means complete."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_arrays(directory / f"{stem}.safetensors", arrays)
    write_json(directory / f"{stem}.json", {"format_version": FORMAT_VERSION, **meta})


def load_checkpoint(directory: str | Path, *, stem: str = "model") -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a checkpoint pair written by :func:`save_checkpoint`."""
    directory = Path(directory)
    sidecar = directory / f"{stem}.json"
    if not sidecar.is_file():
        raise CheckpointError(f"{directory}: no {stem}.json (not a checkpoint, or it was interrupted while saving)")
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{sidecar}: not JSON ({exc})") from None
    return load_arrays(directory / f"{stem}.safetensors"), meta


def flatten_state(prefix: str, state: Any, arrays: dict[str, Any]) -> Any:
    """Split a nested state (optimizer / scheduler state_dict) into tensors and a JSON skeleton.

    Tensors go to ``arrays`` under dotted names; the returned skeleton holds ``{"__tensor__": name}``
    in their place, and plain values as they are.
    """
    if hasattr(state, "detach"):
        arrays[prefix] = state
        return {"__tensor__": prefix}
    if isinstance(state, np.ndarray):
        arrays[prefix] = state
        return {"__array__": prefix}
    if isinstance(state, dict):
        return {"__dict__": [[_key(k), flatten_state(f"{prefix}.{k}", v, arrays)] for k, v in state.items()]}
    if isinstance(state, list | tuple):
        return {"__list__": [flatten_state(f"{prefix}.{i}", v, arrays) for i, v in enumerate(state)],
                "tuple": isinstance(state, tuple)}
    if state is None or isinstance(state, bool | int | float | str):
        return state
    raise TypeError(f"cannot store {type(state).__name__} at {prefix} in a checkpoint")


def _key(k: Any) -> Any:
    if isinstance(k, bool | int | float | str):
        return k
    raise TypeError(f"cannot store a state key of type {type(k).__name__}")


def unflatten_state(skeleton: Any, arrays: dict[str, np.ndarray]) -> Any:
    """Inverse of :func:`flatten_state`: tensors come back as torch tensors, arrays as numpy."""
    if isinstance(skeleton, dict):
        if "__tensor__" in skeleton:
            import torch

            return torch.from_numpy(arrays[skeleton["__tensor__"]].copy())
        if "__array__" in skeleton:
            return arrays[skeleton["__array__"]].copy()
        if "__dict__" in skeleton:
            return {k: unflatten_state(v, arrays) for k, v in skeleton["__dict__"]}
        if "__list__" in skeleton:
            items = [unflatten_state(v, arrays) for v in skeleton["__list__"]]
            return tuple(items) if skeleton.get("tuple") else items
    return skeleton
