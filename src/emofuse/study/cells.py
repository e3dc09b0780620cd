"""The model cells of a study: planning them, reusing finished runs, running one (alone or as a
pool job), and how long the rest will take."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emofuse._io import write_json
from emofuse.errors import EmofuseError
from emofuse.study.config import ModelEntry, StudyConfig


class StudyError(EmofuseError):
    pass


@dataclass(frozen=True)
class Cell:
    """One (entry, protocol, seed) of the grid and the run directory it owns."""

    entry: str
    kind: str  # "model" or "fusion"
    protocol: str
    seed: int
    dir: Path


def plan_cells(config: StudyConfig, out: Path) -> tuple[list[Cell], list[Cell]]:
    """The model cells and the fusion cells of the grid, in config order."""
    models = [Cell(e.name, "model", p, s, out / "cells" / p / e.name / f"seed{s}")
              for e in config.model_entries() for p in config.protocols_of(e) for s in config.seeds_of(e)]
    fusions = [Cell(f.name, "fusion", p, s, out / "cells" / p / f.name / f"seed{s}")
               for f in config.fusion_entries() for p in config.fusion_protocols(f) for s in config.fusion_seeds(f)]
    return models, fusions


def needs_val_predictions(config: StudyConfig) -> set[tuple[str, str]]:
    """(entry, protocol) pairs whose validation predictions a fusion or the paired evaluation uses."""
    wanted = {(m, p) for f in config.fusion_entries() for p in config.fusion_protocols(f) for m in f.members}
    if config.paired is not None:
        wanted |= {(config.paired.voice, config.paired.voice_protocol), (config.paired.face, config.paired.face_protocol)}
    return wanted


def experiment_config(config: StudyConfig, entry: ModelEntry, cell: Cell) -> Any:
    from emofuse.data.protocols import get_protocol
    from emofuse.study.experiment import ExperimentConfig

    dataset = get_protocol(cell.protocol).dataset
    return ExperimentConfig.from_dict({
        "model": entry.model, "data": {dataset: config.data[dataset]}, "protocol": cell.protocol,
        "out": str(cell.dir), "seed": cell.seed, "model_params": entry.params, "folds": (entry.folds or {}).get(cell.protocol),
        "limit_per_fold": entry.limit_per_fold, "inputs": entry.inputs})


# --- model cells ---------------------------------------------------------------------------------


def _cell_finished(cell_dir: Path, experiment: dict[str, Any]) -> bool:
    """True when the cell holds a finished run of exactly this experiment; a different one is an error."""
    config_path = cell_dir / "config.json"
    if not config_path.is_file():
        return False
    stored = json.loads(config_path.read_text())["experiment"]
    if stored != experiment:
        raise StudyError(f"{cell_dir} holds a run of a different config; choose another --out or remove that cell")
    return (cell_dir / "results.json").is_file()


def _same_data(stored: str, wanted: str, run_dir: Path) -> bool:
    """Do two dataset paths name the same folder? A relative stored path is tried from the current
    folder and from the project root of the run (the folder holding its ``runs/``)."""
    target = Path(wanted).resolve()
    bases = [Path.cwd()] + [p.parent for p in run_dir.resolve().parents if p.name == "runs"]
    return any((base / stored).resolve() == target for base in bases)


def find_reusable_run(roots: Sequence[str | Path], experiment: dict[str, Any], *,
                      need_heldout_val: bool = False) -> Path | None:
    """A finished run under ``roots`` whose config equals ``experiment`` (all but its ``out``; data
    paths compared as folders) with every fold's predictions and model. None when there is none.
    ``need_heldout_val``: only a run whose every fold kept held-out validation predictions (a model
    that fits on its validation data cannot make them again once saved)."""
    for root in roots:
        for config_path in sorted(Path(root).rglob("config.json")):
            run_dir = config_path.parent
            if not (run_dir / "results.json").is_file():
                continue
            try:
                stored = json.loads(config_path.read_text())["experiment"]
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
            same = all(stored.get(k) == experiment[k] for k in experiment if k not in ("out", "data"))
            same = same and set(stored.get("data", {})) == set(experiment["data"]) and all(
                _same_data(stored["data"][k], experiment["data"][k], run_dir) for k in experiment["data"])
            if not same:
                continue
            # results.json is written only once every fold is finished; each fold must have its predictions.
            fold_dirs = [p.parent for p in (run_dir / "folds").glob("*/metrics.json")]
            if fold_dirs and all((d / "predictions.npz").is_file() and (d / "model").is_dir() for d in fold_dirs):
                if need_heldout_val and not has_heldout_val_predictions(run_dir):
                    continue
                return run_dir
    return None


def has_heldout_val_predictions(run_dir: Path) -> bool:
    """Does every finished fold of the run hold validation predictions marked held-out?"""
    folds = [d.parent for d in (run_dir / "folds").glob("*/metrics.json")]
    for fold in folds:
        path = fold / "val_predictions.npz"
        if not path.is_file():
            return False
        with np.load(path) as data:
            if "heldout" not in data.files:
                return False
    return bool(folds)


def _fits_on_validation(experiment: Any) -> bool:
    from emofuse.models import create_model
    from emofuse.study.experiment import fits_on_validation, resolved_model_params

    return fits_on_validation(create_model(experiment.model, **resolved_model_params(experiment)))


def reuse_run(source: Path, cell_dir: Path, experiment: dict[str, Any]) -> None:
    """Copy a matching earlier run into the cell (without training state) and re-summarise it.

    The copy keeps the source's ``git_sha`` (the code that trained it) and records where it came from.
    """
    from emofuse.study.experiment import summarize_run

    tmp = cell_dir.with_name(cell_dir.name + ".copying")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp, ignore=shutil.ignore_patterns("state", "evaluation.json"))
    stored = json.loads((tmp / "config.json").read_text())
    stored["reused_from"] = {"run_dir": str(source.resolve()), "experiment": stored["experiment"]}
    stored["experiment"] = experiment
    write_json(tmp / "config.json", stored)
    shutil.rmtree(cell_dir, ignore_errors=True)
    tmp.rename(cell_dir)
    summarize_run(cell_dir)


def ensure_val_predictions(cell_dir: Path, *, progress: bool = False) -> None:
    """Write ``val_predictions.npz`` for every finished fold that lacks it, from the fold's saved model."""
    from emofuse.study.experiment import (
        ExperimentConfig,
        load_protocol_data,
        model_inputs_for,
        runtime_options,
        take_rows,
        validation_probabilities,
        write_predictions,
    )

    missing = [d.parent for d in sorted((cell_dir / "folds").glob("*/metrics.json"))
               if not (d.parent / "val_predictions.npz").is_file()]
    if not missing:
        return
    from emofuse.models import load_model

    experiment = ExperimentConfig.from_dict(json.loads((cell_dir / "config.json").read_text())["experiment"])
    dataset, protocol = load_protocol_data(experiment, progress)
    folds = {f.name: f for f in protocol.folds(dataset, seed=0)}
    inputs = model_inputs_for(dataset)
    for fold_dir in missing:
        fold = folds[fold_dir.name]
        model = load_model(fold_dir / "model", **runtime_options(experiment.model))
        # A loaded model that fits on its validation data has no held-out predictions left: an error.
        write_predictions(fold_dir / "val_predictions.npz", validation_probabilities(model, take_rows(inputs, fold.val)),
                          fold.val, dataset)


