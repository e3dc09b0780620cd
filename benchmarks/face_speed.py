"""Face speed on one CPU thread: detection + classification per 640×480 frame, and classification per crop.

    python benchmarks/face_speed.py [--runs runs/benchmarks/face/cpu]

The frame is a real photograph (scikit-image's bundled astronaut portrait, one face) placed in a
640×480 frame. Trained fold models are taken from ``--runs`` when present; otherwise each model is
fitted briefly on drawn faces (latency does not depend on the weights). Writes
``benchmarks/results/face_speed.json`` with p50/p99 per model and detector backend.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _timing import timed  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

from emofuse._io import write_json  # noqa: E402
from emofuse.data.synthetic import draw_face  # noqa: E402
from emofuse.evaluation.results import git_commit  # noqa: E402
from emofuse.features.face import FaceDetector  # noqa: E402
from emofuse.labels import FER7  # noqa: E402
from emofuse.models import MODELS, create_model, load_model  # noqa: E402
from emofuse.models.shipped import shipped_model_dir  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "face_speed.json"


def frame_640x480() -> np.ndarray:
    import cv2
    from skimage import data

    portrait = data.astronaut()  # (512, 512, 3) RGB, one face
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[:, 80:560] = cv2.resize(portrait, (480, 480), interpolation=cv2.INTER_AREA)
    return frame


def model_for(name: str, runs: Path | None):
    if runs is not None:
        candidate = runs / f"{name}-fer2013-official" / "folds" / "official" / "model"
        if (candidate / "model.json").is_file():
            return load_model(candidate), str(candidate)
    faces = np.stack([draw_face(label, seed=i) for i in range(3) for label in FER7])
    labels = [label for _ in range(3) for label in FER7]
    kwargs = {"train": {"epochs": 1, "batch_size": 16}} if name in ("face_cnn", "face_resnet", "face_effnet") else {}
    return create_model(name, **kwargs).fit(faces, labels, labels=FER7, X_val=faces, y_val=labels), "quick fit"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="runs/benchmarks/face/cpu")
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--results", default=str(RESULTS))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    import cv2

    cv2.setNumThreads(1)

    frame = frame_640x480()
    detection = {}
    detectors = {}
    for backend in ("mediapipe", "haar"):
        detector = FaceDetector(backend=backend)
        try:
            result = detector.detect(frame)
        except Exception as exc:  # mediapipe not installed: report it, time the rest
            detection[backend] = {"error": str(exc)}
            continue
        detectors[backend] = detector
        detection[backend] = {**timed(lambda d=detector: d.detect(frame), args.repeats), "faces": len(result.faces)}
        print(backend, detection[backend], flush=True)

    found = next(iter(detectors.values())).detect(frame).faces if detectors else []
    one = found[0].crop[None] if found else draw_face("happy")[None]  # (1, 48, 48)
    crop_ms, frame_ms = {}, {}
    runs = Path(args.runs) if args.runs else None
    candidates = [(name, *model_for(name, runs)) for name, spec in MODELS.items() if spec.modality == "face"]
    shipped = shipped_model_dir("face")
    if shipped is not None:  # the model predict and the live page run, in torch and in onnxruntime
        from emofuse.export.runtime import cached_onnx_model

        model = load_model(shipped)
        candidates[:0] = [(f"shipped ({model.name})", model, str(shipped)),
                          (f"shipped ({model.name}, onnxruntime)", cached_onnx_model(shipped, threads=1), str(shipped))]
    for name, model, origin in candidates:
        crop_ms[name] = {**timed(lambda m=model, c=one: m.predict_proba(c), args.repeats), "model_from": origin}
        if getattr(model, "tta", False):  # ten-crop TTA costs 10 forward passes: time the single view too
            crop_ms[f"{name} (no TTA)"] = timed(lambda m=model, c=one: m.predict_proba(c, tta=False), args.repeats)
        for backend, detector in detectors.items():
            def pipeline(m=model, d=detector) -> None:
                found = d.detect(frame)
                if found.faces:
                    m.predict_proba(np.stack([f.crop for f in found.faces]))
            frame_ms[f"{name}+{backend}"] = timed(pipeline, args.repeats)
        print(name, crop_ms[name], flush=True)

    write_json(args.results, {
        "benchmark": "face_speed", "threads": 1, "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__, "commit": git_commit(), "frame": "640x480, one face (skimage astronaut)",
        "detection_only": detection, "crop_classification": crop_ms, "frame_detection_plus_classification": frame_ms,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
