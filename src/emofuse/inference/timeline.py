"""A video as a timeline: faces on sampled frames, voice on sliding windows, words per speech
segment, each window fused (what ``emofuse predict`` and ``POST /v1/predict/video`` return)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emofuse.features.audio import SAMPLE_RATE_HZ
from emofuse.inference.fusion import fuse_modalities
from emofuse.inference.results import ModalityResult, Prediction, Segment, VideoResult, status_only


def video_timeline(predictor: Any, path: str | Path, *, transcribe: bool = True) -> VideoResult:
    """``predictor``'s (an :class:`emofuse.inference.Predictor`, which calls this) answers over
    ``path``'s windows; raises DataError for a file that is not a readable video."""
    from emofuse.inference.media import read_video

    c = predictor.config
    media = read_video(path, frame_rate_hz=c.video_frame_rate_hz, sample_rate_hz=SAMPLE_RATE_HZ,
                       max_seconds=c.max_video_seconds)
    windows = _windows(media.duration_s, window_s=c.video_window_s, hop_s=c.video_hop_s)

    # Voice: one batch over every window's audio.
    if media.audio is None:
        voice = [status_only(media.audio_status, media.audio_detail) for _ in windows]
    else:
        y = media.audio
        cuts = [y[int(a * SAMPLE_RATE_HZ) : max(int(a * SAMPLE_RATE_HZ) + 1, int(b * SAMPLE_RATE_HZ))]
                for a, b in windows]
        voice = predictor.voice_results(cuts)

    # Faces: every sampled frame once, then each window averages the frames inside it.
    if predictor.face is None:
        face = [status_only("unavailable", "no face model loaded") for _ in windows]
    else:
        frame_results = predictor.face_results([image for _, image in media.frames])
        times = np.array([t for t, _ in media.frames])
        face = [_mean_over(frame_results, (times >= a) & (times < b), no_result="no_face") for a, b in windows]

    # Words: the transcript's segments, each window reading the segments that overlap it.
    segments: list[Segment] = []
    if not transcribe or predictor.transcriber is None:  # as for every other file, whether or not there is audio
        detail = "speech-to-text switched off" if not transcribe else "no speech-to-text model loaded"
        words = [status_only("unavailable", detail) for _ in windows]
    elif media.audio is None:
        words = [status_only(media.audio_status, media.audio_detail) for _ in windows]
    else:
        whole, segments = predictor.transcribe(media.audio)
        if whole.status not in ("ok", "no_speech") or not segments:
            words = [whole for _ in windows]
        else:
            texts = [" ".join(s.text for s in segments if s.start_s < b and s.end_s > a) for a, b in windows]
            words = predictor.words_results(texts)

    rows = []
    for (a, b), v, f, w in zip(windows, voice, face, words, strict=True):
        modalities = {"voice": v, "face": f, "words": w}
        rows.append(Prediction(modalities=modalities, fused=fuse_modalities(modalities), start_s=round(a, 3), end_s=round(b, 3)))
    return VideoResult(duration_s=round(media.duration_s, 3), windows=rows, segments=segments,
                       audio_status=media.audio_status, frames_sampled=len(media.frames))


def _windows(duration_s: float, *, window_s: float, hop_s: float) -> list[tuple[float, float]]:
    """``[(start, end)]`` covering ``[0, duration_s]``: windows every ``hop_s``; the last ends at the end."""
    if duration_s <= window_s:
        return [(0.0, max(duration_s, 1e-3))]
    out = []
    start = 0.0
    while start + window_s < duration_s + 1e-9:
        out.append((start, start + window_s))
        start += hop_s
    if out[-1][1] < duration_s - 1e-6:
        out.append((max(0.0, duration_s - window_s), duration_s))
    return out


def _mean_over(results: Sequence[ModalityResult], mask: np.ndarray, *, no_result: str) -> ModalityResult:
    """The mean of the ``ok`` results under ``mask`` (their last face box kept)."""
    chosen = [r for r, m in zip(results, mask, strict=True) if m and r.ok]
    if not chosen:
        detail = "no sampled frame in this window" if not mask.any() else "no face in this window's frames"
        return status_only(no_result, detail)
    mean = np.mean([r.probabilities for r in chosen], axis=0)
    return ModalityResult(status="ok", labels=chosen[0].labels, probabilities=tuple(float(x) for x in mean), box=chosen[-1].box,
                          detail=f"mean over {len(chosen)} frame(s) with a face")
