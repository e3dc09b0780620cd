"""emofuse score: a saved or shipped model on any labelled dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emofuse.cli.common import err, guarded, parse_data, stdout_console, warn


def score(
    model: Annotated[str, typer.Argument(help="voice, face or text (the shipped models), or a saved model folder.")],
    data: Annotated[str, typer.Option("--data", help="KIND=PATH: ravdess, fer2013, meld, carer, folder, manifest "
                                                     "or custom, and where it is.")],
    split: Annotated[str | None, typer.Option(help="Only this split of the dataset (e.g. PrivateTest, test).")] = None,
    adapt_speaker: Annotated[bool, typer.Option(help="Hear each speaker's clips in order, adapting the voice "
                                                     "model to them (needs speakers in the data).")] = False,
    out: Annotated[Path | None, typer.Option(help="Folder for score.json, confusion.png and report.md "
                                                  "[default: runs/score/MODEL-KIND].")] = None,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Score the readable samples; list the others.")] = False,
) -> None:
    """How well a model does on your labelled data: UA, WA, F1, per class, confusion, calibration (ECE).

    Labels are mapped through emofuse's taxonomy; a class the model has no column for is reported
    and left out of the metrics.
    """
    from emofuse.data import load_dataset
    from emofuse.models import load_model
    from emofuse.models.shipped import SHIPPED, shipped_model_dir
    from emofuse.study.scoring import score_model, write_score

    ((kind, path),) = parse_data([data]).items()
    if model in SHIPPED:
        folder = shipped_model_dir(model)
        if folder is None:
            err(f"no shipped {model} model in this install")
            raise typer.Exit(1)
    else:
        folder = Path(model)
    loaded = guarded(load_model, folder)
    dataset = guarded(load_dataset, kind, path, skip_bad=skip_bad, progress=True)
    result = guarded(score_model, loaded, dataset, source=str(model), split=split, adapt_speaker=adapt_speaker)
    target = out or Path("runs") / "score" / f"{Path(model).name}-{kind}{f'-{split}' if split else ''}"
    guarded(write_score, result, target)
    m = result.metrics
    console = stdout_console()
    console.print(f"{result.model} on {result.dataset}{f' ({split})' if split else ''}: {m.n} of {result.n_total} "
                  f"samples scored; UA {100 * m.ua:.1f} %, WA {100 * m.wa:.1f} %, macro-F1 {100 * m.macro_f1:.1f} %, "
                  f"ECE {m.ece:.3f}")
    for label, n in sorted(result.excluded.items()):
        warn(f"{n} sample(s) labelled {label} left out: {result.model} has no {label} class")
    for bad in dataset.bad_files:
        err(f"{bad.path}: {bad.problem}")
    console.print(f"report: {target / 'report.md'}")
    if dataset.bad_files:
        raise typer.Exit(1)
