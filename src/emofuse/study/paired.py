"""The paired-by-emotion evaluation: voice and face fused on *synthetic pairs*.

No dataset here has the same person's voice and face for one utterance, so each RAVDESS clip is
paired with a FER2013 face showing the same emotion in the shared 7-class space (:data:`BASIC7`,
calm counting as neutral), drawn at random, many times over. The voice side's predictions come from
a ``ravdess-*`` run (per fold: validation and test), the face side's from a ``fer2013-official`` run
(PublicTest for validation, PrivateTest for test): validation clips pair with PublicTest faces and
test clips with PrivateTest faces, so fusion is fitted on validation pairs and scored on test pairs.

What it shows: that the fusion mechanics work end to end across label sets (8 voice classes, 7 face
classes), how much each strategy gains when two members' errors are independent given the emotion,
and that fusion carries on when a modality is missing. What it does not show: how well voice and face
fuse on real audio-visual recordings, where a person's voice and face are correlated (the same
actor, the same moment), so real gains are usually smaller than here.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from emofuse._io import write_json
from emofuse.study.config import PairedConfig

VERSION = 1


def _read(cell_dir: Path, fold: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities ``(n, k)`` and targets as indices into BASIC7."""
    from emofuse.labels import BASIC7, convert_labels
    from emofuse.study.fusion_cells import load_fold_predictions

    labels = json.loads((cell_dir / "labels.json").read_text())
    data = load_fold_predictions(cell_dir, fold, split=split)
    targets = convert_labels([labels[i] for i in data["y_true"]], BASIC7)
    return data["probs"], np.array([BASIC7.index(t) for t in targets], dtype=np.int64)


