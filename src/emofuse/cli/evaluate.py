"""emofuse evaluate (re-score a run) and emofuse models (the zoo)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emofuse.cli.common import Quiet, guarded, parse_data, stdout_console


def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `emofuse train`.")],
    data: Annotated[list[str] | None, typer.Option("--data", help="NAME=PATH if the dataset has moved.")] = None,
    quiet: Quiet = False,
) -> None:
    """Re-score a saved run: reload each fold's model and predict its test set again."""
    from rich.table import Table

    from emofuse.study.experiment import evaluate_run

    rows = guarded(evaluate_run, run_dir, data=parse_data(data or []), progress=not quiet)
    table = Table(title=f"re-scored {run_dir}")
    for column in ("fold", "test", "WA", "UA", "macro-F1", "UA at training"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["fold"], str(r["n_test"]), f"{r['wa']:.3f}", f"{r['ua']:.3f}", f"{r['f1']:.3f}",
                      f"{r['stored_ua']:.3f}")
    stdout_console().print(table)


def models() -> None:
    """List the models in the registry."""
    from rich.table import Table

    from emofuse.models import MODELS

    table = Table()
    for column in ("name", "modality", "what it is"):
        table.add_column(column)
    for name, spec in MODELS.items():
        table.add_row(name, spec.modality, spec.description)
    stdout_console().print(table)
