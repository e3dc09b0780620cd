"""load_image: every image format, mode and size to RGB uint8, and clear errors for what is not an image."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile

from emofuse.errors import DataError
from emofuse.features import image as image_module
from emofuse.features.face import FaceDetector, FaceResult
from emofuse.features.image import load_image


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    skimage_data = pytest.importorskip("skimage.data")
    return np.asarray(skimage_data.astronaut())  # (512, 512, 3) uint8


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
    monkeypatch.setattr(image_module, "MAX_IMAGE_PIXELS", 1_000)

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


