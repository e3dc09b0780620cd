"""Batch prediction on a Ray cluster: many media files, a pool of model actors, Parquet or JSONL out.

>>> run = predict_with_ray(["clips/", "more/*.wav"], "results/", num_workers=2)
>>> run.predicted, run.skipped, run.rows

The files are listed (folders and globs expanded exactly as ``emofuse predict`` does) on the driver;
a Ray Dataset of their paths goes through ``map_batches`` to a fixed pool of actors, each of which
builds the :class:`~emofuse.inference.Predictor` once and runs
:func:`~emofuse.inference.batch.predict_files` on its batches, so every answer is the in-process one.
Rows are :func:`~emofuse.inference.writers.flat_rows` (the ``--csv`` columns, unformatted) plus the
resume key ``size_bytes``, ``mtime_ns``; Ray's writers put them in new files under ``out_dir``.

Resumable: a file whose (absolute path, size, mtime) is already in ``out_dir`` is skipped. The key is
the file's metadata, not a content hash, so that resuming over a large collection costs one ``stat``
per file rather than reading every byte again; a file rewritten since gets a new mtime and is
predicted again. Each run writes new files (Ray names them by a fresh dataset id), so a run that
stops part-way keeps every batch it wrote. ``_emofuse_ray.json`` in ``out_dir`` records the models and
options; resuming with different ones is refused rather than mixing their answers in one table.

Paths must be readable at the same place on every node (a shared filesystem), as the actors read them.
Ray is imported inside the functions: the ``ray`` extra is needed only when this engine is used.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from emofuse.errors import ConfigError, EmofuseError
from emofuse.inference.predictor import PredictorConfig

FORMATS = ("parquet", "jsonl")
KEY_COLUMNS = ("size_bytes", "mtime_ns")
RUN_FILE = "_emofuse_ray.json"  # leading "_": Parquet and Arrow dataset readers skip it
INSTALL_HINT = "batch prediction on Ray needs the ray extra: pip install 'emofuse[ray]'"


@dataclass(frozen=True)
class PredictorOptions:
    """What each actor builds its Predictor from (:meth:`Predictor.from_shipped`'s arguments)."""

    voice_dir: str | None = None
    face_dir: str | None = None
    words: bool = True
    config: PredictorConfig = field(default_factory=PredictorConfig)
    runtime: str = "torch"  # or "onnx": each actor runs the exported graphs in onnxruntime (one thread)

    def identity(self) -> dict[str, Any]:
        """The options that change answers (batch sizes do not), as recorded in ``_emofuse_ray.json``."""
        config = {k: v for k, v in asdict(self.config).items() if not k.endswith("_batch_size")}
        return {"voice_model": _absolute(self.voice_dir), "face_model": _absolute(self.face_dir),
                "words": self.words, "predictor": config,
                **({"runtime": self.runtime} if self.runtime != "torch" else {})}


@dataclass(frozen=True)
class RayRun:
    """What one call did. ``written`` are the result files this run added to ``out_dir``."""

    out_dir: Path
    files: int  # after expanding folders and globs
    skipped: int  # already in out_dir
    predicted: int
    rows: int  # one per file, one per window of a video
    unreadable: int  # predicted files whose status is "unreadable"
    seconds: float
    written: list[Path] = field(default_factory=list)
    set_aside: list[Path] = field(default_factory=list)  # unreadable result files from a killed run


def require_ray() -> Any:
    """The ``ray`` module, or an :class:`EmofuseError` saying how to install it."""
    try:
        import pyarrow  # noqa: F401
        import ray
        import ray.data
    except ImportError:
        raise EmofuseError(INSTALL_HINT) from None
    return ray


def predict_with_ray(paths: Sequence[str | Path], out_dir: str | Path, *, address: str | None = None,
                     num_workers: int = 2, batch_size: int = 32, output_format: str = "parquet",
                     options: PredictorOptions | None = None, progress: bool = True,
                     runtime_env: Mapping[str, Any] | None = None) -> RayRun:
    """Predict every file under ``paths`` not yet in ``out_dir`` on Ray; write the rows there.

    ``address`` connects to a running cluster (``"auto"``, ``"ray://head:10001"``); without it Ray's own
    rule applies (``RAY_ADDRESS`` if set), else a local cluster of ``num_workers`` CPUs is started and
    stopped again. A Ray session this process already opened is used as it is. ``num_workers`` actors
    each hold the models (one CPU each, and a GPU share when the cluster has GPUs); ``batch_size``
    files go to an actor at a time (fewer when there are not enough files to give every actor a full
    batch) and each batch becomes one result file.
    """
    from emofuse.inference.batch import expand_paths

    start = time.perf_counter()
    if output_format not in FORMATS:
        raise ConfigError(f"unknown output format {output_format!r}; known: {', '.join(FORMATS)}")
    if num_workers < 1 or batch_size < 1:
        raise ConfigError("--workers and --batch-size must be at least 1")
    ray = require_ray()
    options = options or PredictorOptions()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _check_run_file(out, options, output_format)

    done, set_aside = done_keys(out, output_format)
    files = expand_paths(paths)
    todo = []
    for path in files:
        item = file_key(path)
        if (item["path"], item["size_bytes"], item["mtime_ns"]) not in done:
            todo.append(item)
    todo = list({item["path"]: item for item in todo}.values())  # a file named twice is predicted once
    if not todo:
        return RayRun(out_dir=out, files=len(files), skipped=len(files), predicted=0, rows=0, unreadable=0,
                      seconds=time.perf_counter() - start, set_aside=set_aside)

    before = set(_result_files(out, output_format))
    started_here = not ray.is_initialized()
    if started_here:
        local = {} if address or os.environ.get("RAY_ADDRESS") else {"num_cpus": num_workers, "include_dashboard": False}
        ray.init(address=address, runtime_env=dict(runtime_env) if runtime_env else None, **local)
    try:
        _run_pipeline(ray, todo, out, num_workers=num_workers, batch_size=batch_size,
                      output_format=output_format, options=options, progress=progress)
    finally:
        if started_here:
            ray.shutdown()

    written = sorted(set(_result_files(out, output_format)) - before)
    table = read_results(out, output_format, files=written)
    rows = table.num_rows
    statuses = dict(zip(table.column("path").to_pylist(), table.column("status").to_pylist(), strict=True))
    return RayRun(out_dir=out, files=len(files), skipped=len(files) - len(todo), predicted=len(todo), rows=rows,
                  unreadable=sum(1 for s in statuses.values() if s == "unreadable"),
                  seconds=time.perf_counter() - start, written=written, set_aside=set_aside)


def _run_pipeline(ray: Any, todo: list[dict[str, Any]], out: Path, *, num_workers: int, batch_size: int,
                  output_format: str, options: PredictorOptions, progress: bool) -> None:
    import ray.data

    resources = ray.cluster_resources()
    cpus, gpus = float(resources.get("CPU", 0)), float(resources.get("GPU", 0))
    if cpus < num_workers:
        raise ConfigError(f"the Ray cluster has {cpus:g} CPU(s), fewer than the {num_workers} worker(s) asked for")
    # A GPU (or an even share of the cluster's) per actor when there are any; the Predictor then sees
    # it through CUDA_VISIBLE_DEVICES, which Ray sets for the actor.
    gpus_per_worker = min(1.0, gpus / num_workers) if gpus else 0.0

    context = ray.data.DataContext.get_current()
    was = context.enable_progress_bars
    context.enable_progress_bars = progress
    try:
        # One block per batch: each batch is written as soon as it is done, so a stopped run loses
        # at most the batches in flight. Few files are cut smaller, so that every actor gets some,
        # and no actor is started (loading the models) without a batch to run.
        per_batch = min(batch_size, math.ceil(len(todo) / num_workers))
        blocks = math.ceil(len(todo) / per_batch)
        dataset = ray.data.from_items(todo, override_num_blocks=blocks)
        predicted = dataset.map_batches(
            PredictBatch, fn_constructor_kwargs={"options": options, "torch_threads": 1},
            batch_size=per_batch, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=min(num_workers, blocks)),
            num_cpus=1, num_gpus=gpus_per_worker or None)
        # The writers take little CPU; a small share keeps them from waiting for a core the actors hold.
        write_args = {"ray_remote_args": {"num_cpus": 0.1}}
        if output_format == "parquet":
            predicted.write_parquet(str(out), **write_args)
        else:
            predicted.write_json(str(out), double_precision=15, **write_args)  # pandas' default keeps 10 digits
    finally:
        context.enable_progress_bars = was