def pair_by_emotion(voice_y: np.ndarray, face_y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each voice sample, the index of a face sample with the same target, drawn uniformly.

    Samples whose emotion has no face are paired with -1 (the face is missing for them).
    """
    pick = np.full(len(voice_y), -1, dtype=np.int64)
    for label in np.unique(voice_y):
        faces = np.flatnonzero(face_y == label)
        rows = np.flatnonzero(voice_y == label)
        if len(faces):
            pick[rows] = faces[rng.integers(0, len(faces), len(rows))]
    return pick


def _scores(y: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    from emofuse.evaluation.metrics import compute_metrics
    from emofuse.labels import BASIC7

    m = compute_metrics(y, probs=probs, labels=BASIC7)
    return {"wa": m.wa, "ua": m.ua, "f1": m.macro_f1}


def run_paired(config: PairedConfig, *, voice_dir: Path, face_dir: Path, out: Path) -> dict[str, Any]:
    """Evaluate every strategy on ``config.pairings`` random pairings; writes and returns ``paired.json``.

    Per pairing, every voice fold is scored and the fold scores averaged; the result is mean ± std
    over pairings. Skipped (read back) when ``paired.json`` exists for the same inputs and config.
    """
    from emofuse.evaluation.results import git_commit
    from emofuse.labels import BASIC7
    from emofuse.study.fusion_cells import file_digest, fit_groups, load_fold_predictions

    voice_labels = tuple(json.loads((voice_dir / "labels.json").read_text()))
    face_labels = tuple(json.loads((face_dir / "labels.json").read_text()))
    voice_folds = sorted(p.parent.name for p in (voice_dir / "folds").glob("*/metrics.json"))
    face_folds = sorted(p.parent.name for p in (face_dir / "folds").glob("*/metrics.json"))
    if len(face_folds) != 1:
        raise ValueError(f"{face_dir}: the face run must have one fold (fer2013-official), not {face_folds}")
    inputs = [d / "folds" / f / n for d, folds in ((voice_dir, voice_folds), (face_dir, face_folds))
              for f in folds for n in ("predictions.npz", "val_predictions.npz")]
    identity = {"version": VERSION, "config": asdict(config),
                "voice_run": str(voice_dir), "face_run": str(face_dir), "inputs_sha256": file_digest(inputs), "code": git_commit()}
    result_path = out / "paired.json"
    if result_path.is_file():
        stored = json.loads(result_path.read_text())
        if stored.get("identity") == identity:
            return stored

    voice_protocol = json.loads((voice_dir / "config.json").read_text()).get("protocol", {})
    # Each validation pair's group is its voice clip's speaker (the faces are independent draws).
    val_groups = {fold: fit_groups(voice_protocol, load_fold_predictions(voice_dir, fold, split="val")["paths"])
                  for fold in voice_folds}
    face_val, face_val_y = _read(face_dir, face_folds[0], "val")
    face_test, face_test_y = _read(face_dir, face_folds[0], "test")
    methods = ["voice alone", "face alone", *config.strategies]
    missing_methods = [f"{s} (missing)" for s in config.strategies] + ["voice alone (missing)", "face alone (missing)"]
    per_pairing: dict[str, list[dict[str, float]]] = {m: [] for m in methods + missing_methods}
    used_counts = {"both": 0, "voice only": 0, "face only": 0}
    labels = {"voice": voice_labels, "face": face_labels}
    for r in range(config.pairings):
        rng = np.random.default_rng(config.seed + r)
        fold_scores: dict[str, list[dict[str, float]]] = {m: [] for m in per_pairing}
        for fold in voice_folds:
            scored = _score_fold(config, rng, voice_dir=voice_dir, fold=fold, labels=labels,
                                 face=(face_val, face_val_y, face_test, face_test_y), groups=val_groups[fold],
                                 used_counts=used_counts)
            for method, score in scored.items():
                fold_scores[method].append(score)
        for method, scores in fold_scores.items():
            per_pairing[method].append({k: float(np.mean([s[k] for s in scores])) for k in ("wa", "ua", "f1")})
    summary = {
        method: {f"{k}_{stat}": float(fn([s[k] for s in runs])) for k in ("wa", "ua", "f1")
                 for stat, fn in (("mean", np.mean), ("std", np.std))}
        for method, runs in per_pairing.items()
    }
    result = {"identity": identity, "labels": list(BASIC7), "voice_folds": voice_folds, "methods": summary,
              "n_test_per_pairing": int(sum(len(_read(voice_dir, f, "test")[1]) for f in voice_folds)),
              "missing_modality_rows": used_counts, "per_pairing": per_pairing}
    out.mkdir(parents=True, exist_ok=True)
    write_json(result_path, result)
    return result


def _score_fold(config: PairedConfig, rng: np.random.Generator, *, voice_dir: Path, fold: str,
                labels: dict[str, tuple[str, ...]], face: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
                groups: Any, used_counts: dict[str, int]) -> dict[str, dict[str, float]]:
    """One voice fold of one pairing: voice and face clips paired by emotion, every strategy fitted on the
    validation pairs and scored on the test pairs, whole and with a share of either modality missing."""
    from emofuse.fusion import FusionInput, create_fusion
    from emofuse.labels import BASIC7, align_probabilities

    face_val, face_val_y, face_test, face_test_y = face
    v_val, v_val_y = _read(voice_dir, fold, "val")
    v_test, v_test_y = _read(voice_dir, fold, "test")
    val_pick = pair_by_emotion(v_val_y, face_val_y, rng)
    test_pick = pair_by_emotion(v_test_y, face_test_y, rng)

    def faces(probs: np.ndarray, pick: np.ndarray) -> np.ndarray:
        return np.where((pick >= 0)[:, None], probs[np.clip(pick, 0, None)], np.nan)

    val_input = FusionInput({"voice": v_val, "face": faces(face_val, val_pick)}, labels)
    test_input = FusionInput({"voice": v_test, "face": faces(face_test, test_pick)}, labels)
    # The missing-modality path: drop the face for one share of test samples, the voice for another.
    u = rng.random(len(v_test_y))
    no_face = u < config.missing_face
    no_voice = (u >= config.missing_face) & (u < config.missing_face + config.missing_voice)
    partial = test_input.without("face", no_face).without("voice", no_voice)
    present = partial.present()
    used_counts["both"] += int(present.all(axis=1).sum())
    used_counts["voice only"] += int((present[:, 0] & ~present[:, 1]).sum())
    used_counts["face only"] += int((~present[:, 0] & present[:, 1]).sum())

    voice_alone = align_probabilities(v_test, labels["voice"], BASIC7)
    face_alone = align_probabilities(np.nan_to_num(test_input.probabilities["face"]), labels["face"], BASIC7)
    # A single member that is missing cannot answer: score its missing rows as uniform (a guess).
    uniform = np.full((1, len(BASIC7)), 1 / len(BASIC7))
    scores = {"voice alone": _scores(v_test_y, voice_alone), "face alone": _scores(v_test_y, face_alone),
              "voice alone (missing)": _scores(v_test_y, np.where(no_voice[:, None], uniform, voice_alone)),
              "face alone (missing)": _scores(v_test_y, np.where(no_face[:, None], uniform, face_alone))}
    for strategy in config.strategies:
        model = create_fusion(strategy).fit(val_input, [BASIC7[i] for i in v_val_y], labels=BASIC7, groups=groups)
        scores[strategy] = _scores(v_test_y, model.predict_proba(test_input))
        scores[f"{strategy} (missing)"] = _scores(v_test_y, model.predict_proba(partial))
    return scores
