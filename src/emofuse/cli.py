"""The ``emofuse`` command line. Thin: it parses, calls the library, and prints.

Library imports happen inside each command, so ``emofuse --help`` stays instant.
"""

from __future__ import annotations

import json
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


class DatasetName(StrEnum):
    ravdess = "ravdess"
    fer2013 = "fer2013"
    folder = "folder"
    manifest = "manifest"
    custom = "custom"


class DownloadName(StrEnum):
    ravdess = "ravdess"
    fer2013 = "fer2013"


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
) -> None:
    """emofuse: emotion from voice, words and face."""


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


@app.command("demo")
def demo(
    keep: Annotated[Path | None, typer.Option(help="Write the generated sample here and keep it.")] = None,
) -> None:
    """Generate a small RAVDESS- and FER2013-format sample and show what emofuse sees in it."""
    from emofuse.demo import run_demo

    _run(run_demo, keep)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