def run_model_cell(config: StudyConfig, entry: ModelEntry, cell: Cell, *, want_val: bool,
                   progress: bool = False) -> str:
    """Make the cell finished: skip, reuse a matching earlier run, or train. Returns what it did."""
    from emofuse.study.experiment import run_experiment

    experiment = experiment_config(config, entry, cell)
    wanted = experiment.to_dict()
    # A model whose final fit includes the validation data: fusion must fit on the held-out
    # validation predictions it kept from training, which a saved model cannot make again.
    need_heldout = want_val and _fits_on_validation(experiment)
    if _cell_finished(cell.dir, wanted):
        status = "done before"
        if need_heldout and not has_heldout_val_predictions(cell.dir):
            raise StudyError(f"{cell.dir}: {entry.name} fits on its validation data, and this cell's validation "
                             "predictions are not held-out ones (written before they were kept, or for a study "
                             "that fused nothing); remove the cell to train it again")
    else:
        source = None if (cell.dir / "config.json").is_file() else find_reusable_run(
            config.reuse, wanted, need_heldout_val=need_heldout)
        if source is not None:
            reuse_run(source, cell.dir, wanted)
            status = f"reused {source}"
        else:
            run_experiment(experiment, resume=True, progress=progress, save_val_predictions=want_val)
            status = "trained"
    if want_val:
        ensure_val_predictions(cell.dir, progress=progress)
    return status


