"""Finding faces in photos and turning them into the 48 × 48 grey crops the face models take.

Three layers, each usable alone:

* :func:`emofuse.features.image.load_image`: any image file, bytes or array -> RGB uint8
  ``(height, width, 3)``, or a :class:`~emofuse.errors.DataError` that names the file and says what is
  wrong with it.
* :class:`FaceDetector` (here): every face in an RGB image, with its box in the image's own pixels,
  its aligned crop, and the detector that found it. An image without a face is a result
  (``status="no_face"``), not an exception.
* :func:`emofuse.features.face_crop.crop_face` / :func:`~emofuse.features.face_crop.to_model_input`:
  pure functions from pixels to the models' input.

Two detectors, both with their models inside their pip packages, so nothing is downloaded:

* mediapipe 0.10.21's BlazeFace (``mp.solutions.face_detection``, the full-range model, which also
  finds faces a tenth of the image wide). It gives a calibrated score and the two eye centres,
  which :func:`crop_face` levels. Later mediapipe releases no longer ship these legacy solution
  models, and 0.10.21 declares ``numpy<2`` (it runs on numpy 2 in practice), so it is optional.
* OpenCV's frontal-face Haar cascade (``cv2.data.haarcascades``, in opencv-python-headless < 5).
  Always there; used when mediapipe is missing or finds no face. It has no eye landmarks, so its
  crops are not rotated (it only finds near-upright faces anyway).

Only numpy is imported at the top: PIL, cv2 and mediapipe are imported by the functions that need
them, so importing this module is instant.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emofuse.errors import EmofuseError
from emofuse.features.face_crop import FACE_SIDE, FaceBox, crop_square, eye_angle_deg
from emofuse.features.image import rgb_from_array

BACKENDS = ("auto", "mediapipe", "haar")

# mediapipe's full-range BlazeFace sees the image at 192 × 192 and misses faces under ~1/10 of the
# longer side; larger detection images are also searched in a 2 × 2 grid of overlapping tiles, each
# 3/5 of the image, so a face up to 1/5 of the image wide lies whole inside one tile.
_TILE_ABOVE_SIDE = 1024
_TILE_FRACTION = 0.6
# Two detections are the same face when their intersection covers this much of the smaller one
# (an IoU test would keep a half face cut at a tile's edge beside the whole face).
_SAME_FACE_OVERLAP = 0.5

# The Haar cascade gives no probability, only the level weight of its last stage. On equalised
# grey, real faces in our test photos score 3.4-8 and false hits (patches, helmet rims) 0-2, so the
# reported score is a logistic of the weight centred at 2.5: a rank that min_score can threshold,
# not a calibrated probability.
_HAAR_CASCADE = "haarcascade_frontalface_default.xml"
_HAAR_WEIGHT_MIDPOINT = 2.5
# Scale step 1.15: 1.1 finds the same faces in our tests in 1.6× the time (~230 vs ~145 ms a VGA frame).
_HAAR_SCALE_FACTOR = 1.15
_HAAR_MIN_NEIGHBOURS = 5
_HAAR_MIN_SIDE = 24  # the cascade's own window: it cannot see smaller faces


class DetectorUnavailableError(EmofuseError, RuntimeError):
    """The face detector asked for cannot be built (package missing, model files absent)."""


# --------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True, eq=False)  # eq=False: comparing the crops element-wise has no single truth value
class Face:
    """One face: its box, its ``(48, 48)`` uint8 grey crop, who found it, and whether the crop was
    rotated to level the eyes (mediapipe: yes; Haar: no landmarks, no rotation)."""

    box: FaceBox
    crop: np.ndarray
    detector: str
    aligned: bool


@dataclass(frozen=True)
class FaceResult:
    """Every face found (largest box first, at most ``max_faces``); ``status`` is ``"ok"`` or
    ``"no_face"``. ``image_size`` is ``(width, height)`` of the image searched."""

    status: str
    faces: list[Face] = field(default_factory=list)
    image_size: tuple[int, int] = (0, 0)


# --------------------------------------------------------------------------------------------
# Detection


@dataclass(frozen=True)
class _Candidate:
    """A detection in original-image pixels, before clipping: float box, eye centres if known."""

    x: float
    y: float
    width: float
    height: float
    score: float
    eyes: tuple[tuple[float, float], tuple[float, float]] | None
    detector: str


class FaceDetector:
    """Finds faces in RGB images.

    ``backend="auto"`` uses mediapipe when it imports and its model loads, and the Haar cascade
    otherwise, or when mediapipe finds no face; ``"mediapipe"`` and ``"haar"`` use only that one
    (``"mediapipe"`` raises :class:`DetectorUnavailableError` at the first :meth:`detect` if it
    cannot be built). ``min_score`` drops weaker detections; ``margin`` is the fraction of a face's
    longer side added on every side of its crop; images longer than ``max_detect_side`` are
    searched at that size and the boxes mapped back.

    The constructor only stores; the detectors are built at the first :meth:`detect`. One detector
    may be shared between threads (mediapipe calls are serialised). Call :meth:`close`, or use it
    as a context manager, to free mediapipe's graph.
    """

    def __init__(
        self,
        *,
        backend: str = "auto",
        min_score: float = 0.5,
        margin: float = 0.2,
        max_faces: int = 10,
        max_detect_side: int = 1280,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown face detector backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must lie in [0, 1], got {min_score}")
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        if max_faces < 1:
            raise ValueError(f"max_faces must be >= 1, got {max_faces}")
        if max_detect_side < 64:
            raise ValueError(f"max_detect_side must be >= 64, got {max_detect_side}")
        self.backend = backend
        self.min_score = min_score
        self.margin = margin
        self.max_faces = max_faces
        self.max_detect_side = max_detect_side
        self._mediapipe: Any = None
        self._mediapipe_problem: str | None = None  # why mediapipe cannot be used, once known
        self._haar: Any = None
        self._lock = threading.Lock()  # mediapipe's graph: one call at a time
        self._haar_lock = threading.Lock()  # OpenCV does not promise a shared cascade is thread-safe

    # -- public -------------------------------------------------------------------------------

    def detect(self, image: np.ndarray) -> FaceResult:
        """Every face in an RGB uint8 ``(height, width, 3)`` image (grey and RGBA arrays are converted)."""
        import cv2

        rgb = rgb_from_array(image, name="<array>")
        height, width = rgb.shape[:2]
        scale = min(1.0, self.max_detect_side / max(height, width))  # detection pixels per image pixel
        small = rgb
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA))
            scale_x, scale_y = size[0] / width, size[1] / height
        else:
            scale_x = scale_y = 1.0

        candidates: list[_Candidate] = []
        if self.backend in ("auto", "mediapipe") and self._mediapipe_ready():
            candidates = self._detect_mediapipe(small)
        if not candidates and self.backend in ("auto", "haar"):
            candidates = self._detect_haar(small)
        candidates = [_rescale(c, 1 / scale_x, 1 / scale_y) for c in candidates]

        faces = []
        for cand in sorted(candidates, key=lambda c: c.width * c.height, reverse=True)[: self.max_faces]:
            box = _clip_box(cand, width=width, height=height)
            if box is None:
                continue
            crop = crop_square(rgb, cx=cand.x + cand.width / 2, cy=cand.y + cand.height / 2,
                         size=max(cand.width, cand.height) * (1 + 2 * self.margin),
                         angle_deg=eye_angle_deg(cand.eyes), side=FACE_SIDE)
            faces.append(Face(box=box, crop=crop, detector=cand.detector, aligned=cand.eyes is not None))
        return FaceResult(status="ok" if faces else "no_face", faces=faces, image_size=(width, height))

    def close(self) -> None:
        """Free mediapipe's graph; a later :meth:`detect` builds it again."""
        with self._lock:
            if self._mediapipe is not None:
                self._mediapipe.close()
                self._mediapipe = None

    def __enter__(self) -> FaceDetector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"FaceDetector(backend={self.backend!r}, min_score={self.min_score}, margin={self.margin}, "
                f"max_faces={self.max_faces}, max_detect_side={self.max_detect_side})")

    # -- mediapipe ----------------------------------------------------------------------------

    def _mediapipe_ready(self) -> bool:
        """Build mediapipe's detector once; False (auto) or DetectorUnavailableError (mediapipe) if it can't be."""
        with self._lock:
            if self._mediapipe is None and self._mediapipe_problem is None:
                try:
                    from emofuse._native import native_stderr_silenced

                    with native_stderr_silenced():  # TensorFlow Lite / absl INFO lines on fd 2
                        import mediapipe as mp

                        # model_selection=1: the full-range model; the short-range one (0) misses faces
                        # under ~1/5 of the image and fires on noise.
                        self._mediapipe = mp.solutions.face_detection.FaceDetection(
                            model_selection=1, min_detection_confidence=self.min_score
                        )
                        # The first run logs once more (absl's feedback-manager warning): run it here.
                        self._mediapipe.process(np.zeros((64, 64, 3), np.uint8))
                except Exception as exc:  # ImportError, a numpy ABI clash, model files missing...
                    self._mediapipe_problem = f"{type(exc).__name__}: {exc}"
            if self._mediapipe is not None:
                return True
        if self.backend == "mediapipe":
            raise DetectorUnavailableError(
                f"the mediapipe face detector cannot be used ({self._mediapipe_problem}); it needs "
                "mediapipe==0.10.21, whose wheel ships the face model (later versions do not); "
                "backend='haar' or 'auto' work without it"
            )
        return False

    def _detect_mediapipe(self, small: np.ndarray) -> list[_Candidate]:
        height, width = small.shape[:2]
        found = self._mediapipe_pass(small, x0=0, y0=0, tile=False)
        if max(height, width) > _TILE_ABOVE_SIDE:
            for x0, y0, tile in _tiles(small):
                found += self._mediapipe_pass(tile, x0=x0, y0=y0, tile=True)
        # Whole-image detections first, then tiles by score: a face cut at a tile's edge yields to the
        # whole face found by the full pass or by the tile that holds it whole.
        return _merge([c for c, _ in sorted(found, key=lambda pair: (pair[1], -pair[0].score))])

    def _mediapipe_pass(self, pixels: np.ndarray, *, x0: int, y0: int, tile: bool) -> list[tuple[_Candidate, bool]]:
        height, width = pixels.shape[:2]
        with self._lock:
            if self._mediapipe is None:  # closed by another thread meanwhile
                return []
            result = self._mediapipe.process(np.ascontiguousarray(pixels))
        found = []
        for detection in result.detections or ():
            score = float(detection.score[0]) if detection.score else 0.0
            if score < self.min_score:
                continue
            location = detection.location_data
            box = location.relative_bounding_box
            points = location.relative_keypoints  # 0: the person's right eye, 1: the left eye
            eyes = None
            if len(points) >= 2:
                eyes = ((x0 + points[0].x * width, y0 + points[0].y * height),
                        (x0 + points[1].x * width, y0 + points[1].y * height))
            cand = _Candidate(x=x0 + box.xmin * width, y=y0 + box.ymin * height,
                              width=box.width * width, height=box.height * height,
                              score=score, eyes=eyes, detector="mediapipe")
            if cand.width > 0 and cand.height > 0:
                found.append((cand, tile))
        return found

    # -- Haar ---------------------------------------------------------------------------------

    def _detect_haar(self, small: np.ndarray) -> list[_Candidate]:
        import cv2

        grey = np.asarray(cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)))
        if min(grey.shape) < _HAAR_MIN_SIDE:
            return []
        with self._haar_lock:
            boxes, _levels, weights = self._haar_cascade().detectMultiScale3(
                grey, scaleFactor=_HAAR_SCALE_FACTOR, minNeighbors=_HAAR_MIN_NEIGHBOURS,
                minSize=(_HAAR_MIN_SIDE, _HAAR_MIN_SIDE), outputRejectLevels=True,
            )
        found = []
        for (x, y, w, h), weight in zip(np.asarray(boxes).reshape(-1, 4), np.asarray(weights).reshape(-1), strict=True):
            score = 1 / (1 + math.exp(-(float(weight) - _HAAR_WEIGHT_MIDPOINT)))
            if score >= self.min_score:
                found.append(_Candidate(x=float(x), y=float(y), width=float(w), height=float(h),
                                        score=score, eyes=None, detector="haar"))
        return found

    def _haar_cascade(self) -> Any:
        if self._haar is None:
            import cv2

            folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
            if folder is None:
                raise DetectorUnavailableError(
                    "OpenCV's Haar cascades are missing (cv2.data.haarcascades): they ship with "
                    "opencv-python-headless < 5"
                )
            path = Path(folder) / _HAAR_CASCADE
            cascade = cv2.CascadeClassifier(str(path))
            if cascade.empty():
                raise DetectorUnavailableError(f"OpenCV could not load the Haar cascade {path}")
            self._haar = cascade
        return self._haar


