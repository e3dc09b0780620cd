"""Face detection: both detectors on a real photo, faces many and few, bad detector settings.

The real face is scikit-image's ``astronaut()`` (Eileen Collins' NASA portrait, 512 × 512, shipped
inside the scikit-image wheel, so no download): her face is about x 175-275, y 65-170.
"""

from __future__ import annotations

import sys
from typing import Any

import cv2
import numpy as np
import pytest

from emofuse.errors import DataError
from emofuse.features.face import DetectorUnavailableError, FaceDetector, FaceResult
from emofuse.features.face_crop import FACE_SIDE, FaceBox

# Where the astronaut's face is in the 512 × 512 photo (read off the image).
FACE_CENTRE_X = (170, 280)
FACE_CENTRE_Y = (70, 170)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    skimage_data = pytest.importorskip("skimage.data")
    return np.asarray(skimage_data.astronaut())  # (512, 512, 3) uint8


def _mediapipe_detector() -> FaceDetector:
    pytest.importorskip("mediapipe")
    detector = FaceDetector(backend="mediapipe")
    try:
        detector.detect(np.zeros((64, 64, 3), np.uint8))
    except DetectorUnavailableError as exc:
        pytest.skip(f"mediapipe is installed but unusable: {exc}")
    return detector


@pytest.fixture(scope="module", params=["mediapipe", "haar"])
def detector(request: pytest.FixtureRequest) -> FaceDetector:
    built = _mediapipe_detector() if request.param == "mediapipe" else FaceDetector(backend="haar")
    request.addfinalizer(built.close)
    return built


def assert_crop(crop: np.ndarray) -> None:
    assert crop.shape == (FACE_SIDE, FACE_SIDE)
    assert crop.dtype == np.uint8
    assert crop.std() > 10  # a face, not a flat patch


def two_astronauts(astronaut: np.ndarray) -> np.ndarray:
    """The photo at full size on the left and at 5/8 size on the right: (512, 832, 3)."""
    image = np.full((512, 832, 3), 200, np.uint8)
    image[:, :512] = astronaut
    image[192:, 512:] = cv2.resize(astronaut, (320, 320), interpolation=cv2.INTER_AREA)
    return image


def centre(box: FaceBox) -> tuple[float, float]:
    return box.x + box.width / 2, box.y + box.height / 2


# --------------------------------------------------------------------------------------------
# Detection


def test_astronaut_face_found_where_it_is(detector: FaceDetector, astronaut: np.ndarray) -> None:
    result = detector.detect(astronaut)

    assert result.status == "ok"
    assert result.image_size == (512, 512)
    assert len(result.faces) == 1
    face = result.faces[0]
    cx, cy = centre(face.box)
    assert FACE_CENTRE_X[0] < cx < FACE_CENTRE_X[1]
    assert FACE_CENTRE_Y[0] < cy < FACE_CENTRE_Y[1]
    assert 60 < face.box.width < 160 and 60 < face.box.height < 160
    assert 0.5 <= face.box.score <= 1.0
    assert face.detector == detector.backend
    assert face.aligned == (detector.backend == "mediapipe")  # Haar has no eye landmarks
    assert_crop(face.crop)


@pytest.mark.parametrize("kind", ["blank", "noise"])
def test_no_face_is_a_result_not_an_error(detector: FaceDetector, kind: str) -> None:
    if kind == "blank":
        image = np.full((480, 640, 3), 128, np.uint8)
    else:
        image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)

    result = detector.detect(image)

    assert result == FaceResult(status="no_face", faces=[], image_size=(640, 480))


def test_two_faces_sorted_by_area(detector: FaceDetector, astronaut: np.ndarray) -> None:
    result = detector.detect(two_astronauts(astronaut))

    assert result.status == "ok"
    assert len(result.faces) == 2
    large, small = result.faces
    assert large.box.area > small.box.area
    assert centre(large.box)[0] < 512 < centre(small.box)[0]
    for face in result.faces:
        assert_crop(face.crop)


