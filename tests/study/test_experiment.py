import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from emofuse.errors import EmofuseError
from emofuse.evaluation.results import read_results
from emofuse.study.experiment import ExperimentConfig, evaluate_run, run_experiment


def _config(ravdess_dir, out, **kwargs):
    return ExperimentConfig.from_dict({"model": "voice_logreg", "data": {"ravdess": str(ravdess_dir)},
                                       "protocol": "ravdess-6fold", "out": str(out), **kwargs})


def test_logreg_on_all_six_folds_writes_a_reproducible_run(ravdess_dir, tmp_path):
    out = tmp_path / "run"
    record = run_experiment(_config(ravdess_dir, out), progress=False)
    assert record.n_test == 360 and len(record.folds) == 6 and not record.leaky
    assert 0 <= record.ua_mean <= 1 and record.ua_std >= 0
    for name in ("config.json", "git_sha", "labels.json", "metrics.json", "results.json"):
        assert (out / name).is_file(), name
    fold = out / "folds" / "fold1"
    assert (fold / "model" / "model.safetensors").is_file() and (fold / "predictions.npz").is_file()
    assert not (fold / "state").exists()
    (stored,) = read_results(out / "results.json")
    assert stored.ua_mean == pytest.approx(record.ua_mean)
    config = json.loads((out / "config.json").read_text())
    assert config["model_resolved"]["features"]["kind"] == "mfcc" and config["protocol"]["speaker_independent"]

    cached = list(Path(os.environ["EMOFUSE_CACHE_DIR"]).rglob("*.npy"))
    assert len(cached) >= 360  # every clip's features went to the (test-private) disk cache

    rows = evaluate_run(out, progress=False)
    assert [r["fold"] for r in rows] == [f"fold{k}" for k in range(1, 7)]
    for r in rows:
        assert r["ua"] == pytest.approx(r["stored_ua"])


def test_resume_skips_finished_folds(ravdess_dir, tmp_path):
    out = tmp_path / "run"
    config = _config(ravdess_dir, out, folds=["fold1", "fold2"])
    run_experiment(config, progress=False)
    with pytest.raises(EmofuseError, match="--resume"):
        run_experiment(config, progress=False)
    before = (out / "folds" / "fold1" / "metrics.json").stat().st_mtime_ns
    shutil.rmtree(out / "folds" / "fold2")  # as if interrupted during fold 2
    record = run_experiment(config, resume=True, progress=False)
    assert (out / "folds" / "fold1" / "metrics.json").stat().st_mtime_ns == before
    assert [f.fold for f in record.folds] == ["fold1", "fold2"]
    changed = _config(ravdess_dir, out, folds=["fold1", "fold2"], seed=5)
    with pytest.raises(EmofuseError, match="different config"):
        run_experiment(changed, resume=True, progress=False)


def test_a_run_split_fold_by_fold_equals_the_whole_run(ravdess_dir, tmp_path):
    """What ``emofuse study --workers`` does with a cell's folds: each process trains its folds into the
    one run directory without a summary; the summary afterwards equals an unsplit run's."""
    from emofuse.study.experiment import summarize_run

    kwargs = {"folds": ["fold1", "fold2"], "limit_per_fold": 30, "model_params": {"max_iter": 100}}
    whole = run_experiment(_config(ravdess_dir, tmp_path / "whole", **kwargs), progress=False)
    split = _config(ravdess_dir, tmp_path / "split", **kwargs)
    for fold in ("fold2", "fold1"):  # in either order: each fold draws its own training clips
        assert run_experiment(split, resume=True, progress=False, only_folds=[fold], summarize=False) is None
        assert not (tmp_path / "split" / "results.json").exists()
    record = summarize_run(tmp_path / "split")
    assert record.ua_mean == pytest.approx(whole.ua_mean)
    for fold in ("fold1", "fold2"):
        with np.load(tmp_path / "whole" / "folds" / fold / "predictions.npz") as a, \
                np.load(tmp_path / "split" / "folds" / fold / "predictions.npz") as b:
            np.testing.assert_allclose(a["probs"], b["probs"])
        metrics = json.loads((tmp_path / "split" / "folds" / fold / "metrics.json").read_text())
        assert metrics["n_train"] == 30  # a subset of the fold's 240 training clips
    with pytest.raises(EmofuseError, match=r"fold\(s\) fold3 are not among this run's folds \(fold1, fold2\)"):
        run_experiment(split, resume=True, progress=False, only_folds=["fold3"], summarize=False)


