"""Output of ``emofuse predict``: rows (one per file, one per window for a video), as JSON lines, CSV
or a table. Every row has each modality's status, label, confidence and probabilities, and the fused one.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any

from emofuse.inference.results import MODALITIES, FileResult, Prediction

COLUMNS = (*MODALITIES, "fused")


def rows(result: FileResult) -> Iterator[dict[str, Any]]:
    """Plain dicts: ``path, kind, status, problem, start_s, end_s, voice, face, words, fused``."""
    base = {"path": result.path, "kind": result.kind, "status": result.status, "problem": result.problem}
    if result.video is not None:
        for window in result.video.windows:
            yield {**base, **_prediction_fields(window), "start_s": window.start_s, "end_s": window.end_s}
        return
    yield {**base, "start_s": None, "end_s": None, **_prediction_fields(result.prediction)}


def _prediction_fields(prediction: Prediction | None) -> dict[str, Any]:
    if prediction is None:
        unreadable: dict[str, Any] = {"status": "unreadable", "label": None, "confidence": None, "probabilities": {}}
        return {name: dict(unreadable) for name in COLUMNS}
    out = {name: r.to_dict() for name, r in prediction.modalities.items()}
    out["fused"] = prediction.fused.to_dict()
    return out


def write_jsonl(results: Iterable[FileResult], stream: IO[str]) -> Iterator[FileResult]:
    """Write each result's rows as JSON lines as they come; yields the results on."""
    for result in results:
        for row in rows(result):
            stream.write(json.dumps(row) + "\n")
        stream.flush()
        yield result


def flat_columns(label_sets: Mapping[str, tuple[str, ...]]) -> list[str]:
    """The flat table's columns: ``path, kind, status, problem, start_s, end_s``, then per modality and
    fused ``{name}_status, {name}_label, {name}_confidence, {name}_uncertain, {name}_p_{label}...``, then
    ``words_text``."""
    header = ["path", "kind", "status", "problem", "start_s", "end_s"]
    for name in COLUMNS:
        header += [f"{name}_status", f"{name}_label", f"{name}_confidence", f"{name}_uncertain"]
        header += [f"{name}_p_{label}" for label in label_sets.get(name, ())]
    header.append("words_text")
    return header


def flat_rows(result: FileResult, label_sets: Mapping[str, tuple[str, ...]]) -> Iterator[dict[str, Any]]:
    """:func:`rows` flattened to :func:`flat_columns`, values unformatted (``None`` where there is none)."""
    for row in rows(result):
        flat: dict[str, Any] = {k: row[k] for k in ("path", "kind", "status", "problem", "start_s", "end_s")}
        for name in COLUMNS:
            m = row[name]
            flat[f"{name}_status"] = m["status"]
            flat[f"{name}_label"] = m["label"]
            flat[f"{name}_confidence"] = m["confidence"]
            flat[f"{name}_uncertain"] = m.get("uncertain", False) if m["status"] == "ok" else None
            for label in label_sets.get(name, ()):
                flat[f"{name}_p_{label}"] = m["probabilities"].get(label)
        flat["words_text"] = row["words"].get("text")
        yield flat


class CsvWriter:
    """One CSV row per file (or video window); probability columns follow each modality's label set."""

    def __init__(self, stream: IO[str], label_sets: Mapping[str, tuple[str, ...]]) -> None:
        self.label_sets = {name: tuple(label_sets.get(name, ())) for name in COLUMNS}
        self.writer = csv.DictWriter(stream, fieldnames=flat_columns(self.label_sets), extrasaction="raise")
        self.stream = stream
        self.writer.writeheader()

    def write(self, result: FileResult) -> None:
        for flat in flat_rows(result, self.label_sets):
            for key, value in flat.items():
                if key.endswith("_confidence") or "_p_" in key:
                    flat[key] = "" if value is None else f"{value:.4f}"
                elif key.endswith(("_label", "_text")):
                    flat[key] = value or ""
            self.writer.writerow(flat)
        self.stream.flush()


def summary_cell(m: Mapping[str, Any]) -> str:
    """``happy 0.82`` for an answer (``uncertain: happy 0.31`` below the model's threshold), the status otherwise."""
    if m["status"] == "ok":
        answer = f"{m['label']} {m['confidence']:.2f}"
        return f"uncertain: {answer}" if m.get("uncertain") else answer
    return m["status"]


def print_table(results: Iterable[FileResult], console: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(show_lines=False)
    for column in ("file", "time", *COLUMNS, "note"):
        table.add_column(column, overflow="fold")
    for result in results:
        for row in rows(result):
            when = "" if row["start_s"] is None else f"{row['start_s']:.1f}-{row['end_s']:.1f} s"
            cells = [summary_cell(row[name]) for name in COLUMNS]
            note = row["problem"] or (row["words"].get("text") or "")
            table.add_row(escape(row["path"]), when, *cells, escape(note))
    console.print(table)
