"""Scale and deploy, measured: Ray batch prediction with 1 vs 2 workers, onnxruntime vs torch per clip.

    python benchmarks/scale.py [--data ../shared/data/ravdess-speech-16k] [--clips 200] [--runs 30]

Runs :func:`scale_ray.measure_ray` and :func:`scale_onnx.measure_onnx` one after the other (never at
the same time: each would steal the other's cores) and writes both under one record,
``benchmarks/results/scale.json``, with a summary of the two questions the issue asks:

* ``ray_speedup_2_vs_1``: steady-state clips/s with 2 workers over 1 worker;
* ``onnx_not_slower``: per model, whether onnxruntime's per-clip latency (graph, batch 1, and the
  end-to-end ``predict_proba`` of one clip) is no higher than torch's.

The parts can also be run alone (``scale_ray.py``, ``scale_onnx.py``); their own result files are
kept for history.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))

RESULTS = Path(__file__).parent / "results" / "scale.json"


def summarise(ray: dict[str, Any] | None, onnx: dict[str, Any] | None) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    if ray is not None:
        one, two = (ray["ray"].get(f"workers_{n}", {}).get("steady_clips_per_s") for n in (1, 2))
        summary["ray_steady_clips_per_s"] = {"1": one, "2": two}
        summary["ray_speedup_2_vs_1"] = round(two / one, 3) if one and two else None
        summary["in_process"] = ray.get("in_process")
    if onnx is not None:
        verdict = {}
        for name, m in {**onnx.get("models", {}), **onnx.get("registry", {})}.items():
            t, o = m["torch"], m["onnxruntime"]
            per_clip = {kind: {"torch": t[kind]["p50_ms"], "onnx": o[kind]["p50_ms"]}
                        for kind in ("graph_batch1", "end_to_end_batch1")}
            batched = {"torch": t["graph_batched"]["clips_per_s"], "onnx": o["graph_batched"]["clips_per_s"]}
            verdict[name] = {**per_clip, "graph_batched_clips_per_s": batched,
                             "per_clip_not_slower": all(v["onnx"] <= v["torch"] for v in per_clip.values()),
                             "batched_not_slower": batched["onnx"] >= batched["torch"]}
        summary["onnx_vs_torch"] = verdict
        summary["onnx_not_slower_everywhere"] = (
            all(v["per_clip_not_slower"] and v["batched_not_slower"] for v in verdict.values()) if verdict else None)
    return summary


def main(argv: list[str] | None = None) -> int:
    from scale_onnx import REGISTRY_NETS, measure_onnx, measure_registry
    from scale_ray import DEFAULT_DATA, measure_ray

    from emofuse._io import write_json

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--models", nargs="+", default=["voice", "face", "text"])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--skip", choices=("ray", "onnx"), action="append", default=[])
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    onnx = None
    if "onnx" not in args.skip:
        onnx = measure_onnx(args.models, threads=1, runs=args.runs)
        onnx["registry"] = measure_registry(REGISTRY_NETS, threads=1, runs=args.runs)
    ray = None if "ray" in args.skip else measure_ray(data=args.data, clips=args.clips,
                                                     workers=[int(w) for w in args.workers.split(",")])
    record = {"benchmark": "scale", "command": " ".join(["python", *sys.argv]), "summary": summarise(ray, onnx),
              "ray": ray, "onnx": onnx, "load_average_after": list(os.getloadavg())}
    write_json(args.results, record)
    sys.stdout.write(json.dumps(record["summary"], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
