"""Speech or not (features.vad.check_speech) on generated non-speech and on real speech.

    python benchmarks/vad.py [--ravdess ../shared/data/ravdess-speech-16k]

Counts, per sound, how often the check refuses it: the generated set of
``data.synthetic.non_speech_sounds`` (tones, hum, chords, sweep, vibrato and tremolo tones,
melodies, white / pink / brown noise, silence; 3 s, five seeds) must be refused every time; every
RAVDESS clip must pass, clean and with white noise at 10 and 0 dB SNR. Also the time per second of
audio. Writes ``benchmarks/results/vad.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from emofuse._io import write_json
from emofuse.data.synthetic import non_speech_sounds
from emofuse.evaluation.results import git_commit
from emofuse.features.audio import load_audio
from emofuse.features.vad import check_speech, silero_model

RESULTS = Path(__file__).parent / "results" / "vad.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ravdess", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" /
                                                  "ravdess-speech-16k"))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--results", default=str(RESULTS))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    generated: dict[str, dict[str, int]] = {}
    seconds_checked, check_seconds = 0.0, 0.0
    for seed in range(args.seeds):
        for name, y in non_speech_sounds(seed=seed).items():
            t = time.perf_counter()
            check = check_speech(y)
            check_seconds += time.perf_counter() - t
            seconds_checked += len(y) / 16_000
            row = generated.setdefault(name, {"n": 0, "refused": 0})
            row["n"] += 1
            row["refused"] += int(not check.is_speech)
    refused_all = sum(r["refused"] for r in generated.values())
    total = sum(r["n"] for r in generated.values())
    print(f"generated non-speech refused: {refused_all}/{total}", flush=True)

    speech: dict[str, dict[str, object]] = {}
    clips = sorted(Path(args.ravdess).glob("Actor_*/*.flac")) + sorted(Path(args.ravdess).glob("Actor_*/*.wav"))
    rng = np.random.default_rng(0)
    for condition, snr_db in (("clean", None), ("white noise 10 dB SNR", 10.0), ("white noise 0 dB SNR", 0.0)):
        reasons: Counter[str] = Counter()
        for path in clips:
            y = load_audio(path)
            if snr_db is not None:
                noise = rng.standard_normal(y.size)
                y = (y + noise * np.sqrt(np.mean(y**2) / np.mean(noise**2) / 10 ** (snr_db / 10))).astype(np.float32)
            t = time.perf_counter()
            reasons[check_speech(y).reason] += 1
            check_seconds += time.perf_counter() - t
            seconds_checked += len(y) / 16_000
        speech[condition] = {"n": len(clips), "passed": reasons["speech"], "refused_by_reason": dict(reasons)}
        print(f"RAVDESS {condition}: {reasons['speech']}/{len(clips)} pass ({dict(reasons)})", flush=True)

    write_json(args.results, {
        "benchmark": "vad", "commit": git_commit(), "silero": silero_model() is not None,
        "generated_non_speech": {"refused": refused_all, "n": total, "per_sound": generated},
        "ravdess_speech": speech,
        "ms_per_audio_second": round(1000 * check_seconds / max(seconds_checked, 1e-9), 3),
        "seconds": round(time.perf_counter() - started, 1),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
