"""Finding faces in photos and turning them into the 48 × 48 grey crops the face models take.

Three layers, each usable alone:

* :func:`load_image`: any image file, bytes or array -> RGB uint8 ``(height, width, 3)``, or a
  :class:`~emofuse.errors.DataError` that names the file and says what is wrong with it.
* :class:`FaceDetector`: every face in an RGB image, with its box in the image's own pixels, its
  aligned crop, and the detector that found it. An image without a face is a result
  (``status="no_face"``), not an exception.
* :func:`crop_face` / :func:`to_model_input`: pure functions from pixels to the models' input.

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

import io
import math
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emofuse._io import looks_like_text
from emofuse.errors import DataError, EmofuseError

FACE_SIDE = 48
"""Side of the square grey crops the face models take (FER2013's own size)."""

MAX_IMAGE_PIXELS = 40_000_000
"""Images with more pixels are refused before decoding (decompression bombs: a few-kB PNG can
claim 10⁹ pixels). 40 MP is above any phone photo; read at call time, so tests can lower it."""

BACKENDS = ("auto", "mediapipe", "haar")

# The background an image's transparent pixels are laid on: a face photo with its background cut
# out reads as a face on white (ID-photo style); dropping alpha instead would show whatever colour
# the encoder left under the transparent pixels, often black.
_BACKGROUND_RGB = (255, 255, 255)

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

# Only one thread at a time may swap PIL's global truncated-image switch.
_PIL_TRUNCATION_LOCK = threading.Lock()

# ISO-BMFF brands of HEIF/AVIF photos (iPhones save HEIC), which Pillow reads only with a plugin.
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis")


class DetectorUnavailableError(EmofuseError, RuntimeError):
    """The face detector asked for cannot be built (package missing, model files absent)."""


# --------------------------------------------------------------------------------------------
# Loading


def load_image(source: str | Path | bytes | np.ndarray) -> np.ndarray:
    """Any image -> RGB uint8 ``(height, width, 3)``.

    Files and bytes are decoded by Pillow with its EXIF orientation applied. Grey, bilevel,
    palette, CMYK, YCbCr and 16-bit images are converted (16-bit values scaled by 1/257, not
    clipped); transparent pixels (RGBA, LA, palette with transparency) are composited on white.
    Arrays may be grey ``(h, w)``, ``(h, w, 1)``, RGB or RGBA, as uint8, uint16, bool, or floats
    (in [0, 1], scaled by 255; otherwise taken as 0-255 values).

    Raises :class:`~emofuse.errors.DataError` naming the file (``'<bytes>'``, ``'<array>'``) for a
    missing or empty file, one that is not an image, a truncated or corrupt image, and one with more
    than :data:`MAX_IMAGE_PIXELS` pixels (checked from the header, before decoding).
    """
    if isinstance(source, np.ndarray):
        return _rgb_from_array(source, name="<array>")
    if isinstance(source, bytes | bytearray | memoryview):
        name = "<bytes>"
        data = bytes(source)
        if not data:
            raise DataError(name, "empty image data (0 bytes)")
        return _decode(io.BytesIO(data), name=name, head=data[:512])
    path = Path(source)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    if path.is_dir():
        raise DataError(path, "is a directory, not an image file")
    if size == 0:
        raise DataError(path, "empty file (0 bytes)")
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise DataError(path, f"cannot open ({exc.strerror or exc})") from None
    with handle:
        head = handle.read(512)
        handle.seek(0)
        return _decode(handle, name=str(path), head=head)


def _decode(stream: Any, *, name: str, head: bytes) -> np.ndarray:
    from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Our own pixel limit (below PIL's warning threshold) decides; see MAX_IMAGE_PIXELS.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(stream)
    except UnidentifiedImageError:
        if looks_like_text(head):
            raise DataError(name, "not an image: the file holds text") from None
        if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
            raise DataError(
                name, "HEIF/AVIF image (as iPhones save): Pillow reads it only with the pillow-heif "
                "plugin; convert it to JPEG or PNG"
            ) from None
        raise DataError(name, "not an image (format not recognised)") from None
    except Image.DecompressionBombError as exc:
        raise DataError(name, f"image too large ({exc})") from None
    except Exception as exc:  # a header broken enough to fail inside a format plugin
        raise DataError(name, f"not readable as an image ({type(exc).__name__}: {exc})") from None
    with image:
        width, height = image.size
        if width * height > MAX_IMAGE_PIXELS:
            raise DataError(
                name,
                f"image too large: {width}×{height} = {width * height:,} pixels, "
                f"the limit is {MAX_IMAGE_PIXELS:,}",
            )
        if width == 0 or height == 0:
            raise DataError(name, f"image has no pixels ({width}×{height})")
        try:
            if ImageFile.LOAD_TRUNCATED_IMAGES:
                # Some library turned on PIL's global LOAD_TRUNCATED_IMAGES, with which a JPEG cut
                # off mid-download decodes with its missing part grey: turn it off while we decode.
                with _PIL_TRUNCATION_LOCK:
                    ImageFile.LOAD_TRUNCATED_IMAGES = False
                    try:
                        image.load()
                    finally:
                        ImageFile.LOAD_TRUNCATED_IMAGES = True
            else:
                image.load()
        except Exception as exc:  # decoders raise OSError, SyntaxError, ValueError, EOFError...
            raise DataError(name, f"truncated or corrupt image ({type(exc).__name__}: {exc})") from None
        try:
            upright = ImageOps.exif_transpose(image)
        except Exception:  # a malformed EXIF block: the pixels are fine, keep them as stored
            upright = image
        return _rgb_from_pil(upright, name=name)


def _rgb_from_pil(image: Any, *, name: str) -> np.ndarray:
    """A loaded PIL image in any mode -> RGB uint8 ``(h, w, 3)``."""
    mode = image.mode
    if mode == "RGB":
        return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
    if mode.startswith("I;16") or mode in ("I", "F"):
        # PIL's convert("RGB") clips these at 255 instead of scaling them.
        return _rgb_from_array(np.asarray(image), name=name)
    if mode in ("RGBA", "RGBa", "LA", "La", "PA") or (mode == "P" and "transparency" in image.info):
        return _rgb_from_array(np.asarray(image.convert("RGBA")), name=name)
    try:
        return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
    except Exception as exc:
        raise DataError(name, f"cannot convert image mode {mode!r} to RGB ({exc})") from None


def _rgb_from_array(array: np.ndarray, *, name: str) -> np.ndarray:
    """Grey ``(h, w)`` / ``(h, w, 1)``, RGB or RGBA array of any usual dtype -> RGB uint8 ``(h, w, 3)``."""
    pixels = np.asarray(array)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] in (3, 4))):
        raise DataError(name, f"expected an image array (h, w), (h, w, 3) or (h, w, 4), got shape {pixels.shape}")
    if pixels.shape[0] == 0 or pixels.shape[1] == 0:
        raise DataError(name, f"image has no pixels (shape {pixels.shape})")
    pixels = _to_uint8(pixels, name=name)
    if pixels.ndim == 2:
        return np.ascontiguousarray(np.repeat(pixels[:, :, None], 3, axis=2))
    if pixels.shape[2] == 4:
        alpha = pixels[:, :, 3:].astype(np.float32) / 255  # (h, w, 1)
        background = np.asarray(_BACKGROUND_RGB, np.float32)
        blended = pixels[:, :, :3] * alpha + background * (1 - alpha)
        return np.ascontiguousarray(np.rint(blended).astype(np.uint8))
    return np.ascontiguousarray(pixels)


