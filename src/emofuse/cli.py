"""The ``emofuse`` command line. Thin: it parses, calls the library, and prints.

Library imports happen inside each command, so ``emofuse --help`` stays instant.
"""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from emofuse import __version__

app = typer.Typer(
    name="emofuse",
    help="Emotion recognition from voice, words and face: datasets, models, fusion, a study and a live service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Get, inspect and check datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
export_app = typer.Typer(help="Export saved models for deployment.", no_args_is_help=True)
app.add_typer(export_app, name="export")


class DatasetName(StrEnum):
    ravdess = "ravdess"
    fer2013 = "fer2013"
    meld = "meld"
    carer = "carer"
    folder = "folder"
    manifest = "manifest"
    custom = "custom"


class Runtime(StrEnum):
    torch = "torch"
    onnx = "onnx"


RuntimeOption = Annotated[Runtime, typer.Option(help="torch, or onnx: the exported graphs in onnxruntime "
                                                     "(exported into the cache on first use).")]


class DownloadName(StrEnum):
    ravdess = "ravdess"
    fer2013 = "fer2013"


class Engine(StrEnum):
    local = "local"
    ray = "ray"


class OutputFormat(StrEnum):
    parquet = "parquet"
    jsonl = "jsonl"


def _err(message: str) -> None:
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[bold red]error:[/] {escape(message)}")


def _console() -> Any:
    """Console for stdout; soft-wrapped so long file paths stay on one line (greppable, copyable)."""
    from rich.console import Console

    return Console(soft_wrap=True, highlight=False)


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


def _run(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call library code; a user-facing error becomes one clear line and exit code 1."""
    from emofuse.errors import EmofuseError

    try:
        return fn(*args, **kwargs)
    except EmofuseError as exc:
        _err(str(exc))
        raise typer.Exit(1) from None


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"emofuse {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="Let third-party libraries log to stderr "
                                                            "(TensorFlow Lite, absl, ctranslate2).")] = False,
) -> None:
    """emofuse: emotion from voice, words and face."""
    if verbose:
        from emofuse._native import VERBOSE_ENV

        os.environ[VERBOSE_ENV] = "1"


SkipBad = Annotated[bool, typer.Option("--skip-bad", help="Go on past bad files and list them, instead of stopping.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]


@data_app.command("summary")
def data_summary(
    name: Annotated[DatasetName, typer.Argument(help="Which loader reads PATH.")],
    path: Annotated[Path, typer.Argument(help="Dataset folder, CSV or manifest.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    skip_bad: SkipBad = False,
    duplicates: Annotated[bool, typer.Option(help="Hash every file to find duplicates.")] = True,
    quiet: Quiet = False,
) -> None:
    """Count clips, speakers, labels and splits; find duplicates and unreadable files."""
    from emofuse.data import load_dataset
    from emofuse.data.inspect import summarize

    dataset = _run(load_dataset, name.value, path, skip_bad=skip_bad, progress=not quiet)
    summary = summarize(dataset, duplicates=duplicates, progress=not quiet)
    if as_json:
        _print_json(summary)
    else:
        _print_summary(summary)


def _print_summary(summary: dict[str, Any]) -> None:
    from rich.table import Table

    console = _console()
    console.print(f"[bold]{summary['dataset']}[/] at {summary['path']} ({summary['modality']}): "
                  f"{summary['clips']} samples, {summary['speakers']} speakers")
    table = Table(title="labels")
    table.add_column("label")
    table.add_column("count", justify="right")
    for label, count in summary["labels"].items():
        table.add_row(label, str(count))
    console.print(table)
    if summary["splits"]:
        console.print("splits: " + ", ".join(f"{k} {v}" for k, v in summary["splits"].items()))
    dup = summary.get("duplicates")
    if dup:
        console.print(f"duplicates: {dup['groups']} groups of identical content, {dup['extra_copies']} extra copies, "
                      f"{dup['conflicting_labels']} with conflicting labels")
    if summary["unreadable"]:
        console.print(f"[red]{len(summary['unreadable'])} unusable file(s):[/]")
        for bad in summary["unreadable"]:
            console.print(f"  {bad['path']}: {bad['problem']}", markup=False)


@data_app.command("verify")
def data_verify(
    name: Annotated[DatasetName, typer.Argument(help="Which loader reads PATH.")],
    path: Annotated[Path, typer.Argument(help="Dataset folder, CSV or manifest.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    quiet: Quiet = False,
) -> None:
    """Decode every file to its last sample and check checksums where a manifest has them.

    Exits 1 if any file is bad or missing.
    """
    from emofuse.data import load_dataset
    from emofuse.data.inspect import verify

    dataset = _run(load_dataset, name.value, path, skip_bad=True, progress=not quiet)
    report = verify(dataset, progress=not quiet)
    if as_json:
        _print_json(report.to_dict())
    else:
        console = _console()
        console.print(f"{report.files} files, {report.decoded} decoded cleanly, "
                      f"{report.checksums_checked} checksums checked")
        for bad in report.bad:
            console.print(f"  [red]bad[/] {bad.path}: {bad.problem}", highlight=False)
        for missing in report.missing:
            console.print(f"  [red]missing[/] {missing}", highlight=False)
        console.print("[green]OK[/]" if report.ok else f"[red]{len(report.bad) + len(report.missing)} problem(s)[/]")
    if not report.ok:
        raise typer.Exit(1)


@data_app.command("download")
def data_download(
    name: Annotated[DownloadName, typer.Argument(help="ravdess (fetched from Zenodo) or fer2013 (bring your own).")],
    to: Annotated[Path, typer.Option("--to", help="Folder to put the dataset in.")],
    source: Annotated[Path | None, typer.Option("--from", help="Ingest an archive or folder you already have.")] = None,
    part: Annotated[list[str] | None, typer.Option("--part", help="RAVDESS part(s): speech (default), song.")] = None,
    url: Annotated[str | None, typer.Option(help="Fetch from this URL instead (a mirror); give --md5 or --sha256.")] = None,
    md5: Annotated[str | None, typer.Option(help="Expected md5 of the file at --url.")] = None,
    sha256: Annotated[str | None, typer.Option(help="Expected sha256 of the file at --url.")] = None,
    keep_archive: Annotated[bool, typer.Option(help="Keep the downloaded archive in TO/.downloads.")] = False,
    quiet: Quiet = False,
) -> None:
    """Download RAVDESS (checksum-verified, resumable), or ingest a copy you have with --from."""
    from emofuse.data import load_dataset
    from emofuse.data.download import FER2013_HOWTO, RAVDESS_ARCHIVES, Archive, fetch_fer2013, fetch_ravdess

    if name is DownloadName.fer2013:
        if source is None:
            sys.stdout.write(FER2013_HOWTO + "\n")
            raise typer.Exit(1)
        root = _run(fetch_fer2013, to, source=source)
    else:
        parts = tuple(part or ["speech"])
        archives = None
        if url is None and (md5 or sha256):
            _err("--md5/--sha256 check the file at --url; without --url the official checksums are used")
            raise typer.Exit(2)
        if url is not None:
            if md5 is None and sha256 is None:
                _err("--url needs --md5 or --sha256: a download is only accepted when its checksum matches")
                raise typer.Exit(2)
            if len(parts) != 1:
                _err("--url replaces one part; give exactly one --part")
                raise typer.Exit(2)
            base = RAVDESS_ARCHIVES.get(parts[0])
            file_name = base.name if base else Path(url.split("?")[0]).name
            archives = {parts[0]: Archive(name=file_name, url=url, md5=md5, sha256=sha256)}
        root = _run(fetch_ravdess, to, parts=parts, source=source, archives=archives,
                    keep_archive=keep_archive, progress=not quiet)
    dataset = _run(load_dataset, name.value, root, skip_bad=True, progress=not quiet)
    console = _console()
    console.print(f"[green]{name.value}[/] ready at {root}: {len(dataset)} samples, "
                  f"{len(dataset.speakers())} speakers, labels {dataset.label_counts()}", highlight=False)
    if dataset.bad_files:
        console.print(f"[yellow]{len(dataset.bad_files)} unusable file(s); "
                      f"see `emofuse data verify {name.value} {root}`[/]")


@data_app.command("protocols")
def data_protocols() -> None:
    """List the evaluation protocols."""
    from rich.table import Table

    from emofuse.data.protocols import PROTOCOLS

    table = Table()
    for column in ("name", "dataset", "speaker-independent", "description"):
        table.add_column(column)
    for p in PROTOCOLS.values():
        si = "yes" if p.speaker_independent else ("NO (leaky)" if p.leaky else "n/a")
        table.add_row(p.name, p.dataset, si, p.description)
    _console().print(table)


def _parse_data(items: list[str]) -> dict[str, str]:
    data = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            _err(f"--data takes NAME=PATH (e.g. ravdess=data/ravdess), not {item!r}")
            raise typer.Exit(2)
        data[name] = path
    return data


@app.command("train")
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
    from emofuse.training import distributed

    with distributed.process_group():
        _train(model, data, protocol, out, device, epochs, batch_size, lr, augment, config, seed, folds, limit,
               resume, inputs, quiet)


def _train(model: str, data: list[str], protocol: str, out: Path | None, device: str | None, epochs: int | None,
           batch_size: int | None, lr: float | None, augment: str | None, config: Path | None, seed: int,
           folds: str | None, limit: int | None, resume: bool, inputs: str, quiet: bool) -> None:
    import datetime

    from emofuse.training import distributed
    from emofuse.training.experiment import ExperimentConfig, run_experiment

    params: dict[str, Any] = {}
    if config is not None:
        params = _run(_read_config, config)
    train_overrides = {k: v for k, v in {"device": device, "epochs": epochs, "batch_size": batch_size, "lr": lr}.items()
                       if v is not None}
    if train_overrides:
        params.setdefault("train", {}).update(train_overrides)
    if augment is not None:
        params["augment"] = augment
    if out is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = distributed.broadcast_object(Path("runs") / f"{model}-{protocol}" / stamp)  # one stamp for all ranks
    experiment = _run(ExperimentConfig.from_dict, {
        "model": model, "data": _parse_data(data), "protocol": protocol, "out": str(out), "seed": seed,
        "model_params": params, "folds": folds.split(",") if folds else None, "limit_per_fold": limit,
        "inputs": inputs})
    record = _run(run_experiment, experiment, resume=resume, progress=not quiet)
    if distributed.is_main():
        _print_record(record, out)


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
    console = _console()
    console.print(table)
    ci = record.ci95.get("ua")
    if ci:
        console.print(f"UA 95% bootstrap interval {ci[0]:.3f}-{ci[1]:.3f}; trained in {record.train_seconds:.0f} s on "
                      f"{record.device}; run saved in {out}")


@export_app.command("onnx")
def export_onnx(
    source: Annotated[str, typer.Argument(help="voice, face or text (a shipped model), a saved model folder, "
                                               "or a run directory from `emofuse train`.")],
    out: Annotated[Path, typer.Option("--out", help="The .onnx file to write (its sidecar goes to FILE.json).")],
    fold: Annotated[str | None, typer.Option(help="Which fold's model of a run with several.")] = None,
    check: Annotated[bool, typer.Option(help="Run the file in onnxruntime and compare with torch (1e-4).")] = True,
) -> None:
    """Export a model to ONNX: its tensor input to probabilities, dynamic batch and time axes."""
    from emofuse.export import export_onnx as export

    if out.suffix != ".onnx":
        _err(f"--out should name a .onnx file, not {out}")
        raise typer.Exit(2)
    result = _run(export, source, out, fold=fold, check=check)
    checked = f"; onnxruntime vs torch max abs difference {result.max_abs_diff:.1e}" if check else ""
    _console().print(f"{result.model} ({result.kind}) -> {result.path} and {result.sidecar.name}{checked}",
                     markup=False)


@app.command("evaluate")
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `emofuse train`.")],
    data: Annotated[list[str] | None, typer.Option("--data", help="NAME=PATH if the dataset has moved.")] = None,
    quiet: Quiet = False,
) -> None:
    """Re-score a saved run: reload each fold's model and predict its test set again."""
    from rich.table import Table

    from emofuse.training.experiment import evaluate_run

    rows = _run(evaluate_run, run_dir, data=_parse_data(data or []), progress=not quiet)
    table = Table(title=f"re-scored {run_dir}")
    for column in ("fold", "test", "WA", "UA", "macro-F1", "UA at training"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["fold"], str(r["n_test"]), f"{r['wa']:.3f}", f"{r['ua']:.3f}", f"{r['f1']:.3f}",
                      f"{r['stored_ua']:.3f}")
    _console().print(table)


@app.command("models")
def models() -> None:
    """List the models in the registry."""
    from rich.table import Table

    from emofuse.models import MODELS

    table = Table()
    for column in ("name", "modality", "what it is"):
        table.add_column(column)
    for name, spec in MODELS.items():
        table.add_row(name, spec.modality, spec.description)
    _console().print(table)


@app.command("study")
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

    study_config = _run(load_study_config, config, data_overrides=_parse_data(data or []))
    if plan:
        _print_study_plan(study_config, out, only=only or None, protocols=protocol or None)
        return
    command = " ".join(shlex.quote(str(a)) for a in ["emofuse", "study", config, "--out", out,
                                                     *(x for d in data or [] for x in ("--data", d)),
                                                     *(["--workers", workers] if workers else []),
                                                     *(x for o in only or [] for x in ("--only", o)),
                                                     *(x for p in protocol or [] for x in ("--protocol", p))])
    console = _console()
    outcome = _run(run_study, study_config, out, workers=workers, progress=not quiet, command=command,
                   log=lambda message: console.print(message, markup=False), only=only or None,
                   protocols=protocol or None)
    console.print(f"report: {outcome.report_md} and {outcome.report_html}")


def _print_study_plan(study_config: Any, out: Path, *, only: list[str] | None, protocols: list[str] | None) -> None:
    from rich.table import Table

    from emofuse._progress import format_duration
    from emofuse.study import plan_study

    planned = _run(plan_study, study_config, out, only=only, protocols=protocols)
    table = Table(title=f"{study_config.name} into {out}: the plan (nothing run)")
    for column in ("cell", "kind", "action", "folds done", "folds left", "time left (est.)"):
        table.add_column(column)
    for p in planned:
        resumes = dict(p.resumes_after)
        left = [f"{f} (after epoch {resumes[f]})" if f in resumes else f for f in p.folds_left]
        estimate = "?" if p.action == "train" and p.seconds_left is None else format_duration(p.seconds_left)
        table.add_row(f"{p.cell.entry} / {p.cell.protocol} / seed {p.cell.seed}", p.cell.kind, p.action,
                      ", ".join(p.folds_done) or "-", ", ".join(left) or "-", estimate)
    console = _console()
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


@app.command("transcribe")
def transcribe(
    paths: Annotated[list[Path], typer.Argument(help="Audio or video files.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per file (JSON lines).")] = False,
    model: Annotated[str, typer.Option(help="tiny.en, base, a CTranslate2 model folder, or a hub name "
                                            "(needs internet).")] = "tiny.en",
    beam_size: Annotated[int, typer.Option(help="Beam search width.")] = 5,
    vad: Annotated[bool, typer.Option(help="Skip non-speech with the Silero VAD faster-whisper bundles.")] = True,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto.")] = "cpu",
) -> None:
    """Speech to text, offline. A file that cannot be read is reported and skipped (exit 1 at the end)."""
    from emofuse.errors import EmofuseError
    from emofuse.speech import Transcriber

    transcriber = _run(Transcriber, model=model, beam_size=beam_size, vad=vad, device=device)
    console = _console()
    failed = 0
    for path in paths:
        try:
            result = transcriber.transcribe(path)
        except (EmofuseError, OSError) as exc:
            failed += 1
            if as_json:
                sys.stdout.write(json.dumps({"path": str(path), "status": "unreadable", "error": str(exc)}) + "\n")
            else:
                _err(f"{path}: {exc}")
            continue
        if as_json:
            sys.stdout.write(json.dumps({"path": str(path), **result.to_dict()}) + "\n")
        else:
            shown = result.text if result.status == "ok" else f"[{result.status}] {result.note}"
            console.print(f"{path}: {shown}", markup=False)
    if failed:
        raise typer.Exit(1)


@app.command("predict")
def predict(
    paths: Annotated[list[Path], typer.Argument(help="Audio files, images, videos, .txt files or folders (recursive).")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines on stdout: one per file (per window for video).")] = False,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="Also write one CSV row per file (per window for video).")] = None,
    voice_model: Annotated[Path | None, typer.Option(help="A saved voice model (or, with --runtime onnx, an exported .onnx) instead of the shipped one.")] = None,
    face_model: Annotated[Path | None, typer.Option(help="A saved face model (or, with --runtime onnx, an exported .onnx) instead of the shipped one.")] = None,
    words: Annotated[bool, typer.Option(help="Speech-to-text and the text model, when installed.")] = True,
    window: Annotated[float, typer.Option(help="Video: seconds per timeline window.")] = 2.0,
    hop: Annotated[float, typer.Option(help="Video: seconds between window starts.")] = 1.0,
    frame_rate: Annotated[float, typer.Option(help="Video: frames per second searched for faces.")] = 4.0,
    adapt_speaker: Annotated[bool, typer.Option(help="The audio files are one speaker's clips, in order: adapt the "
                                                     "voice model to them as they are heard.")] = False,
    batch_size: Annotated[int, typer.Option(help="Audio clips decoded and classified per batch (ray: files per actor call).")] = 32,
    engine: Annotated[Engine, typer.Option(help="local: in this process. ray: a Ray cluster's actor pool, results to --out.")] = Engine.local,
    out: Annotated[Path | None, typer.Option(help="Ray: folder for the result files; files already there are skipped.")] = None,
    address: Annotated[str | None, typer.Option(help="Ray: a running cluster (auto, ray://HOST:10001); default RAY_ADDRESS, else a local one.")] = None,
    workers: Annotated[int, typer.Option(help="Ray: model actors, one CPU (and a GPU share) each.")] = 2,
    output_format: Annotated[OutputFormat, typer.Option("--format", help="Ray: result file format.")] = OutputFormat.parquet,
    runtime: RuntimeOption = Runtime.torch,
    onnx_threads: Annotated[int | None, typer.Option(help="onnxruntime intra-op threads [default: one per core].")] = None,
    quiet: Quiet = False,
) -> None:
    """Emotion from files: voice, face and words, and the fused result. Bad files are reported, not fatal.

    PATHS may be glob patterns (quote them to let emofuse expand them, "clips/**/*.wav").
    """
    from emofuse.inference.batch import predict_files
    from emofuse.inference.predictor import Predictor, PredictorConfig
    from emofuse.inference.writers import CsvWriter, print_table, write_jsonl

    config = _run(PredictorConfig.from_dict, {"video_window_s": window, "video_hop_s": hop,
                                              "video_frame_rate_hz": frame_rate, "voice_batch_size": batch_size})
    if engine == Engine.ray:
        if adapt_speaker:
            _err("--adapt-speaker needs the clips in order, in one process: use --engine local")
            raise typer.Exit(2)
        if as_json or csv_path is not None:
            _err("--json and --csv are for --engine local; with --engine ray the results go to --out")
            raise typer.Exit(2)
        _predict_on_ray(paths, out, address=address, workers=workers, batch_size=batch_size,
                        output_format=output_format.value, voice_model=voice_model, face_model=face_model,
                        words=words, config=config, runtime=runtime.value, quiet=quiet)
        return
    if out is not None:
        _err("--out is for --engine ray; with --engine local use --json or --csv")
        raise typer.Exit(2)
    predictor = _run(Predictor.from_shipped, voice_dir=voice_model, face_dir=face_model, words=words, config=config,
                     runtime=runtime.value, onnx_threads=onnx_threads)
    results = _run(lambda: list(_predict_stream(predict_files(predictor, paths, progress=not quiet and not as_json,
                                                              transcribe=words, batch_size=batch_size,
                                                              adapt_speaker=adapt_speaker),
                                                as_json, csv_path, predictor, write_jsonl, CsvWriter)))
    if not as_json:
        print_table(results, _console())
    bad = [r for r in results if r.status != "ok"]
    for result in bad:
        _err(f"{result.path}: {result.problem or result.status}")
    if bad:  # every readable file was predicted; the exit code still says that some were not
        _err(f"{len(bad)} of {len(results)} file(s) could not be read")
        raise typer.Exit(1)


def _predict_on_ray(paths: list[Path], out: Path | None, *, address: str | None, workers: int, batch_size: int,
                    output_format: str, voice_model: Path | None, face_model: Path | None, words: bool, config: Any,
                    runtime: str, quiet: bool) -> None:
    from emofuse.inference.ray_engine import PredictorOptions, predict_with_ray

    if out is None:
        _err("--engine ray needs --out DIR for its result files")
        raise typer.Exit(2)
    options = PredictorOptions(voice_dir=str(voice_model) if voice_model else None,
                               face_dir=str(face_model) if face_model else None, words=words, config=config,
                               runtime=runtime)
    run = _run(predict_with_ray, paths, out, address=address, num_workers=workers, batch_size=batch_size,
               output_format=output_format, options=options, progress=not quiet)
    console = _console()
    console.print(f"{run.predicted} file(s) predicted, {run.skipped} already in {run.out_dir} skipped; "
                  f"{run.rows} row(s) in {len(run.written)} new {output_format} file(s), {run.seconds:.1f} s",
                  markup=False)
    for aside in run.set_aside:
        _err(f"{aside.name}: an unreadable result file (a run stopped while writing it?) was set aside; "
             "its files were predicted again")
    if run.unreadable:
        _err(f"{run.unreadable} of {run.predicted} file(s) could not be read (see the problem column)")
        raise typer.Exit(1)


def _predict_stream(results: Any, as_json: bool, csv_path: Path | None, predictor: Any, write_jsonl: Any,
                    csv_writer: Any) -> Any:
    """Results as they come, written to stdout (JSON lines) and/or the CSV file on the way."""
    from emofuse._io import atomic_write

    if as_json:
        results = write_jsonl(results, sys.stdout)
    if csv_path is None:
        yield from results
        return
    with atomic_write(csv_path, "w") as handle:
        writer = csv_writer(handle, predictor.label_sets())
        for result in results:
            writer.write(result)
            yield result


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to bind; 0.0.0.0 exposes the service to the network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Inference threads (requests beyond them wait).")] = 2,
    max_upload_mb: Annotated[float, typer.Option(help="Largest upload accepted, in MB (413 beyond).")] = 50.0,
    timeout: Annotated[float, typer.Option(help="Seconds one request may take before a 504.")] = 60.0,
    cors_origin: Annotated[list[str] | None, typer.Option(help="Allow this browser origin (CORS is off by default).")] = None,
    voice_model: Annotated[Path | None, typer.Option(help="A saved voice model (or, with --runtime onnx, an exported .onnx) instead of the shipped one.")] = None,
    face_model: Annotated[Path | None, typer.Option(help="A saved face model (or, with --runtime onnx, an exported .onnx) instead of the shipped one.")] = None,
    words: Annotated[bool, typer.Option(help="Speech-to-text and the text model, when installed.")] = True,
    runtime: RuntimeOption = Runtime.torch,
) -> None:
    """The web service and the live page at http://HOST:PORT/ (API docs at /docs)."""
    from emofuse.serving.app import run_server
    from emofuse.serving.settings import ServeSettings

    settings = _run(ServeSettings.from_dict, {
        "host": host, "port": port, "workers": workers, "max_upload_bytes": int(max_upload_mb * 1_000_000),
        "request_timeout_s": timeout, "cors_origins": list(cors_origin or []),
        "voice_model": str(voice_model) if voice_model else None,
        "face_model": str(face_model) if face_model else None, "words": words, "runtime": runtime.value})
    _run(run_server, settings)


@app.command("demo")
def demo(
    keep: Annotated[Path | None, typer.Option(help="Write the sample here and keep it.")] = None,
    pipeline_check: Annotated[bool, typer.Option(
        "--pipeline-check", help="Instead: generate a RAVDESS- and FER2013-format sample, load it, cut it with "
                                 "ravdess-6fold and score a baseline on it (the data foundation, no models).")] = False,
) -> None:
    """The shipped voice, face and words models and their fusion on a bundled photo, speech clip and video."""
    from emofuse.demo import run_demo, run_pipeline_check

    if pipeline_check:
        _run(run_pipeline_check, keep)
        return
    if _run(run_demo, keep):
        raise typer.Exit(1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
