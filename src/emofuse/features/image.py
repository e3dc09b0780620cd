"""Any image file, bytes or array -> RGB uint8 ``(height, width, 3)``, or a
:class:`~emofuse.errors.DataError` that names the file and says what is wrong with it.

Pillow decodes (EXIF orientation applied, every mode to RGB, transparency laid on white, 16-bit
scaled); too many pixels are refused from the header, before decoding; truncated files, text named
``.jpg`` and HEIC photos get messages that say so. PIL and cv2 are imported by the functions that
need them.
"""

from __future__ import annotations

import io
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from emofuse._io import looks_like_text
from emofuse.errors import DataError

MAX_IMAGE_PIXELS = 40_000_000
"""Images with more pixels are refused before decoding (decompression bombs: a few-kB PNG can
claim 10⁹ pixels). 40 MP is above any phone photo; read at call time, so tests can lower it."""

# The background an image's transparent pixels are laid on: a face photo with its background cut
# out reads as a face on white (ID-photo style); dropping alpha instead would show whatever colour
# the encoder left under the transparent pixels, often black.
_BACKGROUND_RGB = (255, 255, 255)

# Only one thread at a time may swap PIL's global truncated-image switch.
_PIL_TRUNCATION_LOCK = threading.Lock()

# ISO-BMFF brands of HEIF/AVIF photos (iPhones save HEIC), which Pillow reads only with a plugin.
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis")


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
        return rgb_from_array(source, name="<array>")
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
        return rgb_from_array(np.asarray(image), name=name)
    if mode in ("RGBA", "RGBa", "LA", "La", "PA") or (mode == "P" and "transparency" in image.info):
        return rgb_from_array(np.asarray(image.convert("RGBA")), name=name)
    try:
        return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
    except Exception as exc:
        raise DataError(name, f"cannot convert image mode {mode!r} to RGB ({exc})") from None


def rgb_from_array(array: np.ndarray, *, name: str) -> np.ndarray:
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


def grey(pixels: np.ndarray) -> np.ndarray:
    """``(h, w)`` uint8 grey from grey, RGB or RGBA pixels (ITU-R 601 weights, as PIL's "L")."""
    import cv2

    if pixels.ndim == 2 and pixels.dtype == np.uint8:
        return pixels
    rgb = rgb_from_array(pixels, name="<array>")
    return np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
