"""Voice speed on one CPU thread: feature extraction throughput and single-clip inference latency.

    python benchmarks/voice_speed.py [--data ../shared/data/ravdess-speech-16k] [--runs runs/benchmarks/voice/cpu]

* Features: decode + resample + features for real RAVDESS clips (or generated 3.5 s clips when no data
  is given), as clips/s and × real time.
* Latency: ``predict_proba([one 3.5 s waveform])`` per model, features included, p50/p99 over repeated
  calls after a warm-up. Trained fold-1 models are taken from ``--runs`` when present (latency does
  not depend on the weights, but it is nicer to time the real thing); otherwise each model is fitted
  for one epoch on generated clips.

Writes ``benchmarks/results/voice_speed.json``.
"""

from __future__ import annotations

import os

# One thread, for numpy/BLAS as well as torch: set before either is imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from _timing import timed  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

from emofuse._io import write_json  # noqa: E402
from emofuse.data.synthetic import tone_clip  # noqa: E402
from emofuse.evaluation.results import git_commit  # noqa: E402
from emofuse.features.audio import load_audio  # noqa: E402
from emofuse.features.spectral import log_mel, mfcc  # noqa: E402
from emofuse.models import MODELS, create_model, load_model  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "voice_speed.json"
CLIP_SECONDS = 3.5
SAMPLE_RATE_HZ = 16_000


def feature_throughput(paths: list[Path]) -> dict[str, object]:
    results: dict[str, object] = {}
    audio_seconds = 0.0
    waveforms = []
    start = time.perf_counter()
    for path in paths:
        y = load_audio(path)
        waveforms.append(y)
        audio_seconds += y.size / SAMPLE_RATE_HZ
    decode_s = time.perf_counter() - start
    results["decode_resample"] = {"clips_per_s": round(len(paths) / decode_s, 1),
                                  "x_real_time": round(audio_seconds / decode_s, 1)}
    for name, fn in (("log_mel", lambda y: log_mel(y, sr=SAMPLE_RATE_HZ)),
                     ("mfcc_deltas", lambda y: mfcc(y, sr=SAMPLE_RATE_HZ))):
        start = time.perf_counter()
        for y in waveforms:
            fn(y)
        took = time.perf_counter() - start
        results[name] = {"clips_per_s": round(len(waveforms) / took, 1), "x_real_time": round(audio_seconds / took, 1)}
    results["clips"] = len(paths)
    results["audio_seconds"] = round(audio_seconds, 1)
    return results


def trained_or_quick(name: str, runs: Path | None):
    if runs is not None:
        candidate = runs / f"{name}-ravdess-6fold" / "folds" / "fold1" / "model"
        if (candidate / "model.json").is_file():
            return load_model(candidate), str(candidate)
    labels = ("neutral", "happy", "sad", "angry")
    codes = ("01", "03", "04", "05")
    X = [tone_clip(c, actor=k, seconds=1.0, seed=k) for k in range(1, 4) for c in codes]
    y = [lab for _ in range(1, 4) for lab in labels]
    kwargs = {} if name == "voice_logreg" else {"train": {"epochs": 1, "batch_size": 8}}
    return create_model(name, **kwargs).fit(X, y, labels=labels, X_val=X[:4], y_val=y[:4]), "fitted on generated clips"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="RAVDESS folder; generated clips when absent")
    parser.add_argument("--runs", default="runs/benchmarks/voice/cpu", help="benchmark run dirs with trained models")
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--results", default=str(RESULTS))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    if args.data:
        paths = sorted(Path(args.data).rglob("*.flac")) + sorted(Path(args.data).rglob("*.wav"))
        paths = paths[:: max(1, len(paths) // args.clips)][: args.clips]
        source = f"RAVDESS clips from {args.data}"
    else:
        import tempfile

        import soundfile as sf

        tmp = Path(tempfile.mkdtemp(prefix="voice-speed-"))
        paths = []
        for i in range(args.clips):
            path = tmp / f"clip{i}.wav"
            sf.write(path, tone_clip("03", actor=i % 24 + 1, seconds=CLIP_SECONDS, seed=i), SAMPLE_RATE_HZ)
            paths.append(path)
        source = "generated 3.5 s clips"
    features = feature_throughput(paths)
    print(json.dumps(features, indent=1), flush=True)

    waveform = tone_clip("05", actor=3, seconds=CLIP_SECONDS)
    runs = Path(args.runs) if args.runs else None
    models = {}
    for name, spec in MODELS.items():
        if spec.modality != "voice":
            continue
        model, origin = trained_or_quick(name, runs)
        models[name] = {**timed(lambda m=model: m.predict_proba([waveform]), args.repeats), "model_from": origin}
        print(name, models[name], flush=True)

    write_json(args.results, {
        "benchmark": "voice_speed",
        "threads": 1,
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "commit": git_commit(),
        "feature_source": source,
        "features": features,
        "latency_clip_seconds": CLIP_SECONDS,
        "latency": models,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
