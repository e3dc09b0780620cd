"""The ``emofuse`` command line: one module per command, thin (parse, call the library, print).

Commands are registered here, explicitly, in the order ``emofuse --help`` lists them. Library
imports happen inside each command, so ``emofuse --help`` stays instant.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from emofuse import __version__
from emofuse.cli import data, demo, evaluate, export, predict, score, serve, study, train

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

data_app.command("summary")(data.data_summary)
data_app.command("verify")(data.data_verify)
data_app.command("download")(data.data_download)
data_app.command("protocols")(data.data_protocols)
app.command("train")(train.train)
export_app.command("onnx")(export.export_onnx)
app.command("evaluate")(evaluate.evaluate)
app.command("score")(score.score)
app.command("models")(evaluate.models)
app.command("study")(study.study)
app.command("transcribe")(predict.transcribe)
app.command("predict")(predict.predict)
app.command("serve")(serve.serve)
app.command("demo")(demo.demo)


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


def main() -> None:
    app()


__all__ = ["app", "main"]
