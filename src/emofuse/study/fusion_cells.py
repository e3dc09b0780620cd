"""The fusion cells of a study: late fusion of member cells' saved predictions, fold by fold, and
the predictions files both fusion and the paired evaluation read."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emofuse._io import write_json
from emofuse.study.cells import Cell, StudyError
from emofuse.study.config import FusionEntry, StudyConfig


def file_digest(paths: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def load_fold_predictions(cell_dir: Path, fold: str, *, split: str = "test") -> dict[str, np.ndarray]:
    name = "predictions.npz" if split == "test" else "val_predictions.npz"
    path = cell_dir / "folds" / fold / name
    if not path.is_file():
        raise StudyError(f"{path} is missing")
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in ("probs", "y_true", "paths")}


def run_fusion_cell(config: StudyConfig, entry: FusionEntry, cell: Cell, member_dirs: dict[str, Path]) -> str:
    """Fit the fusion per fold on the members' validation predictions, test it on their test predictions."""
    from emofuse.evaluation.results import git_commit
    from emofuse.fusion import create_fusion
    from emofuse.labels import shared_label_set
    from emofuse.study.experiment import summarize_run

    member_labels = {m: tuple(json.loads((d / "labels.json").read_text())) for m, d in member_dirs.items()}
    fold_sets = [{p.parent.name for p in (d / "folds").glob("*/metrics.json")} for d in member_dirs.values()]
    folds = sorted(set.intersection(*fold_sets))
    if not folds:
        raise StudyError(f"fusion {entry.name} on {cell.protocol}: its members share no finished fold")
    inputs_digest = file_digest([member_dirs[m] / "folds" / f / name for m in entry.members for f in folds
                                  for name in ("predictions.npz", "val_predictions.npz")])
    experiment = {"model": entry.strategy, "data": {}, "protocol": cell.protocol, "out": str(cell.dir),
                  "seed": cell.seed, "model_params": entry.params, "folds": folds, "limit_per_fold": None}
    # Fitting is cheap, so a fusion is fitted again whenever its inputs or the code change.
    code = git_commit()
    fusion_info = {"entry": entry.name, "members": {m: str(member_dirs[m]) for m in entry.members},
                   "inputs_sha256": inputs_digest, "code": code}
    config_path = cell.dir / "config.json"
    if config_path.is_file() and (cell.dir / "results.json").is_file():
        stored = json.loads(config_path.read_text())
        if stored.get("experiment") == experiment and stored.get("fusion") == fusion_info:
            return "done before"
    shutil.rmtree(cell.dir, ignore_errors=True)
    first = json.loads((member_dirs[entry.members[0]] / "config.json").read_text())
    labels = shared_label_set(*member_labels.values())
    cell.dir.mkdir(parents=True)
    write_json(config_path, {"experiment": experiment, "fusion": fusion_info, "model_resolved": entry.params,
                             "protocol": first["protocol"]})
    (cell.dir / "git_sha").write_text(code + "\n")
    write_json(cell.dir / "labels.json", list(labels))
    for fold in folds:
        try:
            data = fusion_fold(member_dirs, entry.members, member_labels, labels, fold, protocol=first["protocol"])
        except StudyError as err:
            raise StudyError(f"fusion {entry.name}, {err}") from None
        started = time.perf_counter()
        model = create_fusion(entry.strategy, **entry.params)
        model.fit(data.inputs["val"], data.truth["val"], labels=labels, groups=data.groups)
        seconds = time.perf_counter() - started
        probs = model.predict_proba(data.inputs["test"])
        fold_dir = cell.dir / "folds" / fold
        _write_fusion_fold(fold_dir, model, probs, data.truth["test"], data.paths["test"], labels, seconds,
                           len(data.truth["val"]))
    summarize_run(cell.dir)
    return "fused"


@dataclass(frozen=True)
class FusionFold:
    """One fold of a fusion's members, split by split (``val``, ``test``): their probabilities as a
    FusionInput, the truth in the fusion's label set, the clips, and the validation speakers (or None)."""

    inputs: dict[str, Any]
    truth: dict[str, list[str]]
    paths: dict[str, np.ndarray]
    groups: list[str] | None


def fusion_fold(member_dirs: dict[str, Path], members: Sequence[str], member_labels: dict[str, tuple[str, ...]],
                labels: Sequence[str], fold: str, *, protocol: dict[str, Any]) -> FusionFold:
    """Read one fold of the members' stored validation and test predictions, checked to be on the same clips."""
    from emofuse.fusion import FusionInput
    from emofuse.labels import convert_labels

    inputs, truth, paths = {}, {}, {}
    for split in ("val", "test"):
        by_member = {m: load_fold_predictions(member_dirs[m], fold, split=split) for m in members}
        clips = [p["paths"] for p in by_member.values()]
        if any(len(c) != len(clips[0]) or (c != clips[0]).any() for c in clips):
            raise StudyError(f"{fold}: members' {split} predictions are not on the same samples")
        inputs[split] = FusionInput({m: by_member[m]["probs"] for m in members}, member_labels, tuple(members))
        truth[split] = convert_labels([member_labels[members[0]][i] for i in by_member[members[0]]["y_true"]],
                                      labels)
        paths[split] = clips[0]
    return FusionFold(inputs, truth, paths, fit_groups(protocol, paths["val"]))


def fit_groups(protocol: dict[str, Any], paths: np.ndarray) -> list[str] | None:
    """The speaker of each validation clip when the protocol tests on new speakers, else None.

    Fusion then judges its fitted weights and its stacker by holding out whole validation speakers,
    as test holds out speakers; on a speaker-leaky split (or without speakers) clips are independent
    enough. Speakers come from the file names (RAVDESS codes the actor in the name)."""
    from emofuse.data.ravdess import parse_ravdess_name

    if not protocol.get("speaker_independent"):
        return None
    try:
        return [parse_ravdess_name(str(p)).speaker for p in paths]
    except ValueError as err:
        raise StudyError(f"protocol {protocol.get('name')} is speaker-independent, but a validation file name "
                         f"does not say its speaker: {err}") from None


def _write_fusion_fold(fold_dir: Path, model: Any, probs: np.ndarray, y_true: list[str], paths: np.ndarray,
                       labels: Sequence[str], seconds: float, n_fit: int) -> None:
    from emofuse._io import atomic_write
    from emofuse.evaluation.metrics import compute_metrics

    y_idx = np.array([list(labels).index(v) for v in y_true], dtype=np.int64)
    fold_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(fold_dir / "predictions.npz", "wb") as handle:
        np.savez(handle, probs=probs, y_true=y_idx, paths=paths)
    model.save(fold_dir / "model")
    metrics = compute_metrics(y_idx, probs=probs, labels=labels)
    write_json(fold_dir / "metrics.json", {**metrics.to_dict(), "train_seconds": seconds, "n_train": n_fit,
                                           "device": "cpu", "best_epoch": None, "best_val_ua": None,
                                           "fitted_on": "validation predictions of the members"})


# --- the study -----------------------------------------------------------------------------------