def _worker_entry(config_dict: dict[str, Any], entry_name: str, threads: int) -> tuple[StudyConfig, ModelEntry]:
    """In a worker process: its share of the CPU threads, the config rebuilt from its dict, the entry."""
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass
    config = StudyConfig.from_dict(_config_input(config_dict))
    entry = next(m for m in config.models if m.name == entry_name)
    return config, entry


@dataclass(frozen=True)
class ModelJob:
    """One job for a worker process: a model cell, or one fold of it (``fold``). The config travels
    as a dict (it is rebuilt in the worker), with the worker's share of the CPU threads."""

    config_dict: dict[str, Any]
    entry: str
    cell: Cell
    want_val: bool
    threads: int
    fold: str | None = None


@dataclass(frozen=True)
class JobDone:
    cell: Cell
    status: str
    seconds: float


def run_model_job(job: ModelJob) -> JobDone:
    """In a worker process: train the job's cell (or its one fold; the cell is summarised once all
    of its folds are)."""
    from emofuse.study.experiment import run_experiment

    config, entry = _worker_entry(job.config_dict, job.entry, job.threads)
    started = time.perf_counter()
    if job.fold is None:
        status = run_model_cell(config, entry, job.cell, want_val=job.want_val)
    else:
        run_experiment(experiment_config(config, entry, job.cell), resume=True, progress=False,
                       save_val_predictions=job.want_val, only_folds=[job.fold], summarize=False)
        status = "trained"
    return JobDone(job.cell, status, time.perf_counter() - started)


@dataclass(frozen=True)
class PlannedCell:
    """What running the study would do with one cell: ``action`` is "done before", "reuse <run dir>",
    "train" (model cells, with the folds already finished and those left) or "fit" (fusion cells,
    fitted again whenever their inputs or the code change; seconds)."""

    cell: Cell
    action: str
    folds_done: tuple[str, ...] = ()
    folds_left: tuple[str, ...] = ()
    resumes_after: tuple[tuple[str, int], ...] = ()  # (fold, its last finished epoch) for folds interrupted
    # Training seconds left, estimated from the epochs this cell has logged (see estimate_seconds_left);
    # None when it cannot be told (nothing logged yet, or a model that logs no epochs).
    seconds_left: float | None = None


