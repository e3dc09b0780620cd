"""Whisper on the CPU: encoder feature extraction per clip, and speech-to-text of a 3.5 s sentence.

    python benchmarks/whisper_speed.py [--data ../shared/data/ravdess-speech-16k] [--threads 2]

* Encoder: every layer's states of one 3.5 s clip (a RAVDESS clip when ``--data`` is given, else an
  espeak-ng sentence or a generated tone), for tiny.en and base, with our torch encoder on the real
  length (what the voice_whisper models use) and padded to Whisper's 30 s, and CTranslate2's own
  ``encode`` (last layer only) on the padded input for reference.
* Speech-to-text: ``Transcriber().transcribe`` (tiny.en, beam 5, VAD) of an espeak-ng sentence.

Writes ``benchmarks/results/whisper_speed.json``. Timings are p50/p99 over repeated calls after a
warm-up; the machine should be otherwise idle.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "whisper_speed.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="RAVDESS folder: time a real clip")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--results", default=str(RESULTS))
    args = parser.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)

    import ctranslate2
    import numpy as np
    import torch
    from _timing import timed  # benchmarks/ is on sys.path when run as a script

    from emofuse._io import write_json
    from emofuse.evaluation.results import git_commit
    from emofuse.features.audio import load_audio
    from emofuse.features.whisper import (
        encode_layers,
        load_whisper_encoder,
        resolve_whisper_model,
        whisper_log_mel,
    )
    from emofuse.speech import Transcriber

    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp())
    speech = None
    if shutil.which("espeak-ng"):
        subprocess.run(["espeak-ng", "-w", str(tmp / "s.wav"), "Kids are talking by the door, said the teacher."],
                       check=True, capture_output=True)
        speech = load_audio(tmp / "s.wav", sample_rate_hz=16_000)[: 56_000]
    if args.data:
        clip = load_audio(sorted(Path(args.data).rglob("03-01-05-02-01-01-*.*"))[0], sample_rate_hz=16_000)
        source = "RAVDESS angry clip"
    elif speech is not None:
        clip, source = speech, "espeak-ng sentence"
    else:
        from emofuse.data.synthetic import tone_clip

        clip, source = tone_clip("05", actor=1, seconds=3.5, seed=0), "generated tone"
    clip = clip[: 56_000]
    results: dict[str, object] = {"clip_seconds": round(len(clip) / 16_000, 3), "clip": source,
                                  "threads": args.threads, "cpu": platform.processor() or platform.machine(),
                                  "commit": git_commit(), "encoder": {}}
    for model in ("tiny.en", "base"):
        encoder = load_whisper_encoder(model)
        row = {
            "torch_real_length": timed(lambda enc=encoder: encode_layers(enc, clip), args.repeats),
            "torch_padded_30s": timed(lambda enc=encoder: encode_layers(enc, clip, pad_to_30s=True),
                                      max(3, args.repeats // 4), warmup=1),
        }
        ct2 = ctranslate2.models.Whisper(str(resolve_whisper_model(model)), device="cpu", compute_type="float32",
                                         intra_threads=args.threads)
        mel = whisper_log_mel(clip)
        padded = np.full((1, 80, 3000), mel.max() - 2.0, dtype=np.float32)
        padded[0, :, : mel.shape[1]] = mel
        view = ctranslate2.StorageView.from_array(padded)
        row["ctranslate2_padded_30s_last_layer"] = timed(lambda m=ct2, v=view: m.encode(v, to_cpu=True),
                                                         max(3, args.repeats // 4), warmup=1)
        results["encoder"][model] = row  # type: ignore[index]
        print(model, {k: v["p50_ms"] for k, v in row.items()}, flush=True)
    if speech is not None:
        transcriber = Transcriber(cache_dir=None, cpu_threads=args.threads)
        text = transcriber.transcribe(speech).text
        results["transcribe_tiny_en"] = {**timed(lambda: transcriber.transcribe(speech), max(5, args.repeats // 2),
                                                 warmup=2), "text": text,
                                         "audio_seconds": round(len(speech) / 16_000, 3)}
        print("transcribe", results["transcribe_tiny_en"], flush=True)
    write_json(args.results, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