class PredictBatch:
    """The actor: the Predictor is built once; each call turns a batch of file keys into result rows."""

    def __init__(self, options: PredictorOptions, torch_threads: int = 1) -> None:
        import torch

        from emofuse.inference.predictor import Predictor

        torch.set_num_threads(torch_threads)  # one core per actor; Ray places the actors on cores
        self.words = options.words
        self.predictor = Predictor.from_shipped(voice_dir=options.voice_dir, face_dir=options.face_dir,
                                                words=options.words, config=options.config, runtime=options.runtime,
                                                onnx_threads=torch_threads)
        self.label_sets = self.predictor.label_sets()
        self.schema = result_schema(self.label_sets)

    def __call__(self, batch: Mapping[str, Any]) -> Any:
        import pyarrow as pa

        from emofuse.inference.batch import predict_files
        from emofuse.inference.writers import flat_rows

        paths = [str(p) for p in batch["path"]]
        results = predict_files(self.predictor, paths, transcribe=self.words, batch_size=len(paths))
        out = []
        for result, size, mtime in zip(results, batch["size_bytes"], batch["mtime_ns"], strict=True):
            out += [{**row, "size_bytes": int(size), "mtime_ns": int(mtime)}
                    for row in flat_rows(result, self.label_sets)]
        return pa.Table.from_pylist(out, schema=self.schema)


