"""Face models fused, and test-time augmentation, measured apart: fitted on FER2013 PublicTest only,
scored on PrivateTest.

    python benchmarks/face_ensemble.py --data ../shared/data/fer2013 \\
        --model shipped --model fer --model face_resnet_v1=PATH/TO/MODEL_DIR

Each model is scored alone, one pass and with flip TTA (the face and its mirror image averaged);
then every registry fusion classifier (mean, weighted, max confidence, product, stacking) is fitted
on the members' PublicTest probabilities (temperatures, weights, stacker) and scored on PrivateTest,
over every group of two or more members. Members enter with flip TTA where ``--tta flip``;
``--tta ten_crop`` gives the trained models ten views (four corner crops and the centre one, each
mirrored: 10x the work) and the fer peer, which has no crop, its flip. Writes ``benchmarks/results/face_ensemble.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _faces import aligned_proba, fer_test_splits, load_face_models  # benchmarks/ is on sys.path as a script

from emofuse._io import write_json
from emofuse.evaluation.metrics import compute_metrics
from emofuse.evaluation.results import git_commit
from emofuse.fusion import FusionInput
from emofuse.labels import FER7
from emofuse.models import MODELS, create_model

RESULTS = Path(__file__).parent / "results" / "face_ensemble.json"


def _score(probs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    m = compute_metrics(targets, probs=probs, labels=FER7)
    return {"accuracy": m.wa, "ua": m.ua, "macro_f1": m.macro_f1}


def member_views(model: Any, faces: np.ndarray, tta: str) -> np.ndarray:
    """``model``'s probabilities of ``faces`` with ``tta``'s views averaged. The fer peer is a Keras
    port with no TTA switch: it gets its mirror image averaged here, for ``flip`` and ``ten_crop``."""
    if tta == "none":
        return aligned_proba(model, faces)
    if tta == "ten_crop" and hasattr(model, "tta"):  # the trained models: crops of their training size
        return aligned_proba(model, faces, tta="ten_crop")
    return (aligned_proba(model, faces) + aligned_proba(model, faces[:, :, ::-1].copy())) / 2


def _cached(folder: str | None, where: str, faces: np.ndarray, tta: str, compute: Callable[[], np.ndarray]
            ) -> np.ndarray:
    """``compute()``, kept in ``folder`` under the model's origin (its folder and weights' date), the
    faces and the views; computed afresh without a folder."""
    if folder is None:
        return compute()
    weights = Path(where) / "model.safetensors"
    stamp = weights.stat().st_mtime_ns if weights.is_file() else 0
    key = hashlib.sha256(f"{where}|{stamp}|{tta}".encode() + faces.tobytes()).hexdigest()[:20]
    path = Path(folder) / f"{key}.npy"
    if path.is_file():
        return np.load(path)
    probs = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npy")
    np.save(partial, probs)
    partial.replace(path)  # whole or absent: an interrupted run leaves nothing a rerun would read
    return probs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="FER2013: fer2013.csv or the image-folder form")
    parser.add_argument("--model", action="append", default=[], help="shipped, fer, or NAME=DIR (repeatable)")
    parser.add_argument("--tta", choices=("none", "flip", "ten_crop"), default="flip", help="members' views when fused")
    parser.add_argument("--results", default=str(RESULTS))
    parser.add_argument("--probs-cache", default=None,
                        help="folder keeping each model's probabilities per split and TTA: a rerun with one "
                             "more model computes only that one's")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    models = load_face_models(args.model or ["shipped", "fer"])
    splits = fer_test_splits(args.data)
    (public, y_public), (private, y_private) = splits["PublicTest"], splits["PrivateTest"]

    single: dict[str, dict[str, dict[str, float]]] = {}
    member_probs: dict[str, dict[str, np.ndarray]] = {"PublicTest": {}, "PrivateTest": {}}
    for name, (model, where) in models.items():
        def views(faces: np.ndarray, tta: str, m=model, w=where) -> np.ndarray:
            return _cached(args.probs_cache, w, faces, tta, lambda: member_views(m, faces, tta))

        single[name] = {}
        on_private: dict[str, np.ndarray] = {}
        # ten-crop only where the model has crops: the fer peer's would be its flip again
        for tta in dict.fromkeys(("none", "flip", args.tta if hasattr(model, "tta") else "flip")):
            on_private[tta] = views(private, tta)
            single[name][tta] = _score(on_private[tta], y_private)
            print(f"{name:28s} tta={tta:5s} PrivateTest accuracy {single[name][tta]['accuracy']:.4f}", flush=True)
        member_probs["PublicTest"][name] = views(public, args.tta)
        member_probs["PrivateTest"][name] = on_private.get(args.tta, on_private["flip"])

    fused: list[dict[str, object]] = []
    names = list(models)
    groups = [group for size in range(len(names), 1, -1) for group in itertools.combinations(names, size)]
    labels = {name: FER7 for name in names}
    y_public_names = [FER7[i] for i in y_public]
    for members in groups:
        fit_on = FusionInput({m: member_probs["PublicTest"][m] for m in members}, labels)
        test_on = FusionInput({m: member_probs["PrivateTest"][m] for m in members}, labels)
        for fusion in (n for n, s in MODELS.items() if s.modality == "fusion"):
            model = create_model(fusion).fit(fit_on, y_public_names, labels=FER7)
            row = {"members": list(members), "fusion": fusion, "member_tta": args.tta,
                   **_score(model.predict_proba(test_on), y_private)}
            fused.append(row)
            print(f"{fusion:22s} {'+'.join(members):60s} PrivateTest accuracy {row['accuracy']:.4f}", flush=True)

    write_json(args.results, {
        "benchmark": "face_ensemble", "fit_on": "FER2013 PublicTest (3,589)", "scored_on": "FER2013 PrivateTest",
        "n": len(y_private), "commit": git_commit(),
        "models": {name: where for name, (_, where) in models.items()},
        "single": single, "fused": fused, "seconds": round(time.perf_counter() - started, 1),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
