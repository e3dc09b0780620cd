"""Per-fold numbers of study cells, as one JSON file: what a device run brings back, kept in results.

    python benchmarks/study_cells.py runs/study-best --device-only --out benchmarks/results/study_best_gpu_cells.json

Reads every ``cells/<protocol>/<entry>/seed<k>`` under each study folder given: each finished fold's
metrics (WA, UA, macro-F1, training seconds, the device it trained on, best epoch and epochs run, from
``log.jsonl``) and, where the cell is finished, its summary. A fold still in training has no metrics and
is listed as unfinished. ``--device-only`` keeps only the cells whose folds trained on a GPU.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def fold_record(fold: Path) -> dict[str, Any]:
    log = fold / "log.jsonl"
    epochs = sum(1 for line in log.read_text().splitlines() if line.strip()) if log.is_file() else None
    metrics_path = fold / "metrics.json"
    if not metrics_path.is_file():
        return {"fold": fold.name, "finished": False, "epochs_run": epochs}
    m = json.loads(metrics_path.read_text())
    return {"fold": fold.name, "finished": True, "wa": round(100 * m["wa"], 2), "ua": round(100 * m["ua"], 2),
            "macro_f1": round(100 * m["macro_f1"], 2) if "macro_f1" in m else None,
            "train_seconds": round(m.get("train_seconds") or 0.0, 1), "device": m.get("device"),
            "best_epoch": m.get("best_epoch"), "epochs_run": epochs}


def cell_record(cell: Path) -> dict[str, Any]:
    protocol, entry, seed = cell.parts[-3], cell.parts[-2], cell.parts[-1]
    record: dict[str, Any] = {"protocol": protocol, "entry": entry, "seed": seed,
                              "folds": [fold_record(f) for f in sorted((cell / "folds").glob("*")) if f.is_dir()]}
    results = cell / "results.json"
    if results.is_file():
        r = json.loads(results.read_text())[0]
        record["summary"] = {k: round(100 * r[k], 2) for k in ("wa_mean", "wa_std", "ua_mean", "ua_std") if k in r}
    return record


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("studies", nargs="+", type=Path, help="study folders (emofuse study --out)")
    parser.add_argument("--device-only", action="store_true", help="only cells trained on a GPU")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    studies = []
    for study in args.studies:
        cells = [cell_record(c) for c in sorted(study.glob("cells/*/*/seed*")) if (c / "folds").is_dir()]
        if args.device_only:
            cells = [c for c in cells if any("cuda" in str(f.get("device")) for f in c["folds"])]
        if not cells:
            parser.error(f"{study}: no study cells with folds there (expected cells/<protocol>/<entry>/seed<k>/folds)")
        studies.append({"study": str(study), "cells": cells})
    args.out.write_text(json.dumps({"benchmark": "study_cells", "studies": studies}, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
