"""emofuse data: get, inspect and check datasets."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from emofuse.cli.common import (
    DatasetName,
    DownloadName,
    Quiet,
    SkipBad,
    err,
    guarded,
    print_json,
    stdout_console,
)


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

    dataset = guarded(load_dataset, name.value, path, skip_bad=skip_bad, progress=not quiet)
    summary = summarize(dataset, duplicates=duplicates, progress=not quiet)
    if as_json:
        print_json(summary)
    else:
        _print_summary(summary)


def _print_summary(summary: dict[str, Any]) -> None:
    from rich.table import Table

    console = stdout_console()
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

    dataset = guarded(load_dataset, name.value, path, skip_bad=True, progress=not quiet)
    report = verify(dataset, progress=not quiet)
    if as_json:
        print_json(report.to_dict())
    else:
        console = stdout_console()
        console.print(f"{report.files} files, {report.decoded} decoded cleanly, "
                      f"{report.checksums_checked} checksums checked")
        for bad in report.bad:
            console.print(f"  [red]bad[/] {bad.path}: {bad.problem}", highlight=False)
        for missing in report.missing:
            console.print(f"  [red]missing[/] {missing}", highlight=False)
        console.print("[green]OK[/]" if report.ok else f"[red]{len(report.bad) + len(report.missing)} problem(s)[/]")
    if not report.ok:
        raise typer.Exit(1)


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
        root = guarded(fetch_fer2013, to, source=source)
    else:
        parts = tuple(part or ["speech"])
        archives = None
        if url is None and (md5 or sha256):
            err("--md5/--sha256 check the file at --url; without --url the official checksums are used")
            raise typer.Exit(2)
        if url is not None:
            if md5 is None and sha256 is None:
                err("--url needs --md5 or --sha256: a download is only accepted when its checksum matches")
                raise typer.Exit(2)
            if len(parts) != 1:
                err("--url replaces one part; give exactly one --part")
                raise typer.Exit(2)
            base = RAVDESS_ARCHIVES.get(parts[0])
            file_name = base.name if base else Path(url.split("?")[0]).name
            archives = {parts[0]: Archive(name=file_name, url=url, md5=md5, sha256=sha256)}
        root = guarded(fetch_ravdess, to, parts=parts, source=source, archives=archives,
                    keep_archive=keep_archive, progress=not quiet)
    dataset = guarded(load_dataset, name.value, root, skip_bad=True, progress=not quiet)
    console = stdout_console()
    console.print(f"[green]{name.value}[/] ready at {root}: {len(dataset)} samples, "
                  f"{len(dataset.speakers())} speakers, labels {dataset.label_counts()}", highlight=False)
    if dataset.bad_files:
        console.print(f"[yellow]{len(dataset.bad_files)} unusable file(s); "
                      f"see `emofuse data verify {name.value} {root}`[/]")


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
    stdout_console().print(table)
