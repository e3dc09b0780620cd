"""``run_experiment(config) -> ResultRecord``: one model, one dataset, one protocol, every fold.

A run directory is reproducible on its own::

    <out>/
      config.json         the experiment config and the model's resolved parameters
      git_sha             the code it ran with
      labels.json         the label set (column order of every probability it wrote)
      folds/<fold>/
        model/            model.safetensors + model.json (the fold's best-validation model)
        log.jsonl         one line per epoch (torch models)
        state/            the resumable training state while the fold is in progress
        predictions.npz   test probabilities, targets and sample paths
        val_predictions.npz  the same for the validation set (``save_val_predictions``; fusion fits on it)
        metrics.json      the fold's test metrics
      metrics.json        summary over folds (mean ± std, bootstrap CI, pooled confusion)
      results.json        the same as a results-format record list

An interrupted run continues with ``resume=True``: finished folds are kept, the fold in progress
restarts from its last finished epoch.

Under ``torchrun`` every process runs this function; they train each fold together
(:mod:`emofuse.training.loop`) and rank 0 alone writes the run directory.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emofuse._io import atomic_write, write_json
from emofuse.errors import ConfigError, EmofuseError, checked_options


@dataclass(frozen=True)
class ExperimentConfig:
    """What to run. Strict: unknown keys are errors. ``model_params`` go to ``create_model``."""

    model: str
    data: dict[str, str]
    protocol: str
    out: str
    seed: int = 0
    model_params: dict[str, Any] = field(default_factory=dict)
    folds: list[str] | None = None  # run only these folds (names as the protocol gives them)
    limit_per_fold: int | None = None  # reduced runs: at most this many training clips per fold
    # "auto": what the dataset holds (paths, pixels, texts); "transcripts": an audio dataset's clips as
    # the words Whisper hears in them (offline, cached), for text models on speech corpora.
    inputs: str = "auto"

    def __post_init__(self) -> None:
        if self.inputs not in ("auto", "transcripts"):
            raise ConfigError(f"inputs must be 'auto' or 'transcripts', not {self.inputs!r}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ExperimentConfig:
        return cls(**checked_options(cls, d, what="experiment"))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["inputs"] == "auto":  # runs recorded before the option existed stay comparable (resume, reuse)
            del d["inputs"]
        return d


class RunExistsError(EmofuseError):
    pass


def resolved_model_params(config: ExperimentConfig) -> dict[str, Any]:
    import inspect

    from emofuse.models import MODELS

    params = json.loads(json.dumps(config.model_params))  # a deep copy that is JSON by construction
    spec = MODELS.get(config.model)
    # The experiment seed becomes the training seed of models that train with the loop.
    if spec is not None and "train" in inspect.signature(spec.cls()).parameters:
        params.setdefault("train", {})["seed"] = config.seed
    return params


def runtime_options(model: str) -> dict[str, Any]:
    """Options that change how fast a run goes, never its result: voice features and text embeddings
    come from the disk cache."""
    import inspect

    from emofuse.features.cache import FeatureCache
    from emofuse.models import MODELS
    from emofuse.models.text import EmbeddingCache

    spec = MODELS.get(model)
    if spec is None or "cache" not in inspect.signature(spec.cls()).parameters:
        return {}
    return {"cache": FeatureCache() if spec.modality == "voice" else EmbeddingCache()}


def load_protocol_data(config: ExperimentConfig, progress: bool) -> Any:
    from emofuse.data import get_protocol, load_dataset

    protocol = get_protocol(config.protocol)
    if protocol.dataset not in config.data:
        raise ConfigError(f"protocol {protocol.name} needs --data {protocol.dataset}=PATH")
    return load_dataset(protocol.dataset, config.data[protocol.dataset], progress=progress), protocol


def run_experiment(config: ExperimentConfig, *, resume: bool = False, progress: bool = True,
                   save_val_predictions: bool = False, only_folds: Sequence[str] | None = None,
                   summarize: bool = True) -> Any:
    """Train and test the model on every fold; returns the :class:`~emofuse.evaluation.results.ResultRecord`.

    ``save_val_predictions`` also writes each fold's validation-set probabilities (what late fusion
    is fitted on); it changes no result.

    ``only_folds`` with ``summarize=False`` trains part of the run's folds and writes no summary
    (returns None): processes that share one run directory fold by fold (``emofuse study
    --workers``) train each its folds, and :func:`summarize_run` summarises once all are finished.
    A fold trains on the same clips however the run is split.
    """
    from emofuse.evaluation.results import read_results
    from emofuse.models import create_model
    from emofuse.training import distributed

    is_main = distributed.is_main()
    progress = progress and is_main
    out = Path(config.out)
    _check_existing_run(out, config, resume=resume)
    dataset, protocol = load_protocol_data(config, progress)
    all_folds = protocol.folds(dataset, seed=0)
    folds = _chosen_folds(config, all_folds, only_folds, protocol_name=protocol.name)
    train_sets = _training_clips(config, all_folds)
    params = resolved_model_params(config)
    probe = create_model(config.model, **params)  # validates every parameter before any work
    distributed.barrier()  # every process has checked --out before rank 0 writes into it
    if is_main:
        _write_run_header(out, config, probe, protocol, dataset)
    inputs = model_inputs_for(dataset, config.inputs, progress=progress)
    labels = [s.label for s in dataset.samples]
    for fold in folds:
        fold_dir = out / "folds" / fold.name
        if (fold_dir / "metrics.json").is_file() or (only_folds is not None and fold.name not in only_folds):
            continue  # finished before an interruption, or another process's
        fold_dir.mkdir(parents=True, exist_ok=True)  # every process: the log and state paths point here
        train_idx = train_sets[fold.name]
        model = create_model(config.model, **params, **runtime_options(config.model), progress=progress)
        start = time.perf_counter()
        model.fit(take_rows(inputs, train_idx), [labels[i] for i in train_idx], labels=dataset.labels,
                  X_val=take_rows(inputs, fold.val), y_val=[labels[i] for i in fold.val],
                  log_path=fold_dir / "log.jsonl", state_dir=fold_dir / "state")
        train_seconds = time.perf_counter() - start
        if is_main:  # the processes hold the same trained model; one scores and saves it
            probs = model.predict_proba(take_rows(inputs, fold.test))
            if save_val_predictions:
                write_predictions(fold_dir / "val_predictions.npz", validation_probabilities(model, take_rows(inputs, fold.val)),
                                  fold.val, dataset, heldout=fits_on_validation(model))
            model.save(fold_dir / "model")
            _write_fold(fold_dir, model, fold.test, probs, dataset, train_seconds, len(train_idx))
            shutil.rmtree(fold_dir / "state", ignore_errors=True)
        distributed.barrier()
    if not summarize:
        return None
    if is_main:
        record = summarize_run(out)
    distributed.barrier()
    return record if is_main else read_results(out / "results.json")[0]


def _check_existing_run(out: Path, config: ExperimentConfig, *, resume: bool) -> None:
    """A run already in ``out`` is continued only when asked to and only with an unchanged config."""
    if not (out / "config.json").exists():
        return
    if not resume:
        raise RunExistsError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    stored = json.loads((out / "config.json").read_text())["experiment"]
    if stored != config.to_dict():
        raise RunExistsError(f"{out} holds a run with a different config; --resume continues it only unchanged")


def _chosen_folds(config: ExperimentConfig, folds: Sequence[Any], only_folds: Sequence[str] | None, *,
                  protocol_name: str) -> list[Any]:
    """The run's folds (``config.folds`` of the protocol's); ``only_folds`` must be among them."""
    chosen = list(folds)
    if config.folds is not None:
        unknown = sorted(set(config.folds) - {f.name for f in chosen})
        if unknown:
            raise ConfigError(f"unknown fold(s) {', '.join(unknown)} for {protocol_name}")
        chosen = [f for f in chosen if f.name in config.folds]
    if only_folds is not None:
        unknown = sorted(set(only_folds) - {f.name for f in chosen})
        if unknown:
            raise ConfigError(f"fold(s) {', '.join(unknown)} are not among this run's folds "
                              f"({', '.join(f.name for f in chosen)})")
    return chosen


def _write_run_header(out: Path, config: ExperimentConfig, probe: Any, protocol: Any, dataset: Any) -> None:
    """config.json (the experiment, the model's resolved parameters, the protocol), git_sha, labels.json."""
    from emofuse.evaluation.results import git_commit

    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", {"experiment": config.to_dict(),
                                     "model_resolved": probe.get_params(),
                                     "protocol": {"name": protocol.name, "description": protocol.description,
                                                  "speaker_independent": protocol.speaker_independent,
                                                  "leaky": protocol.leaky}})
    with atomic_write(out / "git_sha") as handle:
        handle.write(git_commit() + "\n")
    write_json(out / "labels.json", list(dataset.labels))


