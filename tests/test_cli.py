import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from emofuse.cli import app

runner = CliRunner()


def test_help_does_not_import_heavy_libraries():
    code = "import sys, emofuse.cli; heavy = {'numpy', 'torch', 'sklearn', 'soundfile', 'PIL'} & set(sys.modules); print(sorted(heavy))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
    result = subprocess.run([sys.executable, "-m", "emofuse", "--help"], capture_output=True, text=True, check=True)
    assert "data" in result.stdout and "demo" in result.stdout


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("emofuse ")


def test_summary_json(ravdess_dir):
    result = runner.invoke(app, ["data", "summary", "ravdess", str(ravdess_dir), "--json", "-q"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["clips"] == 360 and summary["speakers"] == 24
    assert summary["labels"]["neutral"] == 24 and summary["splits"] == {}
    assert summary["duplicates"]["groups"] == 0 and summary["unreadable"] == []


def test_summary_table_for_fer2013(fer_csv):
    result = runner.invoke(app, ["data", "summary", "fer2013", str(fer_csv), "-q"])
    assert result.exit_code == 0, result.output
    assert "Training 42" in result.stdout and "PrivateTest 14" in result.stdout


def test_bad_file_is_one_clear_line_and_skip_bad_lists_it(ravdess_dir, tmp_path):
    import shutil

    root = tmp_path / "r"
    shutil.copytree(ravdess_dir / "Actor_02", root / "Actor_02")
    bad = root / "Actor_02" / "03-01-01-01-01-01-02.wav"
    bad.write_text("hello")
    result = runner.invoke(app, ["data", "summary", "ravdess", str(root), "-q"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert str(bad) in result.stderr and "not audio" in result.stderr
    result = runner.invoke(app, ["data", "summary", "ravdess", str(root), "--skip-bad", "--json", "-q"])
    assert result.exit_code == 0
    summary = json.loads(result.stdout)
    assert summary["clips"] == 14
    assert summary["unreadable"] == [{"path": str(bad), "problem": "not audio: the file holds text"}]


def test_verify_exit_codes(ravdess_dir, tmp_path):
    import shutil

    result = runner.invoke(app, ["data", "verify", "ravdess", str(ravdess_dir), "--json", "-q"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["decoded"] == 360
    root = tmp_path / "r"
    shutil.copytree(ravdess_dir / "Actor_03", root / "Actor_03")
    victim = root / "Actor_03" / "03-01-05-02-01-01-03.wav"
    victim.write_bytes(victim.read_bytes()[:200])
    result = runner.invoke(app, ["data", "verify", "ravdess", str(root), "-q"])
    assert result.exit_code == 1
    assert "03-01-05-02-01-01-03.wav" in result.stdout and "1 problem" in result.stdout


def test_unknown_dataset_name_is_a_usage_error(tmp_path):
    result = runner.invoke(app, ["data", "summary", "imagenet", str(tmp_path)])
    assert result.exit_code == 2


def test_protocols_listing():
    result = runner.invoke(app, ["data", "protocols"])
    assert result.exit_code == 0
    assert "ravdess-6fold" in result.stdout and "leaky" in result.stdout


def test_demo_shows_the_shipped_models_on_the_bundled_sample(tmp_path):
    pytest.importorskip("faster_whisper")
    result = runner.invoke(app, ["demo", "--keep", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["face.jpg", "speech.flac", "video.mp4"]
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.startswith("│ ")
            and line.split("│")[1].strip()}
    assert {"face.jpg", "speech.flac", "video.mp4"} <= set(rows)
    assert "happy" in rows["face.jpg"]  # the portrait smiles; every shipped face model has said so
    assert "I am so happy today" in rows["speech.flac"]  # speech-to-text heard the sentence
    assert "synthetic speech" in result.stdout and "emofuse serve" in result.stdout


def test_demo_pipeline_check_runs_end_to_end(tmp_path):
    result = runner.invoke(app, ["demo", "--pipeline-check", "--keep", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "fold6" in result.stdout and "UA" in result.stdout
    assert (tmp_path / "ravdess" / "Actor_24").is_dir() and (tmp_path / "fer2013.csv").is_file()


def test_train_then_evaluate_then_resume(ravdess_dir, tmp_path):
    out = tmp_path / "run"
    args = ["train", "voice_cnn1d", "--data", f"ravdess={ravdess_dir}", "--protocol", "ravdess-actor-split",
            "--out", str(out), "--epochs", "2", "--batch-size", "16", "--augment", "spec", "-q"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "actor-split" in result.stdout and "UA" in result.stdout
    config = json.loads((out / "config.json").read_text())
    assert config["model_resolved"]["train"]["epochs"] == 2
    assert config["model_resolved"]["augment"]["mixup_alpha"] == 0.2

    again = runner.invoke(app, args)
    assert again.exit_code == 1 and "--resume" in again.stderr
    resumed = runner.invoke(app, [*args, "--resume"])
    assert resumed.exit_code == 0, resumed.output

    evaluated = runner.invoke(app, ["evaluate", str(out), "-q"])
    assert evaluated.exit_code == 0, evaluated.output
    assert "actor-split" in evaluated.stdout


def test_train_rejects_bad_arguments(ravdess_dir, tmp_path):
    bad_data = runner.invoke(app, ["train", "voice_gru", "--data", "ravdess", "--protocol", "ravdess-6fold"])
    assert bad_data.exit_code == 2 and "NAME=PATH" in bad_data.stderr
    config = tmp_path / "c.yaml"
    config.write_text("train:\n  epochz: 3\n")
    bad_key = runner.invoke(app, ["train", "voice_gru", "--data", f"ravdess={ravdess_dir}", "--protocol",
                                  "ravdess-6fold", "--config", str(config), "--out", str(tmp_path / "o")])
    assert bad_key.exit_code == 1 and "epochz" in bad_key.stderr
    unknown = runner.invoke(app, ["train", "voice_nope", "--data", f"ravdess={ravdess_dir}", "--protocol",
                                  "ravdess-6fold", "--out", str(tmp_path / "o2")])
    assert unknown.exit_code == 1 and "unknown model" in unknown.stderr


def test_models_listing():
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0
    for name in ("voice_logreg", "voice_lstm", "voice_gru", "voice_cnn1d", "voice_cnn2d", "voice_crnn"):
        assert name in result.stdout
