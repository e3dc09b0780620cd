"""The voice zoo on RAVDESS: speaker-independent ``ravdess-6fold`` (the headline) and the speaker-leaky
``ravdess-random`` split (for comparison with published random-split numbers).

Every (model, protocol) cell is one ``emofuse train`` run under ``--runs`` (resumable: finished cells
and folds are skipped), and its record is merged into ``benchmarks/results/voice_ravdess.json``.

    python benchmarks/voice.py --data ../shared/data/ravdess-speech-16k --preset cpu     # reduced, 2 CPU cores
    python benchmarks/voice.py --data ../shared/data/ravdess-speech-16k --preset full --device cuda
    python benchmarks/voice.py --data ../shared/data/ravdess-speech-16k --models voice_whisper \
        --speaker-adaptation voice_whisper     # + the '+spk' variants (k = 4, 8, 16, all)
    python benchmarks/voice.py --data ../shared/data/ravdess-speech-16k --models '' \
        --enrolled-speakers voice_whisper_plus  # '+spk enrolled' on the leaky ravdess-random split

Presets differ only in training length and augmentation; each record says which one it ran with
(``variant``) so the table never mixes them silently.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from emofuse.evaluation.results import write_results
from emofuse.study.experiment import ExperimentConfig, run_experiment

MODELS = ("voice_logreg", "voice_cnn1d", "voice_gru", "voice_lstm", "voice_cnn2d", "voice_crnn",
          "voice_whisper_tiny", "voice_whisper_base", "voice_whisper", "voice_whisper_plus",
          "voice_whisper_plus_ridge", "voice_whisper_plus_ridge_tta", "voice_whisper_mfcc", "voice_whisper_attn")
# Models without a training loop: the same parameters under every preset.
NO_LOOP = ("voice_logreg", "voice_whisper_tiny", "voice_whisper_base", "voice_whisper", "voice_whisper_plus",
           "voice_whisper_plus_ridge", "voice_whisper_plus_ridge_tta", "voice_whisper_mfcc")
# Heads on frozen encoders: they train in the loop, but their registry recipe is cheap enough for any preset.
OWN_RECIPE = ("voice_whisper_attn",)
PROTOCOLS = ("ravdess-6fold", "ravdess-random")
RESULTS = Path(__file__).parent / "results" / "voice_ravdess.json"

# Training recipes. "cpu" fits the whole zoo on both protocols into about an hour and a half on two
# cores; "full" is the recipe for a GPU (longer training, augmentation for the CNNs).
PRESETS: dict[str, dict[str, dict]] = {
    "cpu": {
        "default": {"train": {"epochs": 15, "patience": 6, "batch_size": 32, "lr": 2e-3}, "augment": "spec"},
    },
    "full": {
        "default": {"train": {"epochs": 80, "patience": 20, "batch_size": 32, "lr": 2e-3}},
        "voice_cnn2d": {"train": {"epochs": 80, "patience": 20, "batch_size": 32, "lr": 2e-3}, "augment": "light"},
        "voice_crnn": {"train": {"epochs": 80, "patience": 20, "batch_size": 32, "lr": 2e-3}, "augment": "light"},
    },
}


def model_params(preset: str, model: str, device: str) -> dict:
    if model in NO_LOOP:
        return {}
    if model in OWN_RECIPE:
        return {"train": {"device": device}}
    table = PRESETS[preset]
    params = json.loads(json.dumps(table.get(model, table["default"])))
    params["train"]["device"] = device
    return params


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="RAVDESS folder (official layout or the 16 kHz FLAC copy)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--protocols", default=",".join(PROTOCOLS))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", default="runs/benchmarks/voice", help="where the run directories go")
    parser.add_argument("--results", default=str(RESULTS))
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--speaker-adaptation", default="",
                        help="comma-separated Whisper models to also score as '+spk' variants on ravdess-6fold")
    parser.add_argument("--enrolled-speakers", default="",
                        help="comma-separated Whisper models to also score as '+spk enrolled' on ravdess-random "
                             "(each test speaker standardised with their own training clips)")
    args = parser.parse_args(argv)

    for protocol in args.protocols.split(","):
        for model in filter(None, args.models.split(",")):
            out = Path(args.runs) / args.preset / f"{model}-{protocol}"
            config = ExperimentConfig.from_dict({
                "model": model, "data": {"ravdess": args.data}, "protocol": protocol, "out": str(out),
                "seed": args.seed, "model_params": model_params(args.preset, model, args.device)})
            started = time.perf_counter()
            record = run_experiment(config, resume=True, progress=not args.quiet)
            variant = f"preset={args.preset}" + (f",{record.variant}" if record.variant else "")
            record = replace(record, variant=variant,
                             notes=f"benchmarks/voice.py --preset {args.preset}; run dir {out}")
            write_results(args.results, [record])
            print(f"{model:14s} {protocol:15s} UA {record.ua_mean:.3f} ± {record.ua_std:.3f}  "
                  f"WA {record.wa_mean:.3f}  F1 {record.f1_mean:.3f}  ({time.perf_counter() - started:.0f} s)",
                  flush=True)
    if args.speaker_adaptation or args.enrolled_speakers:
        from emofuse.data import load_ravdess

        dataset = load_ravdess(args.data)
    if args.speaker_adaptation:
        from emofuse.study.speaker_adaptation import speaker_adapted_records

        for model in args.speaker_adaptation.split(","):
            records = speaker_adapted_records(dataset, model=model, seed=args.seed, progress=not args.quiet)
            records = [replace(r, notes=f"benchmarks/voice.py --speaker-adaptation {model}; {r.notes}") for r in records]
            write_results(args.results, records)
            for r in records:
                print(f"{model:14s} {r.variant:12s} UA {r.ua_mean:.3f} ± {r.ua_std:.3f}  WA {r.wa_mean:.3f}", flush=True)
    if args.enrolled_speakers:
        from emofuse.study.speaker_adaptation import enrolled_speaker_record

        for model in args.enrolled_speakers.split(","):
            record = enrolled_speaker_record(dataset, model=model, seed=args.seed, progress=not args.quiet)
            record = replace(record, notes=f"benchmarks/voice.py --enrolled-speakers {model}; {record.notes}")
            write_results(args.results, [record])
            print(f"{model:14s} {record.variant:12s} ravdess-random UA {record.ua_mean:.3f}  WA {record.wa_mean:.3f}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
