"""`emofuse score`: a saved model on any labelled dataset, classes it lacks reported and left out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from emofuse.cli import app
from emofuse.data import load_dataset
from emofuse.data.synthetic import draw_face
from emofuse.models import load_model
from emofuse.study.scoring import ScoreError, score_model, write_score
from tests._predictors import tiny_model_dirs

__all__ = ["tiny_model_dirs"]


@pytest.fixture()
def face_folder(tmp_path: Path) -> Path:
    """happy and sad faces, and two calm ones (a class no face model has)."""
    root = tmp_path / "faces"
    for label, n in (("happy", 4), ("sad", 4), ("calm", 2)):
        (root / label).mkdir(parents=True)
        for k in range(n):
            Image.fromarray(draw_face("neutral" if label == "calm" else label, seed=k)).save(root / label / f"{k}.png")
    return root


def test_scores_fer2013_with_the_split(tiny_model_dirs: dict[str, Path], fer_csv: Path, tmp_path: Path) -> None:
    model, dataset = load_model(tiny_model_dirs["face"]), load_dataset("fer2013", fer_csv)
    result = score_model(model, dataset, split="PrivateTest")
    private = [s for s in dataset.samples if s.split == "PrivateTest"]
    assert result.metrics.n == result.n_total == len(private) and result.excluded == {}
    direct = model.predict_proba(dataset.pixels[[s.split == "PrivateTest" for s in dataset.samples]])
    np.testing.assert_allclose(result.probabilities, direct)
    expected = np.mean(direct.argmax(axis=1) == [model.labels_.index(s.label) for s in private])
    assert result.metrics.wa == pytest.approx(expected)
    out = write_score(result, tmp_path / "score")
    assert sorted(p.name for p in out.iterdir()) == ["confusion.png", "report.md", "score.json"]
    record = json.loads((out / "score.json").read_text())
    assert record["record"]["wa_mean"] == pytest.approx(expected) and record["n_scored"] == len(private)
    with pytest.raises(ScoreError, match="not empty"):
        write_score(result, out)


def test_a_class_the_model_lacks_is_reported_and_left_out(tiny_model_dirs: dict[str, Path], face_folder: Path) -> None:
    result = score_model(load_model(tiny_model_dirs["face"]), load_dataset("folder", face_folder))
    assert result.excluded == {"calm": 2}
    assert result.n_total == 10 and result.metrics.n == 8
    assert {label for label, c in result.metrics.per_class.items() if c.support} == {"happy", "sad"}


def test_refusals_are_one_line_and_write_nothing(tiny_model_dirs: dict[str, Path], ravdess_dir: Path,
                                                  fer_csv: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "never"
    wrong = runner.invoke(app, ["score", str(tiny_model_dirs["face"]), "--data", f"ravdess={ravdess_dir}",
                                "--out", str(out)])
    assert wrong.exit_code == 1 and "face_logreg is a face model; ravdess holds audio data" in wrong.stderr
    bad_split = runner.invoke(app, ["score", str(tiny_model_dirs["face"]), "--data", f"fer2013={fer_csv}",
                                    "--split", "Nope", "--out", str(out)])
    assert bad_split.exit_code == 1 and "no samples in split 'Nope'" in bad_split.stderr
    usage = runner.invoke(app, ["score", str(tiny_model_dirs["face"]), "--data", "fer2013"])
    assert usage.exit_code == 2
    assert not out.exists()
    with pytest.raises(ScoreError, match="nothing to score"):
        only_calm = tmp_path / "calm_only"
        (only_calm / "calm").mkdir(parents=True)
        Image.fromarray(draw_face("neutral")).save(only_calm / "calm" / "a.png")
        score_model(load_model(tiny_model_dirs["face"]), load_dataset("folder", only_calm))


def test_cli_writes_the_report(tiny_model_dirs: dict[str, Path], face_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["score", str(tiny_model_dirs["face"]), "--data", f"folder={face_folder}",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "8 of 10 samples scored" in result.stdout and "UA" in result.stdout
    assert "2 sample(s) labelled calm left out" in result.stderr
    assert "Left out (the model has no column for these classes): calm 2." in (out / "report.md").read_text()


def test_speaker_adaptation_needs_a_model_that_adapts(tiny_model_dirs: dict[str, Path], ravdess_dir: Path) -> None:
    with pytest.raises(ScoreError, match="no speaker-adapted head"):
        score_model(load_model(tiny_model_dirs["voice"]), load_dataset("ravdess", ravdess_dir), adapt_speaker=True)
