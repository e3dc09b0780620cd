"""How the ways of fitting a fusion on validation data fare on test, from finished study folders.

    python benchmarks/fusion_objectives.py runs/study-whisper-encoders runs/study-random-voice-cpu \
        runs/study-reference-fusion

For every member set given (``--set a,b,...``; the defaults are the sets of the three studies named
above) and every protocol on which all its members finished, each fusion below is fitted per fold on
the members' stored validation predictions, exactly as ``emofuse study`` fits it (the validation
speakers as groups where test speakers are new), and scored on their test predictions:

- ``mean``: the members' temperature-scaled probabilities averaged (nothing fitted but temperatures);
- ``weighted_nll``: weights minimising the NLL (the ``fusion_weighted`` default);
- ``weighted_ua``: weights maximising UA with the one-standard-error rule (the earlier default);
- ``stacking``: the stacker, with its fallback to the NLL-weighted average;
- ``nll_or_equal`` (a candidate rule, not a fusion of the registry): the NLL weights only where they
  beat equal weights in NLL on the validation samples by more than one bootstrap standard error
  (speakers resampled where test speakers are new), else equal weights.

Every member's own test UA is written beside them, and each fusion's gap to the best member (in UA
points, mean over folds). Nothing is trained; a study's fusion cells are not touched. Writes
``benchmarks/results/fusion_objectives.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).parent / "results" / "fusion_objectives.json"
DEFAULT_SETS = (
    ("whisper_plus_tiny", "whisper_plus_base"),
    ("voice_whisper_plus", "whisper_plus_tiny", "whisper_plus_base"),
    ("voice_whisper_plus", "whisper_plus_base"),
    ("voice_whisper_plus", "voice_crnn"),
    ("whisper_plus_tiny", "voice_crnn"),
    ("whisper_plus_tiny", "whisper_plus_base", "voice_crnn"),
    ("voice_whisper_plus", "whisper_plus_tiny", "whisper_plus_base", "voice_crnn"),
    ("voice_whisper_plus", "voice_whisper_attn", "voice_whisper_mfcc"),
    ("voice_whisper_plus", "voice_cnn1d", "voice_gru", "voice_lstm"),
    ("voice_whisper_plus", "voice_whisper_attn", "voice_whisper_mfcc", "voice_cnn1d", "voice_gru", "voice_lstm"),
    ("mel_cnn", "mel_cnn_aug"),
    ("mel_cnn", "mel_cnn_aug", "text_bigru", "text_transformer"),
)
FUSIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "mean": ("fusion_mean", {}),
    "weighted_nll": ("fusion_weighted", {"objective": "nll"}),
    "weighted_ua": ("fusion_weighted", {"objective": "ua"}),
    "stacking": ("fusion_stacking", {}),
}


def member_cells(studies: list[Path], members: tuple[str, ...]) -> dict[str, dict[str, Path]]:
    """protocol -> member -> cell folder, for the protocols where every member has a finished cell."""
    found: dict[str, dict[str, Path]] = {}
    for study in studies:
        for cell in sorted(study.glob("cells/*/*/seed0")):
            protocol, entry = cell.parts[-3], cell.parts[-2]
            if entry in members and (cell / "results.json").is_file():
                found.setdefault(protocol, {})[entry] = cell
    return {p: cells for p, cells in found.items() if set(cells) == set(members)}


def evaluate(cells: dict[str, Path], members: tuple[str, ...]) -> dict[str, Any]:
    from emofuse.evaluation.metrics import ua_score
    from emofuse.fusion import create_fusion
    from emofuse.labels import shared_label_set
    from emofuse.study.cells import StudyError
    from emofuse.study.fusion_cells import fusion_fold, load_fold_predictions

    first = json.loads((cells[members[0]] / "config.json").read_text())
    labels_of = {m: tuple(json.loads((cells[m] / "labels.json").read_text())) for m in members}
    labels = shared_label_set(*labels_of.values())
    folds = sorted(set.intersection(*({p.parent.name for p in (cells[m] / "folds").glob("*/metrics.json")}
                                      for m in members)))
    scores: dict[str, list[float]] = {name: [] for name in (*members, *FUSIONS, "nll_or_equal")}
    for fold in folds:
        try:
            data = fusion_fold(cells, members, labels_of, labels, fold, protocol=first["protocol"])
        except StudyError as err:
            raise SystemExit(str(err)) from None
        y_test = np.array([labels.index(v) for v in data.truth["test"]])
        for m in members:
            own = load_fold_predictions(cells[m], fold, split="test")
            scores[m].append(100 * ua_score(own["y_true"], own["probs"], len(labels_of[m])))
        for name, (strategy, params) in FUSIONS.items():
            model = create_fusion(strategy, **params).fit(data.inputs["val"], data.truth["val"], labels=labels,
                                                          groups=data.groups)
            scores[name].append(100 * ua_score(y_test, model.predict_proba(data.inputs["test"]), len(labels)))
            if name == "weighted_nll":
                chosen = nll_or_equal(model, data.inputs["val"], data.truth["val"], labels, data.groups)
                scores["nll_or_equal"].append(100 * ua_score(y_test, chosen.predict_proba(data.inputs["test"]),
                                                             len(labels)))
    best = max(float(np.mean(scores[m])) for m in members)
    fusions = (*FUSIONS, "nll_or_equal")
    return {"folds": folds, "speaker_groups": bool(first["protocol"].get("speaker_independent")),
            "ua": {k: round(float(np.mean(v)), 2) for k, v in scores.items()},
            "ua_per_fold": {k: [round(x, 2) for x in v] for k, v in scores.items()},
            "gap_to_best_member": {k: round(float(np.mean(scores[k])) - best, 2) for k in fusions}}


def nll_or_equal(model: Any, X_val: Any, y_val: Any, labels: tuple[str, ...], groups: Any, *,
                 n_boot: int = 200) -> Any:
    """``model`` (a fitted NLL-weighted fusion) if its weights beat equal weights in validation NLL by
    more than one bootstrap standard error (whole groups resampled when given), else a copy with
    equal weights."""
    import copy

    from emofuse.evaluation.metrics import bootstrap_indices
    from emofuse.fusion._models import _group_index

    y = np.array([labels.index(v) for v in y_val])
    equal = copy.copy(model)
    equal.weights_ = np.ones(len(model.weights_)) / len(model.weights_)

    def nll(fusion: Any) -> np.ndarray:
        p = fusion.predict_proba(X_val)
        return -np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None))

    gain = nll(equal) - nll(model)  # per sample: how much lower the fitted weights' NLL is
    if gain.mean() <= 0:
        return equal
    means = [gain[idx].mean() for idx in bootstrap_indices(len(y), _group_index(groups, len(y)), n_boot=n_boot)]
    return model if gain.mean() > float(np.std(means)) else equal


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("studies", nargs="+", type=Path, help="study folders (emofuse study --out)")
    parser.add_argument("--set", action="append", dest="sets", metavar="A,B,...",
                        help="a member set (study entry names), repeatable; default: the sets in DEFAULT_SETS")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from emofuse.evaluation.results import git_commit

    sets = [tuple(s.split(",")) for s in args.sets] if args.sets else list(DEFAULT_SETS)
    rows = []
    for members in sets:
        for protocol, cells in sorted(member_cells(args.studies, members).items()):
            row = {"protocol": protocol, "members": list(members), **evaluate(cells, members)}
            rows.append(row)
            gaps = ", ".join(f"{k} {v:+.2f}" for k, v in row["gap_to_best_member"].items())
            print(f"{protocol:20s} {'+'.join(members)}: {gaps}")
    if not rows:
        parser.error("no member set has finished cells in these study folders")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps({
        "benchmark": "fusion_objectives", "commit": git_commit(), "studies": [str(s) for s in args.studies],
        "metric_note": "UA in percent, mean over folds; gap_to_best_member: fusion UA minus the best member's",
        "rows": rows}, indent=1) + "\n")
    print(f"wrote {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
