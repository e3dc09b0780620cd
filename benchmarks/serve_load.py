"""Load and speed of ``emofuse serve`` on loopback: concurrent HTTP clients and live streams.

    python benchmarks/serve_load.py                      # 50 clients x 60 s, plus one live stream
    python benchmarks/serve_load.py --clients 10 --seconds 15 --warmup-seconds 5   # a quick look

Starts ``python -m emofuse serve`` (the shipped models, 127.0.0.1, a free port) as its own process and
runs three phases against it, every request only to 127.0.0.1:

1. ``stream_alone``: one live client on ``WS /v1/stream`` sending 16 kHz PCM16 audio in 256 ms chunks
   (real time) and 320 x 240 JPEG frames at 20 frames/s, as the web page does: how often face and
   voice answers come back, and their latency.
2. ``warmup``: the full load for ``--warmup-seconds``; the server's RSS is read after it.
3. ``load``: ``--clients`` concurrent HTTP clients for ``--seconds``, half posting a clip to
   ``/v1/predict/audio`` and half a photo to ``/v1/predict/image`` back to back, while the live
   stream keeps running: p50 / p99 latency, requests/s, errors, and the server's RSS
   (``/proc/<pid>/status`` VmRSS) before, after warm-up, at the end, and its maximum.

Every loop is bounded in time and stops by itself. Writes ``benchmarks/results/serve.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).parent / "results" / "serve.json"
SR = 16_000


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmRSS")


def stats(latencies_ms: list[float]) -> dict[str, float | int | None]:
    if not latencies_ms:
        return {"n": 0, "p50_ms": None, "p99_ms": None}
    a = np.asarray(latencies_ms)
    return {"n": len(a), "p50_ms": round(float(np.percentile(a, 50)), 1),
            "p99_ms": round(float(np.percentile(a, 99)), 1), "max_ms": round(float(a.max()), 1)}


def payloads(data: Path | None) -> dict[str, Any]:
    """A speech clip (RAVDESS when given, else a generated tone), a face photo, and stream chunks."""
    import cv2
    import soundfile as sf
    from PIL import Image
    from skimage import data as skdata

    from emofuse.data.synthetic import tone_clip

    clip_source = "generated 3 s tone clip"
    y = np.concatenate([tone_clip("05", actor=1, seconds=1.0, seed=k) for k in range(3)])
    if data is not None and data.is_dir():
        files = sorted(data.rglob("*.flac"))
        if files:
            from emofuse.features.audio import load_audio

            y = load_audio(files[len(files) // 2])
            clip_source = f"RAVDESS {files[len(files) // 2].name} ({len(y) / SR:.1f} s)"
    wav = io.BytesIO()
    sf.write(wav, y, SR, format="WAV")
    face = np.asarray(skdata.astronaut())
    jpeg = io.BytesIO()
    Image.fromarray(face).save(jpeg, format="JPEG", quality=90)
    frame = np.full((240, 320, 3), 60, np.uint8)
    frame[:, 40:280] = cv2.resize(face[:400, 40:440], (240, 240), interpolation=cv2.INTER_AREA)
    small = io.BytesIO()
    Image.fromarray(frame).save(small, format="JPEG", quality=75)
    pcm = (np.clip(y, -1, 1) * 32767).astype("<i2")
    return {"wav": wav.getvalue(), "jpeg": jpeg.getvalue(), "frame": b"\x02" + small.getvalue(), "pcm": pcm,
            "clip_source": clip_source, "image_source": "scikit-image astronaut, 512 x 512 JPEG"}


async def http_client(url: str, route: str, files: dict[str, Any], until: float, out: dict[str, Any]) -> None:
    import httpx

    async with httpx.AsyncClient(timeout=120) as client:
        while time.monotonic() < until:
            start = time.perf_counter()
            try:
                r = await client.post(url + route, files=files)
                ok = r.status_code == 200
                if not ok:
                    out["errors"].append(f"{r.status_code}: {r.text[:200]}")
            except Exception as exc:  # a refused or dropped connection is an error of the run
                ok = False
                out["errors"].append(f"{type(exc).__name__}: {exc}")
            if ok:
                out["latencies"].append((time.perf_counter() - start) * 1000)


async def stream_client(ws_url: str, p: dict[str, Any], until: float, out: dict[str, Any]) -> None:
    import websockets

    chunk = 4096  # 256 ms at 16 kHz, as the page sends
    async with websockets.connect(ws_url, max_size=2_000_000) as ws:
        started = time.monotonic()

        async def send_audio() -> None:
            k = 0
            while time.monotonic() < until:
                start = (k * chunk) % max(1, len(p["pcm"]) - chunk)
                await ws.send(b"\x01" + p["pcm"][start : start + chunk].tobytes())
                k += 1
                await asyncio.sleep(max(0.0, started + k * chunk / SR - time.monotonic()))

        async def send_frames() -> None:
            k = 0
            while time.monotonic() < until:
                await ws.send(p["frame"])
                k += 1
                await asyncio.sleep(max(0.0, started + k / 20 - time.monotonic()))

        async def receive() -> None:
            while time.monotonic() < until:
                try:
                    message = json.loads(await asyncio.wait_for(ws.recv(), timeout=max(0.01, until - time.monotonic())))
                except TimeoutError:
                    break
                now = time.monotonic()
                if message["type"] == "face":
                    out["face_times"].append(now)
                    out["face_latency"].append(message["latency_ms"])
                    out["face_status"][message["face"]["status"]] = out["face_status"].get(message["face"]["status"], 0) + 1
                elif message["type"] == "update" and message["latency_ms"]["voice_inference"] is not None:
                    out["voice_times"].append(now)
                    out["voice_latency"].append(message["latency_ms"]["voice_inference"])
                elif message["type"] == "error":
                    out["errors"].append(message["message"])

        await asyncio.gather(send_audio(), send_frames(), receive())


def stream_summary(out: dict[str, Any], seconds: float) -> dict[str, Any]:
    gaps = np.diff(out["voice_times"]) if len(out["voice_times"]) > 1 else np.array([])
    return {
        "face_updates_per_s": round(len(out["face_times"]) / seconds, 1),
        "face_status": out["face_status"],
        "face_latency": stats(out["face_latency"]),
        "voice_updates": len(out["voice_times"]),
        "voice_interval_s": ({"p50": round(float(np.percentile(gaps, 50)), 3),
                              "p99": round(float(np.percentile(gaps, 99)), 3),
                              "max": round(float(gaps.max()), 3)} if gaps.size else None),
        "voice_inference": stats(out["voice_latency"]),
        "errors": len(out["errors"]),
        "error_examples": out["errors"][:3],
    }


def new_stream_out() -> dict[str, Any]:
    return {"face_times": [], "face_latency": [], "face_status": {}, "voice_times": [], "voice_latency": [],
            "errors": []}


async def phase(url: str, p: dict[str, Any], *, clients: int, seconds: float, streams: int) -> dict[str, Any]:
    until = time.monotonic() + seconds
    audio = {"latencies": [], "errors": []}
    image = {"latencies": [], "errors": []}
    stream_outs = [new_stream_out() for _ in range(streams)]
    tasks = []
    for i in range(clients):
        if i % 2 == 0:
            tasks.append(http_client(url, "/v1/predict/audio", {"file": ("clip.wav", p["wav"], "audio/wav")}, until, audio))
        else:
            tasks.append(http_client(url, "/v1/predict/image", {"file": ("face.jpg", p["jpeg"], "image/jpeg")}, until, image))
    ws_url = url.replace("http://", "ws://") + "/v1/stream"
    tasks += [stream_client(ws_url, p, until, out) for out in stream_outs]
    started = time.monotonic()
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - started
    result: dict[str, Any] = {"seconds": round(elapsed, 1), "clients": clients, "streams": streams}
    for name, out in (("audio", audio), ("image", image)):
        if clients:
            result[name] = {**stats(out["latencies"]), "requests_per_s": round(len(out["latencies"]) / elapsed, 1),
                            "errors": len(out["errors"]), "error_examples": out["errors"][:3]}
    if streams:
        result["stream"] = stream_summary(stream_outs[0], elapsed)
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup-seconds", type=float, default=15.0)
    parser.add_argument("--stream-seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
                        / "ravdess-speech-16k")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    import httpx

    from emofuse._io import write_json
    from emofuse.evaluation.results import git_commit

    p = payloads(args.data)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "emofuse", "serve", "--host", "127.0.0.1", "--port", str(port),
                               "--workers", str(args.workers), "--no-words"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"server exited: {server.stderr.read() if server.stderr else ''}")
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start in 120 s")
            time.sleep(0.5)
        models = httpx.get(url + "/v1/models").json()
        rss = {"started": rss_mb(server.pid)}
        print("stream alone ...", flush=True)
        alone = asyncio.run(phase(url, p, clients=0, seconds=args.stream_seconds, streams=1))
        print(json.dumps(alone["stream"]), flush=True)
        print("warm-up ...", flush=True)
        warm = asyncio.run(phase(url, p, clients=args.clients, seconds=args.warmup_seconds, streams=1))
        rss["after_warmup"] = rss_mb(server.pid)
        print(f"load: {args.clients} clients for {args.seconds:.0f} s ...", flush=True)
        samples: list[float] = []

        async def sample_rss(until: float) -> None:
            while time.monotonic() < until:
                samples.append(rss_mb(server.pid))
                await asyncio.sleep(1.0)

        async def loaded() -> dict[str, Any]:
            until = time.monotonic() + args.seconds
            result, _ = await asyncio.gather(phase(url, p, clients=args.clients, seconds=args.seconds, streams=1),
                                             sample_rss(until))
            return result

        load = asyncio.run(loaded())
        rss["end"] = rss_mb(server.pid)
        rss["max_during_load"] = max(samples) if samples else rss["end"]
        rss["growth_after_warmup"] = round(rss["end"] - rss["after_warmup"], 1)
        healthy = httpx.get(url + "/healthz").status_code == 200
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()

    errors = sum(load[k]["errors"] for k in ("audio", "image")) + load["stream"]["errors"]
    record = {
        "benchmark": "serve_load", "commit": git_commit(), "cpu": platform.machine(), "cores": os.cpu_count(),
        "loadavg_at_end": os.getloadavg(), "server": {"workers": args.workers, "torch_threads_per_worker": 1,
                                                      "models": [f"{m['modality']}: {m['name']}" for m in models["models"]]},
        "payloads": {"audio": p["clip_source"], "image": p["image_source"],
                     "stream": "256 ms PCM16 chunks in real time + 320x240 JPEG frames at 20/s"},
        "stream_alone": alone["stream"], "warmup": {k: v for k, v in warm.items() if k != "stream"},
        "load": load, "server_rss_mb": rss, "total_errors_under_load": errors, "healthy_after": healthy,
        "command": " ".join(["python", "benchmarks/serve_load.py", *(argv if argv is not None else sys.argv[1:])]),
    }
    write_json(args.results, record)
    print(json.dumps({"load": {k: load[k] for k in ("audio", "image")}, "stream_under_load": load["stream"],
                      "rss": rss, "errors": errors}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
