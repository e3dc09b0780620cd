"""Which views of the frozen Whisper encoders carry the speaker-leaky ``ravdess-random`` split.

    python benchmarks/voice_random_views.py --data ../shared/data/ravdess-speech-16k

One ``voice_whisper`` logistic-regression head per encoder (tiny.en, base, both side by side) and per
view (the silence-trimmed clip or the whole clip; with or without speed-perturbed training copies at
0.9 and 1.1), each with C chosen on the split's validation clips and refitted on training +
validation, as the registry models do; then averages of heads (``voice_whisper_plus``'s two, and
one trimmed + one untrimmed head per encoder). Every head's validation score is written beside its
test score, so a choice among them can be made on validation data.

On this split the same recording session of an actor is in training and test, so the untrimmed
clip (silence, room, microphone included) helps more than it would on new speakers. Writes
``benchmarks/results/voice_random_views.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "voice_random_views.json"
ENCODERS = {"tiny.en": ("tiny.en",), "base": ("base",), "tiny.en+base": ("tiny.en", "base")}
# Averages: voice_whisper_plus's two heads, and per-encoder heads.
AVERAGES = {
    "voice_whisper_plus (both encoders: trimmed+speed, untrimmed)": ["tiny.en+base/trimmed+speed", "tiny.en+base/untrimmed"],
    "per encoder: trimmed+speed, untrimmed": ["tiny.en/trimmed+speed", "tiny.en/untrimmed",
                                              "base/trimmed+speed", "base/untrimmed"],
    "per encoder: trimmed+speed, untrimmed+speed": ["tiny.en/trimmed+speed", "tiny.en/untrimmed+speed",
                                                    "base/trimmed+speed", "base/untrimmed+speed"],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="RAVDESS folder")
    parser.add_argument("--results", default=str(RESULTS))
    args = parser.parse_args(argv)

    from emofuse.data import load_ravdess
    from emofuse.data.protocols import get_protocol
    from emofuse.evaluation.metrics import compute_metrics
    from emofuse.evaluation.results import git_commit
    from emofuse.features.cache import FeatureCache
    from emofuse.models.voice_whisper import VoiceWhisper, WhisperFeatures

    dataset = load_ravdess(args.data)
    fold = get_protocol("ravdess-random").folds(dataset, seed=0)[0]
    paths = [s.path for s in dataset.samples]
    labels = sorted({s.label for s in dataset.samples})
    truth = np.searchsorted(labels, [s.label for s in dataset.samples])

    def take(idx: np.ndarray) -> list:
        return [paths[i] for i in idx]

    def scores(idx: np.ndarray, probs: np.ndarray) -> dict[str, float]:
        m = compute_metrics(truth[idx], labels=labels, probs=probs)
        return {"wa": round(100 * m.wa, 2), "ua": round(100 * m.ua, 2)}

    heads: dict[str, dict] = {}
    probs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for enc, models in ENCODERS.items():
        for trim in (True, False):
            for speeds in ((), (0.9, 1.1)):
                name = f"{enc}/{'trimmed' if trim else 'untrimmed'}{'+speed' if speeds else ''}"
                start = time.perf_counter()
                # Validation scores come from a head fitted on training clips only; test scores from
                # the head refitted on training + validation with the C validation chose.
                common = {"features": WhisperFeatures(models=models, trim=trim), "augment_speeds": speeds,
                          "cache": FeatureCache(), "progress": True}
                val_head = VoiceWhisper(name, refit_with_val=False, **common)
                val_head.fit(take(fold.train), [labels[t] for t in truth[fold.train]], labels=labels,
                             X_val=take(fold.val), y_val=[labels[t] for t in truth[fold.val]])
                head = VoiceWhisper(name, C=val_head.C_, **common)
                head.fit(take(np.concatenate([fold.train, fold.val])),
                         [labels[t] for t in truth[np.concatenate([fold.train, fold.val])]], labels=labels)
                p_val, p_test = val_head.predict_proba(take(fold.val)), head.predict_proba(take(fold.test))
                probs[name] = (p_val, p_test)
                heads[name] = {"C": val_head.C_, "val": scores(fold.val, p_val), "test": scores(fold.test, p_test),
                               "seconds": round(time.perf_counter() - start, 1)}
                print(name, heads[name], flush=True)
    averages = {}
    for name, members in AVERAGES.items():
        p_val = sum(probs[m][0] for m in members) / len(members)
        p_test = sum(probs[m][1] for m in members) / len(members)
        averages[name] = {"members": members, "val": scores(fold.val, p_val), "test": scores(fold.test, p_test)}
        print(name, averages[name], flush=True)
    out = {"benchmark": "voice_random_views", "protocol": "ravdess-random (speaker-leaky)",
           "n_train": len(fold.train), "n_val": len(fold.val), "n_test": len(fold.test),
           "metric_note": "percent; val = head fitted on training clips, test = refitted on training + validation",
           "heads": heads, "averages": averages, "commit": git_commit()}
    Path(args.results).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
