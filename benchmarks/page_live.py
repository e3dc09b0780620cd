"""The live page as a user sees it: ``emofuse serve`` with the shipped models, the page open in Debian's
Chromium (headless, Playwright), a fake camera and microphone, for a minute; the page's own counters.

    python benchmarks/page_live.py                                  # words on, torch; 60 s
    python benchmarks/page_live.py --no-words                       # the same with words off
    python benchmarks/page_live.py --runtime onnx                   # exported graphs in onnxruntime
    python benchmarks/page_live.py --ravdess ../shared/data/ravdess-speech-16k --fer2013 ../shared/data/fer2013

The camera plays a video of real faces that move in the frame and change expression every 2 s (the
bundled portrait and scikit-image's astronaut; with ``--fer2013``, PrivateTest faces of each
emotion, enlarged); the microphone plays real speech with pauses (the bundled clip; with ``--ravdess``,
RAVDESS sentences of one actor, a second of silence between them). Both loop. Server and browser
run on this machine, as a user runs them; nothing is sent elsewhere.

After ``--warmup-seconds`` the page's counters are reset and read again ``--seconds`` later:
face updates per second and the server's face latency (frame received -> answer sent; p50 / p99),
the spacing of voice updates on the page (p50 / max), the words' delay (the utterance's last
audio received -> its transcript sent; p50 / max, and how many), and the CPU the server and the
browser used (cores, from ``/proc``). Appends one record per configuration to
``benchmarks/results/page_live.json`` (replacing an older record of the same configuration).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).parent / "results" / "page_live.json"
CHROMIUM = Path(os.environ.get("EMOFUSE_CHROMIUM", "/usr/bin/chromium"))
SR = 16_000
TARGETS = {"face_updates_per_s": 15.0, "face_latency_p99_ms": 150.0, "voice_interval_p50_s": 0.5,
           "voice_interval_max_s": 1.0, "words_delay_p50_s": 2.0}


def face_images(fer2013: Path | None) -> list[np.ndarray]:
    """RGB faces, one per expression shown in turn."""
    import cv2
    from skimage import data as skdata

    if fer2013 is not None:
        from _faces import fer_test_splits

        faces, targets = fer_test_splits(str(fer2013))["PrivateTest"]
        firsts = [faces[int(np.flatnonzero(targets == k)[0])] for k in range(int(targets.max()) + 1)]
        return [cv2.cvtColor(cv2.resize(f, (200, 200), interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2RGB)
                for f in firsts]  # the first PrivateTest face of each emotion
    from emofuse.demo import DEMO_ASSETS

    portrait = cv2.cvtColor(cv2.imread(str(DEMO_ASSETS / "face.jpg")), cv2.COLOR_BGR2RGB)
    return [portrait, skdata.astronaut()[:400, 40:440]]


def camera_video(path: Path, faces: list[np.ndarray], *, fps: int = 30, seconds: float = 12.0) -> Path:
    """A 320 x 240 Y4M video: each face for 2 s in turn, drifting across the frame as a person does."""
    import cv2

    frames = []
    side = 200
    for k in range(int(fps * seconds)):
        face = cv2.resize(faces[(k // (2 * fps)) % len(faces)], (side, side), interpolation=cv2.INTER_AREA)
        frame = np.full((240, 320, 3), 70, np.uint8)
        dx = 60 + int(40 * np.sin(2 * np.pi * k / (4 * fps)))
        dy = 20 + int(10 * np.sin(2 * np.pi * k / (3 * fps)))
        frame[dy : dy + side, dx : dx + side] = face
        frames.append(frame)
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W320 H240 F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in frames:
            out.write(b"FRAME\n" + np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)).tobytes())
    return path


def microphone_audio(path: Path, ravdess: Path | None) -> tuple[Path, float]:
    """A WAV of real speech with pauses (about 40 s), and its length in seconds."""
    import soundfile as sf

    from emofuse.demo import DEMO_ASSETS
    from emofuse.features.audio import load_audio, trim_silence

    if ravdess is not None:
        clips = sorted(Path(ravdess).rglob("03-01-*-01-*-*-01.wav"))[:10]  # actor 01, one take per emotion
    else:
        clips = [DEMO_ASSETS / "speech.flac"] * 6
    pause = np.zeros(SR, np.float32)
    parts = []
    for clip in clips:
        parts += [trim_silence(load_audio(clip, sample_rate_hz=SR), sr=SR, top_db=40.0), pause]
    y = np.concatenate(parts)
    sf.write(path, y, SR, subtype="PCM_16")
    return path, len(y) / SR


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes (those still running)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[11]) + int(fields[12])
    return total / tick


def browser_pids() -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if "chrom" in (entry / "comm").read_text():
                    out.append(int(entry.name))
            except OSError:
                continue
    return out


def summarise(samples: dict[str, list[float]], counters: dict[str, int], seconds: float) -> dict[str, Any]:
    def pct(values: list[float], q: float) -> float | None:
        return round(float(np.percentile(values, q)), 1) if values else None

    voice_gaps = list(np.diff(samples["voiceAt"]) / 1000) if len(samples["voiceAt"]) > 1 else []
    words = [d / 1000 for d in samples["wordsDelayMs"]]
    return {
        "face_updates_per_s": round(len(samples["faceAt"]) / seconds, 2),
        "frames_sent_per_s": round(counters["framesSent"] / seconds, 2),
        "face_latency_p50_ms": pct(samples["faceLatencyMs"], 50),
        "face_latency_p99_ms": pct(samples["faceLatencyMs"], 99),
        "voice_updates": len(samples["voiceAt"]),
        "voice_interval_p50_s": round(float(np.median(voice_gaps)), 3) if voice_gaps else None,
        "voice_interval_max_s": round(float(np.max(voice_gaps)), 3) if voice_gaps else None,
        "transcripts": len(words),
        "words_delay_p50_s": round(float(np.median(words)), 3) if words else None,
        "words_delay_max_s": round(float(np.max(words)), 3) if words else None,
        "errors": counters["errors"],
    }


def verdict(summary: dict[str, Any], *, words: bool) -> dict[str, bool | None]:
    def at_most(key: str) -> bool | None:
        return None if summary[key] is None else summary[key] <= TARGETS[key]

    return {"face_updates_per_s": summary["face_updates_per_s"] >= TARGETS["face_updates_per_s"],
            "face_latency_p99_ms": at_most("face_latency_p99_ms"),
            "voice_interval_p50_s": at_most("voice_interval_p50_s"),
            "voice_interval_max_s": at_most("voice_interval_max_s"),
            "words_delay_p50_s": at_most("words_delay_p50_s") if words else None}


def start_server(port: int, *, words: bool, runtime: str) -> subprocess.Popen[str]:
    import httpx

    command = [sys.executable, "-m", "emofuse", "serve", "--host", "127.0.0.1", "--port", str(port),
               "--runtime", runtime, "--words" if words else "--no-words"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"server exited: {server.stderr.read() if server.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.kill()
            raise RuntimeError("server did not start in 180 s")
        time.sleep(0.5)


def run_page(url: str, devices: dict[str, Path], *, server_pid: int, warmup_s: float, seconds: float) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=[
            "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={devices['video']}",
            f"--use-file-for-fake-audio-capture={devices['audio']}",
            "--autoplay-policy=no-user-gesture-required"])
        context = browser.new_context(permissions=["camera", "microphone"], viewport={"width": 1280, "height": 1000})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url + "/")
        page.click("#start")
        page.wait_for_function("window.emofuse.counters.face >= 1", timeout=60_000)
        time.sleep(warmup_s)
        page.evaluate("""() => { const s = window.emofuse;
            for (const k of Object.keys(s.samples)) s.samples[k] = [];
            for (const k of Object.keys(s.counters)) s.counters[k] = 0; }""")
        pids = browser_pids()
        browser_cpu, server_cpu = cpu_seconds(pids), cpu_seconds([server_pid])
        started = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - started
        browser_cpu, server_cpu = cpu_seconds(pids) - browser_cpu, cpu_seconds([server_pid]) - server_cpu
        samples = page.evaluate("window.emofuse.samples")
        counters = page.evaluate("window.emofuse.counters")
        page.screenshot(path=str(devices["video"].parent / "page.png"), full_page=True)
        page.click("#stop")
        context.close()
        browser.close()
    return {"samples": samples, "counters": counters, "elapsed_s": elapsed, "browser_cpu_s": browser_cpu,
            "server_cpu_s": server_cpu, "page_errors": errors}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup-seconds", type=float, default=10.0)
    parser.add_argument("--words", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--runtime", choices=["torch", "onnx"], default="torch")
    parser.add_argument("--ravdess", type=Path, default=None, help="RAVDESS speech for the microphone")
    parser.add_argument("--fer2013", type=Path, default=None, help="FER2013 faces for the camera")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not CHROMIUM.is_file():
        raise SystemExit(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set EMOFUSE_CHROMIUM)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        raise SystemExit("benchmarks/page_live.py needs Playwright: pip install -e '.[dev]'") from None
    for name, folder in (("--ravdess", args.ravdess), ("--fer2013", args.fer2013)):
        if folder is not None and not folder.exists():
            raise SystemExit(f"{name} {folder}: no such file or folder")
    from serve_load import free_port

    from emofuse._io import write_json
    from emofuse.evaluation.results import git_commit

    with tempfile.TemporaryDirectory(prefix="emofuse-page-live-") as tmp:
        root = Path(tmp)
        audio, audio_s = microphone_audio(root / "microphone.wav", args.ravdess)
        devices = {"video": camera_video(root / "camera.y4m", face_images(args.fer2013)), "audio": audio}
        port = free_port()
        server = start_server(port, words=args.words, runtime=args.runtime)
        try:
            run = run_page(f"http://127.0.0.1:{port}", devices, server_pid=server.pid, warmup_s=args.warmup_seconds,
                           seconds=args.seconds)
        finally:
            server.terminate()
            server.wait(timeout=30)
    summary = summarise(run["samples"], run["counters"], run["elapsed_s"])
    config = {"words": args.words, "runtime": args.runtime, "camera": "fer2013" if args.fer2013 else "bundled",
              "microphone": "ravdess" if args.ravdess else "bundled"}
    record = {
        "config": config, "seconds": round(run["elapsed_s"], 1), "warmup_seconds": args.warmup_seconds,
        **summary,
        "browser_cpu_cores": round(run["browser_cpu_s"] / run["elapsed_s"], 2),
        "server_cpu_cores": round(run["server_cpu_s"] / run["elapsed_s"], 2),
        "page_errors": run["page_errors"], "microphone_loop_s": round(audio_s, 1),
        "targets": TARGETS, "meets": verdict(summary, words=args.words),
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
        "commit": git_commit(),
    }
    print(json.dumps(record, indent=2), flush=True)
    old = json.loads(args.results.read_text()) if args.results.exists() else {"benchmark": "page_live", "runs": []}
    runs = [r for r in old["runs"] if r["config"] != config] + [record]
    write_json(args.results, {"benchmark": "page_live", "runs": runs})
    return 0


if __name__ == "__main__":
    sys.exit(main())
