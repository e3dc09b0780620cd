"""Score a saved or shipped model on any labelled dataset emofuse can load: what a user runs before
trusting emofuse on their own data, and how any corpus becomes a cross-corpus test.

Labels on both sides are canonical names of the one taxonomy (:mod:`emofuse.labels`), so a
dataset's ``Happiness`` folder and a model's ``happy`` column already meet. A sample whose class
the model has no column for (a ``calm`` clip for a FER-7 face model) cannot be scored: it is
counted per class in ``excluded`` and left out of every metric, never dropped silently.

:func:`score_model` returns a :class:`ScoreResult`; :func:`write_score` writes it as
``score.json`` (a results-format record plus what was excluded), ``confusion.png`` and
``report.md``, into a folder that appears only once everything is written.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emofuse.errors import EmofuseError

# The registry's modality names for each kind of dataset.
DATASET_MODALITY = {"audio": "voice", "image": "face", "text": "words"}  # kind of data -> model modality


class ScoreError(EmofuseError):
    """The model cannot be scored on this dataset (modality, labels, nothing left to score)."""


@dataclass(frozen=True)
class ScoreResult:
    model: str  # registry name
    source: str  # where the model came from
    dataset: str
    split: str | None
    labels: tuple[str, ...]  # the model's columns, the metrics' label order
    n_total: int
    excluded: dict[str, int]  # class the model lacks -> samples left out
    metrics: Any  # emofuse.evaluation.metrics.Metrics over the scored samples
    adapted_to_speakers: bool
    seconds: float
    probabilities: np.ndarray = field(repr=False)  # (n scored, len(labels))
    paths: list[str] = field(repr=False, default_factory=list)


def model_modality(model: Any) -> str:
    from emofuse.models import MODELS

    spec = MODELS.get(model.name)
    if spec is None:
        raise ScoreError(f"{model.name!r} is not a registry model")
    return spec.modality


def score_model(model: Any, dataset: Any, *, source: str = "", split: str | None = None,
                adapt_speaker: bool = False) -> ScoreResult:
    """Predict ``dataset`` (or its ``split``) with ``model`` and score it against the dataset's labels."""
    from emofuse.evaluation.metrics import compute_metrics

    modality = model_modality(model)
    if modality == "fusion":
        raise ScoreError(f"{model.name} is a fusion model: score its members, or a study, instead")
    if DATASET_MODALITY.get(dataset.modality) != modality:
        raise ScoreError(f"{model.name} is a {modality} model; {dataset.name} holds {dataset.modality} data")
    indices = np.arange(len(dataset.samples))
    if split is not None:
        indices = np.array([i for i, s in enumerate(dataset.samples) if s.split == split], dtype=np.int64)
        if not len(indices):
            known = ", ".join(dataset.split_counts()) or "none"
            raise ScoreError(f"{dataset.name} has no samples in split {split!r} (its splits: {known})")
    labels = tuple(model.labels_)
    column = {label: i for i, label in enumerate(labels)}
    excluded: dict[str, int] = {}
    kept = []
    for i in indices:
        label = dataset.samples[i].label
        if label in column:
            kept.append(int(i))
        else:
            excluded[label] = excluded.get(label, 0) + 1
    if not kept:
        raise ScoreError(f"none of {dataset.name}'s labels ({', '.join(sorted(excluded))}) is one of "
                         f"{model.name}'s classes ({', '.join(labels)}): nothing to score")
    keep = np.array(kept, dtype=np.int64)
    inputs = dataset.model_inputs()
    X = inputs[keep] if isinstance(inputs, np.ndarray) else [inputs[i] for i in keep]
    started = time.perf_counter()
    if adapt_speaker:
        probs = _speaker_adapted(model, dataset, keep, X)
    else:
        probs = np.asarray(model.predict_proba(X), dtype=np.float64)
    y_true = np.array([column[dataset.samples[i].label] for i in keep], dtype=np.int64)
    return ScoreResult(model=model.name, source=source, dataset=dataset.name, split=split, labels=labels,
                       n_total=len(indices), excluded=excluded,
                       metrics=compute_metrics(y_true, probs=probs, labels=labels),
                       adapted_to_speakers=adapt_speaker, seconds=time.perf_counter() - started,
                       probabilities=probs, paths=[dataset.samples[i].path for i in keep])


