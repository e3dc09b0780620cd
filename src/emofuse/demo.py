"""``emofuse demo``: the shipped models at work, offline, on a small bundled sample.

:func:`run_demo` runs the voice, face and words models and their fusion on three inputs that ship
inside the package (``emofuse/assets/demo/``) and prints the table ``emofuse predict`` prints:

* ``face.jpg``: NASA's portrait of astronaut Eileen Collins (public domain; the same photograph
  scikit-image ships as ``astronaut``), cropped;
* ``speech.flac``: a sentence spoken by espeak-ng (generated speech: its voice carries no emotion,
  its words do);
* ``video.mp4``: the two together, assembled at run time with PyAV.

:func:`run_pipeline_check` (``emofuse demo --pipeline-check``) is the older check of the data
foundation: it writes a RAVDESS-format sample (24 actors, tones, real file names) and a FER2013-format CSV of
drawn faces, loads them with the real loaders, shows their summaries, cuts the RAVDESS sample with
the speaker-independent ``ravdess-6fold`` protocol, and scores a spectral-band logistic regression
on it with the real metrics and results format. The data are synthetic, so the scores say that the
pipeline runs, not how well emofuse recognises emotion.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

N_BANDS = 32


def band_energies(y: np.ndarray, *, n_bands: int = N_BANDS) -> np.ndarray:
    """Log mean energy in ``n_bands`` equal-width frequency bands of ``y`` ``(samples,)`` -> ``(n_bands,)``."""
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size))) ** 2
    bands = np.array_split(spectrum, n_bands)
    return np.log(np.array([b.mean() for b in bands]) + 1e-10)


DEMO_ASSETS = Path(__file__).resolve().parent / "assets" / "demo"
DEMO_SENTENCE = "I am so happy today! This is the best day of my life."
NOTES = {
    "face.jpg": "NASA portrait of astronaut Eileen Collins (public domain): a real, smiling face.",
    "speech.flac": f"espeak-ng saying \"{DEMO_SENTENCE}\": synthetic speech, so its voice carries no emotion "
                   "and the voice column is a guess about a robot; the words carry the emotion.",
    "video.mp4": "the photograph and the speech in one video: a timeline of 2-second windows, fused per window.",
}


def demo_inputs(folder: Path) -> list[Path]:
    """The bundled photo and speech copied into ``folder``, and a video assembled from them."""
    import shutil

    from emofuse.features.audio import load_audio
    from emofuse.features.image import load_image
    from emofuse.inference.media import write_video

    folder.mkdir(parents=True, exist_ok=True)
    face, speech = folder / "face.jpg", folder / "speech.flac"
    shutil.copyfile(DEMO_ASSETS / "face.jpg", face)
    shutil.copyfile(DEMO_ASSETS / "speech.flac", speech)
    y = load_audio(speech)  # (samples,) 16 kHz mono
    image = load_image(face)  # (h, w, 3) RGB
    image = image[: image.shape[0] // 2 * 2, : image.shape[1] // 2 * 2]  # H.264 wants even sides
    fps = 5
    video = write_video(folder / "video.mp4", [image] * int(np.ceil(len(y) / 16_000 * fps)), fps=fps, audio=y)
    return [face, speech, video]


def run_demo(keep: Path | None = None, *, console: Console | None = None) -> int:
    """Predict on the bundled sample with the shipped models; returns the number of unreadable inputs."""
    import dataclasses
    import sys

    from emofuse.inference.batch import predict_files
    from emofuse.inference.predictor import Predictor
    from emofuse.inference.writers import print_table

    # Piped or captured, rich assumes 80 columns and folds the table into a column of fragments.
    console = console or Console(width=None if sys.stdout.isatty() else 130)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="emofuse-demo-") as tmp:
        folder = keep or Path(tmp)
        paths = demo_inputs(folder)
        console.print("[bold]emofuse demo[/]: the shipped voice, face and words models and their fusion, offline, "
                      f"on a bundled sample ({folder})")
        predictor = Predictor.from_shipped(words=True)
        loaded = {m.modality: m.name for m in predictor.models()}
        console.print("Loaded: " + ", ".join(f"{modality} [cyan]{name}[/]" for modality, name in loaded.items()),
                      highlight=False)
        results = list(predict_files(predictor, paths, progress=False, transcribe=True))
        print_table([dataclasses.replace(r, path=Path(r.path).name) for r in results], console)
        for path in paths:
            console.print(f"  [bold]{path.name}[/]: {NOTES[path.name]}", highlight=False)
        missing = [m for m in ("voice", "face", "words") if m not in loaded]
        if missing:
            console.print(f"[yellow]Not installed here: {', '.join(missing)}[/] (install emofuse with all extras: "
                          "bash scripts/install.sh)")
        console.print(f"[dim]{time.perf_counter() - started:.1f} s, nothing downloaded.[/]")
    console.print(
        "\n[bold]Next[/]:\n"
        "  emofuse serve                       the live page at http://127.0.0.1:8000/ (webcam + microphone)\n"
        "  emofuse predict YOUR_FILES          audio, images, videos, .txt (--json, --csv)\n"
        "  emofuse evaluate RUN_DIR            metrics of a trained run; emofuse models lists the zoo\n"
        "  emofuse study configs/study_smoke.yaml --out runs/smoke   the comparative study, reduced\n"
        "  emofuse demo --pipeline-check       the data foundation on a generated RAVDESS/FER2013 sample",
        highlight=False)
    return sum(r.status != "ok" for r in results)


def run_pipeline_check(keep: Path | None = None) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from emofuse.data import get_protocol, load_fer2013, load_ravdess
    from emofuse.data.inspect import summarize
    from emofuse.data.synthetic import make_fer2013_csv, make_ravdess
    from emofuse.evaluation.metrics import compute_metrics, summarize_folds
    from emofuse.evaluation.results import FoldResult, ResultRecord
    from emofuse.features.audio import load_audio

    console = Console()
    with tempfile.TemporaryDirectory(prefix="emofuse-demo-") as tmp:
        root = keep or Path(tmp)
        console.print(f"[bold]Generating a sample[/] in {root} (synthetic: tones and drawn faces)")
        make_ravdess(root / "ravdess")
        make_fer2013_csv(root / "fer2013.csv")

        ravdess = load_ravdess(root / "ravdess")
        fer = load_fer2013(root / "fer2013.csv")
        for dataset in (ravdess, fer):
            s = summarize(dataset)
            console.print(f"[bold]{s['dataset']}[/]: {s['clips']} samples, {s['speakers']} speakers, "
                          f"labels {s['labels']}, splits {s['splits'] or '-'}", highlight=False)

        protocol = get_protocol("ravdess-6fold")
        folds = protocol.folds(ravdess)
        features = np.stack([band_energies(load_audio(s.path)) for s in ravdess.samples])
        y = ravdess.label_indices()
        table = Table(title=f"{protocol.name}: spectral-band logistic regression on the synthetic sample")
        for column in ("fold", "train/val/test clips", "test actors", "WA", "UA", "macro-F1"):
            table.add_column(column)
        fold_metrics, fold_results, pooled_true, pooled_pred = [], [], [], []
        train_seconds = 0.0
        for fold in folds:
            start = time.perf_counter()
            model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
            model.fit(features[fold.train], y[fold.train])
            train_seconds += time.perf_counter() - start
            # predict_proba columns follow model.classes_; every class is in each training fold here.
            probs = model.predict_proba(features[fold.test])
            m = compute_metrics(y[fold.test], labels=ravdess.labels, probs=probs)
            fold_metrics.append(m)
            fold_results.append(FoldResult.from_metrics(fold.name, m))
            pooled_true.append(y[fold.test])
            pooled_pred.append(probs.argmax(axis=1))
            actors = sorted({ravdess.samples[i].speaker for i in fold.test})
            table.add_row(fold.name, f"{len(fold.train)}/{len(fold.val)}/{len(fold.test)}", ",".join(actors),
                          f"{m.wa:.3f}", f"{m.ua:.3f}", f"{m.macro_f1:.3f}")
        console.print(table)
        summary = summarize_folds(fold_metrics, pooled_true=np.concatenate(pooled_true),
                                  pooled_pred=np.concatenate(pooled_pred))
        record = ResultRecord.from_summary(dataset="ravdess-synthetic", protocol=protocol.name, model="demo_band_logreg",
                                           summary=summary, folds=fold_results, labels=ravdess.labels,
                                           device="cpu", train_seconds=round(train_seconds, 3), notes="synthetic demo data")
        console.print(f"UA {record.ua_mean:.3f} ± {record.ua_std:.3f} "
                      f"(95% CI {record.ci95['ua'][0]:.3f}-{record.ci95['ua'][1]:.3f}) over {record.n_test} test clips "
                      "[dim](synthetic tones: this shows the pipeline runs, not real accuracy)[/]")
        console.print("Next: `emofuse data download ravdess --to data/ravdess`, then "
                      "`emofuse data summary ravdess data/ravdess`.")
