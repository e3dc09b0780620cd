"""Quiet native libraries: mediapipe's TensorFlow Lite and absl write INFO and WARNING lines straight
to file descriptor 2 when a model is built and first run, past Python's logging. emofuse keeps
stderr for its own diagnostics, so those lines are dropped unless ``$EMOFUSE_VERBOSE`` is set
(``emofuse --verbose``)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

VERBOSE_ENV = "EMOFUSE_VERBOSE"


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for the block (a no-op when verbose or when fd 2 is not usable).

    Python's own ``sys.stderr`` is flushed first, so nothing of ours written before is lost; an
    exception raised inside still propagates with its message.
    """
    if verbose():
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
