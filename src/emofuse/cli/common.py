"""What every command shares: option types, printing, and turning library errors into exit codes.

Exit codes: 0 when every input was read, 1 when a library error stopped the work or an input could
not be read (each reported on stderr, the rest processed), 2 for usage errors.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Annotated, Any

import typer


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

SkipBad = Annotated[bool, typer.Option("--skip-bad", help="Go on past bad files and list them, instead of stopping.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]


def err(message: str) -> None:
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[bold red]error:[/] {escape(message)}")


def warn(message: str) -> None:
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[bold yellow]warning:[/] {escape(message)}")


def stdout_console() -> Any:
    """Console for stdout; soft-wrapped so long file paths stay on one line (greppable, copyable)."""
    from rich.console import Console

    return Console(soft_wrap=True, highlight=False)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


def guarded(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call library code; a user-facing error becomes one clear line and exit code 1."""
    from emofuse.errors import EmofuseError

    try:
        return fn(*args, **kwargs)
    except EmofuseError as exc:
        err(str(exc))
        raise typer.Exit(1) from None


def parse_data(items: list[str]) -> dict[str, str]:
    data = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            err(f"--data takes NAME=PATH (e.g. ravdess=data/ravdess), not {item!r}")
            raise typer.Exit(2)
        data[name] = path
    return data