def _training_clips(config: ExperimentConfig, folds: Sequence[Any]) -> dict[str, np.ndarray]:
    """Each fold's training positions; with ``limit_per_fold`` a random subset, drawn for every fold
    of the protocol in its order from the run's seed, so that a fold gets the same clips whether the
    run trains all folds, a chosen few, resumes after an interruption or is split across processes."""
    rng = np.random.default_rng(config.seed)
    chosen = {}
    for fold in folds:
        train_idx = fold.train
        if config.limit_per_fold is not None and len(train_idx) > config.limit_per_fold:
            train_idx = np.sort(rng.choice(train_idx, config.limit_per_fold, replace=False))
        chosen[fold.name] = train_idx
    return chosen


def model_inputs_for(dataset: Any, kind: str = "auto", *, progress: bool = False) -> Any:
    """What models are fed: inline pixels (fer2013.csv) or texts (MELD, CARER) when the dataset holds
    them, else file paths; with ``kind="transcripts"``, what Whisper hears in each audio file."""
    if kind == "transcripts":
        from emofuse.speech import transcribe_files

        if dataset.pixels is not None or dataset.texts is not None:
            raise ConfigError(f"inputs: transcripts needs an audio dataset; {dataset.name} holds "
                              f"{'images' if dataset.pixels is not None else 'texts'}")
        return [t.text for t in transcribe_files([s.path for s in dataset.samples], progress=progress)]
    return dataset.model_inputs()