def _tiles(pixels: np.ndarray) -> Iterator[tuple[int, int, np.ndarray]]:
    """The 2 × 2 overlapping tiles of an image: ``(x0, y0, tile)``."""
    height, width = pixels.shape[:2]
    tile_h, tile_w = round(height * _TILE_FRACTION), round(width * _TILE_FRACTION)
    for y0 in (0, height - tile_h):
        for x0 in (0, width - tile_w):
            yield x0, y0, pixels[y0 : y0 + tile_h, x0 : x0 + tile_w]


def _merge(candidates: list[_Candidate]) -> list[_Candidate]:
    """Keep each candidate unless one kept before it covers most of it (greedy suppression)."""
    kept: list[_Candidate] = []
    for cand in candidates:
        if all(_overlap_of_smaller(cand, other) <= _SAME_FACE_OVERLAP for other in kept):
            kept.append(cand)
    return kept


def _overlap_of_smaller(a: _Candidate, b: _Candidate) -> float:
    inter_w = min(a.x + a.width, b.x + b.width) - max(a.x, b.x)
    inter_h = min(a.y + a.height, b.y + b.height) - max(a.y, b.y)
    if inter_w <= 0 or inter_h <= 0:
        return 0.0
    return inter_w * inter_h / min(a.width * a.height, b.width * b.height)


def _rescale(cand: _Candidate, sx: float, sy: float) -> _Candidate:
    eyes = None
    if cand.eyes is not None:
        (ax, ay), (bx, by) = cand.eyes
        eyes = ((ax * sx, ay * sy), (bx * sx, by * sy))
    return _Candidate(x=cand.x * sx, y=cand.y * sy, width=cand.width * sx, height=cand.height * sy,
                      score=cand.score, eyes=eyes, detector=cand.detector)


def _clip_box(cand: _Candidate, *, width: int, height: int) -> FaceBox | None:
    left, top = max(0, math.floor(cand.x)), max(0, math.floor(cand.y))
    right = min(width, math.ceil(cand.x + cand.width))
    bottom = min(height, math.ceil(cand.y + cand.height))
    if right <= left or bottom <= top:
        return None
    return FaceBox(x=left, y=top, width=right - left, height=bottom - top, score=round(cand.score, 4))