def test_torch_model_run_with_log_and_random_protocol(ravdess_dir, tmp_path):
    out = tmp_path / "run"
    config = ExperimentConfig.from_dict({
        "model": "voice_cnn1d", "data": {"ravdess": str(ravdess_dir)}, "protocol": "ravdess-random",
        "out": str(out), "model_params": {"train": {"epochs": 2, "batch_size": 16}}})
    record = run_experiment(config, progress=False)
    assert record.leaky and record.protocol == "ravdess-random"
    lines = (out / "folds" / "random" / "log.jsonl").read_text().splitlines()
    assert len(lines) == 2
    with np.load(out / "folds" / "random" / "predictions.npz") as data:
        assert data["probs"].shape == (72, 8)


def test_bad_configs(ravdess_dir, tmp_path):
    with pytest.raises(EmofuseError, match="unknown experiment option"):
        ExperimentConfig.from_dict({"model": "x", "data": {}, "protocol": "p", "out": "o", "epochs": 3})
    with pytest.raises(EmofuseError, match="needs --data ravdess"):
        run_experiment(ExperimentConfig.from_dict({"model": "voice_logreg", "data": {"fer2013": "x"},
                                                   "protocol": "ravdess-6fold", "out": str(tmp_path / "o")}))
    with pytest.raises(EmofuseError, match="unknown fold"):
        run_experiment(_config(ravdess_dir, tmp_path / "o2", folds=["fold9"]), progress=False)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_text_model_on_transcripts_of_speech(tmp_path):
    """A RAVDESS-format corpus whose happy and angry clips say different words: a text model fed the
    transcripts (inputs: transcripts) separates them on unseen actors."""
    import subprocess

    pytest.importorskip("faster_whisper")
    said = {"03": ["What a wonderful sunny day.", "I love this lovely party."],
            "05": ["Get out of my house right now.", "I hate you, leave me alone."]}
    spoken = {}
    for code, sentences in said.items():
        for k, text in enumerate(sentences):
            spoken[code, k] = tmp_path / f"say-{code}-{k}.wav"
            subprocess.run(["espeak-ng", "-w", str(spoken[code, k]), text], check=True, capture_output=True)
    root = tmp_path / "ravdess"
    for actor in range(1, 25):
        folder = root / f"Actor_{actor:02d}"
        folder.mkdir(parents=True)
        for code in said:
            for k in range(2):
                shutil.copy(spoken[code, k], folder / f"03-01-{code}-01-0{k + 1}-01-{actor:02d}.wav")
    out = tmp_path / "run"
    config = ExperimentConfig.from_dict({
        "model": "text_bigru", "data": {"ravdess": str(root)}, "protocol": "ravdess-actor-split", "out": str(out),
        "inputs": "transcripts", "model_params": {"train": {"epochs": 15, "batch_size": 16, "lr": 0.01}}})
    record = run_experiment(config, progress=False)
    assert record.ua_mean == 1.0  # test actors 21-24: the words give the emotion away
    assert json.loads((out / "config.json").read_text())["experiment"]["inputs"] == "transcripts"
    assert "inputs" not in _config(root, tmp_path / "o").to_dict()  # the default leaves old runs comparable
    with pytest.raises(EmofuseError, match="inputs must be"):
        ExperimentConfig.from_dict({**config.to_dict(), "inputs": "words"})


def test_validation_probabilities_are_held_out_for_a_model_fitted_on_them():
    from emofuse.study.experiment import fits_on_validation, validation_probabilities

    class Refits:
        name = "refits"
        fits_on_validation = True
        heldout_val_proba_: np.ndarray | None = np.array([[0.6, 0.4]])

        def predict_proba(self, X):
            return np.array([[1.0, 0.0]])  # in-sample: what fusion must not fit on

    class Plain(Refits):
        fits_on_validation = False

    np.testing.assert_array_equal(validation_probabilities(Refits(), ["clip"]), [[0.6, 0.4]])
    np.testing.assert_array_equal(validation_probabilities(Plain(), ["clip"]), [[1.0, 0.0]])
    assert fits_on_validation(Refits()) and not fits_on_validation(Plain()) and not fits_on_validation(object())
    loaded = Refits()
    loaded.heldout_val_proba_ = None  # as after load_model: nothing kept from fit
    with pytest.raises(EmofuseError, match="refits was fitted on its validation data"):
        validation_probabilities(loaded, ["clip"])
