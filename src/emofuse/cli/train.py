"""emofuse train: one model, one dataset, one protocol, every fold."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from emofuse.cli.common import Quiet, guarded, parse_data, stdout_console


def train(
    model: Annotated[str, typer.Argument(help="Registry name, e.g. voice_cnn2d (see `emofuse models`).")],
    data: Annotated[list[str], typer.Option("--data", help="NAME=PATH of the dataset, e.g. ravdess=data/ravdess.")],
    protocol: Annotated[str, typer.Option(help="Evaluation protocol (see `emofuse data protocols`).")],
    out: Annotated[Path | None, typer.Option(help="Run directory [default: runs/MODEL-PROTOCOL/TIME].")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Maximum epochs (torch models).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size (torch models).")] = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate (torch models).")] = None,
    augment: Annotated[str | None, typer.Option(help="Augmentation preset: none, light, strong.")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML/JSON file of model parameters (features, train, augment, ...).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed (recorded in the run).")] = 0,
    folds: Annotated[str | None, typer.Option(help="Comma-separated subset of folds, e.g. fold1,fold2.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many training clips per fold (quick runs).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run in --out.")] = False,
    inputs: Annotated[str, typer.Option(help="auto, or transcripts: feed a text model what Whisper hears in an "
                                             "audio dataset's clips.")] = "auto",
    quiet: Quiet = False,
) -> None:
    """Train MODEL on every fold of PROTOCOL and score it on each fold's unseen test set.

    Runs unchanged under `torchrun --nproc-per-node=N -m emofuse train ...` (DistributedDataParallel;
    NCCL on GPUs, gloo on CPU; --batch-size is the global batch; rank 0 writes the run).
    """
    from emofuse.study.experiment import ExperimentConfig, run_experiment
    from emofuse.training import distributed

    with distributed.process_group():
        params = _model_params(config, augment=augment,
                               train={"device": device, "epochs": epochs, "batch_size": batch_size, "lr": lr})
        out = out or _stamped_out(model, protocol)
        experiment = guarded(ExperimentConfig.from_dict, {
            "model": model, "data": parse_data(data), "protocol": protocol, "out": str(out), "seed": seed,
            "model_params": params, "folds": folds.split(",") if folds else None, "limit_per_fold": limit,
            "inputs": inputs})
        record = guarded(run_experiment, experiment, resume=resume, progress=not quiet)
        if distributed.is_main():
            _print_record(record, out)


def _model_params(config: Path | None, *, augment: str | None, train: dict[str, Any]) -> dict[str, Any]:
    """The model's parameters: the --config file, then the command line's training options over it."""
    params: dict[str, Any] = guarded(_read_config, config) if config is not None else {}
    overrides = {k: v for k, v in train.items() if v is not None}
    if overrides:
        params.setdefault("train", {}).update(overrides)
    if augment is not None:
        params["augment"] = augment
    return params


def _stamped_out(model: str, protocol: str) -> Path:
    """``runs/MODEL-PROTOCOL/TIME``, one stamp for every process of a torchrun launch."""
    import datetime

    from emofuse.training import distributed

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return distributed.broadcast_object(Path("runs") / f"{model}-{protocol}" / stamp)


def _read_config(path: Path) -> dict[str, Any]:
    from emofuse.errors import EmofuseError

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EmofuseError(f"{path}: cannot read ({exc})") from None
    import yaml

    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise EmofuseError(f"{path}: not valid YAML/JSON ({exc})") from None
    if not isinstance(loaded, dict):
        raise EmofuseError(f"{path}: expected a mapping of model parameters")
    return loaded


def _print_record(record: Any, out: Path) -> None:
    from rich.table import Table

    table = Table(title=f"{record.model} on {record.dataset} ({record.protocol}{', LEAKY' if record.leaky else ''})")
    for column in ("fold", "test", "WA", "UA", "macro-F1"):
        table.add_column(column, justify="right" if column != "fold" else "left")
    for f in record.folds:
        table.add_row(f.fold, str(f.n_test), f"{f.wa:.3f}", f"{f.ua:.3f}", f"{f.f1:.3f}")
    table.add_row("mean ± std", str(record.n_test), f"{record.wa_mean:.3f} ± {record.wa_std:.3f}",
                  f"{record.ua_mean:.3f} ± {record.ua_std:.3f}", f"{record.f1_mean:.3f}")
    console = stdout_console()
    console.print(table)
    ci = record.ci95.get("ua")
    if ci:
        console.print(f"UA 95% bootstrap interval {ci[0]:.3f}-{ci[1]:.3f}; trained in {record.train_seconds:.0f} s on "
                      f"{record.device}; run saved in {out}")
