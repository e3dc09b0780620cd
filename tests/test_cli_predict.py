"""`emofuse predict` end to end through the typer app, with the tiny models of tests/_predictors.py."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emofuse.cli import app
from tests._predictors import media, tiny_model_dirs

__all__ = ["media", "tiny_model_dirs"]


@pytest.fixture()
def models_args(tiny_model_dirs: dict[str, Path]) -> list[str]:
    return ["--voice-model", str(tiny_model_dirs["voice"]), "--face-model", str(tiny_model_dirs["face"]),
            "--no-words", "--quiet"]


def test_predict_json_lines(models_args: list[str], media: dict[str, Path]) -> None:
    result = CliRunner().invoke(app, ["predict", str(media["voice"]), str(media["face"]), str(media["text_as_wav"]),
                                      "--json", *models_args])
    assert result.exit_code == 1, result.output  # one input could not be read; the others were predicted
    assert str(media["text_as_wav"]) in result.stderr and "1 of 3 file(s) could not be read" in result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]  # stdout holds the results only
    assert [line["path"] for line in lines] == [str(media[k]) for k in ("voice", "face", "text_as_wav")]
    assert lines[0]["voice"]["status"] == "ok" and lines[0]["fused"]["label"] is not None
    assert lines[1]["face"]["status"] == "ok" and "box" in lines[1]["face"]
    assert lines[2]["status"] == "unreadable" and "text" in lines[2]["problem"]


def test_predict_table_and_csv(models_args: list[str], media: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    for name in ("voice", "tone", "silence", "truncated", "video"):
        shutil.copy(media[name], folder / media[name].name)
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(app, ["predict", str(folder), "--csv", str(out), *models_args], env={"COLUMNS": "250"})
    assert result.exit_code == 1, result.output
    assert "voice.wav" in result.stdout and "no_speech" in result.stdout
    assert "1 of 5 file(s) could not be read" in result.stderr and "truncated" in result.stderr
    table = list(csv.DictReader(out.open()))
    assert len(table) == 4 + 3  # four files, and the 4 s video's three windows
    assert {row["kind"] for row in table} == {"audio", "video"}
    status = {Path(row["path"]).name: row["voice_status"] for row in table if row["kind"] == "audio" and row["status"] == "ok"}
    # A steady tone and silence are not speech: the voice model is not asked about them.
    assert status == {"voice.wav": "ok", "tone.wav": "no_speech", "silence.wav": "no_speech"}
    assert [row["start_s"] for row in table if row["kind"] == "video"] == ["0.0", "1.0", "2.0"]


def test_predict_all_good_exits_0(models_args: list[str], media: dict[str, Path]) -> None:
    result = CliRunner().invoke(app, ["predict", str(media["voice"]), str(media["face"]), "--json", *models_args])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


def test_predict_all_bad_exits_1(models_args: list[str], media: dict[str, Path]) -> None:
    result = CliRunner().invoke(app, ["predict", str(media["unknown"]), *models_args], env={"COLUMNS": "250"})
    assert result.exit_code == 1
    assert "unsupported file type" in result.stdout


def test_predict_bad_model_dir_is_one_line(media: dict[str, Path], tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["predict", str(media["voice"]), "--voice-model", str(tmp_path), "--quiet"])
    assert result.exit_code == 1
    assert "not a saved emofuse model" in result.output and "Traceback" not in result.output


def test_serve_passes_its_options(monkeypatch: pytest.MonkeyPatch, tiny_model_dirs: dict[str, Path]) -> None:
    import emofuse.serving.app as serving_app

    seen = {}
    monkeypatch.setattr(serving_app, "run_server", lambda settings: seen.setdefault("settings", settings))
    result = CliRunner().invoke(app, ["serve", "--port", "9001", "--max-upload-mb", "5", "--no-words",
                                      "--voice-model", str(tiny_model_dirs["voice"])])
    assert result.exit_code == 0, result.output
    settings = seen["settings"]
    assert (settings.host, settings.port, settings.max_upload_bytes) == ("127.0.0.1", 9001, 5_000_000)
    assert settings.cors_origins == [] and settings.words is False
    assert settings.voice_model == str(tiny_model_dirs["voice"])


def test_serve_rejects_bad_settings() -> None:
    result = CliRunner().invoke(app, ["serve", "--workers", "0"])
    assert result.exit_code == 1 and "at least 1" in result.output


def test_predict_adapt_speaker(models_args: list[str], tmp_path: Path) -> None:
    import soundfile as sf

    from tests._predictors import voiced

    folder = tmp_path / "one-speaker"
    folder.mkdir()
    for k, code in enumerate(("01", "03", "05", "04", "02")):
        sf.write(folder / f"{k}.wav", voiced(code, 1.0, seed=k), 16_000)
    # The shipped voice model has a speaker-adapted head; the tiny test model has none.
    result = CliRunner().invoke(app, ["predict", str(folder), "--adapt-speaker", "--json", "--no-words", "--quiet"])
    assert result.exit_code == 0, result.output
    details = [json.loads(line)["voice"].get("detail", "") for line in result.stdout.splitlines()]
    assert details == ["", "", "", "adapted to the speaker from 4 clip(s) heard",
                       "adapted to the speaker from 5 clip(s) heard"]
    refused = CliRunner().invoke(app, ["predict", str(folder), "--adapt-speaker", *models_args])
    assert refused.exit_code == 1 and "speaker-adapted head" in refused.output
