"""``emofuse predict`` on a folder of short clips: clips per second, voice only (no speech-to-text).

    python benchmarks/predict_speed.py [--data ../shared/data/ravdess-speech-16k] [--clips 100]

Copies ``--clips`` RAVDESS clips (or writes generated 3.5 s tone clips when no data is given) into
a temporary folder, then times

* ``library``: :func:`emofuse.inference.batch.predict_files` with the shipped models, batched, after
  the models are loaded (what a long-running process pays per folder);
* ``cli``: the whole ``emofuse predict FOLDER --json --no-words --quiet`` command in a fresh process,
  start-up and model loading included.

Each is run ``--repeats`` times; the best and the median are reported. Writes
``benchmarks/results/predict_speed.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from emofuse._io import write_json
from emofuse.evaluation.results import git_commit

RESULTS = Path(__file__).parent / "results" / "predict_speed.json"


def make_folder(root: Path, data: Path | None, clips: int) -> str:
    if data is not None and data.is_dir():
        files = sorted(data.rglob("*.flac")) + sorted(data.rglob("*.wav"))
        for i, path in enumerate(files[:clips]):
            shutil.copy(path, root / f"{i:03d}{path.suffix}")
        return f"first {clips} RAVDESS clips (sorted paths) from {data}"
    import soundfile as sf

    from emofuse.data.synthetic import tone_clip

    codes = ["01", "02", "03", "04", "05", "06", "07", "08"]
    for i in range(clips):
        sf.write(root / f"{i:03d}.wav", tone_clip(codes[i % 8], actor=i % 24, seconds=3.5, seed=i), 16_000)
    return f"{clips} generated 3.5 s tone clips (no --data given)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
                        / "ravdess-speech-16k")
    parser.add_argument("--clips", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import torch

    from emofuse.inference import Predictor
    from emofuse.inference.batch import predict_files

    with tempfile.TemporaryDirectory(prefix="emofuse-predict-speed-") as tmp:
        folder = Path(tmp)
        source = make_folder(folder, args.data, args.clips)
        predictor = Predictor.from_shipped(words=False)
        list(predict_files(predictor, sorted(folder.iterdir())[:4]))  # warm-up
        library = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            results = list(predict_files(predictor, [folder], transcribe=False, batch_size=args.batch_size))
            library.append(time.perf_counter() - start)
            assert all(r.status == "ok" for r in results), [r.problem for r in results if r.status != "ok"]
        cli = []
        command = [sys.executable, "-m", "emofuse", "predict", str(folder), "--json", "--no-words", "--quiet",
                   "--batch-size", str(args.batch_size)]
        for _ in range(args.repeats):
            start = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, check=True, env=os.environ.copy())
            cli.append(time.perf_counter() - start)
            assert len(done.stdout.splitlines()) == args.clips

    def summary(seconds: list[float]) -> dict[str, float]:
        best, median = min(seconds), statistics.median(seconds)
        return {"best_s": round(best, 3), "median_s": round(median, 3),
                "clips_per_s_best": round(args.clips / best, 1), "clips_per_s_median": round(args.clips / median, 1)}

    record = {
        "benchmark": "predict_speed", "commit": git_commit(), "cpu": platform.machine(), "cores": os.cpu_count(),
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "clips": args.clips, "source": source,
        "batch_size": args.batch_size, "repeats": args.repeats, "modalities": "voice only (--no-words)",
        "voice_model": "shipped voice_cnn1d",
        "library": summary(library), "cli": summary(cli), "command": " ".join(["python", *sys.argv]),
    }
    write_json(args.results, record)
    print(f"library: {record['library']}\ncli:     {record['cli']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
