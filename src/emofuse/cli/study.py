"""emofuse study: the comparative study."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from emofuse.cli.common import Quiet, guarded, parse_data, stdout_console


def study(
    config: Annotated[Path, typer.Argument(help="Study config (YAML), e.g. configs/study_smoke.yaml.")],
    out: Annotated[Path, typer.Option(help="Study folder: run directories, report.md, report.html.")],
    data: Annotated[list[str] | None, typer.Option("--data", help="NAME=PATH, overriding the config's data paths.")] = None,
    workers: Annotated[int | None, typer.Option(
        help="Jobs run at once: cells, and one per fold left of a cell with several [default: the config's "
             "workers].")] = None,
    only: Annotated[list[str] | None, typer.Option(
        "--only", help="Run only this model entry (repeatable), with the fusions of only these: split a study "
                       "across machines, then run the whole config into the same --out to finish it.")] = None,
    protocol: Annotated[list[str] | None, typer.Option(
        "--protocol", help="Run only the cells of this protocol (repeatable), as --only does for entries.")] = None,
    plan: Annotated[bool, typer.Option(
        "--plan", help="Print what a run would do, cell by cell (finished, reused, folds left to train, "
                       "training time left estimated from the epochs logged), and run nothing.")] = False,
    quiet: Quiet = False,
) -> None:
    """Run a grid of models × protocols × seeds, fuse, and write report.md and report.html (resumable)."""
    import shlex

    from emofuse.study import load_study_config, run_study

    study_config = guarded(load_study_config, config, data_overrides=parse_data(data or []))
    if plan:
        _print_study_plan(study_config, out, only=only or None, protocols=protocol or None)
        return
    command = " ".join(shlex.quote(str(a)) for a in ["emofuse", "study", config, "--out", out,
                                                     *(x for d in data or [] for x in ("--data", d)),
                                                     *(["--workers", workers] if workers else []),
                                                     *(x for o in only or [] for x in ("--only", o)),
                                                     *(x for p in protocol or [] for x in ("--protocol", p))])
    console = stdout_console()
    outcome = guarded(run_study, study_config, out, workers=workers, progress=not quiet, command=command,
                   log=lambda message: console.print(message, markup=False), only=only or None,
                   protocols=protocol or None)
    console.print(f"report: {outcome.report_md} and {outcome.report_html}")


def _print_study_plan(study_config: Any, out: Path, *, only: list[str] | None, protocols: list[str] | None) -> None:
    from rich.table import Table

    from emofuse._progress import format_duration
    from emofuse.study import plan_study

    planned = guarded(plan_study, study_config, out, only=only, protocols=protocols)
    table = Table(title=f"{study_config.name} into {out}: the plan (nothing run)")
    for column in ("cell", "kind", "action", "folds done", "folds left", "time left (est.)"):
        table.add_column(column)
    for p in planned:
        resumes = dict(p.resumes_after)
        left = [f"{f} (after epoch {resumes[f]})" if f in resumes else f for f in p.folds_left]
        estimate = "?" if p.action == "train" and p.seconds_left is None else format_duration(p.seconds_left)
        table.add_row(f"{p.cell.entry} / {p.cell.protocol} / seed {p.cell.seed}", p.cell.kind, p.action,
                      ", ".join(p.folds_done) or "-", ", ".join(left) or "-", estimate)
    console = stdout_console()
    console.print(table)
    models = [p for p in planned if p.cell.kind == "model"]
    train = [p for p in models if p.action == "train"]
    n_folds = sum(len(p.folds_left) for p in train)
    console.print(f"{len(train)} model cell(s) to train ({n_folds} fold(s)), "
                  f"{sum(p.action == 'done before' for p in models)} finished, "
                  f"{sum(p.action.startswith('reuse') for p in models)} filled from earlier runs; "
                  f"{len(planned) - len(models)} fusion(s) to fit")
    known = [p.seconds_left for p in train if p.seconds_left is not None]
    if known:
        console.print(f"Training time left, one job after another: about {format_duration(sum(known))} for "
                      f"{len(known)} of {len(train)} cell(s) (from the epochs each has logged; "
                      "--workers N runs N jobs at once)")
