"""``run_study(config, out)``: the grid of cells, resumable, then fusion, the paired evaluation and the report.

Layout of a study directory::

    <out>/
      study.json                  the config, the command, the commit, every row's numbers
      cells/<protocol>/<entry>/seed<k>/   one run directory per cell (see study.experiment),
                                  with val_predictions.npz per fold; fusion cells have the same layout
      paired/paired.json          the paired-by-emotion evaluation
      report.md, figures/*.png    the report in markdown
      report.html                 the same, self-contained (figures embedded)

A cell whose ``results.json`` exists under an unchanged config is skipped, so an interrupted study
continues where it stopped (and the cell in progress continues from its last finished fold).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emofuse.study.cells import (
    Cell,
    JobDone,
    ModelJob,
    PlannedCell,
    StudyError,
    ensure_val_predictions,
    needs_val_predictions,
    plan_cells,
    plan_model_cell,
    run_model_cell,
    run_model_job,
    split_folds,
)
from emofuse.study.config import StudyConfig
from emofuse.study.fusion_cells import run_fusion_cell


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
    folds_left = {cell: split_folds(plans[cell]) if workers > 1 else [] for cell in model_cells}
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
    from emofuse.study.experiment import summarize_run

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
