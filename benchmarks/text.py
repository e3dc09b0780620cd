"""The text branch where text carries emotion (MELD, CARER), and where it cannot (RAVDESS).

    python benchmarks/text.py --meld ../shared/data/meld-text --carer ../shared/data/emotion-nlp \\
        --ravdess ../shared/data/ravdess-speech-16k

MELD and CARER run through ``emofuse train`` on their official splits (run directories under
``--runs``, resumable). ``text_minilm`` runs twice: class-balanced with C picked by validation UA
(our default, the fair comparison with every other emofuse number), and unweighted with C picked
by validation weighted F1, the way published MELD text baselines are tuned for their headline.

RAVDESS speaks one of two fixed sentences ("Kids are talking by the door", "Dogs are sitting by
the door") in every emotion, by design; a text model given the exact words (the statement coded
in the file name: a perfect transcript) is scored on ``ravdess-6fold`` to show text alone is at
chance there (UA 1/8 = 12.5 %).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from emofuse.evaluation.results import ResultRecord, write_results
from emofuse.study.experiment import ExperimentConfig, run_experiment

RESULTS = Path(__file__).parent / "results" / "text.json"
CELLS = (
    ("text_minilm", {}, ""),
    ("text_minilm", {"balanced": False, "select_by": "weighted_f1"}, "unweighted,select=weighted_f1"),
    ("text_bigru", {"train": {"epochs": 20, "patience": 5, "lr": 2e-3, "batch_size": 64, "device": "cpu"}}, ""),
)


def ravdess_perfect_transcripts(path: str, seed: int) -> ResultRecord:
    from emofuse.data import get_protocol, load_ravdess, parse_ravdess_name
    from emofuse.evaluation.metrics import compute_metrics, summarize_folds
    from emofuse.evaluation.results import FoldResult
    from emofuse.models import create_model
    from emofuse.models.text import EmbeddingCache

    dataset = load_ravdess(path)
    texts = [parse_ravdess_name(Path(s.path).name).statement for s in dataset.samples]
    labels = list(dataset.labels)
    targets = dataset.label_indices()
    started = time.perf_counter()
    metrics, folds, truths, preds = [], [], [], []
    for fold in get_protocol("ravdess-6fold").folds(dataset):
        model = create_model("text_minilm", cache=EmbeddingCache())
        model.fit([texts[i] for i in fold.train], [labels[t] for t in targets[fold.train]], labels=labels,
                  X_val=[texts[i] for i in fold.val], y_val=[labels[t] for t in targets[fold.val]])
        pred = model.predict_proba([texts[i] for i in fold.test]).argmax(axis=1)
        m = compute_metrics(targets[fold.test], y_pred=pred, labels=labels)
        metrics.append(m)
        folds.append(FoldResult.from_metrics(fold.name, m))
        truths.append(targets[fold.test])
        preds.append(pred)
    summary = summarize_folds(metrics, pooled_true=np.concatenate(truths), pooled_pred=np.concatenate(preds), seed=seed)
    return ResultRecord.from_summary(
        dataset="ravdess", protocol="ravdess-6fold", model="text_minilm", summary=summary, folds=folds,
        labels=labels, device="cpu", train_seconds=round(time.perf_counter() - started, 2),
        variant="perfect transcripts (statement from the file name)", seed=seed,
        notes="benchmarks/text.py --ravdess: two fixed sentences spoken in every emotion; text is at chance")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--meld", help="MELD folder with train/dev/test_sent_emo.csv")
    parser.add_argument("--carer", help="CARER folder with train.txt/val.txt/test.txt")
    parser.add_argument("--ravdess", help="RAVDESS folder (for the text-at-chance check)")
    parser.add_argument("--models", default="text_minilm,text_bigru")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", default="runs/benchmarks/text")
    parser.add_argument("--results", default=str(RESULTS))
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    wanted = set(args.models.split(","))
    for dataset, path in (("meld", args.meld), ("carer", args.carer)):
        if not path:
            continue
        for model, params, variant in CELLS:
            if model not in wanted:
                continue
            out = Path(args.runs) / f"{model}{'-' + variant.replace(',', '-').replace('=', '_') if variant else ''}" \
                f"-{dataset}"
            config = ExperimentConfig.from_dict({"model": model, "data": {dataset: path},
                                                 "protocol": f"{dataset}-official", "out": str(out),
                                                 "seed": args.seed, "model_params": params})
            started = time.perf_counter()
            record = run_experiment(config, resume=True, progress=not args.quiet)
            record = replace(record, variant=variant or record.variant,
                             notes=f"benchmarks/text.py; run dir {out}")
            write_results(args.results, [record])
            print(f"{model:12s} {dataset:6s} {variant or '-':32s} UA {record.ua_mean:.3f}  WA {record.wa_mean:.3f}  "
                  f"weighted F1 {record.weighted_f1_mean:.3f}  ({time.perf_counter() - started:.0f} s)", flush=True)
    if args.ravdess:
        record = ravdess_perfect_transcripts(args.ravdess, args.seed)
        write_results(args.results, [record])
        print(f"text_minilm  ravdess perfect transcripts        UA {record.ua_mean:.3f} ± {record.ua_std:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