def result_schema(label_sets: Mapping[str, tuple[str, ...]]) -> Any:
    """The Arrow schema of the result table: every batch has it, whatever its rows hold (a batch of
    unreadable files has no probabilities, yet its columns are still typed)."""
    import pyarrow as pa

    from emofuse.inference.writers import flat_columns

    def kind(column: str) -> Any:
        if column in KEY_COLUMNS:
            return pa.int64()
        if column in ("start_s", "end_s") or column.endswith("_confidence") or "_p_" in column:
            return pa.float64()
        if column.endswith("_uncertain"):
            return pa.bool_()
        return pa.string()

    return pa.schema([(c, kind(c)) for c in (*flat_columns(label_sets), *KEY_COLUMNS)])


def file_key(path: str | Path) -> dict[str, Any]:
    """``{"path": absolute path, "size_bytes", "mtime_ns"}``; ``-1`` for a file that is not there."""
    absolute = os.path.abspath(path)
    try:
        stat = os.stat(absolute)
    except OSError:
        return {"path": absolute, "size_bytes": -1, "mtime_ns": -1}
    return {"path": absolute, "size_bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def done_keys(out: Path, output_format: str) -> tuple[set[tuple[str, int, int]], list[Path]]:
    """The (path, size, mtime) of every file with rows in ``out``, and the result files set aside.

    A result file that cannot be read (a run killed while writing it) is renamed ``.partial-<name>``,
    which the readers skip; its files are predicted again.
    """
    done: set[tuple[str, int, int]] = set()
    set_aside = []
    for path in _result_files(out, output_format):
        try:
            table = read_results(out, output_format, files=[path], columns=["path", *KEY_COLUMNS])
        except Exception:  # pyarrow's errors for a truncated file vary by where it was cut
            aside = path.with_name(f".partial-{path.name}")
            path.rename(aside)
            set_aside.append(aside)
            continue
        done.update(zip(*(table.column(c).to_pylist() for c in ("path", *KEY_COLUMNS)), strict=True))
    return done, set_aside


def read_results(out_dir: str | Path, output_format: str = "parquet", *, files: Sequence[Path] | None = None,
                 columns: Sequence[str] | None = None) -> Any:
    """Every result row in ``out_dir`` (or just in ``files``) as one ``pyarrow.Table``."""
    import pyarrow as pa
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    paths = list(files) if files is not None else _result_files(Path(out_dir), output_format)
    tables = []
    for path in paths:
        if output_format == "parquet":
            table = pq.read_table(path, columns=list(columns) if columns else None)
        else:
            table = pj.read_json(path)
            table = table.select(list(columns)) if columns else table
        tables.append(table)
    if not tables:
        return pa.table({c: pa.array([], pa.string()) for c in (columns or ["path", "status"])})
    return pa.concat_tables(tables, promote_options="permissive")


def _result_files(out: Path, output_format: str) -> list[Path]:
    suffix = ".parquet" if output_format == "parquet" else ".json"
    return sorted(p for p in out.iterdir() if p.is_file() and p.name.endswith(suffix)
                  and not p.name.startswith((".", "_")))


def _check_run_file(out: Path, options: PredictorOptions, output_format: str) -> None:
    from emofuse._io import write_json

    record = {"format": output_format, **options.identity()}
    run_file = out / RUN_FILE
    if run_file.is_file():
        before = json.loads(run_file.read_text(encoding="utf-8"))
        if before != record:
            changed = sorted(k for k in set(before) | set(record) if before.get(k) != record.get(k))
            raise ConfigError(f"{out} holds results made with other options ({', '.join(changed)} differ); "
                              "use another output folder, or the same options to resume")
        return
    if _result_files(out, "parquet") or _result_files(out, "jsonl"):
        raise ConfigError(f"{out} already holds result files not written by emofuse; use another output folder")
    write_json(run_file, record)


def _absolute(path: str | None) -> str | None:
    return os.path.abspath(path) if path else None


__all__ = ["FORMATS", "PredictBatch", "PredictorOptions", "RayRun", "done_keys", "file_key", "predict_with_ray",
           "read_results", "require_ray", "result_schema"]
