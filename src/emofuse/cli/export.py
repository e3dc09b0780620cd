"""emofuse export onnx: saved models as ONNX graphs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emofuse.cli.common import err, guarded, stdout_console


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
        err(f"--out should name a .onnx file, not {out}")
        raise typer.Exit(2)
    result = guarded(export, source, out, fold=fold, check=check)
    checked = f"; onnxruntime vs torch max abs difference {result.max_abs_diff:.1e}" if check else ""
    stdout_console().print(f"{result.model} ({result.kind}) -> {result.path} and {result.sidecar.name}{checked}",
                     markup=False)