def _speaker_adapted(model: Any, dataset: Any, keep: np.ndarray, X: Any) -> np.ndarray:
    """Each speaker's samples heard one by one in dataset order, scored as ``predict --adapt-speaker`` does."""
    if not getattr(model, "adapts_to_speakers", False):
        raise ScoreError(f"{model.name} has no speaker-adapted head: --adapt-speaker needs one "
                         "(the shipped voice model has it)")
    speakers = [dataset.samples[i].speaker for i in keep]
    if any(s is None for s in speakers):
        raise ScoreError(f"{dataset.name} does not name a speaker for every sample: --adapt-speaker needs them")
    probs = np.zeros((len(keep), len(model.labels_)))
    for speaker in sorted(set(speakers)):
        rows = [j for j, s in enumerate(speakers) if s == speaker]
        clips = X[rows] if isinstance(X, np.ndarray) else [X[j] for j in rows]
        speaker_probs, _ = model.predict_proba_for_speaker(clips, model.new_speaker())
        probs[rows] = speaker_probs
    return probs


def write_score(result: ScoreResult, out: str | Path) -> Path:
    """``score.json``, ``confusion.png`` and ``report.md`` in ``out`` (created whole, or not at all)."""
    from emofuse._io import write_json
    from emofuse.evaluation.plots import confusion_grid

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ScoreError(f"{out} exists and is not empty; choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        m = result.metrics
        write_json(staging / "score.json", {
            "record": _record(result).to_dict(), "model": result.model, "source": result.source,
            "dataset": result.dataset, "split": result.split, "n_total": result.n_total, "n_scored": m.n,
            "excluded": result.excluded, "adapted_to_speakers": result.adapted_to_speakers,
            "metrics": m.to_dict(), "seconds": round(result.seconds, 2),
        })
        (staging / "confusion.png").write_bytes(confusion_grid(
            {result.model: m.confusion}, {result.model: result.labels},
            title=f"{result.model} on {result.dataset}{f' ({result.split})' if result.split else ''}", columns=1))
        (staging / "report.md").write_text(render_score(result), encoding="utf-8")
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def _record(result: ScoreResult) -> Any:
    from emofuse.evaluation.results import FoldResult, ResultRecord, git_commit

    m = result.metrics
    fold = FoldResult.from_metrics(result.split or "all", m)
    return ResultRecord(dataset=result.dataset, protocol=f"score:{result.split or 'all'}", model=result.model,
                        ua_mean=m.ua, ua_std=0.0, wa_mean=m.wa, wa_std=0.0, f1_mean=m.macro_f1, folds=[fold],
                        n_test=m.n, device="cpu", train_seconds=0.0, commit=git_commit(),
                        weighted_f1_mean=m.weighted_f1, ece_mean=m.ece, labels=list(result.labels),
                        confusion=m.confusion, variant="speaker-adapted" if result.adapted_to_speakers else "",
                        notes=f"emofuse score {result.source}")


def render_score(result: ScoreResult) -> str:
    """A short Markdown report: headline metrics, what was left out, per class, where to look."""
    m = result.metrics
    where = f"{result.dataset}{f' ({result.split})' if result.split else ''}"
    lines = [f"# {result.model} on {where}", "",
             f"Model: `{result.source or result.model}`. Scored {m.n} of {result.n_total} samples"
             + (" (each speaker's clips heard in order, speaker-adapted)" if result.adapted_to_speakers else "")
             + ".", ""]
    if result.excluded:
        lines += ["Left out (the model has no column for these classes): "
                  + ", ".join(f"{label} {n}" for label, n in sorted(result.excluded.items())) + ".", ""]
    lines += ["| metric | value |", "|---|---|",
              f"| UA (mean recall over classes present) | {100 * m.ua:.1f} % |",
              f"| WA (accuracy) | {100 * m.wa:.1f} % |", f"| macro-F1 | {100 * m.macro_f1:.1f} % |",
              f"| weighted-F1 | {100 * m.weighted_f1:.1f} % |",
              f"| ECE (15 bins) | {m.ece:.3f} |" if m.ece is not None else "| ECE | n/a |", "",
              "| class | recall | precision | F1 | support |", "|---|---|---|---|---|"]
    for label, c in m.per_class.items():
        if c.support:
            lines.append(f"| {label} | {100 * c.recall:.1f} % | {100 * c.precision:.1f} % | {100 * c.f1:.1f} % | "
                         f"{c.support} |")
    never = [label for label, c in m.per_class.items() if not c.support]
    if never:
        lines += ["", f"Model classes absent from the data (predicting them is always wrong): {', '.join(never)}."]
    lines += ["", "![confusion](confusion.png)", ""]
    return "\n".join(lines)