def _to_uint8(pixels: np.ndarray, *, name: str) -> np.ndarray:
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.dtype == np.bool_:
        return pixels.astype(np.uint8) * 255
    if pixels.dtype == np.uint16:
        return np.rint(pixels / 257).astype(np.uint8)
    if np.issubdtype(pixels.dtype, np.integer):
        low, high = int(pixels.min()), int(pixels.max())
        if low >= 0 and high <= 255:
            return pixels.astype(np.uint8)
        if low >= 0 and high <= 65535:  # PIL's "I" mode: 16-bit values in 32-bit integers
            return np.rint(pixels / 257).astype(np.uint8)
        raise DataError(name, f"integer pixel values {low}..{high} fit neither 8 nor 16 bits")
    if np.issubdtype(pixels.dtype, np.floating):
        if not np.isfinite(pixels).all():
            raise DataError(name, "image has non-finite pixel values (NaN or infinity)")
        lowest, highest = float(pixels.min()), float(pixels.max())
        if lowest >= 0 and highest <= 1:
            return np.rint(pixels * 255).astype(np.uint8)
        if lowest >= 0 and highest <= 255:
            return np.rint(pixels).astype(np.uint8)
        raise DataError(name, f"float pixel values {lowest:g}..{highest:g} are neither in [0, 1] nor in [0, 255]")
    raise DataError(name, f"unsupported pixel type {pixels.dtype}")


def _grey(pixels: np.ndarray) -> np.ndarray:
    """``(h, w)`` uint8 grey from grey, RGB or RGBA pixels (ITU-R 601 weights, as PIL's "L")."""
    import cv2

    if pixels.ndim == 2 and pixels.dtype == np.uint8:
        return pixels
    rgb = _rgb_from_array(pixels, name="<array>")
    return np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))


# --------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class FaceBox:
    """A face's box in pixels of the original image, clipped to it; ``score`` in [0, 1]."""

    x: int
    y: int
    width: int
    height: int
    score: float

    @property
    def area(self) -> int:
        return self.width * self.height


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

        rgb = _rgb_from_array(image, name="<array>")
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
            crop = _crop(rgb, cx=cand.x + cand.width / 2, cy=cand.y + cand.height / 2,
                         size=max(cand.width, cand.height) * (1 + 2 * self.margin),
                         angle_deg=_eye_angle_deg(cand.eyes), side=FACE_SIDE)
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


