"""Inference off the event loop: a fixed pool of threads, a bounded queue, a timeout per call."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class Overloaded(Exception):
    """More calls are waiting than the queue holds."""


class InferenceRunner:
    """Runs blocking model calls in ``workers`` threads; at most ``max_pending`` calls wait or run.

    A call that outlives ``timeout_s`` raises :class:`TimeoutError` in the caller; its thread
    finishes the work and only then frees its slot, so the bound on running work stays true.
    """

    def __init__(self, *, workers: int, max_pending: int, timeout_s: float, torch_threads: int = 1) -> None:
        self.workers = workers
        self.max_pending = max_pending
        self.timeout_s = timeout_s
        self.torch_threads = torch_threads
        self._pending = 0
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    def start(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="emofuse-infer",
                                            initializer=self._init_thread)

    def _init_thread(self) -> None:
        try:
            import torch

            torch.set_num_threads(self.torch_threads)
        except ImportError:  # pragma: no cover - torch is there whenever a torch model is
            pass

    def stop(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    @property
    def pending(self) -> int:
        return self._pending

    async def run(self, fn: Callable[..., T], *args: Any, timeout_s: float | None = None, **kwargs: Any) -> T:
        if self._executor is None:
            self.start()
        with self._lock:
            if self._pending >= self.max_pending:
                raise Overloaded(f"{self._pending} requests are already waiting; try again shortly")
            self._pending += 1

        def call() -> T:
            try:
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    self._pending -= 1

        assert self._executor is not None
        future = asyncio.get_running_loop().run_in_executor(self._executor, call)
        return await asyncio.wait_for(asyncio.shield(future), timeout_s or self.timeout_s)


class StreamLanes:
    """The live stream's own inference threads, one lane per modality: the face never waits behind a
    voice window or a transcription, nor any of them behind uploads on the main workers. Each lane is a
    one-thread :class:`InferenceRunner` with ``torch_threads`` intra-op threads (speech-to-text sets its
    own, ``stream_words_threads``); a lane's calls queue behind one another, as a modality's must.
    """

    def __init__(self, *, max_pending: int, timeout_s: float, torch_threads: int = 1) -> None:
        self.face, self.voice, self.words = (
            InferenceRunner(workers=1, max_pending=max_pending, timeout_s=timeout_s, torch_threads=torch_threads)
            for _ in range(3))

    def __iter__(self) -> Iterator[InferenceRunner]:
        return iter((self.face, self.voice, self.words))

    def start(self) -> None:
        for lane in self:
            lane.start()

    def stop(self) -> None:
        for lane in self:
            lane.stop()
