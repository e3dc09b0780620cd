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


def _va(row: dict) -> str:
    """``WA / UA`` of a ``{"wa": .., "ua": ..}`` row already in percent."""
    return f"{row['wa']:.1f} / {row['ua']:.1f}"


def leaky_split_tables() -> list[str]:
    """Whisper views on the leaky ravdess-random split (fine-tuning base's top block: docs/words.md)."""
    parts = []
    views_path = RESULTS / "voice_random_views.json"
    if views_path.exists():
        views = json.loads(views_path.read_text())
        heads, averages = views["heads"], views["averages"]
        lines = ["| head or average | validation WA / UA % | test WA / UA % |", "|---|---|---|"]
        lines += [f"| `{name}` (C={h['C']:g}) | {_va(h['val'])} | {_va(h['test'])} |" for name, h in heads.items()]
        lines += [f"| mean of {name} | {_va(a['val'])} | {_va(a['test'])} |" for name, a in averages.items()]
        best_val = max(heads, key=lambda n: heads[n]["val"]["ua"])
        best_test = max([*heads.values(), *averages.values()], key=lambda h: h["test"]["ua"])["test"]["ua"]
        parts += [
            "\n### Voice: Whisper views on the leaky `ravdess-random` split (`benchmarks/results/voice_random_views.json`)\n\n",
            f"One `voice_whisper` head per encoder and view, C chosen on the split's {views['n_val']} validation "
            f"clips; the validation column is the head fitted on the {views['n_train']:,} training clips, the test "
            f"column ({views['n_test']} clips) the head refitted on training + validation. The averages: "
            "`voice_whisper_plus`'s two heads, and one trimmed + one untrimmed head per encoder.\n\n",
            "\n".join(lines) + "\n\n",
            f"No head or average reaches 92 % on test (best {best_test:.1f} % UA); the head validation ranks first "
            f"(`{best_val}`, {heads[best_val]['val']['ua']:.1f} % there) scores {heads[best_val]['test']['ua']:.1f} % "
            "on test. Whole clips beat trimmed ones here because the split shares recording sessions between "
            "training and test (silence, room and microphone can identify the session).\n"]
    return parts


