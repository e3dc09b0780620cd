"""Voice models under what microphones, rooms and codecs do: UA on every ``ravdess-6fold`` test fold,
clean and corrupted.

    python benchmarks/voice_robustness.py --data ../shared/data/ravdess-speech-16k
    python benchmarks/voice_robustness.py --data ../shared/data/ravdess-speech-16k --limit-per-fold 40  # ~4x faster

Each fold's model is fitted on the fold's clean training and validation actors, then scores its
test actors clean and under each corruption of ``emofuse.features.corrupt``: gain -20 / -10 / +6 /
+12 dB (a louder clip clips), peak normalisation to -1 dBFS, telephone band (8 kHz, 300-3400 Hz),
Opus at 12 kbit/s and MP3 at 32 kbit/s (PyAV), a synthetic room (RT60 0.6 s), white noise at
20 / 10 / 5 dB SNR, and speaking rate 0.9x / 1.1x. Models (``--model``, repeatable): ``shipped``
(the shipped voice model's recipe, its card's C), any registry voice model, or either with
parameters, e.g. ``shipped={"features": {"speech_crop": true, "loudness_dbfs": -23}}``. ``--limit-per-fold N`` scores N test clips per
fold (every k-th in protocol order), a reduced run the results say they are. Writes
``benchmarks/results/voice_robustness.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from emofuse._io import write_json
from emofuse.data import get_protocol, load_dataset
from emofuse.evaluation.metrics import compute_metrics
from emofuse.evaluation.results import git_commit
from emofuse.features import corrupt
from emofuse.features.audio import load_audio
from emofuse.models import create_model
from emofuse.models.shipped import shipped_model_dir
from emofuse.study.experiment import runtime_options

RESULTS = Path(__file__).parent / "results" / "voice_robustness.json"
Corruption = Callable[[np.ndarray, np.random.Generator], np.ndarray]

CORRUPTIONS: dict[str, Corruption] = {
    "clean": lambda y, rng: y,
    "gain -20 dB": lambda y, rng: corrupt.gain(y, db=-20),
    "gain -10 dB": lambda y, rng: corrupt.gain(y, db=-10),
    "gain +6 dB": lambda y, rng: corrupt.gain(y, db=6),
    "gain +12 dB": lambda y, rng: corrupt.gain(y, db=12),
    "peak normalised": lambda y, rng: corrupt.peak_normalise(y, peak_dbfs=-1.0),
    "telephone": lambda y, rng: corrupt.telephone(y),
    "opus 12 kbps": lambda y, rng: corrupt.codec(y, name="opus", bitrate_kbps=12),
    "mp3 32 kbps": lambda y, rng: corrupt.codec(y, name="mp3", bitrate_kbps=32),
    "reverb rt60 0.6 s": lambda y, rng: corrupt.reverb(y, rt60_s=0.6, rng=rng),
    "noise 20 dB SNR": lambda y, rng: corrupt.noise(y, snr_db=20, rng=rng),
    "noise 10 dB SNR": lambda y, rng: corrupt.noise(y, snr_db=10, rng=rng),
    "noise 5 dB SNR": lambda y, rng: corrupt.noise(y, snr_db=5, rng=rng),
    "rate 0.9x": lambda y, rng: corrupt.speed_perturb(y, factor=0.9),
    "rate 1.1x": lambda y, rng: corrupt.speed_perturb(y, factor=1.1),
}


def model_for(spec: str) -> tuple[str, dict]:
    """Registry name and parameters of ``NAME`` or ``NAME=JSON`` (parameters for ``create_model``):
    ``shipped`` is the shipped voice model's recipe (its card's C and training copies)."""
    name, _, overrides = spec.partition("=")
    params = json.loads(overrides) if overrides else {}
    if name != "shipped":
        return name, params
    folder = shipped_model_dir("voice")
    if folder is None:
        raise SystemExit("no shipped voice model in this install")
    card = json.loads((folder / "card.json").read_text())
    recipe = {k: v for k, v in card["recipe"].items() if k != "features"}  # C, and its training copies
    return card["registry_model"], {**recipe, **params}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="RAVDESS speech (any copy emofuse reads)")
    parser.add_argument("--model", action="append", default=[],
                        help="shipped, a registry voice model, or NAME=JSON parameters (repeatable; default shipped)")
    parser.add_argument("--limit-per-fold", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", default=str(RESULTS))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    dataset = load_dataset("ravdess", args.data)
    folds = get_protocol("ravdess-6fold").folds(dataset, seed=args.seed)
    paths = [s.path for s in dataset.samples]
    targets = dataset.label_indices()
    out: dict[str, dict] = {}
    for spec in args.model or ["shipped"]:
        registry, params = model_for(spec)
        probs: dict[str, list[np.ndarray]] = {c: [] for c in CORRUPTIONS}
        y_true: list[np.ndarray] = []
        for fold in folds:
            train = np.concatenate([fold.train, fold.val])
            model = create_model(registry, **params, **runtime_options(registry))
            model.fit([paths[i] for i in train], [dataset.samples[i].label for i in train], labels=dataset.labels)
            test = fold.test
            if args.limit_per_fold:
                test = test[:: max(1, len(test) // args.limit_per_fold)][: args.limit_per_fold]
            y_true.append(targets[test])
            clean = [load_audio(paths[i]) for i in test]
            for name, apply in CORRUPTIONS.items():
                rng = np.random.default_rng([args.seed, int(test[0])])
                probs[name].append(model.predict_proba([apply(y, rng) for y in clean]))
            print(f"{spec} {fold.name}: {len(test)} test clips x {len(CORRUPTIONS)} conditions "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)
        truth = np.concatenate(y_true)
        rows = {}
        for name in CORRUPTIONS:
            m = compute_metrics(truth, probs=np.concatenate(probs[name]), labels=dataset.labels)
            rows[name] = {"ua": m.ua, "wa": m.wa, "ece": m.ece}
            print(f"  {name:18s} UA {100 * m.ua:5.1f}  WA {100 * m.wa:5.1f}", flush=True)
        corrupted = [r["ua"] for k, r in rows.items() if k != "clean"]
        out[spec] = {"registry_model": registry, "params": params, "n_test": len(truth), "conditions": rows,
                     "mean_corrupted_ua": float(np.mean(corrupted)), "worst_ua": float(np.min(corrupted))}
    write_json(args.results, {
        "benchmark": "voice_robustness", "protocol": "ravdess-6fold", "commit": git_commit(),
        "limit_per_fold": args.limit_per_fold, "seed": args.seed, "corruptions": list(CORRUPTIONS),
        "models": out, "seconds": round(time.perf_counter() - started, 1),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
