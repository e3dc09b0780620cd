"""From a face's box (and eyes) in a photo to the square grey crops the face models take: pure
functions of pixels, used by the detector and by callers that bring their own boxes."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from emofuse.features.image import grey as to_grey

FACE_SIDE = 48
"""Side of the square grey crops the face models take (FER2013's own size)."""


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
    return crop_square(image, cx=box.x + box.width / 2, cy=box.y + box.height / 2,
                 size=max(box.width, box.height) * (1 + 2 * margin),
                 angle_deg=eye_angle_deg(eyes), side=side)


def eye_angle_deg(eyes: tuple[tuple[float, float], tuple[float, float]] | None) -> float:
    """Angle of the line through the eyes, in degrees, in (-90, 90]; 0 without eyes."""
    if eyes is None:
        return 0.0
    (ax, ay), (bx, by) = eyes
    if bx < ax:  # measure from the eye further left in the image, whatever the order given
        ax, ay, bx, by = bx, by, ax, ay
    if ax == bx and ay == by:
        return 0.0
    return math.degrees(math.atan2(by - ay, bx - ax))


def crop_square(image: np.ndarray, *, cx: float, cy: float, size: float, angle_deg: float, side: int) -> np.ndarray:
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
    region = np.ascontiguousarray(to_grey(np.asarray(image)[top:bottom, left:right]))

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
    grey = to_grey(np.asarray(image))
    if grey.shape == (side, side):
        return np.ascontiguousarray(grey)
    height, width = grey.shape
    square = min(height, width)
    top, left = (height - square) // 2, (width - square) // 2
    grey = grey[top : top + square, left : left + square]
    interpolation = cv2.INTER_AREA if square > side else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(grey, (side, side), interpolation=interpolation), dtype=np.uint8)
