"""``run_study(config, out)``: the grid of cells, resumable, then fusion, the paired evaluation and the report.

Layout of a study directory::

    <out>/
      study.json                  the config, the command, the commit, every row's numbers
      cells/<protocol>/<entry>/seed<k>/   one run directory per cell (see training.experiment),
                                  with val_predictions.npz per fold; fusion cells have the same layout
      paired/paired.json          the paired-by-emotion evaluation
      report.md, figures/*.png    the report in markdown
      report.html                 the same, self-contained (figures embedded)

A cell whose ``results.json`` exists under an unchanged config is skipped, so an interrupted study
continues where it stopped (and the cell in progress continues from its last finished fold).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emofuse._io import write_json
from emofuse.errors import EmofuseError
from emofuse.study.config import FusionEntry, ModelEntry, StudyConfig


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
    from emofuse.training.experiment import ExperimentConfig

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
    from emofuse.training.experiment import fits_on_validation, resolved_model_params

    return fits_on_validation(create_model(experiment.model, **resolved_model_params(experiment)))


def reuse_run(source: Path, cell_dir: Path, experiment: dict[str, Any]) -> None:
    """Copy a matching earlier run into the cell (without training state) and re-summarise it.

    The copy keeps the source's ``git_sha`` (the code that trained it) and records where it came from.
    """
    from emofuse.training.experiment import summarize_run

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
    from emofuse.training.experiment import (
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
    from emofuse.training.experiment import run_experiment

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
    from emofuse.training.experiment import run_experiment

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
    return _split_folds(plan_model_cell(config, entry, cell, want_val=want_val))


def _split_folds(planned: PlannedCell) -> list[str]:
    return list(planned.folds_left) if len(planned.folds_left) > 1 else []


def _config_input(config_dict: dict[str, Any]) -> dict[str, Any]:
    """A StudyConfig.to_dict() back into the form from_dict reads (drop fields at their defaults)."""
    return json.loads(json.dumps(config_dict))


# --- fusion cells --------------------------------------------------------------------------------


def _file_digest(paths: Sequence[Path]) -> str:
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
    from emofuse.training.experiment import summarize_run

    member_labels = {m: tuple(json.loads((d / "labels.json").read_text())) for m, d in member_dirs.items()}
    fold_sets = [{p.parent.name for p in (d / "folds").glob("*/metrics.json")} for d in member_dirs.values()]
    folds = sorted(set.intersection(*fold_sets))
    if not folds:
        raise StudyError(f"fusion {entry.name} on {cell.protocol}: its members share no finished fold")
    inputs_digest = _file_digest([member_dirs[m] / "folds" / f / name for m in entry.members for f in folds
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


@dataclass(frozen=True)
class StudyOutcome:
    out: Path
    report_md: Path
    report_html: Path
    statuses: dict[str, str]


def run_study(config: StudyConfig, out: str | Path, *, workers: int | None = None, progress: bool = True,
              command: str = "", log: Callable[[str], None] | None = None, report: bool = True,
              only: Sequence[str] | None = None, protocols: Sequence[str] | None = None) -> StudyOutcome:
    """Run every cell (skipping finished ones), fuse, run the paired evaluation, write the report
    (unless ``report`` is False: then only ``study.json``).

    ``only`` names the model entries to run, to split one study across machines (the GPU cells on a
    GPU machine, the rest elsewhere): the fusions and the paired evaluation whose members are all
    among them run too, and the report covers what ran. Running the whole config later into the same
    ``out`` skips the finished cells and completes the study. ``protocols`` does the same by protocol:
    only the cells (and fusions) of those protocols run, the paired evaluation only if both of its
    protocols are among them."""
    from emofuse.study.results import collect_study

    out = Path(out)
    model_cells, fusion_cells, chosen, chosen_protocols = _selected_cells(config, out, only, protocols)
    out.mkdir(parents=True, exist_ok=True)
    plans = _plan_model_cells(config, model_cells)
    workers = max(1, workers or config.workers)
    statuses: dict[str, str] = {}
    quiet_log = log or (lambda _msg: None)
    # With workers, a cell with several folds left to train is split into one job per fold, so that
    # every worker has work while there are folds left, not only while there are cells left.
    folds_left = {cell: _split_folds(plans[cell]) if workers > 1 else [] for cell in model_cells}
    _say_time_left(plans, quiet_log)
    n_jobs = sum(len(f) or 1 for f in folds_left.values())  # the bar counts jobs: a split cell's folds
    with _Progress(total=n_jobs + len(fusion_cells), enabled=progress) as bar:
        # While the bar is live, messages go through its console so they print above it.
        say = bar.print if progress else quiet_log
        if workers == 1:
            _train_serially(config, model_cells, statuses, bar, say)
        else:
            _train_in_pool(config, model_cells, folds_left, workers, statuses, bar, say)
        by_key = {(c.entry, c.protocol, c.seed): c.dir for c in model_cells}
        fusions = {f.name: f for f in config.fusion_entries()}
        for cell in fusion_cells:
            bar.describe(_label(cell))
            entry = fusions[cell.entry]
            members = {m: by_key[(m, cell.protocol, cell.seed)] for m in entry.members}
            statuses[_label(cell)] = run_fusion_cell(config, entry, cell, members)
            say(f"{_label(cell)}: {statuses[_label(cell)]}")
            bar.advance()
    paired = _paired(config, by_key, chosen, chosen_protocols, out, quiet_log)
    study = collect_study(config, out, model_cells + fusion_cells, paired=paired, command=command)
    from emofuse.evaluation.report import write_report

    md, html = write_report(study, out) if report else (out / "report.md", out / "report.html")
    return StudyOutcome(out=out, report_md=md, report_html=html, statuses=statuses)


def _label(cell: Cell) -> str:
    return f"{cell.entry} / {cell.protocol} / seed {cell.seed}"


def _say_time_left(plans: dict[Cell, PlannedCell], log: Callable[[str], None]) -> None:
    to_train = [p for p in plans.values() if p.action == "train"]
    known = [p.seconds_left for p in to_train if p.seconds_left is not None]
    if known:
        from emofuse._progress import format_duration

        log(f"training time left (estimated from the epochs logged, one job after another): about "
            f"{format_duration(sum(known))} for {len(known)} of the {len(to_train)} cell(s) to train")


def _train_serially(config: StudyConfig, model_cells: Sequence[Cell], statuses: dict[str, str], bar: _Progress,
                    say: Callable[[str], None]) -> None:
    want_val = needs_val_predictions(config)
    entries = {m.name: m for m in config.models}
    for cell in model_cells:
        bar.describe(_label(cell))
        started = time.perf_counter()
        status = run_model_cell(config, entries[cell.entry], cell, want_val=(cell.entry, cell.protocol) in want_val)
        statuses[_label(cell)] = status
        say(f"{_label(cell)}: {status} ({time.perf_counter() - started:.0f} s)")
        bar.advance()


def _train_in_pool(config: StudyConfig, model_cells: Sequence[Cell], folds_left: dict[Cell, list[str]], workers: int,
                   statuses: dict[str, str], bar: _Progress, say: Callable[[str], None]) -> None:
    """Every cell (or fold) a job in a pool of ``workers`` processes; a failing job stops the queue."""
    import os
    from concurrent.futures import Future, ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    want_val = needs_val_predictions(config)
    threads = max(1, (os.cpu_count() or 1) // workers)
    n_jobs = sum(len(f) or 1 for f in folds_left.values())
    bar.describe(f"{len(model_cells)} model cells ({n_jobs} jobs) on {workers} workers")
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        pending: dict[Future[JobDone], ModelJob] = {}
        for cell in model_cells:
            job = ModelJob(config.to_dict(), cell.entry, cell, (cell.entry, cell.protocol) in want_val, threads)
            folds: list[str | None] = [*folds_left[cell]] or [None]  # None: the whole cell, one job
            for fold in folds:
                one = ModelJob(**{**job.__dict__, "fold": fold})
                pending[pool.submit(run_model_job, one)] = one
        try:
            for future in as_completed(pending):
                _job_done(future.result(), pending[future], folds_left, statuses, bar, say)
        except Exception as err:
            # Say so now, not after the jobs still running: none starts anew, and the running
            # ones finish their fold (Ctrl-C stops them; a fold resumes from its last epoch).
            still_running = any(f.running() for f in pending)
            pool.shutdown(wait=False, cancel_futures=True)
            say(f"stopping: {err}")
            if still_running:
                say("no job starts anew; waiting for those already running to finish (Ctrl-C stops "
                    "them: their folds resume from the last finished epoch)")
            raise


def _job_done(done: JobDone, job: ModelJob, folds_left: dict[Cell, list[str]], statuses: dict[str, str],
              bar: _Progress, say: Callable[[str], None]) -> None:
    from emofuse.training.experiment import summarize_run

    cell = done.cell
    if job.fold is not None:
        say(f"{_label(cell)} / {job.fold}: trained ({done.seconds:.0f} s)")
        folds_left[cell].remove(job.fold)
        if folds_left[cell]:
            bar.advance()
            return
        summarize_run(cell.dir)  # its last fold: the cell is finished
        if job.want_val:  # folds finished before this study asked
            ensure_val_predictions(cell.dir)
        statuses[_label(cell)] = "trained"
        say(f"{_label(cell)}: trained (fold by fold)")
    else:
        statuses[_label(cell)] = done.status
        say(f"{_label(cell)}: {done.status} ({done.seconds:.0f} s)")
    bar.advance()


def _paired(config: StudyConfig, by_key: dict[tuple[str, str, int], Path], chosen: set[str],
            chosen_protocols: set[str], out: Path, log: Callable[[str], None]) -> Any:
    """The paired-by-emotion evaluation, when both of its members and protocols ran."""
    from emofuse.study.paired import run_paired

    p = config.paired
    if p is None or not ({p.voice, p.face} <= chosen and {p.voice_protocol, p.face_protocol} <= chosen_protocols):
        return None
    entries = {m.name: m for m in config.models}
    seed, face_seed = config.seeds_of(entries[p.voice])[0], config.seeds_of(entries[p.face])[0]
    paired = run_paired(p, voice_dir=by_key[(p.voice, p.voice_protocol, seed)],
                        face_dir=by_key[(p.face, p.face_protocol, face_seed)], out=out / "paired")
    log("paired-by-emotion evaluation: done")
    return paired


def plan_study(config: StudyConfig, out: str | Path, *, only: Sequence[str] | None = None,
               protocols: Sequence[str] | None = None) -> list[PlannedCell]:
    """What :func:`run_study` with the same arguments would do, cell by cell, without doing any of
    it (``emofuse study --plan``): which cells are finished, which an earlier run fills, which train
    and with how many folds left, which fusions are fitted."""
    model_cells, fusion_cells, _, _ = _selected_cells(config, Path(out), only, protocols)
    return [*_plan_model_cells(config, model_cells).values(), *(PlannedCell(c, "fit") for c in fusion_cells)]


def _plan_model_cells(config: StudyConfig, model_cells: Sequence[Cell]) -> dict[Cell, PlannedCell]:
    want_val = needs_val_predictions(config)
    entries = {m.name: m for m in config.models}
    return {c: plan_model_cell(config, entries[c.entry], c, want_val=(c.entry, c.protocol) in want_val)
            for c in model_cells}


def _selected_cells(config: StudyConfig, out: Path, only: Sequence[str] | None, protocols: Sequence[str] | None,
                    ) -> tuple[list[Cell], list[Cell], set[str], set[str]]:
    """The model and fusion cells that ``only`` and ``protocols`` leave, and the entries and protocols chosen."""
    model_cells, fusion_cells = plan_cells(config, out)
    chosen = _chosen_entries(config, only)
    chosen_protocols = _chosen_protocols(model_cells, protocols)
    model_cells = [c for c in model_cells if c.entry in chosen and c.protocol in chosen_protocols]
    member_sets = {f.name: set(f.members) for f in config.fusion_entries()}
    fusion_cells = [c for c in fusion_cells if member_sets[c.entry] <= chosen and c.protocol in chosen_protocols]
    return model_cells, fusion_cells, chosen, chosen_protocols


def _chosen_protocols(model_cells: Sequence[Cell], protocols: Sequence[str] | None) -> set[str]:
    return _chosen({c.protocol for c in model_cells}, protocols, option="--protocol",
                   what="protocol of this study", plural="protocols")


def _chosen_entries(config: StudyConfig, only: Sequence[str] | None) -> set[str]:
    return _chosen({m.name for m in config.model_entries()}, only, option="--only",
                   what=f"model entry of {config.name}", plural="model entries")


def _chosen(known: set[str], asked: Sequence[str] | None, *, option: str, what: str, plural: str) -> set[str]:
    """``asked`` (all of ``known`` when None); a name outside ``known`` is an error naming them."""
    if asked is None:
        return known
    unknown = sorted(set(asked) - known)
    if unknown:
        raise StudyError(f"{option} names no {what}: {', '.join(unknown)} (its {plural}: {', '.join(sorted(known))})")
    return set(asked)


class _Progress:
    """One rich progress bar over the study's cells (rich allows one live display, so cells run quietly)."""

    def __init__(self, *, total: int, enabled: bool) -> None:
        self.total, self.enabled = total, enabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                                      MofNCompleteColumn(), TimeElapsedColumn(), console=Console(stderr=True))
            self._progress.__enter__()
            self._task = self._progress.add_task("study", total=self.total)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def describe(self, text: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=text)

    def print(self, message: str) -> None:
        if self._progress is not None:
            self._progress.console.print(message, markup=False, highlight=False)

    def advance(self) -> None:
        if self._progress is not None:
            self._progress.advance(self._task)