# --------------------------------------------------------------------------------------------
# Crops


def crop_face(
    image: np.ndarray,
    box: FaceBox,
    *,
    margin: float = 0.2,
    eyes: tuple[tuple[float, float], tuple[float, float]] | None = None,
    side: int = FACE_SIDE,
) -> np.ndarray:
    """A face's square grey crop: ``(side, side)`` uint8.

    The square is centred on ``box``, its side the box's longer side plus ``margin`` of it on
    every side. With ``eyes`` (two ``(x, y)`` points in image pixels, in either order) the image is
    first rotated about the box centre so that the eyes are level. Where the square leaves the
    image its edge pixels are repeated. Shrinking averages pixels (``INTER_AREA``).
    """
    if box.width <= 0 or box.height <= 0:
        raise ValueError(f"box must have a positive size, got {box.width}×{box.height}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    if side < 1:
        raise ValueError(f"side must be >= 1, got {side}")
    return _crop(image, cx=box.x + box.width / 2, cy=box.y + box.height / 2,
                 size=max(box.width, box.height) * (1 + 2 * margin),
                 angle_deg=_eye_angle_deg(eyes), side=side)


def _eye_angle_deg(eyes: tuple[tuple[float, float], tuple[float, float]] | None) -> float:
    """Angle of the line through the eyes, in degrees, in (-90, 90]; 0 without eyes."""
    if eyes is None:
        return 0.0
    (ax, ay), (bx, by) = eyes
    if bx < ax:  # measure from the eye further left in the image, whatever the order given
        ax, ay, bx, by = bx, by, ax, ay
    if ax == bx and ay == by:
        return 0.0
    return math.degrees(math.atan2(by - ay, bx - ax))


def _crop(image: np.ndarray, *, cx: float, cy: float, size: float, angle_deg: float, side: int) -> np.ndarray:
    """The ``size``-wide square centred on ``(cx, cy)`` (continuous coordinates: pixel i spans
    [i, i+1)), rotated by ``angle_deg``, as grey ``(side, side)`` uint8."""
    import cv2

    height, width = image.shape[:2]
    # Only the part of the image the rotated square can reach is converted to grey and warped: on a
    # 40 MP photo, converting all of it would cost more than everything else here.
    angle = math.radians(angle_deg)
    reach = size / 2 * (abs(math.cos(angle)) + abs(math.sin(angle))) + 2
    left, right = max(0, math.floor(cx - reach)), min(width, math.ceil(cx + reach))
    top, bottom = max(0, math.floor(cy - reach)), min(height, math.ceil(cy + reach))
    if right <= left or bottom <= top:
        raise ValueError(f"the face square around ({cx:.0f}, {cy:.0f}) lies outside the {width}×{height} image")
    region = np.ascontiguousarray(_grey(np.asarray(image)[top:bottom, left:right]))

    # Warp at full size when shrinking, then average down; a square far larger than the image
    # (a bad box) has no more detail than the image, so its warp is capped there.
    out_side = max(side, min(round(size), 2 * max(height, width)))
    zoom = out_side / size
    # cv2 puts pixel centres on integers: the square's centre is (cx - 0.5, cy - 0.5) in the region
    # and lands on the output's centre ((out_side - 1) / 2, ...). A positive angle turns the image
    # counter-clockwise on screen, which levels eyes whose line falls to the right by that angle.
    centre = (cx - 0.5 - left, cy - 0.5 - top)
    matrix = cv2.getRotationMatrix2D(centre, angle_deg, zoom)
    matrix[0, 2] += (out_side - 1) / 2 - centre[0]
    matrix[1, 2] += (out_side - 1) / 2 - centre[1]
    warped = cv2.warpAffine(region, matrix, (out_side, out_side), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)
    if out_side != side:
        warped = cv2.resize(warped, (side, side), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(warped, dtype=np.uint8)


def to_model_input(image: np.ndarray, *, side: int = FACE_SIDE) -> np.ndarray:
    """An already-cropped face (any size; grey, RGB or RGBA) -> ``(side, side)`` uint8 grey.

    For face datasets (FER2013-style) that need no detection. A non-square crop is cut to its
    centred square first, so faces are not squashed; shrinking averages pixels (``INTER_AREA``).
    """
    import cv2

    if side < 1:
        raise ValueError(f"side must be >= 1, got {side}")
    grey = _grey(np.asarray(image))
    if grey.shape == (side, side):
        return np.ascontiguousarray(grey)
    height, width = grey.shape
    square = min(height, width)
    top, left = (height - square) // 2, (width - square) // 2
    grey = grey[top : top + square, left : left + square]
    interpolation = cv2.INTER_AREA if square > side else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(grey, (side, side), interpolation=interpolation), dtype=np.uint8)
