"""The video timeline's windows: every second covered, the last window ending at the end."""

from __future__ import annotations

import numpy as np
import pytest

from emofuse.inference.results import ModalityResult
from emofuse.inference.timeline import _mean_over, _windows


def test_windows_hop_and_end_at_the_end():
    assert _windows(1.2, window_s=2.0, hop_s=1.0) == [(0.0, 1.2)]  # shorter than a window: one
    assert _windows(4.0, window_s=2.0, hop_s=1.0) == [(0.0, 2.0), (1.0, 3.0), (2.0, 4.0)]
    last = _windows(4.5, window_s=2.0, hop_s=1.0)
    assert last[-1] == (2.5, 4.5) and last[0] == (0.0, 2.0)  # a tail window so the end is covered


def test_a_window_averages_its_frames_with_a_face():
    face = ModalityResult(status="ok", labels=("happy", "sad"), probabilities=(0.8, 0.2))
    other = ModalityResult(status="ok", labels=("happy", "sad"), probabilities=(0.4, 0.6))
    none = ModalityResult(status="no_face", detail="no face")
    mean = _mean_over([face, none, other], np.array([True, True, True]), no_result="no_face")
    assert mean.status == "ok" and mean.probabilities == pytest.approx((0.6, 0.4))
    assert _mean_over([none], np.array([True]), no_result="no_face").status == "no_face"
    assert "no sampled frame" in _mean_over([face], np.array([False]), no_result="no_face").detail
