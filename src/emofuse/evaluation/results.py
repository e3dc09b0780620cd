"""The one results format every benchmark writes under ``benchmarks/results/``.

A results file is a JSON list of records, one per (dataset, protocol, model[, variant]). The
format is documented in ``docs/results-format.md``; :data:`REQUIRED_FIELDS` is what a reader may
rely on, and :func:`read_results` refuses a file that lacks any of it.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from emofuse._io import write_json
from emofuse.errors import EmofuseError
from emofuse.evaluation.metrics import FoldSummary, Metrics

FORMAT_VERSION = 1
REQUIRED_FIELDS = (
    "dataset", "protocol", "model", "ua_mean", "ua_std", "wa_mean", "wa_std", "f1_mean",
    "folds", "n_test", "device", "train_seconds", "commit",
)


class ResultsFormatError(EmofuseError):
    """A results file that does not follow the documented format."""


@dataclass(frozen=True)
class FoldResult:
    """One fold's test scores, as stored in a record's ``folds`` list."""

    fold: str
    n_test: int
    wa: float
    ua: float
    f1: float
    ece: float | None = None

    @classmethod
    def from_metrics(cls, fold: str, metrics: Metrics) -> FoldResult:
        return cls(fold=fold, n_test=metrics.n, wa=metrics.wa, ua=metrics.ua, f1=metrics.macro_f1, ece=metrics.ece)


@dataclass(frozen=True)
class ResultRecord:
    """One model on one dataset under one protocol. Scores are fractions in [0, 1]."""

    dataset: str
    protocol: str
    model: str
    ua_mean: float
    ua_std: float
    wa_mean: float
    wa_std: float
    f1_mean: float
    folds: list[FoldResult]
    n_test: int
    device: str
    train_seconds: float
    commit: str
    f1_std: float = 0.0
    weighted_f1_mean: float | None = None
    ece_mean: float | None = None
    ci95: dict[str, list[float]] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)
    leaky: bool = False
    variant: str = ""
    seed: int | None = None
    notes: str = ""
    format_version: int = FORMAT_VERSION

    @classmethod
    def from_summary(
        cls,
        *,
        dataset: str,
        protocol: str,
        model: str,
        summary: FoldSummary,
        folds: Sequence[FoldResult],
        labels: Sequence[str],
        device: str,
        train_seconds: float,
        leaky: bool = False,
        commit: str | None = None,
        **extra: Any,
    ) -> ResultRecord:
        return cls(
            dataset=dataset, protocol=protocol, model=model,
            ua_mean=summary.ua_mean, ua_std=summary.ua_std, wa_mean=summary.wa_mean, wa_std=summary.wa_std,
            f1_mean=summary.f1_mean, f1_std=summary.f1_std, weighted_f1_mean=summary.weighted_f1_mean,
            ece_mean=summary.ece_mean, ci95={k: list(v) for k, v in summary.ci95.items()},
            folds=list(folds), n_test=summary.n_test, labels=list(labels), confusion=summary.confusion,
            device=device, train_seconds=train_seconds, leaky=leaky,
            commit=commit if commit is not None else git_commit(), **extra,
        )

    def key(self) -> tuple[str, str, str, str]:
        return (self.dataset, self.protocol, self.model, self.variant)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, obj: dict[str, Any], *, where: str = "") -> ResultRecord:
        missing = [f for f in REQUIRED_FIELDS if f not in obj]
        if missing:
            raise ResultsFormatError(f"{where}: record lacks required field(s) {', '.join(missing)}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(obj) - known)
        if unknown:
            raise ResultsFormatError(f"{where}: unknown field(s) {', '.join(unknown)}")
        data = dict(obj)
        data["folds"] = [FoldResult(**f) for f in obj["folds"]]
        return cls(**data)


def git_commit(cwd: str | Path | None = None) -> str:
    """The current git commit (with ``-dirty`` when the tree has changes), or ``unknown``."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                             cwd=cwd, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, check=True, cwd=cwd, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def read_results(path: str | Path) -> list[ResultRecord]:
    """Read and validate a results file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ResultsFormatError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, list):
        raise ResultsFormatError(f"{path}: a results file is a JSON list of records")
    return [ResultRecord.from_dict(obj, where=f"{path} record {i}") for i, obj in enumerate(data)]


def write_results(path: str | Path, records: Iterable[ResultRecord], *, merge: bool = True) -> list[ResultRecord]:
    """Write records atomically. With ``merge``, records already in the file are kept unless a new
    record has the same (dataset, protocol, model, variant), which replaces it."""
    path = Path(path)
    new = list(records)
    existing = read_results(path) if merge and path.exists() else []
    by_key = {r.key(): r for r in existing}
    for record in new:
        by_key[record.key()] = record
    merged = list(by_key.values())
    write_json(path, [r.to_dict() for r in merged])
    return merged
