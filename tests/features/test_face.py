"""Face features: every image load_image accepts or refuses, both detectors on a real photo, crops.

The real face is scikit-image's ``astronaut()`` (Eileen Collins' NASA portrait, 512 × 512, shipped
inside the scikit-image wheel, so no download): her face is about x 175-275, y 65-170.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile

from emofuse.errors import DataError
from emofuse.features import face as face_module
from emofuse.features.face import (
    FACE_SIDE,
    DetectorUnavailableError,
    FaceBox,
    FaceDetector,
    FaceResult,
    crop_face,
    load_image,
    to_model_input,
)

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


# --------------------------------------------------------------------------------------------
# Loading


def _save(image: Image.Image, path: Path, **kwargs: Any) -> Path:
    image.save(path, **kwargs)
    return path


def test_load_rgb_file(tmp_path: Path, astronaut: np.ndarray) -> None:
    path = _save(Image.fromarray(astronaut), tmp_path / "a.png")

    loaded = load_image(path)

    assert np.array_equal(loaded, astronaut)
    assert np.array_equal(load_image(str(path)), astronaut)
    assert np.array_equal(load_image(path.read_bytes()), astronaut)


@pytest.mark.parametrize(
    ("name", "make", "corner_rgb"),
    [
        ("grey.png", lambda: Image.new("L", (30, 20), 77), (77, 77, 77)),
        ("bilevel.png", lambda: Image.new("1", (30, 20), 1), (255, 255, 255)),
        ("palette.png", lambda: Image.new("RGB", (30, 20), (200, 10, 10)).convert("P"), None),
        ("cmyk.jpg", lambda: Image.new("CMYK", (30, 20), (0, 255, 255, 0)), None),
        ("grey_alpha.png", lambda: Image.new("LA", (30, 20), (0, 0)), (255, 255, 255)),
        ("half_alpha.png", lambda: Image.new("RGBA", (30, 20), (0, 0, 0, 128)), (127, 127, 127)),
        ("grey16.png", lambda: Image.fromarray(np.full((20, 30), 32896, np.uint16)), (128, 128, 128)),
        ("tiff_float.tif", lambda: Image.fromarray(np.full((20, 30), 0.5, np.float32)), (128, 128, 128)),
    ],
)
def test_load_converts_every_mode_to_rgb(
    tmp_path: Path, name: str, make: Callable[[], Image.Image], corner_rgb: tuple[int, int, int] | None
) -> None:
    path = _save(make(), tmp_path / name)

    loaded = load_image(path)

    assert loaded.shape == (20, 30, 3)
    assert loaded.dtype == np.uint8
    if corner_rgb is not None:
        assert tuple(loaded[0, 0]) == pytest.approx(corner_rgb, abs=1)
    if name in ("palette.png", "cmyk.jpg"):
        red, green, blue = loaded[0, 0].astype(int)
        assert red > 180 and green < 60 and blue < 60  # red stays red


def test_load_rgba_composites_on_white(tmp_path: Path) -> None:
    pixels = np.zeros((10, 10, 4), np.uint8)
    pixels[:, :5] = (255, 0, 0, 255)  # opaque red left half, fully transparent black right half
    path = _save(Image.fromarray(pixels, "RGBA"), tmp_path / "rgba.png")

    loaded = load_image(path)

    assert tuple(loaded[0, 0]) == (255, 0, 0)
    assert tuple(loaded[0, 9]) == (255, 255, 255)


def test_load_palette_with_transparency(tmp_path: Path) -> None:
    image = Image.new("P", (10, 10), 0)
    image.putpalette([0, 0, 0, 0, 255, 0])
    image.paste(1, (0, 0, 5, 10))
    path = _save(image, tmp_path / "p.gif", transparency=0)

    loaded = load_image(path)

    assert tuple(loaded[0, 0]) == (0, 255, 0)
    assert tuple(loaded[0, 9]) == (255, 255, 255)


def test_load_16_bit_rgb_png(tmp_path: Path) -> None:
    pixels = np.zeros((8, 12, 3), np.uint16)
    pixels[..., 2] = 65535  # blue in RGB order; OpenCV writes BGR
    path = tmp_path / "rgb16.png"
    cv2.imwrite(str(path), pixels[..., ::-1])

    loaded = load_image(path)

    assert loaded.shape == (8, 12, 3) and loaded.dtype == np.uint8
    assert tuple(loaded[0, 0]) == (0, 0, 255)


def test_load_applies_exif_orientation(tmp_path: Path) -> None:
    image = Image.new("RGB", (40, 20), (10, 20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    path = _save(image, tmp_path / "rotated.jpg", exif=exif)

    assert load_image(path).shape == (40, 20, 3)


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.full((4, 5), 9, np.uint8), (9, 9, 9)),
        (np.full((4, 5, 1), 9, np.uint8), (9, 9, 9)),
        (np.full((4, 5), 65535, np.uint16), (255, 255, 255)),
        (np.ones((4, 5), bool), (255, 255, 255)),
        (np.full((4, 5, 3), 0.5, np.float32), (128, 128, 128)),
        (np.full((4, 5, 3), 200.0), (200, 200, 200)),
    ],
)
def test_load_arrays(array: np.ndarray, expected: tuple[int, int, int]) -> None:
    loaded = load_image(array)

    assert loaded.shape == (4, 5, 3) and loaded.dtype == np.uint8
    assert tuple(loaded[0, 0]) == expected


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((0, 5, 3), np.uint8), "no pixels"),
        (np.zeros((4, 5, 2), np.uint8), "shape"),
        (np.full((4, 5), np.nan), "non-finite"),
        (np.full((4, 5), 300.0), "neither"),
        (np.full((4, 5), -1, np.int32), "fit neither"),
    ],
)
def test_load_refuses_bad_arrays(array: np.ndarray, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_image(array)


def test_text_file_named_jpg_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n")

    with pytest.raises(DataError, match="not an image: the file holds text") as info:
        load_image(path)
    assert info.value.path == str(path)


def test_binary_junk_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "junk.png"
    path.write_bytes(bytes(range(256)) * 4)

    with pytest.raises(DataError, match="not an image") as info:
        load_image(path)
    assert info.value.path == str(path)


def test_heic_photo_gets_a_useful_message() -> None:
    heic_header = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200)

    with pytest.raises(DataError, match="pillow-heif"):
        load_image(heic_header)


def test_empty_and_missing_files_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")

    with pytest.raises(DataError, match="empty file") as info:
        load_image(empty)
    assert info.value.path == str(empty)
    with pytest.raises(DataError, match="file not found"):
        load_image(tmp_path / "absent.jpg")
    with pytest.raises(DataError, match="directory"):
        load_image(tmp_path)
    with pytest.raises(DataError, match="empty image data") as info:
        load_image(b"")
    assert info.value.path == "<bytes>"


@pytest.mark.parametrize("truncated_flag", [False, True])
def test_truncated_jpeg_is_refused(
    tmp_path: Path, astronaut: np.ndarray, monkeypatch: pytest.MonkeyPatch, truncated_flag: bool
) -> None:
    # Even when some other library has told PIL to pad truncated images with grey.
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", truncated_flag)
    whole = tmp_path / "whole.jpg"
    Image.fromarray(astronaut).save(whole, quality=90)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])

    with pytest.raises(DataError, match="truncated") as info:
        load_image(cut)
    assert info.value.path == str(cut)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is truncated_flag  # restored


def test_10000_square_image_is_refused_from_its_header(tmp_path: Path) -> None:
    # 10⁸ pixels is over MAX_IMAGE_PIXELS; a bilevel PNG keeps the file (and the test) small.
    path = _save(Image.new("1", (10_000, 10_000), 1), tmp_path / "huge.png")

    with pytest.raises(DataError, match="too large: 10000×10000") as info:
        load_image(path)
    assert info.value.path == str(path)


def test_pixel_limit_is_read_at_call_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _save(Image.new("RGB", (50, 40)), tmp_path / "small.png")
    monkeypatch.setattr(face_module, "MAX_IMAGE_PIXELS", 1_000)

    with pytest.raises(DataError, match="limit is 1,000"):
        load_image(path)
    with pytest.raises(DataError, match="too large"):
        load_image(path.read_bytes())


def test_big_allowed_image_is_downscaled_for_detection(tmp_path: Path) -> None:
    path = _save(Image.new("L", (6000, 4000), 140), tmp_path / "big.png")  # 24 MP, under the limit

    image = load_image(path)
    result = FaceDetector().detect(image)

    assert image.shape == (4000, 6000, 3)
    assert result == FaceResult(status="no_face", faces=[], image_size=(6000, 4000))


# --------------------------------------------------------------------------------------------
# Crops


def _dots(image: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    """Centroids ``(x, y)`` of the dark pixels in the left and the right half of a grey image."""
    ys, xs = np.nonzero(image < 100)
    middle = image.shape[1] / 2
    left, right = xs < middle, xs >= middle
    return (xs[left].mean(), ys[left].mean()), (xs[right].mean(), ys[right].mean())


def test_crop_face_levels_the_eyes() -> None:
    # Two "eyes" 60 px apart on a level line, then the picture turned 20° counter-clockwise.
    image = np.full((200, 200, 3), 255, np.uint8)
    eyes = np.array([[70.0, 100.0], [130.0, 100.0]])
    for x, y in eyes:
        cv2.circle(image, (int(x), int(y)), 4, (0, 0, 0), -1)
    turn = cv2.getRotationMatrix2D((99.5, 99.5), 20, 1.0)
    turned = cv2.warpAffine(image, turn, (200, 200), borderValue=(255, 255, 255))
    turned_eyes = eyes @ turn[:, :2].T + turn[:, 2]
    assert abs(turned_eyes[0, 1] - turned_eyes[1, 1]) > 15  # really tilted
    box = FaceBox(x=60, y=60, width=80, height=80, score=1.0)

    level = crop_face(turned, box, margin=0.1, eyes=(tuple(turned_eyes[1]), tuple(turned_eyes[0])), side=96)
    tilted = crop_face(turned, box, margin=0.1, side=96)

    assert level.shape == (96, 96) and level.dtype == np.uint8
    (lx, ly), (rx, ry) = _dots(level)
    assert abs(ly - ry) < 1.5
    assert lx + rx == pytest.approx(96 - 1, abs=1.5)  # centred on the box
    (_, tilted_ly), (_, tilted_ry) = _dots(tilted)
    assert abs(tilted_ly - tilted_ry) > 10  # without eyes, no rotation


def test_crop_face_square_with_margin() -> None:
    # A 40 × 40 black square on white, boxed exactly: margin 0.25 adds 10 px of white on every side.
    image = np.full((100, 100), 255, np.uint8)
    image[30:70, 30:70] = 0
    crop = crop_face(image, FaceBox(x=30, y=30, width=40, height=40, score=1.0), margin=0.25, side=60)

    assert crop.shape == (60, 60)
    assert (crop[12:48, 12:48] == 0).all()
    assert (crop[:8] == 255).all() and (crop[:, -8:] == 255).all()


def test_crop_face_pads_past_the_edge_with_edge_pixels() -> None:
    image = np.zeros((50, 50, 3), np.uint8)
    image[:, :, 0] = np.arange(50, dtype=np.uint8)[None, :] * 5  # red ramp left to right

    crop = crop_face(image, FaceBox(x=30, y=30, width=20, height=20, score=1.0), margin=0.5)

    assert crop.shape == (FACE_SIDE, FACE_SIDE)
    assert crop[:, -1].max() == crop[:, -6].max()  # past the right edge: the last column repeated


def test_crop_face_with_an_absurd_box_stays_small() -> None:
    image = np.full((50, 50), 128, np.uint8)

    crop = crop_face(image, FaceBox(x=0, y=0, width=1_000_000, height=1_000_000, score=1.0))

    assert crop.shape == (FACE_SIDE, FACE_SIDE)


def test_crop_face_refuses_bad_boxes() -> None:
    image = np.zeros((50, 50), np.uint8)
    with pytest.raises(ValueError, match="positive size"):
        crop_face(image, FaceBox(x=0, y=0, width=0, height=10, score=1.0))
    with pytest.raises(ValueError, match="outside"):
        crop_face(image, FaceBox(x=500, y=500, width=10, height=10, score=1.0))


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((48, 48), np.uint8),
        np.zeros((48, 48, 1), np.uint8),
        np.zeros((100, 80, 3), np.uint8),
        np.zeros((20, 20, 4), np.uint8),
        np.zeros((300, 200), np.float32),
    ],
    ids=["fer", "fer-channel", "rgb", "rgba-small", "float"],
)
def test_to_model_input_shapes(image: np.ndarray) -> None:
    out = to_model_input(image)

    assert out.shape == (FACE_SIDE, FACE_SIDE)
    assert out.dtype == np.uint8
    assert to_model_input(image, side=64).shape == (64, 64)


def test_to_model_input_keeps_fer_crops_and_centres_others() -> None:
    fer = np.random.default_rng(1).integers(0, 256, (48, 48), dtype=np.uint8)
    assert np.array_equal(to_model_input(fer), fer)

    tall = np.zeros((144, 96), np.uint8)
    tall[24:120] = 255  # a white square between black bands above and below
    assert (to_model_input(tall) == 255).all()  # the bands are cut, not squashed in


def test_crop_from_detection_matches_crop_face(astronaut: np.ndarray) -> None:
    face = FaceDetector(backend="haar").detect(astronaut).faces[0]

    again = crop_face(astronaut, face.box, margin=0.2)

    # Same square (the reported box is the detection's, unclipped here): the same crop.
    assert np.abs(again.astype(int) - face.crop.astype(int)).mean() < 2
