"""emofuse predict and emofuse transcribe: emotion and words from files."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from emofuse.cli.common import (
    Engine,
    OutputFormat,
    Quiet,
    Runtime,
    RuntimeOption,
    err,
    guarded,
    stdout_console,
)


def transcribe(
    paths: Annotated[list[Path], typer.Argument(help="Audio or video files.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per file (JSON lines).")] = False,
    model: Annotated[str, typer.Option(help="tiny.en, base, a CTranslate2 model folder, or a hub name "
                                            "(needs internet).")] = "tiny.en",
    beam_size: Annotated[int, typer.Option(help="Beam search width.")] = 5,
    vad: Annotated[bool, typer.Option(help="Skip non-speech with the Silero VAD faster-whisper bundles.")] = True,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto.")] = "cpu",
) -> None:
    """Speech to text, offline. A file that cannot be read is reported and skipped (exit 1 at the end)."""
    from emofuse.errors import EmofuseError
    from emofuse.speech import Transcriber

    transcriber = guarded(Transcriber, model=model, beam_size=beam_size, vad=vad, device=device)
    console = stdout_console()
    failed = 0
    for path in paths:
        try:
            result = transcriber.transcribe(path)
        except (EmofuseError, OSError) as exc:
            failed += 1
            if as_json:
                sys.stdout.write(json.dumps({"path": str(path), "status": "unreadable", "error": str(exc)}) + "\n")
            else:
                err(f"{path}: {exc}")
            continue
        if as_json:
            sys.stdout.write(json.dumps({"path": str(path), **result.to_dict()}) + "\n")
        else:
            shown = result.text if result.status == "ok" else f"[{result.status}] {result.note}"
            console.print(f"{path}: {shown}", markup=False)
    if failed:
        raise typer.Exit(1)


def predict(
    paths: Annotated[list[Path], typer.Argument(help="Audio files, images, videos, .txt files or folders (recursive).")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines on stdout: one per file (per window for video).")] = False,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="Also write one CSV row per file (per window for video).")] = None,
    voice_model: Annotated[Path | None, typer.Option(help="A saved voice model (or, with --runtime onnx, an exported .onnx) instead of the shipped one.")] = None,
    face_model: Annotated[Path | None, typer.Option(help="A saved face model (or, with --runtime onnx, an exported .onnx) instead of the shipped one.")] = None,
    words: Annotated[bool, typer.Option(help="Speech-to-text and the text model, when installed.")] = True,
    window: Annotated[float, typer.Option(help="Video: seconds per timeline window.")] = 2.0,
    hop: Annotated[float, typer.Option(help="Video: seconds between window starts.")] = 1.0,
    frame_rate: Annotated[float, typer.Option(help="Video: frames per second searched for faces.")] = 4.0,
    adapt_speaker: Annotated[bool, typer.Option(help="The audio files are one speaker's clips, in order: adapt the "
                                                     "voice model to them as they are heard.")] = False,
    batch_size: Annotated[int, typer.Option(help="Audio clips decoded and classified per batch (ray: files per actor call).")] = 32,
    engine: Annotated[Engine, typer.Option(help="local: in this process. ray: a Ray cluster's actor pool, results to --out.")] = Engine.local,
    out: Annotated[Path | None, typer.Option(help="Ray: folder for the result files; files already there are skipped.")] = None,
    address: Annotated[str | None, typer.Option(help="Ray: a running cluster (auto, ray://HOST:10001); default RAY_ADDRESS, else a local one.")] = None,
    workers: Annotated[int, typer.Option(help="Ray: model actors, one CPU (and a GPU share) each.")] = 2,
    output_format: Annotated[OutputFormat, typer.Option("--format", help="Ray: result file format.")] = OutputFormat.parquet,
    runtime: RuntimeOption = Runtime.torch,
    onnx_threads: Annotated[int | None, typer.Option(help="onnxruntime intra-op threads [default: one per core].")] = None,
    quiet: Quiet = False,
) -> None:
    """Emotion from files: voice, face and words, and the fused result. Bad files are reported, not fatal.

    PATHS may be glob patterns (quote them to let emofuse expand them, "clips/**/*.wav").
    """
    from emofuse.inference.batch import predict_files
    from emofuse.inference.predictor import Predictor, PredictorConfig
    from emofuse.inference.writers import CsvWriter, print_table, write_jsonl

    config = guarded(PredictorConfig.from_dict, {"video_window_s": window, "video_hop_s": hop,
                                              "video_frame_rate_hz": frame_rate, "voice_batch_size": batch_size})
    if engine == Engine.ray:
        if adapt_speaker:
            err("--adapt-speaker needs the clips in order, in one process: use --engine local")
            raise typer.Exit(2)
        if as_json or csv_path is not None:
            err("--json and --csv are for --engine local; with --engine ray the results go to --out")
            raise typer.Exit(2)
        _predict_on_ray(paths, out, address=address, workers=workers, batch_size=batch_size,
                        output_format=output_format.value, voice_model=voice_model, face_model=face_model,
                        words=words, config=config, runtime=runtime.value, quiet=quiet)
        return
    if out is not None:
        err("--out is for --engine ray; with --engine local use --json or --csv")
        raise typer.Exit(2)
    predictor = guarded(Predictor.from_shipped, voice_dir=voice_model, face_dir=face_model, words=words, config=config,
                     runtime=runtime.value, onnx_threads=onnx_threads)
    results = guarded(lambda: list(_predict_stream(predict_files(predictor, paths, progress=not quiet and not as_json,
                                                              transcribe=words, batch_size=batch_size,
                                                              adapt_speaker=adapt_speaker),
                                                as_json, csv_path, predictor, write_jsonl, CsvWriter)))
    if not as_json:
        print_table(results, stdout_console())
    bad = [r for r in results if r.status != "ok"]
    for result in bad:
        err(f"{result.path}: {result.problem or result.status}")
    if bad:  # every readable file was predicted; the exit code still says that some were not
        err(f"{len(bad)} of {len(results)} file(s) could not be read")
        raise typer.Exit(1)


def _predict_on_ray(paths: list[Path], out: Path | None, *, address: str | None, workers: int, batch_size: int,
                    output_format: str, voice_model: Path | None, face_model: Path | None, words: bool, config: Any,
                    runtime: str, quiet: bool) -> None:
    from emofuse.inference.ray_engine import PredictorOptions, predict_with_ray

    if out is None:
        err("--engine ray needs --out DIR for its result files")
        raise typer.Exit(2)
    options = PredictorOptions(voice_dir=str(voice_model) if voice_model else None,
                               face_dir=str(face_model) if face_model else None, words=words, config=config,
                               runtime=runtime)
    run = guarded(predict_with_ray, paths, out, address=address, num_workers=workers, batch_size=batch_size,
               output_format=output_format, options=options, progress=not quiet)
    console = stdout_console()
    console.print(f"{run.predicted} file(s) predicted, {run.skipped} already in {run.out_dir} skipped; "
                  f"{run.rows} row(s) in {len(run.written)} new {output_format} file(s), {run.seconds:.1f} s",
                  markup=False)
    for aside in run.set_aside:
        err(f"{aside.name}: an unreadable result file (a run stopped while writing it?) was set aside; "
             "its files were predicted again")
    if run.unreadable:
        err(f"{run.unreadable} of {run.predicted} file(s) could not be read (see the problem column)")
        raise typer.Exit(1)


def _predict_stream(results: Any, as_json: bool, csv_path: Path | None, predictor: Any, write_jsonl: Any,
                    csv_writer: Any) -> Any:
    """Results as they come, written to stdout (JSON lines) and/or the CSV file on the way."""
    from emofuse._io import atomic_write

    if as_json:
        results = write_jsonl(results, sys.stdout)
    if csv_path is None:
        yield from results
        return
    with atomic_write(csv_path, "w") as handle:
        writer = csv_writer(handle, predictor.label_sets())
        for result in results:
            writer.write(result)
            yield result