def take_rows(inputs: Any, idx: np.ndarray) -> Any:
    return inputs[idx] if isinstance(inputs, np.ndarray) else [inputs[i] for i in idx]


def _write_fold(fold_dir: Path, model: Any, test_idx: np.ndarray, probs: np.ndarray, dataset: Any,
                train_seconds: float, n_train: int) -> None:
    from emofuse.evaluation.metrics import compute_metrics

    y_true = dataset.label_indices()[test_idx]
    write_predictions(fold_dir / "predictions.npz", probs, test_idx, dataset)
    metrics = compute_metrics(y_true, probs=probs, labels=dataset.labels)
    fit = getattr(model, "fit_result_", None)
    write_json(fold_dir / "metrics.json", {
        **metrics.to_dict(),
        "train_seconds": train_seconds,
        "n_train": n_train,
        "device": fit.device if fit is not None else "cpu",
        "best_epoch": fit.best_epoch if fit is not None else None,
        "best_val_ua": fit.best_val_ua if fit is not None else None,
    })


def write_predictions(path: Path, probs: np.ndarray, idx: np.ndarray, dataset: Any, *, heldout: bool = False) -> None:
    """``probs`` ``(len(idx), n_labels)`` with the targets and paths of samples ``idx``, atomically.
    ``heldout`` marks validation probabilities of a model that fits on its validation data too, taken
    from its heads fitted before (see :func:`validation_probabilities`)."""
    arrays: dict[str, np.ndarray] = {"probs": np.asarray(probs), "y_true": dataset.label_indices()[idx],
                                     "paths": np.array([dataset.samples[i].path for i in idx], dtype=np.str_)}
    if heldout:
        arrays["heldout"] = np.array(True)
    with atomic_write(path, "wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]  # numpy types allow_pickle among the kwargs


def fits_on_validation(model: Any) -> bool:
    """Does the model's final fit include its validation data (e.g. ``refit_with_val``)?"""
    return bool(getattr(model, "fits_on_validation", False))


def validation_probabilities(model: Any, X_val: Any) -> np.ndarray:
    """Validation probabilities late fusion may fit on: ``predict_proba(X_val)``, or, for a model
    whose final fit included the validation data (those would be in-sample), the probabilities of its
    heads fitted without it, which the model keeps from ``fit`` (``heldout_val_proba_``)."""
    if not fits_on_validation(model):
        return np.asarray(model.predict_proba(X_val))
    heldout = getattr(model, "heldout_val_proba_", None)
    if heldout is None:
        raise EmofuseError(f"{getattr(model, 'name', type(model).__name__)} was fitted on its validation data and "
                           "kept no held-out validation predictions (a model loaded from disk keeps none): "
                           "train it again to fuse it")
    return np.asarray(heldout)


def summarize_run(out: str | Path) -> Any:
    """Aggregate the finished folds of a run into metrics.json and results.json; returns the record."""
    from emofuse.evaluation.metrics import compute_metrics, summarize_folds
    from emofuse.evaluation.results import FoldResult, ResultRecord, write_results

    out = Path(out)
    config = json.loads((out / "config.json").read_text())
    experiment, protocol = config["experiment"], config["protocol"]
    labels = json.loads((out / "labels.json").read_text())
    fold_dirs = sorted(p.parent for p in (out / "folds").glob("*/metrics.json"))
    if not fold_dirs:
        raise EmofuseError(f"{out}: no finished folds")
    fold_metrics, fold_results, pooled_true, pooled_pred, seconds, devices = [], [], [], [], 0.0, set()
    for fold_dir in fold_dirs:
        with np.load(fold_dir / "predictions.npz", allow_pickle=False) as data:
            probs, y_true = data["probs"], data["y_true"]
        m = compute_metrics(y_true, probs=probs, labels=labels)
        fold_metrics.append(m)
        fold_results.append(FoldResult.from_metrics(fold_dir.name, m))
        pooled_true.append(y_true)
        pooled_pred.append(probs.argmax(axis=1))
        stored = json.loads((fold_dir / "metrics.json").read_text())
        seconds += stored["train_seconds"]
        devices.add(stored["device"])
    summary = summarize_folds(fold_metrics, pooled_true=np.concatenate(pooled_true),
                              pooled_pred=np.concatenate(pooled_pred), seed=experiment["seed"])
    commit = (out / "git_sha").read_text().strip() if (out / "git_sha").is_file() else "unknown"
    record = ResultRecord.from_summary(
        dataset=protocol_dataset(protocol["name"]), protocol=protocol["name"], model=experiment["model"],
        summary=summary, folds=fold_results, labels=labels, device=", ".join(sorted(devices)),
        train_seconds=round(seconds, 2), leaky=protocol["leaky"], commit=commit, seed=experiment["seed"],
        variant=_variant(experiment["model_params"]),
    )
    write_json(out / "metrics.json", summary.to_dict())
    write_results(out / "results.json", [record], merge=False)
    return record


def _variant(model_params: Mapping[str, Any]) -> str:
    """A named augmentation preset marks a variant of the model (``augment=strong``); none is the plain model."""
    augment = model_params.get("augment")
    return f"augment={augment}" if isinstance(augment, str) and augment != "none" else ""


def protocol_dataset(protocol: str) -> str:
    from emofuse.data import get_protocol

    return get_protocol(protocol).dataset


def evaluate_run(run_dir: str | Path, *, data: Mapping[str, str] | None = None, progress: bool = True) -> Any:
    """Re-score a saved run: load each fold's saved model, predict its test set again, recompute metrics.

    ``data`` points at the dataset when it has moved since training.
    """
    from emofuse.evaluation.metrics import compute_metrics
    from emofuse.models import load_model

    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise EmofuseError(f"{run_dir}: not a run directory (no config.json)")
    experiment = json.loads((run_dir / "config.json").read_text())["experiment"]
    config = ExperimentConfig.from_dict({**experiment, "data": {**experiment["data"], **(data or {})}})
    dataset, protocol = load_protocol_data(config, progress)
    inputs = model_inputs_for(dataset, config.inputs, progress=progress)
    y_all = dataset.label_indices()
    rows = []
    for fold in protocol.folds(dataset, seed=0):
        fold_dir = run_dir / "folds" / fold.name
        if not (fold_dir / "model" / "model.json").is_file():
            continue
        model = load_model(fold_dir / "model")
        probs = model.predict_proba(take_rows(inputs, fold.test))
        m = compute_metrics(y_all[fold.test], probs=probs, labels=dataset.labels)
        stored = json.loads((fold_dir / "metrics.json").read_text())
        rows.append({"fold": fold.name, "n_test": m.n, "wa": m.wa, "ua": m.ua, "f1": m.macro_f1,
                     "stored_ua": stored["ua"]})
    if not rows:
        raise EmofuseError(f"{run_dir}: no saved fold models to evaluate")
    write_json(run_dir / "evaluation.json", rows)
    return rows
