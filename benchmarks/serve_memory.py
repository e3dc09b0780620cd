"""Where the service's memory goes: the resident size of one process as it builds and warms what
``emofuse serve`` holds, step by step.

    python benchmarks/serve_memory.py

The steps are those of the server's start-up (serving.app): the shipped models loaded; one
prediction per modality on the upload path (voice, face, then the words of a clip: speech-to-text
and the text model); the live streams' predictor (``Predictor.for_stream``: its own face detector
and its own one-thread, greedy transcriber) warmed the same way. Each step's RSS is read from
``/proc/self/statm``; the difference to the step before is what it added. Writes
``benchmarks/results/serve_memory.json``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "serve_memory.json"


def rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default=str(RESULTS))
    args = parser.parse_args(argv)
    steps: list[dict[str, object]] = []

    def step(name: str) -> None:
        now = rss_mb()
        added = round(now - float(steps[-1]["rss_mb"]), 1) if steps else now  # type: ignore[arg-type]
        steps.append({"step": name, "rss_mb": now, "added_mb": added})
        print(f"{name:58s} {now:8.1f} MB  (+{added:.1f})", flush=True)

    step("python started")
    from skimage import data

    from emofuse._io import write_json
    from emofuse.data.synthetic import tone_clip
    from emofuse.evaluation.results import git_commit
    from emofuse.serving.app import _load_predictor
    from emofuse.serving.settings import ServeSettings

    settings = ServeSettings()
    step("emofuse.serving imported")
    files = _load_predictor(settings)
    step("shipped models loaded")
    clip, photo = tone_clip("03", actor=1, seconds=2.0), np.asarray(data.astronaut())  # a real face
    files.voice.predict_proba([clip])
    step("uploads: voice predicted")
    files.predict(image=photo)
    step("uploads: face detected and predicted")
    files.transcribe(clip)
    step("uploads: words (speech-to-text, text model)")
    stream = files.for_stream(words_threads=settings.stream_words_threads, beam_size=settings.stream_words_beam_size)
    stream.predict(image=photo)
    step("streams: own face detector")
    stream.transcribe(clip)
    step("streams: own transcriber (1 thread, greedy)")
    write_json(args.results, {"benchmark": "serve_memory", "platform": platform.platform(), "commit": git_commit(),
                              "steps": steps, "clip": "2 s generated tone speech", "image": "skimage astronaut"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
