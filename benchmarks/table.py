"""Render the tables of benchmarks/README.md from the JSON results, so no number is copied by hand.

    python benchmarks/table.py            # rewrites the part of benchmarks/README.md between the markers
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from emofuse.evaluation.results import read_results

HERE = Path(__file__).parent
RESULTS = HERE / "results"
README = HERE / "README.md"
BEGIN, END = "<!-- tables:begin -->", "<!-- tables:end -->"


def pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


def voice_table() -> str:
    path = RESULTS / "voice_ravdess.json"
    if not path.exists():
        return "_no voice results yet_\n"
    records = sorted(read_results(path), key=lambda r: (r.protocol, -r.ua_mean))
    lines = ["| model | protocol | UA % (mean ± std) | UA 95 % CI | WA % | macro-F1 % | folds | train s | device | variant |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        ci = r.ci95.get("ua", [None, None])
        protocol = f"{r.protocol} (**leaky**)" if r.leaky else r.protocol
        lines.append(f"| {r.model} | {protocol} | {pct(r.ua_mean)} ± {pct(r.ua_std)} | {pct(ci[0])}–{pct(ci[1])} | "
                     f"{pct(r.wa_mean)} ± {pct(r.wa_std)} | {pct(r.f1_mean)} | {len(r.folds)} | {r.train_seconds:.0f} | "
                     f"{r.device} | {r.variant or '—'} |")
    return "\n".join(lines) + "\n"


def face_table() -> str:
    path = RESULTS / "face_fer2013.json"
    if not path.exists():
        return "_no face results yet_\n"
    records = sorted(read_results(path), key=lambda r: -r.wa_mean)
    lines = ["| model | PrivateTest accuracy % | UA % | macro-F1 % | 95 % CI (acc) | train s | device | variant |",
             "|---|---|---|---|---|---|---|---|"]
    for r in records:
        ci = r.ci95.get("wa", [None, None])
        lines.append(f"| {r.model} | {pct(r.wa_mean)} | {pct(r.ua_mean)} | {pct(r.f1_mean)} | {pct(ci[0])}–{pct(ci[1])} | "
                     f"{r.train_seconds:.0f} | {r.device} | {r.variant or r.notes or '—'} |")
    return "\n".join(lines) + "\n"


def text_table() -> str:
    path = RESULTS / "text.json"
    if not path.exists():
        return "_no text results yet_\n"
    records = sorted(read_results(path), key=lambda r: (r.dataset, -(r.weighted_f1_mean or 0)))
    lines = ["| model | dataset | protocol | weighted-F1 % | UA % | WA % | macro-F1 % | train s | variant |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        lines.append(f"| {r.model} | {r.dataset} | {r.protocol} | {pct(r.weighted_f1_mean)} | {pct(r.ua_mean)} | "
                     f"{pct(r.wa_mean)} | {pct(r.f1_mean)} | {r.train_seconds:.0f} | {r.variant or '—'} |")
    return "\n".join(lines) + "\n"


def whisper_speed() -> str:
    path = RESULTS / "whisper_speed.json"
    if not path.exists():
        return ""
    data = json.loads(path.read_text())
    lines = [f"\n### Whisper on the CPU, {data['threads']} threads (`benchmarks/results/whisper_speed.json`)\n",
             f"One {data['clip_seconds']} s clip ({data['clip']}), every encoder layer:\n",
             "| model | what | p50 ms | p99 ms |", "|---|---|---|---|"]
    for model, rows in data["encoder"].items():
        for what, row in rows.items():
            lines.append(f"| {model} | {what} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} |")
    if "transcribe_tiny_en" in data:
        t = data["transcribe_tiny_en"]
        lines.append(f"| tiny.en | transcribe {t['audio_seconds']} s of speech (beam 5, VAD): \"{t['text']}\" | "
                     f"{t['p50_ms']:.1f} | {t['p99_ms']:.1f} |")
    return "\n".join(lines) + "\n"


def speed_table(name: str, key: str) -> str:
    path = RESULTS / name
    if not path.exists():
        return f"_no {name} yet_\n"
    data = json.loads(path.read_text())
    lines = ["| what | p50 ms | p99 ms |", "|---|---|---|"]
    for section in key.split(","):
        for what, row in data.get(section, {}).items():
            if "p50_ms" in row:
                lines.append(f"| {section}: {what} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} |")
    return "\n".join(lines) + "\n"


def render() -> str:
    parts = ["### Voice: RAVDESS (`benchmarks/results/voice_ravdess.json`)\n", voice_table(),
             "\n### Face: FER2013 PrivateTest (`benchmarks/results/face_fer2013.json`)\n", face_table(),
             "\n### Text: MELD, CARER, and RAVDESS's two sentences (`benchmarks/results/text.json`)\n", text_table()]
    voice_speed = RESULTS / "voice_speed.json"
    if voice_speed.exists():
        data = json.loads(voice_speed.read_text())
        feats = data["features"]
        parts += ["\n### Voice speed, one CPU thread (`benchmarks/results/voice_speed.json`)\n",
                  f"Features on {feats['clips']} clips ({feats['audio_seconds']} s of audio): "
                  + ", ".join(f"{k} {v['clips_per_s']} clips/s ({v['x_real_time']}× real time)"
                              for k, v in feats.items() if isinstance(v, dict)) + ".\n\n",
                  f"Latency of `predict_proba` on one {data['latency_clip_seconds']} s clip, features included:\n\n",
                  speed_table("voice_speed.json", "latency")]
    if (RESULTS / "face_speed.json").exists():
        parts += ["\n### Face speed, one CPU thread (`benchmarks/results/face_speed.json`)\n",
                  speed_table("face_speed.json", "detection_only,crop_classification,frame_detection_plus_classification")]
    parts.append(whisper_speed())
    return "".join(parts)


def main() -> int:
    text = README.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    README.write_text(text[:start] + "\n" + render() + text[end:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
