"""emofuse demo: the shipped models on a bundled sample."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emofuse.cli.common import guarded


def demo(
    keep: Annotated[Path | None, typer.Option(help="Write the sample here and keep it.")] = None,
    pipeline_check: Annotated[bool, typer.Option(
        "--pipeline-check", help="Instead: generate a RAVDESS- and FER2013-format sample, load it, cut it with "
                                 "ravdess-6fold and score a baseline on it (the data foundation, no models).")] = False,
) -> None:
    """The shipped voice, face and words models and their fusion on a bundled photo, speech clip and video."""
    from emofuse.demo import run_demo, run_pipeline_check

    if pipeline_check:
        guarded(run_pipeline_check, keep)
        return
    if guarded(run_demo, keep):
        raise typer.Exit(1)
