"""mediapipe's native TensorFlow Lite / absl log lines stay off stderr unless emofuse is verbose."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SCRIPT = """
import numpy as np
from emofuse.features.face import FaceDetector
detector = FaceDetector(backend="mediapipe")
detector.detect(np.zeros((240, 320, 3), np.uint8))
detector.detect(np.zeros((240, 320, 3), np.uint8))
print("done")
"""


def _run(verbose: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "EMOFUSE_VERBOSE"}
    if verbose:
        env["EMOFUSE_VERBOSE"] = "1"
    return subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=120)


def test_mediapipe_is_quiet_unless_verbose():
    pytest.importorskip("mediapipe")
    quiet = _run(verbose=False)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout.strip() == "done"
    assert "TensorFlow Lite" not in quiet.stderr and "absl" not in quiet.stderr, quiet.stderr
    loud = _run(verbose=True)
    assert "TensorFlow Lite" in loud.stderr  # the lines exist; only the default hides them
