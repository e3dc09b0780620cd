"""Crops: eyes levelled, square with a margin, padded past the edges, the models' input size."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from emofuse.features.face import FaceDetector
from emofuse.features.face_crop import FACE_SIDE, FaceBox, crop_face, to_model_input


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    skimage_data = pytest.importorskip("skimage.data")
    return np.asarray(skimage_data.astronaut())  # (512, 512, 3) uint8


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