def _result(name: str) -> dict | None:
    """``benchmarks/results/<name>`` as JSON, or None before its benchmark has run."""
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def face_robustness_table() -> list[str]:
    data = _result("face_robustness.json")
    if data is None:
        return []
    names = list(data["accuracy"])
    lines = ["| corruption | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for corruption in [*data["corruptions"], "mean_corrupted", "worst"]:
        cells = [data["accuracy"][n].get(corruption) for n in names]
        best = max(c for c in cells if c is not None)
        lines.append(f"| {corruption} | " + " | ".join(
            (f"**{pct(c)}**" if c == best else pct(c)) for c in cells) + " |")
    return ["\n### Face robustness: PrivateTest accuracy % under webcam corruptions "
            "(`benchmarks/results/face_robustness.json`)\n", "\n".join(lines) + "\n"]


def face_ensemble_tables() -> list[str]:
    parts: list[str] = []
    for file in ("face_ensemble.json", "face_ensemble_ten_crop.json"):
        data = _result(file)
        if data is None:
            continue
        views = [v for v in ("none", "flip", "ten_crop") if any(v in row for row in data["single"].values())]
        title = {"none": "one pass", "flip": "flip TTA", "ten_crop": "ten-crop TTA"}
        single = ["| model | " + " | ".join(f"{title[v]} acc % | UA %" for v in views) + " |",
                  "|---" * (1 + 2 * len(views)) + "|"]
        for name, row in data["single"].items():
            single.append(f"| {name} | " + " | ".join(f"{pct(row[v]['accuracy'])} | {pct(row[v]['ua'])}"
                                                      if v in row else "- | -" for v in views) + " |")
        fused = ["| members | fusion | PrivateTest acc % | UA % | macro-F1 % |", "|---|---|---|---|---|"]
        for row in sorted(data["fused"], key=lambda r: -r["accuracy"]):
            fused.append(f"| {' + '.join(row['members'])} | {row['fusion']} | {pct(row['accuracy'])} | "
                         f"{pct(row['ua'])} | {pct(row['macro_f1'])} |")
        tta = data["fused"][0]["member_tta"] if data["fused"] else "-"
        parts += [f"\n### Face models alone and fused, members with {tta} TTA: fitted on PublicTest, scored on "
                  f"PrivateTest (`benchmarks/results/{file}`)\n", "\n".join(single) + "\n\n",
                  f"Fused (members with {tta} TTA):\n\n", "\n".join(fused) + "\n"]
    return parts


def voice_robustness_table() -> list[str]:
    data = _result("voice_robustness.json")
    if data is None:
        return []
    names = list(data["models"])
    short = {n: data["models"][n].get("label") or (n if len(n) < 40 else n[:37] + "...") for n in names}
    lines = ["| condition | " + " | ".join(short[n] for n in names) + " |", "|---" * (len(names) + 1) + "|"]
    for condition in data["corruptions"]:
        lines.append(f"| {condition} | " + " | ".join(pct(data["models"][n]["conditions"][condition]["ua"])
                                                     for n in names) + " |")
    for key, title in (("mean_corrupted_ua", "mean over corruptions"), ("worst_ua", "worst")):
        lines.append(f"| **{title}** | " + " | ".join(pct(data["models"][n][key]) for n in names) + " |")
    n_test = data["models"][names[0]]["n_test"] if names else 0
    reduced = (f"a reduced run: {data['limit_per_fold']} test clips per fold, {n_test} in all, so a cell moves by "
               "about 5 points by chance" if data.get("limit_per_fold") else f"all {n_test} test clips")
    models = ", ".join(f"{short[n]}: `{n}`" if short[n] != n else f"`{n}`" for n in names)
    return ["\n### Voice robustness: UA % on `ravdess-6fold` test folds under corruptions "
            "(`benchmarks/results/voice_robustness.json`)\n", f"Models: {models}; {reduced}."
            + (f" {data['note']}" if data.get("note") else "") + "\n\n", "\n".join(lines) + "\n"]


def page_live_table() -> list[str]:
    data = _result("page_live.json")
    if data is None or not data.get("runs"):
        return []
    t = data["runs"][0]["targets"]
    lines = ["| words | runtime | face updates/s | face latency p50 / p99 ms | voice interval p50 / max s "
             "| words delay p50 / max s (n) | server / browser CPU cores | targets met |",
             "|---|---|---|---|---|---|---|---|"]
    for r in data["runs"]:
        c, meets = r["config"], [v for v in r["meets"].values() if v is not None]
        words = (f"{r['words_delay_p50_s']} / {r['words_delay_max_s']} ({r['transcripts']})"
                 if c["words"] and r["transcripts"] else "-")
        lines.append(f"| {'on' if c['words'] else 'off'} | {c['runtime']} | {r['face_updates_per_s']} | "
                     f"{r['face_latency_p50_ms']} / {r['face_latency_p99_ms']} | {r['voice_interval_p50_s']} / "
                     f"{r['voice_interval_max_s']} | {words} | {r['server_cpu_cores']} / {r['browser_cpu_cores']} | "
                     f"{sum(meets)}/{len(meets)} |")
    first = data["runs"][0]
    return ["\n### The live page in a browser (`benchmarks/results/page_live.json`)\n",
            f"`python benchmarks/page_live.py [--no-words] [--runtime onnx]`: `emofuse serve` with the shipped models "
            f"and the page in headless Chromium on this {first['machine']['cpus']}-core machine, fake camera "
            f"({first['config']['camera']} faces, moving, changing expression) and microphone ({first['config']['microphone']} "
            f"speech with pauses), {first['seconds']:.0f} s after a {first['warmup_seconds']:.0f} s warm-up. Targets: "
            f"face >= {t['face_updates_per_s']:.0f} updates/s with p99 <= {t['face_latency_p99_ms']:.0f} ms, voice "
            f"every <= {t['voice_interval_p50_s']} s (p50) and never over {t['voice_interval_max_s']} s, words <= "
            f"{t['words_delay_p50_s']} s after an utterance ends (p50). Face latency: frame received -> answer sent; "
            "words delay: the utterance's last audio received -> its transcript sent.\n\n", "\n".join(lines) + "\n"]


def vad_table() -> list[str]:
    data = _result("vad.json")
    if data is None:
        return []
    gen = data["generated_non_speech"]
    lines = ["| input | refused as not speech | passed as speech |", "|---|---|---|",
             f"| generated non-speech ({len(gen['per_sound'])} sounds x {gen['n'] // len(gen['per_sound'])} seeds) | "
             f"{gen['refused']}/{gen['n']} | {gen['n'] - gen['refused']}/{gen['n']} |"]
    for condition, row in data["ravdess_speech"].items():
        lines.append(f"| RAVDESS speech, {condition} | {row['n'] - row['passed']}/{row['n']} | {row['passed']}/{row['n']} |")
    return ["\n### Speech or not (`benchmarks/results/vad.json`)\n",
            f"Silero VAD {'on' if data['silero'] else 'off'}; {data['ms_per_audio_second']} ms per second of audio.\n\n",
            "\n".join(lines) + "\n"]


def render() -> str:
    parts = ["### Voice: RAVDESS (`benchmarks/results/voice_ravdess.json`)\n", voice_table(),
             *leaky_split_tables(),
             "\n### Face: FER2013 PrivateTest (`benchmarks/results/face_fer2013.json`)\n", face_table(),
             *face_ensemble_tables(), *face_robustness_table(),
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
    parts += voice_robustness_table()
    parts += vad_table()
    parts.append(whisper_speed())
    parts += page_live_table()
    parts += serve_tables()
    parts += scale_tables()
    return "".join(parts)


def scale_tables() -> list[str]:
    path = RESULTS / "scale.json"
    if not path.exists():
        return []
    d = json.loads(path.read_text())
    parts = ["\n### Scale and deploy (`benchmarks/results/scale.json`)\n", f"`{d['command']}`\n\n"]
    summary = d["summary"]
    if d.get("ray"):
        ray, ip = d["ray"]["ray"], summary["in_process"]
        parts += [f"Batch prediction of {d['ray']['clips']} clips ({d['ray']['source']}, voice only): "
                  f"in-process {ip['torch_threads_1']['clips_per_s']} clips/s on 1 thread, "
                  f"{ip['torch_threads_2']['clips_per_s']} on 2.\n\n",
                  "| Ray actors | clips/s, one run | clips/s once started | cluster start s | run start-up s |\n"
                  "|---|---|---|---|---|\n"]
        for key, r in sorted(ray.items()):
            parts.append(f"| {key.split('_')[1]} | {r['clips_per_s']} | {r['steady_clips_per_s']} | "
                         f"{r['cluster_start_s']} | {r['run_overhead_s']} |\n")
    if d.get("onnx"):
        parts += [f"\nonnxruntime vs torch, {d['onnx']['threads']} thread, p50 (ms) per clip and clips/s at batch "
                  f"{d['onnx']['batch']}:\n\n",
                  "| model | graph, batch 1 torch / ort | `predict_proba` of one clip torch / ort "
                  "| batch clips/s torch / ort | ort no slower per clip |\n|---|---|---|---|---|\n"]
        for name, v in summary["onnx_vs_torch"].items():
            g, e, b = v["graph_batch1"], v["end_to_end_batch1"], v["graph_batched_clips_per_s"]
            parts.append(f"| {name} | {g['torch']} / {g['onnx']} | {e['torch']} / {e['onnx']} | {b['torch']} / "
                         f"{b['onnx']} | {'yes' if v['per_clip_not_slower'] else 'NO'} |\n")
    return parts


def serve_tables() -> list[str]:
    parts = []
    path = RESULTS / "predict_speed.json"
    if path.exists():
        d = json.loads(path.read_text())
        parts += ["\n### `emofuse predict` on a folder (`benchmarks/results/predict_speed.json`)\n",
                  f"{d['clips']} clips ({d['source']}), {d['modalities']}, batch {d['batch_size']}, "
                  f"{d['cores']} cores, best and median of {d['repeats']}:\n\n",
                  "| what | clips/s (best) | clips/s (median) | seconds (median) |\n|---|---|---|---|\n",
                  f"| batched prediction, models loaded | {d['library']['clips_per_s_best']} | "
                  f"{d['library']['clips_per_s_median']} | {d['library']['median_s']} |\n",
                  f"| whole CLI run, start-up and model loading included | {d['cli']['clips_per_s_best']} | "
                  f"{d['cli']['clips_per_s_median']} | {d['cli']['median_s']} |\n"]
    path = RESULTS / "serve.json"
    if path.exists():
        d = json.loads(path.read_text())
        load, alone, rss = d["load"], d["stream_alone"], d["server_rss_mb"]
        parts += ["\n### Service under load (`benchmarks/results/serve.json`)\n",
                  f"`{d['command']}`: {load['clients']} HTTP clients for {load['seconds']} s on 127.0.0.1 "
                  f"(half audio, half image) plus one live stream; server with {d['server']['workers']} "
                  f"inference threads on {d['cores']} cores; {d['total_errors_under_load']} errors under load.\n\n",
                  "| endpoint | requests | requests/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|\n"]
        for name in ("audio", "image"):
            r = load[name]
            parts.append(f"| /v1/predict/{name} | {r['n']} | {r['requests_per_s']} | {r['p50_ms']} | {r['p99_ms']} "
                         f"| {r['errors']} |\n")
        parts += ["\n| live stream | face updates/s | face answers | face latency p50 / p99 ms "
                  "| voice interval p50 / max s | errors |\n|---|---|---|---|---|---|\n"]
        for label, st in (("alone", alone), (f"beside {load['clients']} clients", load["stream"])):
            vi = st["voice_interval_s"] or {"p50": None, "max": None}
            answers = ", ".join(f"{k} {v}" for k, v in st["face_status"].items())
            parts.append(f"| {label} | {st['face_updates_per_s']} | {answers} | {st['face_latency']['p50_ms']} / "
                         f"{st['face_latency']['p99_ms']} | {vi['p50']} / {vi['max']} | {st['errors']} |\n")
        parts.append(f"\nServer RSS (MB): {rss['started']} at start, {rss['after_warmup']} after warm-up, "
                     f"{rss['end']} at the end ({rss['growth_after_warmup']:+} after warm-up), "
                     f"at most {rss['max_during_load']} during the load.\n")
    return parts


def main() -> int:
    text = README.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    README.write_text(text[:start] + "\n" + render() + text[end:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
