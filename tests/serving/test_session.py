"""The words loop's step (serving.session._utterance_words), driven as a live session drives it:
audio arriving in chunks, each call resuming where the last one left the stream."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from emofuse.features.vad import SILERO_WINDOW, SileroStream, silero_model
from emofuse.serving.session import _utterance_words
from tests._predictors import voiced

SR = 16_000


class _Words:
    """The predictor's one method the step uses: the length of each utterance it was given."""

    def __init__(self) -> None:
        self.lengths: list[int] = []

    def transcribe(self, y: np.ndarray) -> tuple[Any, list[Any]]:
        self.lengths.append(len(y))
        return f"{len(y)} samples", []


def _drive(stream: np.ndarray, vad: SileroStream, *, chunk: int = 2048, every_s: float = 1.0
           ) -> tuple[list[tuple[int, int]], list[int]]:
    """Feed ``stream`` chunk by chunk; after each, one step, as the session does. The spans
    transcribed, and the stream positions the words were looked for from."""
    words, spans, starts = _Words(), [], []
    words_from = 0
    for received in range(chunk, len(stream) + chunk, chunk):
        received = min(received, len(stream))
        look_from = min(words_from, vad.next_window * SILERO_WINDOW) if vad.available else words_from
        found = _utterance_words(words, vad, look_from, stream[look_from:received], words_from, pause_s=0.4,
                                 max_s=6.0, flush=received == len(stream), every_s=every_s)
        if isinstance(found, int):
            words_from = max(words_from, found)
        else:
            (start, stop), _, _ = found
            spans.append((start, stop))
            words_from = stop
        starts.append(words_from)
    return spans, starts


@pytest.mark.skipif(silero_model() is None, reason="Silero VAD needs faster-whisper and onnxruntime")
def test_each_utterance_is_transcribed_once_when_its_pause_is_heard() -> None:
    silence = np.zeros(SR, np.float32)
    stream = np.concatenate([silence, voiced("03", 1.0), silence, voiced("05", 1.0), silence])
    spans, starts = _drive(stream, SileroStream())
    assert len(spans) == 2
    (a0, a1), (b0, b1) = spans
    assert 0.8 * SR < a0 < 1.05 * SR and 1.9 * SR < a1 < 2.3 * SR  # the first voiced second, padded
    assert 2.8 * SR < b0 < 3.05 * SR and 3.9 * SR < b1 < 4.3 * SR  # the second, after it
    assert starts == sorted(starts)  # the stream is only ever read forward
    assert starts[len(starts) // 8] > 0  # leading silence is skipped before any speech


def test_without_silero_the_audio_is_transcribed_every_few_seconds() -> None:
    vad = SileroStream()
    vad.model = None  # as where faster-whisper or onnxruntime is missing
    spans, _ = _drive(np.zeros(int(2.5 * SR), np.float32), vad, every_s=1.0)
    whole_chunks = -(-SR // 2048) * 2048  # the first chunk boundary at or past a second of audio
    assert [stop - start for start, stop in spans][:2] == [whole_chunks, whole_chunks]
    assert spans[-1][1] == int(2.5 * SR)  # the microphone stopping flushes the rest
