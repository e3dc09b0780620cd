"""Opening media files and saying clearly what is wrong with the ones that cannot be used.

Two depths of checking: :func:`probe_audio` / :func:`probe_image` read headers only (cheap, done
when a dataset loads); :func:`decode_audio` / :func:`decode_image` decode every sample (done by
``emofuse data verify``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emofuse._io import check_file, file_head, looks_like_text
from emofuse.errors import DataError

if TYPE_CHECKING:
    import numpy as np

# libsndfile's own header dump says "(should be N)" when a RIFF/data chunk claims more bytes
# than the file holds: the signature of a WAV cut off mid-download.
_TRUNCATED = re.compile(r"(data|RIFF)\s*:\s*\d+\s*\(should be \d+\)")


@dataclass(frozen=True)
class AudioInfo:
    sample_rate_hz: int
    channels: int
    frames: int

    @property
    def duration_seconds(self) -> float:
        return self.frames / self.sample_rate_hz if self.sample_rate_hz else 0.0


def probe_audio(path: str | Path) -> AudioInfo:
    """Read an audio file's header; raise :class:`DataError` naming the file if it is unusable."""
    import soundfile as sf

    path = Path(path)
    check_file(path)
    try:
        with sf.SoundFile(path) as handle:
            info = AudioInfo(handle.samplerate, handle.channels, handle.frames)
            extra = handle.extra_info
    except sf.LibsndfileError as exc:
        av_info = _probe_with_av(path)
        if av_info is not None:
            return av_info
        if looks_like_text(file_head(path)):
            raise DataError(path, "not audio: the file holds text") from None
        raise DataError(path, f"not readable as audio ({exc.error_string.strip() or exc})") from None
    if _TRUNCATED.search(extra):
        raise DataError(path, "truncated audio: the header promises more samples than the file holds")
    if info.frames <= 0:
        raise DataError(path, "audio has no samples")
    return info


def _probe_with_av(path: Path) -> AudioInfo | None:
    """Header of formats libsndfile does not read (m4a, webm, a video's audio track), if PyAV is here."""
    try:
        import av
    except ImportError:
        return None
    try:
        with av.open(str(path)) as container:
            stream: Any = next((s for s in container.streams if s.type == "audio"), None)
            if stream is None:
                return None
            rate = int(stream.codec_context.sample_rate or 0)
            channels = int(stream.codec_context.channels or 0)
            seconds = float(stream.duration * stream.time_base) if stream.duration else 0.0
            if seconds == 0.0 and container.duration:
                seconds = container.duration / 1_000_000
            return AudioInfo(rate, channels, round(seconds * rate))
    except Exception:
        return None


def decode_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode every sample: ``(y, sr)`` with ``y`` float32 ``(frames, channels)``.

    Raises :class:`DataError` for a file that does not decode to the end.
    """
    import soundfile as sf

    path = Path(path)
    info = probe_audio(path)
    try:
        y, sr = sf.read(path, dtype="float32", always_2d=True)
    except sf.LibsndfileError:
        # Formats libsndfile cannot read (m4a, webm, video): the feature layer's PyAV decoder
        # checks them to the end the same way, at the file's own rate.
        from emofuse.features.audio import load_audio

        y = load_audio(path, sample_rate_hz=info.sample_rate_hz, max_seconds=None)
        return y[:, None], info.sample_rate_hz
    if y.shape[0] < info.frames:
        raise DataError(path, f"truncated audio: decoded {y.shape[0]} of {info.frames} samples")
    return y, int(sr)


def probe_image(path: str | Path) -> tuple[int, int]:
    """Read an image header: ``(width, height)``; raise :class:`DataError` if it is not an image."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    check_file(path)
    try:
        with Image.open(path) as image:
            return image.size
    except UnidentifiedImageError:
        if looks_like_text(file_head(path)):
            raise DataError(path, "not an image: the file holds text") from None
        raise DataError(path, "not readable as an image") from None
    except OSError as exc:
        raise DataError(path, f"not readable as an image ({exc})") from None


def decode_image(path: str | Path) -> np.ndarray:
    """Decode an image to grey ``(height, width)`` uint8; raise :class:`DataError` if it does not decode."""
    import numpy as np
    from PIL import Image

    probe_image(path)
    try:
        with Image.open(path) as image:
            image.load()
            return np.asarray(image.convert("L"), dtype=np.uint8)
    except OSError as exc:
        raise DataError(path, f"image does not decode ({exc})") from None
