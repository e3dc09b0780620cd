"""Reading what users hand us: which kind of media a file is, video frames and audio.

Audio and images are decoded by :mod:`emofuse.features.audio` and :mod:`emofuse.features.face`;
this module adds videos (PyAV: frames sampled at a fixed rate, the audio track) and the kind
detection the folder walker and the upload endpoint share.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emofuse.errors import DataError

AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".mp3", ".m4a", ".aac", ".opus", ".wma", ".aiff"})
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".gif"})
# Containers that may hold video, or only audio (a webm voice note): probed to tell.
VIDEO_EXTENSIONS = frozenset({".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v", ".mpg", ".mpeg"})
TEXT_EXTENSIONS = frozenset({".txt"})

# Frames are shrunk to this longer side before face detection: the detector searches at 640 anyway,
# and a 4K frame would cost 25 MB a copy.
MAX_FRAME_SIDE = 640


def media_kind(path: str | Path) -> str:
    """``audio``, ``image``, ``video``, ``text`` or ``unknown``, from the extension (containers probed)."""
    suffix = Path(path).suffix.lower()
    if suffix in AUDIO_EXTENSIONS:
        return "audio"
    if suffix in IMAGE_EXTENSIONS:
        return "image"
    if suffix in TEXT_EXTENSIONS:
        return "text"
    if suffix in VIDEO_EXTENSIONS:
        return "video" if _has_video_stream(Path(path)) else "audio"
    return "unknown"


def _has_video_stream(path: Path) -> bool:
    """True unless PyAV opens the file and finds no (non-cover-art) video stream; an unreadable file
    stays ``video`` so the video reader reports what is wrong with it."""
    try:
        import av

        with av.open(str(path)) as container:
            # A still picture attached to audio (album art) is not a video.
            moving = [s for s in container.streams.video if av.stream.Disposition.attached_pic not in s.disposition]
            return bool(moving) or not container.streams.audio
    except Exception:  # any failure to probe: the video reader will say what is wrong
        return True


@dataclass(frozen=True)
class VideoMedia:
    """A decoded video: sampled frames (time in seconds, RGB ``(h, w, 3)`` uint8) and its audio."""

    duration_s: float
    frames: list[tuple[float, np.ndarray]]
    audio: np.ndarray | None  # mono float32 at the requested rate; None without a usable audio track
    audio_status: str  # "ok", "no_speech" (no audio track) or "unreadable"
    audio_detail: str = ""


def read_video(path: str | Path, *, frame_rate_hz: float, sample_rate_hz: int,
               max_seconds: float | None = 600.0) -> VideoMedia:
    """Frames every ``1 / frame_rate_hz`` seconds and the audio track of a video file.

    Raises :class:`DataError` for a file that is not a video, has no video stream, lasts longer
    than ``max_seconds`` or yields no frame. A truncated video keeps the frames before the damage.
    A missing or broken audio track is not an error: ``audio_status`` says what happened.
    """
    from emofuse._io import check_file, file_head, looks_like_text
    from emofuse.features.audio import load_audio

    path = Path(path)
    check_file(path)
    if looks_like_text(file_head(path)):
        raise DataError(path, "not a video: the file holds text")
    import av

    try:
        container = av.open(str(path))
    except av.FFmpegError as exc:
        raise DataError(path, f"not readable as a video ({getattr(exc, 'strerror', None) or exc})") from None
    frames: list[tuple[float, np.ndarray]] = []
    with container:
        if not container.streams.video:
            raise DataError(path, "no video stream in the file")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        duration_s = 0.0
        if stream.duration and stream.time_base:
            duration_s = float(stream.duration * stream.time_base)
        elif container.duration:
            duration_s = container.duration / av.time_base
        if max_seconds is not None and duration_s > max_seconds:
            raise DataError(path, f"video is {duration_s:.0f} s long, over the {max_seconds:g} s limit")
        step = 1.0 / frame_rate_hz
        next_t = 0.0
        last_t = 0.0
        try:
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                t = float(frame.time)
                last_t = max(last_t, t)
                if max_seconds is not None and t > max_seconds:
                    raise DataError(path, f"video is longer than the {max_seconds:g} s limit")
                if t + 1e-6 < next_t:
                    continue
                while next_t <= t + 1e-6:  # a fixed grid of sample times, so frame times never drift
                    next_t += step
                width, height = frame.width, frame.height
                scale = min(1.0, MAX_FRAME_SIDE / max(width, height))
                if scale < 1.0:
                    frame = frame.reformat(width=max(2, round(width * scale)), height=max(2, round(height * scale)))
                frames.append((t, frame.to_ndarray(format="rgb24")))
        except av.FFmpegError as exc:
            if not frames:
                raise DataError(path, f"video does not decode ({getattr(exc, 'strerror', None) or exc})") from None
    if not frames:
        raise DataError(path, "the video stream holds no frames")
    duration_s = max(duration_s, last_t + step / 2 if duration_s == 0 else 0.0)

    audio: np.ndarray | None = None
    audio_status, audio_detail = "ok", ""
    try:
        audio = load_audio(path, sample_rate_hz=sample_rate_hz, max_seconds=max_seconds)
    except DataError as exc:
        if "no audio stream" in exc.problem:
            audio_status, audio_detail = "no_speech", "the video has no audio track"
        else:
            audio_status, audio_detail = "unreadable", exc.problem
    return VideoMedia(duration_s=duration_s, frames=frames, audio=audio, audio_status=audio_status,
                      audio_detail=audio_detail)


def write_video(path: str | Path, frames: list[np.ndarray], *, fps: int = 10, audio: np.ndarray | None = None,
                sample_rate_hz: int = 16_000, codec: str = "libx264", audio_codec: str = "aac") -> Path:
    """An MP4 (or any container PyAV knows from the suffix) of RGB ``frames`` ``(h, w, 3)`` uint8, with
    mono ``audio`` ``(samples,)`` in [-1, 1] as its sound track; written atomically."""
    from fractions import Fraction

    import av

    from emofuse._io import atomic_write

    path = Path(path)
    height, width = frames[0].shape[:2]
    with atomic_write(path, "wb") as handle, av.open(handle, "w", format=_container_format(path)) as container:
        video: Any = container.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound: Any = None
        if audio is not None:
            sound = container.add_stream(audio_codec, rate=sample_rate_hz)
            sound.layout = "mono"
        for image in frames:
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if sound is not None and audio is not None:
            pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
            for start in range(0, len(pcm), 1024):
                frame = av.AudioFrame.from_ndarray(pcm[None, start : start + 1024], format="s16", layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = sample_rate_hz, start, Fraction(1, sample_rate_hz)
                for packet in sound.encode(frame):
                    container.mux(packet)
            for packet in sound.encode():
                container.mux(packet)
    return path


def _container_format(path: Path) -> str:
    # Writing to an open file, PyAV cannot guess the container from the name.
    return {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm",
            ".avi": "avi"}.get(path.suffix.lower(), path.suffix.lower().lstrip("."))
