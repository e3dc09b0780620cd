"""Gather a study's cells into the rows of its report (:class:`~emofuse.evaluation.report.ReportData`)."""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emofuse._io import write_json
from emofuse.evaluation.report import ReportData, ReportRow
from emofuse.study.config import FusionEntry, ModelEntry, StudyConfig


def _row(config: StudyConfig, entry_name: str, kind: str, protocol: str, cell_dirs: Sequence[Path]) -> ReportRow | None:
    """One row from every finished seed of an (entry, protocol): fold metrics over all folds of all
    seeds, the bootstrap interval over the pooled predictions."""
    from emofuse.data.protocols import get_protocol
    from emofuse.evaluation.metrics import compute_metrics, scores_from_confusion, summarize_folds

    fold_metrics, pooled_true, pooled_pred, fitted = [], [], [], []
    ua_per_fold: dict[str, float] = {}
    seconds, devices, commits, reused, seeds = 0.0, set(), set(), [], []
    labels: list[str] = []
    for cell_dir in cell_dirs:
        if not (cell_dir / "results.json").is_file():
            continue
        labels = json.loads((cell_dir / "labels.json").read_text())
        stored = json.loads((cell_dir / "config.json").read_text())
        seeds.append(stored["experiment"]["seed"])
        commits.add((cell_dir / "git_sha").read_text().strip())
        if "reused_from" in stored:
            reused.append(stored["reused_from"]["run_dir"])
        for fold_dir in sorted(p.parent for p in (cell_dir / "folds").glob("*/metrics.json")):
            with np.load(fold_dir / "predictions.npz", allow_pickle=False) as data:
                probs, y_true = data["probs"], data["y_true"]
            fold_metrics.append(compute_metrics(y_true, probs=probs, labels=labels))
            ua_per_fold[f"seed{stored['experiment']['seed']}/{fold_dir.name}"] = float(fold_metrics[-1].ua)
            pooled_true.append(y_true)
            pooled_pred.append(probs.argmax(axis=1))
            info = json.loads((fold_dir / "metrics.json").read_text())
            seconds += float(info.get("train_seconds", 0.0))
            if kind == "fusion" and (choice := _fitted_choice(fold_dir / "model")) is not None:
                fitted.append({"fold": fold_dir.name, "seed": stored["experiment"]["seed"], **choice})
            devices.add(str(info.get("device", "cpu")))
    if not fold_metrics:
        return None
    summary = summarize_folds(fold_metrics, pooled_true=np.concatenate(pooled_true),
                              pooled_pred=np.concatenate(pooled_pred), seed=0)
    f1 = scores_from_confusion(np.asarray(summary.confusion))["f1"]
    everything: list[ModelEntry | FusionEntry] = [*config.models, *config.fusions]
    entry = next(e for e in everything if e.name == entry_name)
    references = [{"metric": r.metric, "value": r.value, "source": r.source, "note": r.note}
                  for r in entry.references.get(protocol, [])]
    spec = get_protocol(protocol)
    return ReportRow(
        entry=entry_name, kind=kind, model=entry.model if isinstance(entry, ModelEntry) else entry.strategy,
        description=entry.description, protocol=protocol, dataset=spec.dataset, leaky=spec.leaky,
        seeds=sorted(seeds), n_folds=summary.n_folds, n_test=summary.n_test, labels=list(labels),
        wa_mean=summary.wa_mean, wa_std=summary.wa_std, ua_mean=summary.ua_mean, ua_std=summary.ua_std,
        f1_mean=summary.f1_mean, f1_std=summary.f1_std, ci95={k: list(v) for k, v in summary.ci95.items()},
        confusion=summary.confusion, per_class_f1={label: float(f1[i]) for i, label in enumerate(labels)},
        train_seconds=round(seconds, 1), device=", ".join(sorted(devices)), commits=sorted(commits),
        reused_from=reused, members=list(entry.members) if isinstance(entry, FusionEntry) else [], references=references,
        fitted=fitted, ua_per_fold=ua_per_fold)


def _fitted_choice(model_dir: Path) -> dict[str, Any] | None:
    """What a fitted fusion chose: its weights, and for stacking whether the stacker answers; None for
    a fusion that fits no weights (mean, product, max confidence)."""
    from emofuse.fusion import LateFusion, StackingFusion
    from emofuse.models import load_model

    if not (model_dir / "model.json").is_file():
        return None
    model = load_model(model_dir)  # checkpoints of earlier versions are read as the fusion reads them
    stacking = isinstance(model, StackingFusion)
    if not isinstance(model, LateFusion) or (not stacking and model.strategy != "weighted"):
        return None
    weights = np.asarray(model.weights_, dtype=np.float64)
    return {"weights": [round(float(w) / max(float(weights.sum()), 1e-12), 4) for w in weights],
            "stacker": bool(model.stacker_kept_) if stacking else None}


def collect_study(config: StudyConfig, out: Path, cells: Sequence[Any], *, paired: dict[str, Any] | None,
                  command: str) -> ReportData:
    """Rows for every (entry, protocol) with finished cells, in config order; writes ``study.json``."""
    from emofuse.evaluation.results import git_commit

    groups: dict[tuple[str, str, str], list[Path]] = {}
    for cell in cells:
        groups.setdefault((cell.entry, cell.kind, cell.protocol), []).append(cell.dir)
    rows = [row for (entry, kind, protocol), dirs in groups.items()
            if (row := _row(config, entry, kind, protocol, dirs)) is not None]
    everything: list[ModelEntry | FusionEntry] = [*config.models, *config.fusions]
    disabled = [{"entry": e.name, "what": getattr(e, "model", "") or getattr(e, "strategy", ""),
                 "description": e.description} for e in everything if not e.enabled]
    data = ReportData(
        name=config.name, description=config.description, notes=list(config.notes), command=command,
        commit=git_commit(), created=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        rows=rows, disabled=disabled, paired=paired,
        paired_config=None if config.paired is None else {
            "voice": config.paired.voice, "face": config.paired.face, "voice_protocol": config.paired.voice_protocol,
            "face_protocol": config.paired.face_protocol, "pairings": config.paired.pairings,
            "missing_face": config.paired.missing_face, "missing_voice": config.paired.missing_voice})
    write_json(out / "study.json", {"config": config.to_dict(), **data.to_dict()})
    return data
