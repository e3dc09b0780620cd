"""Batch prediction on Ray: clips per second with 1 and 2 model actors, and the in-process engine beside them.

    python benchmarks/scale_ray.py [--data ../shared/data/ravdess-speech-16k] [--clips 200] [--workers 1,2]

Copies ``--clips`` RAVDESS clips (or writes generated 3.5 s tone clips when there is no data) into a
temporary folder; voice only (``--no-words``), shipped models. Then times

* ``in_process``: :func:`emofuse.inference.batch.predict_files` after the models are loaded, with torch
  on 1 thread and on every core (the ``--engine local`` path);
* ``ray`` for each worker count, on a local cluster of that many CPUs: ``ray.init`` (cluster start),
  then :func:`emofuse.inference.ray_engine.predict_with_ray` over a few clips (``--small``) twice (the
  first run on a fresh cluster also pays Ray Data's one-time set-up) and over all of them, each into
  a fresh output folder. Every run starts its own actors, which load the models,
  so a run costs a fixed start-up plus a per-clip time: ``steady_clips_per_s`` is
  ``(clips - small) / (t_all - t_small)``, the throughput once the actors are up, and
  ``run_overhead_s`` what is left of ``t_small`` after its clips at that rate.

The machine's load average before and after is recorded: on a shared machine the numbers are only as
good as the cores that were free. Writes ``benchmarks/results/scale_ray.json``; :func:`measure_ray`
returns the same record for ``benchmarks/scale.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from emofuse._io import write_json
from emofuse.evaluation.results import git_commit

RESULTS = Path(__file__).parent / "results" / "scale_ray.json"
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ravdess-speech-16k"


def make_folder(root: Path, data: Path | None, clips: int) -> str:
    """``clips`` audio files in ``root``: the first RAVDESS clips (sorted paths), or generated tones."""
    from predict_speed import make_folder as copy_or_generate

    return copy_or_generate(root, data, clips)


def measure_ray(*, data: Path | None = DEFAULT_DATA, clips: int = 200, workers: Sequence[int] = (1, 2),
                small: int = 8, batch_size: int = 16) -> dict:
    """The record described in the module docstring."""
    import ray
    import torch

    from emofuse.inference import Predictor
    from emofuse.inference.batch import predict_files
    from emofuse.inference.ray_engine import PredictorOptions, predict_with_ray

    load_before = os.getloadavg()
    options = PredictorOptions(words=False)
    with tempfile.TemporaryDirectory(prefix="emofuse-scale-ray-") as tmp:
        folder = Path(tmp) / "clips"
        folder.mkdir()
        source = make_folder(folder, data, clips)
        files = sorted(folder.iterdir())

        predictor = Predictor.from_shipped(words=False)
        list(predict_files(predictor, files[:4], transcribe=False))  # warm-up
        cores = os.cpu_count() or 1
        in_process = {}
        for threads in sorted({1, cores}):
            torch.set_num_threads(threads)
            start = time.perf_counter()
            results = list(predict_files(predictor, files, transcribe=False, batch_size=batch_size))
            seconds = time.perf_counter() - start
            assert all(r.status == "ok" for r in results), [r.problem for r in results if r.status != "ok"]
            in_process[f"torch_threads_{threads}"] = {"seconds": round(seconds, 3),
                                                      "clips_per_s": round(clips / seconds, 2)}

        ray_runs = {}
        for n in workers:
            start = time.perf_counter()
            ray.init(num_cpus=n, include_dashboard=False, log_to_driver=False)
            init_s = time.perf_counter() - start
            try:
                timings = {}
                # The first run on a fresh cluster also starts Ray Data's own helpers (its stats actor,
                # worker processes importing torch for the first time): timed apart as "first".
                for name, subset in (("first", files[:small]), ("small", files[:small]), ("all", files)):
                    run = predict_with_ray(subset, Path(tmp) / f"out-{n}-{name}", num_workers=n,
                                           batch_size=batch_size, options=options, progress=False)
                    assert run.predicted == len(subset) and run.unreadable == 0, run
                    timings[name] = run.seconds
            finally:
                start = time.perf_counter()
                ray.shutdown()
                shutdown_s = time.perf_counter() - start
            steady = (clips - small) / (timings["all"] - timings["small"])
            ray_runs[f"workers_{n}"] = {
                "cluster_start_s": round(init_s, 2), "cluster_stop_s": round(shutdown_s, 2),
                f"first_run_{small}_clips_s": round(timings["first"], 2),
                f"run_{small}_clips_s": round(timings["small"], 2), f"run_{clips}_clips_s": round(timings["all"], 2),
                "clips_per_s": round(clips / timings["all"], 2),  # one run, actors' start-up included
                "steady_clips_per_s": round(steady, 2),
                "run_overhead_s": round(timings["small"] - small / steady, 2),
            }
    load_after = os.getloadavg()
    return {
        "benchmark": "scale_ray", "commit": git_commit(), "cpu": platform.machine(), "cores": os.cpu_count(),
        "ray_version": ray.__version__, "torch": torch.__version__, "clips": clips, "source": source,
        "modalities": "voice only (words off)", "voice_model": _shipped_voice_name(), "batch_size": batch_size,
        "actor_resources": "1 CPU, torch on 1 thread, per actor; local cluster of `workers` CPUs",
        "load_average_1min_before": round(load_before[0], 2), "load_average_1min_after": round(load_after[0], 2),
        "contended": max(load_before[0], load_after[0]) > 0.5 * (os.cpu_count() or 1),
        "in_process": in_process, "ray": ray_runs,
    }


def _shipped_voice_name() -> str:
    from emofuse.models.shipped import shipped_model_dir

    directory = shipped_model_dir("voice")
    if directory is None:
        return "none"
    return str(json.loads((directory / "model.json").read_text(encoding="utf-8"))["model"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--workers", default="1,2", help="comma-separated actor counts")
    parser.add_argument("--small", type=int, default=8, help="clips in the run that measures start-up")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--note", default="", help="free text recorded with the numbers")
    args = parser.parse_args(argv)

    record = measure_ray(data=args.data, clips=args.clips, workers=[int(w) for w in args.workers.split(",")],
                         small=args.small, batch_size=args.batch_size)
    record["command"] = " ".join(["python", *sys.argv])
    if args.note:
        record["notes"] = args.note
    write_json(args.results, record)
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
