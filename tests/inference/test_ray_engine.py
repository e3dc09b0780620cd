"""Batch prediction on Ray: a local two-CPU cluster (one per module), the tiny models of
tests/_predictors.py, generated media. Every Ray answer must be the in-process one."""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from emofuse.cli import app
from emofuse.errors import ConfigError
from emofuse.inference import Predictor
from emofuse.inference.batch import predict_files
from emofuse.inference.ray_engine import (
    RUN_FILE,
    PredictorOptions,
    done_keys,
    predict_with_ray,
    read_results,
)
from emofuse.inference.writers import flat_rows
from tests._predictors import voiced, write_wav

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """Two worker CPUs, shared by every test here; predict_with_ray uses the session it finds."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, media: dict[str, Path]) -> Path:
    """Four clips, a face, a faceless image, a video, a text file and three bad files."""
    root = tmp_path_factory.mktemp("ray_in")
    for i, code in enumerate(["01", "03", "05", "08"]):
        write_wav(root / f"clip{i}.wav", voiced(code, 0.8, seed=i))
    for name in ("face", "blank", "video", "text", "text_as_wav", "truncated", "unknown"):
        shutil.copy(media[name], root / media[name].name)
    return root


@pytest.fixture(scope="module")
def options(tiny_model_dirs: dict[str, Path]) -> PredictorOptions:
    return PredictorOptions(voice_dir=str(tiny_model_dirs["voice"]), face_dir=str(tiny_model_dirs["face"]),
                            words=False)


def in_process(predictor: Predictor, paths: list[Path]) -> list[dict[str, Any]]:
    return [row for result in predict_files(predictor, paths, transcribe=False)
            for row in flat_rows(result, predictor.label_sets())]


def assert_same_rows(ray_rows: list[dict[str, Any]], local_rows: list[dict[str, Any]]) -> None:
    """Same rows, strings exactly and numbers within 1e-6, whatever order the actors wrote them in."""
    def order(row: dict[str, Any]) -> tuple[str, float]:
        return row["path"], -1.0 if row["start_s"] is None else row["start_s"]

    assert len(ray_rows) == len(local_rows)
    for got, want in zip(sorted(ray_rows, key=order), sorted(local_rows, key=order), strict=True):
        assert set(want) <= set(got)
        for key, value in want.items():
            if isinstance(value, float):
                assert got[key] == pytest.approx(value, abs=1e-6), (want["path"], key)
            else:
                assert got[key] == value or (value is None and _missing(got[key])), (want["path"], key, got[key])


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def test_parquet_equals_the_in_process_path(ray_cluster: None, folder: Path, options: PredictorOptions,
                                            tiny_predictor: Predictor, tmp_path: Path) -> None:
    run = predict_with_ray([folder], tmp_path / "out", num_workers=2, batch_size=3, options=options, progress=False)
    table = read_results(tmp_path / "out")
    assert (run.files, run.skipped, run.predicted) == (11, 0, 11)
    assert run.rows == table.num_rows == 11 - 1 + 3  # the 4 s video has three windows
    assert run.unreadable == 3 and len(run.written) >= 2  # one file per batch of three
    assert_same_rows(table.to_pylist(), in_process(tiny_predictor, [folder]))
    by_name = {Path(r["path"]).name: r for r in table.to_pylist()}
    assert by_name["clip1.wav"]["voice_status"] == "ok" and by_name["face.png"]["face_status"] == "ok"
    assert "unsupported file type" in by_name["data.xyz"]["problem"]
    assert by_name["clip0.wav"]["size_bytes"] == (folder / "clip0.wav").stat().st_size


def test_resume_predicts_only_new_and_changed_files(ray_cluster: None, folder: Path, options: PredictorOptions,
                                                    tiny_predictor: Predictor, tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    for name in ("clip0.wav", "clip1.wav", "face.png", "notes.wav"):
        shutil.copy(folder / name, clips / name)
    out = tmp_path / "out"
    first = predict_with_ray([clips], out, batch_size=2, options=options, progress=False)
    assert (first.predicted, first.skipped, first.rows) == (4, 0, 4)

    write_wav(clips / "new.wav", voiced("05", 0.8, seed=9))
    changed = clips / "clip1.wav"
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    second = predict_with_ray([clips], out, batch_size=2, options=options, progress=False)
    assert (second.files, second.skipped, second.predicted, second.rows) == (5, 3, 2, 2)
    new_rows = read_results(out, files=second.written).to_pylist()
    assert sorted(Path(r["path"]).name for r in new_rows) == ["clip1.wav", "new.wav"]
    assert_same_rows(new_rows, in_process(tiny_predictor, [changed, clips / "new.wav"]))
    assert read_results(out).num_rows == 6  # the old clip1 row stays; the newest mtime_ns is current

    third = predict_with_ray([clips], out, options=options, progress=False)
    assert (third.skipped, third.predicted, third.written) == (5, 0, [])


def test_cli_writes_jsonl_equal_to_the_in_process_path(ray_cluster: None, folder: Path, tiny_model_dirs: dict[str, Path],
                                                       tiny_predictor: Predictor, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["predict", "--engine", "ray", str(folder / "clip*.wav"), str(folder / "face.png"),
            str(folder / "notes.wav"), "--out", str(out), "--format", "jsonl", "--workers", "2",
            "--voice-model", str(tiny_model_dirs["voice"]), "--face-model", str(tiny_model_dirs["face"]),
            "--no-words", "--quiet"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "250"})
    assert result.exit_code == 1, result.output  # notes.wav could not be read; the other five were predicted
    assert "6 file(s) predicted, 0 already" in result.stdout
    assert "1 of 6 file(s) could not be read" in result.stderr
    lines = [json.loads(line) for path in sorted(out.glob("[!_]*.json")) for line in path.read_text().splitlines()]
    wanted = [*sorted(folder.glob("clip*.wav")), folder / "face.png", folder / "notes.wav"]
    assert_same_rows(lines, in_process(tiny_predictor, wanted))
    assert read_results(out, "jsonl").num_rows == 6  # and Arrow reads the same files

    again = CliRunner().invoke(app, args, env={"COLUMNS": "250"})
    assert again.exit_code == 0 and "0 file(s) predicted, 6 already" in again.stdout


def test_more_workers_than_cluster_cpus_is_refused(ray_cluster: None, folder: Path, options: PredictorOptions,
                                                    tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="has 2 CPU"):
        predict_with_ray([folder / "clip0.wav"], tmp_path, num_workers=3, options=options, progress=False)
    assert not list(tmp_path.glob("*.parquet"))


def test_cli_ray_needs_out_and_refuses_local_outputs(tmp_path: Path) -> None:
    no_out = CliRunner().invoke(app, ["predict", "--engine", "ray", str(tmp_path)])
    assert no_out.exit_code == 2 and "needs --out" in no_out.output
    with_json = CliRunner().invoke(app, ["predict", "--engine", "ray", str(tmp_path), "--out", str(tmp_path), "--json"])
    assert with_json.exit_code == 2 and "--json and --csv are for --engine local" in with_json.output
    local_out = CliRunner().invoke(app, ["predict", str(tmp_path), "--out", str(tmp_path)])
    assert local_out.exit_code == 2 and "--out is for --engine ray" in local_out.output


def test_cli_without_ray_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    result = CliRunner().invoke(app, ["predict", "--engine", "ray", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "pip install 'emofuse[ray]'" in result.output
    assert "Traceback" not in result.output


def test_resuming_with_other_models_is_refused(options: PredictorOptions, tmp_path: Path) -> None:
    predict_with_ray([], tmp_path, options=options)  # nothing to do: records the options, starts no Ray
    assert json.loads((tmp_path / RUN_FILE).read_text())["words"] is False
    other = PredictorOptions(voice_dir=options.voice_dir, face_dir=options.face_dir, words=True)
    with pytest.raises(ConfigError, match="words differ"):
        predict_with_ray([], tmp_path, options=other)
    with pytest.raises(ConfigError, match="format differ"):
        predict_with_ray([], tmp_path, options=options, output_format="jsonl")


def test_a_truncated_result_file_is_set_aside(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"path": ["/a.wav"], "size_bytes": [3], "mtime_ns": [7]}), tmp_path / "good.parquet")
    (tmp_path / "cut.parquet").write_bytes((tmp_path / "good.parquet").read_bytes()[:40])
    done, set_aside = done_keys(tmp_path, "parquet")
    assert done == {("/a.wav", 3, 7)}
    assert set_aside == [tmp_path / ".partial-cut.parquet"] and set_aside[0].is_file()
    assert not (tmp_path / "cut.parquet").exists()
