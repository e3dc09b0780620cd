"""Latency measurement shared by the speed benchmarks: warm up, then time repeated calls."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    a = np.asarray(samples_ms)
    return {"p50_ms": round(float(np.percentile(a, 50)), 3), "p99_ms": round(float(np.percentile(a, 99)), 3),
            "mean_ms": round(float(a.mean()), 3), "n": len(a)}


def timed(fn: Callable[[], object], repeats: int, warmup: int = 5) -> dict[str, float]:
    """p50 / p99 / mean milliseconds of ``fn()`` over ``repeats`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return percentiles(out)