def plan_model_cell(config: StudyConfig, entry: ModelEntry, cell: Cell, *, want_val: bool) -> PlannedCell:
    """What the study would do with a model cell, read from its folder and the runs it may reuse;
    touches nothing. A cell holding a run of a different config is an error, as it is for a run.
    ``want_val``: a fusion or the paired evaluation reads the cell's validation predictions."""
    from emofuse.data.protocols import get_protocol

    experiment = experiment_config(config, entry, cell)
    wanted = experiment.to_dict()
    if _cell_finished(cell.dir, wanted):
        return PlannedCell(cell, "done before")
    if not (cell.dir / "config.json").is_file():
        source = find_reusable_run(config.reuse, wanted,
                                   need_heldout_val=want_val and _fits_on_validation(experiment))
        if source is not None:
            return PlannedCell(cell, f"reuse {source}")
    names = [n for n in get_protocol(cell.protocol).fold_names if experiment.folds is None or n in experiment.folds]
    done = tuple(n for n in names if (cell.dir / "folds" / n / "metrics.json").is_file())
    left = tuple(n for n in names if n not in done)
    resumes = tuple((n, epoch) for n in left if (epoch := _last_epoch(cell.dir / "folds" / n / "state")) is not None)
    train = experiment.model_params.get("train")
    limit = train.get("epochs") if isinstance(train, dict) else None
    seconds = estimate_seconds_left(cell.dir, done, dict(resumes), left, epoch_limit=limit)
    return PlannedCell(cell, "train", done, left, resumes, seconds)


def _logged_epochs(fold_dir: Path) -> dict[int, dict[str, Any]]:
    """A fold's log.jsonl by epoch (a resumed fold may log an epoch twice: the later line counts)."""
    epochs: dict[int, dict[str, Any]] = {}
    try:
        lines = (fold_dir / "log.jsonl").read_text(encoding="utf-8").splitlines()
    except OSError:
        return epochs
    for line in lines:
        try:
            record = json.loads(line)
            epochs[int(record["epoch"])] = record
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by an interruption
    return epochs


def estimate_seconds_left(cell_dir: Path, done: Sequence[str], resumes: dict[str, int], left: Sequence[str], *,
                          epoch_limit: int | None = None) -> float | None:
    """Training seconds a model cell has left, from the epochs it has logged itself: every fold left
    runs, from where it stands, as many epochs as the cell's finished folds ran on average (early
    stopping included) or, before any has finished, up to its epoch limit (an upper bound), at the
    cell's median logged epoch time. The limit is read from the logs (``epoch_limit``, the
    config's, stands in for logs written before they carried it). None when the cell has logged no
    epoch (a fresh cell, or a model trained without epochs) or neither a finished fold nor a limit
    says how many epochs are to come."""
    logs = {fold: _logged_epochs(cell_dir / "folds" / fold) for fold in (*done, *left)}
    paces = [float(r["seconds"]) for log in logs.values() for r in log.values() if "seconds" in r]
    if not paces:
        return None
    limits = [int(r["epoch_limit"]) for log in logs.values() for r in log.values() if "epoch_limit" in r]
    limit = max(limits) if limits else epoch_limit
    finished = [max(logs[fold]) for fold in done if logs[fold]]
    expected = float(np.mean(finished)) if finished else limit
    if expected is None:
        return None
    epochs = 0.0
    for fold in left:
        start = resumes.get(fold, 0)
        remaining = max(expected - start, 1.0)  # a fold past the average still has an epoch or so to go
        epochs += max(min(remaining, limit - start), 0) if limit is not None else remaining
    return epochs * float(np.median(paces))


def _last_epoch(state_dir: Path) -> int | None:
    """The last finished epoch of a fold's training state (what a resumed run continues after), if any."""
    try:
        return int(json.loads((state_dir / "last.json").read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def folds_to_split(config: StudyConfig, entry: ModelEntry, cell: Cell, *, want_val: bool) -> list[str]:
    """The folds a model cell has left to train, when they are worth training in processes of their
    own: empty for a finished cell, one an earlier run can fill, or one with a fold or none left (the
    whole cell is then one job)."""
    return split_folds(plan_model_cell(config, entry, cell, want_val=want_val))


def split_folds(planned: PlannedCell) -> list[str]:
    return list(planned.folds_left) if len(planned.folds_left) > 1 else []


def _config_input(config_dict: dict[str, Any]) -> dict[str, Any]:
    """A StudyConfig.to_dict() back into the form from_dict reads (drop fields at their defaults)."""
    return json.loads(json.dumps(config_dict))


# --- fusion cells --------------------------------------------------------------------------------


