"""onnxruntime vs torch on the CPU for the shipped models: latency per clip and batched throughput.

    python benchmarks/scale_onnx.py [--models voice face text] [--threads 1] [--runs 30]

Each shipped model is exported (``emofuse.export.export_onnx``) into a temporary folder. Two things
are timed for each runtime, after warm-up:

* ``graph``: the model's tensor part alone, on inputs preprocessed once: torch runs the very module
  the export traced (under ``inference_mode``), onnxruntime the exported file. Batch 1 gives latency
  per clip (median of ``runs`` calls); batch ``--batch`` gives clips per second.
* ``end_to_end``: ``predict_proba([clip])`` as the Predictor calls it, preprocessing included
  (Python feature code is the same for both runtimes).

Voice input is a real RAVDESS clip when ../shared/data is present (else a 3.5 s synthetic tone
clip), face a real FER2013 test crop (else a drawn face). ``measure_onnx`` returns the dict;
``__main__`` prints it and writes ``benchmarks/results/scale_onnx.json``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _timing import timed  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "scale_onnx.json"
DATA = Path(os.environ.get("EMOFUSE_DATA_DIR", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def _inputs(name: str) -> tuple[list[Any], str]:
    if name == "voice":
        clips = sorted((DATA / "ravdess-speech-16k" / "Actor_01").glob("*.flac"))
        if clips:
            from emofuse.features.audio import load_audio

            return [load_audio(clips[10])], f"RAVDESS {clips[10].name}"
        from emofuse.data.synthetic import tone_clip

        return [tone_clip("05", actor=1, seconds=3.5, seed=0)], "3.5 s synthetic tone clip"
    if name == "face":
        faces = sorted((DATA / "fer2013" / "test" / "happy").glob("*.jpg"))
        if faces:
            return [faces[0]], f"FER2013 {faces[0].name}"
        from emofuse.data.synthetic import draw_face

        return [draw_face("happy", seed=0)], "drawn 48x48 face"
    return ["I can't believe you did that to me, get out of here."], "one 12-word sentence"


def measure_onnx(models: Sequence[str] = ("voice", "face"), *, threads: int = 1, runs: int = 30, warmup: int = 5,
                 batch: int = 16) -> dict[str, Any]:
    """Latency (batch 1, p50 of ``runs``) and throughput (batch ``batch``) of torch and onnxruntime."""
    import onnxruntime
    import torch

    from emofuse.evaluation.results import git_commit
    from emofuse.models.shipped import shipped_model_dir

    torch.set_num_threads(threads)
    out: dict[str, Any] = {
        "benchmark": "scale_onnx", "threads": threads, "runs": runs, "batch": batch,
        "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
        "torch": torch.__version__, "onnxruntime": onnxruntime.__version__, "commit": git_commit(), "models": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name in models:
            folder = shipped_model_dir(name)
            if folder is None:
                continue
            out["models"][name] = _measure_model(name, folder, Path(tmp), threads=threads, runs=runs,
                                                 warmup=warmup, batch=batch)
    return out


# The other torch networks of the registry, at their default sizes (random weights: speed does not
# depend on what the weights learnt). The Whisper and text-encoder models are the shipped ones above.
REGISTRY_NETS = ("voice_lstm", "voice_gru", "voice_cnn1d", "voice_cnn2d", "voice_crnn", "face_cnn", "face_resnet")


def _untrained(name: str) -> Any:
    import torch

    from emofuse.labels import FER7, RAVDESS8
    from emofuse.models import create_model

    torch.manual_seed(0)
    model = create_model(name)
    if name.startswith("voice"):
        n = model.features.n_features
        model.net_ = model._new_net(len(RAVDESS8)).eval()
        model.net_.set_normalisation(torch.randn(n), torch.rand(n) + 0.5)
        model.labels_ = RAVDESS8
    else:
        model.net_ = model._new_net(len(FER7)).eval()
        model.net_.set_normalisation(0.5, 0.2)
        model.labels_ = FER7
    return model


def measure_registry(names: Sequence[str] = REGISTRY_NETS, *, threads: int = 1, runs: int = 30, warmup: int = 5,
                     batch: int = 16) -> dict[str, Any]:
    """The same timings for every other torch network of the registry, untrained, at default sizes."""
    import torch

    torch.set_num_threads(threads)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            folder = Path(tmp) / name
            _untrained(name).save(folder)
            out[name] = _measure_model("voice" if name.startswith("voice") else "face", folder, Path(tmp),
                                       threads=threads, runs=runs, warmup=warmup, batch=batch, stem=name)
    return out


def _measure_model(name: str, folder: Path, tmp: Path, *, threads: int, runs: int, warmup: int,
                   batch: int, stem: str | None = None) -> dict[str, Any]:
    """One model: export it, then time the graph in both runtimes and predict_proba end to end.
    ``name`` (voice, face, text) picks the input."""
    import torch

    from emofuse.export import OnnxModel, export_onnx
    from emofuse.export.onnx import build_graph
    from emofuse.models import load_model

    export = export_onnx(folder, tmp / f"{stem or name}.onnx")
    torch_model, onnx_model = load_model(folder), OnnxModel.load(export.path, threads=threads)
    module = build_graph(torch_model).module.eval()
    X, what = _inputs(name)
    one = onnx_model.prepare(X)  # the graph's inputs, by name, for one clip
    many = onnx_model.prepare(X * batch)
    torch_one = [torch.from_numpy(v) for v in one.values()]
    torch_many = [torch.from_numpy(v) for v in many.values()]

    def torch_graph(inputs: list[Any]) -> Any:
        with torch.inference_mode():
            return module(*inputs)

    row: dict[str, Any] = {"model": export.model, "input": what, "max_abs_diff": export.max_abs_diff}
    for runtime, call_one, call_many, predict in (
        ("torch", lambda: torch_graph(torch_one), lambda: torch_graph(torch_many),
         lambda: torch_model.predict_proba(X)),
        ("onnxruntime", lambda: onnx_model.run(one), lambda: onnx_model.run(many),
         lambda: onnx_model.predict_proba(X)),
    ):
        latency = timed(call_one, runs, warmup)
        batched = timed(call_many, max(5, runs // 4), 2)
        row[runtime] = {
            "graph_batch1": latency,
            "graph_batched": {**batched, "clips_per_s": round(batch * 1000 / batched["p50_ms"], 1)},
            "end_to_end_batch1": timed(predict, max(5, runs // 3), 2),
        }
    row["speedup_batch1"] = round(row["torch"]["graph_batch1"]["p50_ms"]
                                  / row["onnxruntime"]["graph_batch1"]["p50_ms"], 2)
    row["speedup_batched"] = round(row["torch"]["graph_batched"]["p50_ms"]
                                   / row["onnxruntime"]["graph_batched"]["p50_ms"], 2)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=["voice", "face", "text"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--registry", nargs="*", default=list(REGISTRY_NETS),
                        help="other registry networks to time, untrained (none: --registry)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    result = measure_onnx(args.models, threads=args.threads, runs=args.runs, batch=args.batch)
    result["registry"] = measure_registry(args.registry, threads=args.threads, runs=args.runs, batch=args.batch)
    from emofuse._io import write_json

    write_json(args.results, result)
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