def test_many_faces_are_all_reported(detector: FaceDetector, astronaut: np.ndarray) -> None:
    # A 3 × 3 grid of the photo at 1536 px: searched at 1280 px, faces ~80 px, mediapipe's tiles needed.
    grid = np.tile(astronaut, (3, 3, 1))

    result = detector.detect(grid)

    assert result.status == "ok"
    assert len(result.faces) == 9
    centres = sorted((round(centre(f.box)[1] / 512), round(centre(f.box)[0] / 512)) for f in result.faces)
    assert centres == [(row, col) for row in range(3) for col in range(3)]  # one in each tile


def test_max_faces_keeps_the_largest(astronaut: np.ndarray) -> None:
    result = FaceDetector(backend="haar", max_faces=1).detect(two_astronauts(astronaut))

    assert len(result.faces) == 1
    assert centre(result.faces[0].box)[0] < 512


def test_tiny_face_is_found_or_reported_absent(detector: FaceDetector, astronaut: np.ndarray) -> None:
    # The photo at 104 px: her face is ~20 px wide, on a 320 × 240 frame.
    tiny = cv2.resize(astronaut, (104, 104), interpolation=cv2.INTER_AREA)
    image = np.full((240, 320, 3), 90, np.uint8)
    image[60:164, 100:204] = tiny

    result = detector.detect(image)

    assert result.status in ("ok", "no_face")
    assert (result.status == "ok") == bool(result.faces)
    for face in result.faces:
        assert face.crop.shape == (FACE_SIDE, FACE_SIDE) and face.crop.dtype == np.uint8


def test_large_image_is_searched_small_and_boxes_map_back(detector: FaceDetector, astronaut: np.ndarray) -> None:
    big = cv2.resize(astronaut, (3000, 3000), interpolation=cv2.INTER_LINEAR)
    small_box = detector.detect(astronaut).faces[0].box

    result = FaceDetector(backend=detector.backend, max_detect_side=512).detect(big)

    assert result.image_size == (3000, 3000)
    assert len(result.faces) == 1
    box, zoom = result.faces[0].box, 3000 / 512
    assert centre(box)[0] == pytest.approx(centre(small_box)[0] * zoom, abs=0.05 * 3000)
    assert centre(box)[1] == pytest.approx(centre(small_box)[1] * zoom, abs=0.05 * 3000)
    assert box.width == pytest.approx(small_box.width * zoom, rel=0.2)


def test_grey_and_rgba_arrays_are_accepted(astronaut: np.ndarray) -> None:
    grey = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    rgba = np.dstack([astronaut, np.full((512, 512), 255, np.uint8)])
    detector = FaceDetector(backend="haar")

    assert detector.detect(grey).status == "ok"
    assert detector.detect(rgba).status == "ok"


def test_auto_falls_back_to_haar_without_mediapipe(
    monkeypatch: pytest.MonkeyPatch, astronaut: np.ndarray
) -> None:
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # `import mediapipe` now raises ImportError

    result = FaceDetector(backend="auto").detect(astronaut)

    assert [face.detector for face in result.faces] == ["haar"]


def test_mediapipe_backend_unavailable_fails_at_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mediapipe", None)
    detector = FaceDetector(backend="mediapipe")  # builds nothing yet

    with pytest.raises(DetectorUnavailableError, match=r"mediapipe==0\.10\.21"):
        detector.detect(np.zeros((64, 64, 3), np.uint8))


def test_auto_uses_mediapipe_when_it_works(astronaut: np.ndarray) -> None:
    _mediapipe_detector().close()
    with FaceDetector() as detector:
        assert [face.detector for face in detector.detect(astronaut).faces] == ["mediapipe"]
        detector.close()  # closing twice, then detecting again, rebuilds the graph
        assert detector.detect(astronaut).status == "ok"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backend": "dlib"}, "unknown face detector backend"),
        ({"min_score": 1.5}, "min_score"),
        ({"margin": -0.1}, "margin"),
        ({"max_faces": 0}, "max_faces"),
        ({"max_detect_side": 10}, "max_detect_side"),
    ],
)
def test_bad_detector_parameters_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FaceDetector(**kwargs)


def test_detect_refuses_non_images() -> None:
    with pytest.raises(DataError, match="shape"):
        FaceDetector(backend="haar").detect(np.zeros((4, 4, 4, 4), np.uint8))
