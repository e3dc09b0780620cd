"""The study end to end on the synthetic RAVDESS and FER2013 fixtures: grid, fusion, paired evaluation,
report, resumability and reuse of a matching earlier run."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from emofuse.cli import app
from emofuse.study import StudyConfig, run_study
from emofuse.study.cells import StudyError
from emofuse.study.experiment import ExperimentConfig, run_experiment


def _config(ravdess_dir, fer_csv, **extra):
    return {
        "name": "synthetic", "description": "tiny synthetic study",
        "data": {"ravdess": str(ravdess_dir), "fer2013": str(fer_csv)},
        "protocols": ["ravdess-6fold"],
        "models": [
            {"name": "logreg", "model": "voice_logreg", "params": {"max_iter": 200}, "folds": {"ravdess-6fold": ["fold1", "fold2"]},
             "protocols": ["ravdess-6fold", "ravdess-random"],
             "references": {"ravdess-random": [{"metric": "wa", "value": 65.79, "source": "a paper"}]}},
            {"name": "logreg_c01", "model": "voice_logreg", "params": {"C": 0.01, "max_iter": 200},
             "folds": {"ravdess-6fold": ["fold1", "fold2"]}},
            {"name": "face", "model": "face_logreg", "params": {"max_iter": 30}, "protocols": ["fer2013-official"]},
            {"name": "later", "model": "text_gpt9", "enabled": False, "description": "waits for the text branch"},
        ],
        "fusions": [
            {"name": "mean", "strategy": "fusion_mean", "members": ["logreg", "logreg_c01"]},
            {"name": "weighted", "strategy": "fusion_weighted", "members": ["logreg", "logreg_c01"]},
            {"name": "stack", "strategy": "fusion_stacking", "members": ["logreg", "logreg_c01"]},
        ],
        "paired": {"voice": "logreg", "face": "face", "pairings": 2,
                   "strategies": ["fusion_mean", "fusion_weighted", "fusion_stacking"]},
        **extra,
    }


@pytest.fixture(scope="module")
def study(ravdess_dir, fer_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    config = StudyConfig.from_dict(_config(ravdess_dir, fer_csv))
    outcome = run_study(config, out, progress=False, command="emofuse study synthetic.yaml --out X")
    return config, out, outcome


def test_grid_fusion_and_report(study):
    _config, out, outcome = study
    assert set(outcome.statuses.values()) == {"trained", "fused"}
    assert len(outcome.statuses) == 4 + 3  # logreg ×2 protocols, logreg_c01, face; three fusions
    cell = out / "cells" / "ravdess-6fold" / "logreg" / "seed0"
    assert sorted(p.name for p in (cell / "folds").iterdir()) == ["fold1", "fold2"]
    assert (cell / "folds" / "fold1" / "val_predictions.npz").is_file()
    # Fusion cells are run directories too: the fitted fusion model, test predictions and metrics per fold.
    fused = out / "cells" / "ravdess-6fold" / "weighted" / "seed0"
    assert (fused / "folds" / "fold1" / "model" / "model.json").is_file()
    with np.load(fused / "folds" / "fold2" / "predictions.npz") as data, \
            np.load(cell / "folds" / "fold2" / "predictions.npz") as member:
        assert data["probs"].shape == member["probs"].shape == (60, 8)
        assert (data["paths"] == member["paths"]).all() and (data["y_true"] == member["y_true"]).all()

    study_json = json.loads((out / "study.json").read_text())
    rows = {(r["entry"], r["protocol"]): r for r in study_json["rows"]}
    assert set(rows) == {("logreg", "ravdess-6fold"), ("logreg", "ravdess-random"), ("logreg_c01", "ravdess-6fold"),
                         ("face", "fer2013-official"), ("mean", "ravdess-6fold"), ("weighted", "ravdess-6fold"),
                         ("stack", "ravdess-6fold")}
    record = json.loads((cell / "results.json").read_text())[0]
    assert rows[("logreg", "ravdess-6fold")]["ua_mean"] == pytest.approx(record["ua_mean"])
    assert study_json["disabled"][0]["entry"] == "later"

    md = outcome.report_md.read_text()
    page = outcome.report_html.read_text()
    # What each fitted fusion chose, per fold: weights summing to 1 (stacking: whether its stacker answered).
    assert [f["fold"] for f in rows[("weighted", "ravdess-6fold")]["fitted"]] == ["fold1", "fold2"]
    for f in rows[("weighted", "ravdess-6fold")]["fitted"] + rows[("stack", "ravdess-6fold")]["fitted"]:
        assert len(f["weights"]) == 2 and sum(f["weights"]) == pytest.approx(1.0, abs=1e-3)
    assert all(isinstance(f["stacker"], bool) for f in rows[("stack", "ravdess-6fold")]["fitted"])
    assert rows[("mean", "ravdess-6fold")]["fitted"] == []
    # UA per test fold, for the fold-by-fold count against the best member; its mean is the row's.
    per_fold = rows[("logreg", "ravdess-6fold")]["ua_per_fold"]
    assert sorted(per_fold) == ["seed0/fold1", "seed0/fold2"]
    assert np.mean(list(per_fold.values())) == pytest.approx(rows[("logreg", "ravdess-6fold")]["ua_mean"])
    for text in ("## ravdess-6fold (ravdess)", "## Fusion against its best member", "## Leaky vs speaker-independent",
                 "## What the fitted fusions chose",
                 "Voice + face, paired by emotion", "What it does not show", "Entries not run", "later",
                 "emofuse study synthetic.yaml --out X", "WA 65.79 (ours"):
        assert text in md, text
    ua = rows[("logreg", "ravdess-6fold")]["ua_mean"] * 100
    assert f"{ua:.1f}" in md and f"{ua:.1f}" in page
    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert "paired.png" in figures and "confusion-ravdess-6fold.png" in figures
    for name in figures:
        assert f"figures/{name}" in md
    assert page.count("data:image/png;base64,") == len(figures) and "figures/" not in page

    paired = json.loads((out / "paired" / "paired.json").read_text())
    assert set(paired["methods"]) >= {"voice alone", "face alone", "fusion_mean", "fusion_mean (missing)"}
    counts = paired["missing_modality_rows"]
    assert counts["voice only"] > 0 and counts["face only"] > 0 and counts["both"] > 0


def test_resume_skips_finished_cells_and_redoes_only_what_is_missing(study):
    config, out, _ = study
    fold = out / "cells" / "ravdess-6fold" / "logreg_c01" / "seed0" / "folds" / "fold2"
    before = (out / "cells" / "ravdess-6fold" / "logreg" / "seed0" / "folds" / "fold1" / "metrics.json").stat().st_mtime_ns
    shutil.rmtree(fold)  # as if interrupted while the cell ran its second fold
    (fold.parents[1] / "results.json").unlink()
    outcome = run_study(config, out, progress=False, report=False)
    assert outcome.statuses["logreg / ravdess-6fold / seed 0"] == "done before"
    assert outcome.statuses["logreg_c01 / ravdess-6fold / seed 0"] == "trained"
    # The logistic regression is deterministic: the retrained fold wrote the same bytes, so the fusions
    # over it (keyed by a hash of their inputs) stay as they were.
    assert outcome.statuses["mean / ravdess-6fold / seed 0"] == "done before"
    assert (fold / "metrics.json").is_file()
    # A member whose predictions did change makes every fusion over it fit again.
    val = fold / "val_predictions.npz"
    with np.load(val) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["probs"] = arrays["probs"][:, ::-1].copy()
    np.savez(val, **arrays)
    refit = run_study(config, out, progress=False, report=False)
    assert refit.statuses["mean / ravdess-6fold / seed 0"] == "fused"
    assert refit.statuses["logreg_c01 / ravdess-6fold / seed 0"] == "done before"
    after = (out / "cells" / "ravdess-6fold" / "logreg" / "seed0" / "folds" / "fold1" / "metrics.json").stat().st_mtime_ns
    assert after == before
    again = run_study(config, out, progress=False, report=False)
    assert set(again.statuses.values()) == {"done before"}


def test_the_plan_says_what_a_run_would_do_and_does_none_of_it(study, ravdess_dir, fer_csv, tmp_path):
    from emofuse.study import plan_study

    config, out, _ = study
    fresh = tmp_path / "fresh"
    planned = {(p.cell.entry, p.cell.protocol): p for p in plan_study(config, fresh)}
    assert not fresh.exists()  # nothing written
    assert planned[("logreg", "ravdess-6fold")].action == "train"
    assert planned[("logreg", "ravdess-6fold")].folds_left == ("fold1", "fold2")  # the entry's folds only
    assert planned[("face", "fer2013-official")].folds_left == ("official",)
    assert planned[("weighted", "ravdess-6fold")].action == "fit"
    assert {p.action for p in plan_study(config, out) if p.cell.kind == "model"} == {"done before"}

    # An interrupted cell: one fold finished, the other stopped after its third epoch.
    partial = tmp_path / "partial"
    run_study(config, partial, progress=False, report=False, only=["logreg"], protocols=["ravdess-6fold"])
    fold2 = partial / "cells" / "ravdess-6fold" / "logreg" / "seed0" / "folds" / "fold2"
    shutil.rmtree(fold2)
    (fold2.parents[1] / "results.json").unlink()
    (fold2 / "state").mkdir(parents=True)
    (fold2 / "state" / "last.json").write_text(json.dumps({"epoch": 3}))
    (p,) = plan_study(config, partial, only=["logreg"], protocols=["ravdess-6fold"])
    assert (p.action, p.folds_done, p.folds_left, p.resumes_after) == ("train", ("fold1",), ("fold2",), (("fold2", 3),))

    import yaml

    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(_config(ravdess_dir, fer_csv)))
    before = sorted(str(f.relative_to(partial)) for f in partial.rglob("*"))
    result = CliRunner().invoke(app, ["study", str(path), "--out", str(partial), "--plan", "--only", "logreg"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "fold2 (after epoch 3)" in result.output
    assert ("2 model cell(s) to train (2 fold(s)), 0 finished, 0 filled from earlier runs; 0 fusion(s) to fit"
            in result.output)  # logreg on its two protocols; its fusions need logreg_c01
    assert sorted(str(f.relative_to(partial)) for f in partial.rglob("*")) == before  # nothing ran

    # Epochs logged by the interrupted fold: the plan and the run say how long training has left.
    _log_epochs(fold2, range(1, 4), seconds=60.0, limit=13)
    (p,) = plan_study(config, partial, only=["logreg"], protocols=["ravdess-6fold"])
    assert p.seconds_left == 10 * 60.0
    result = CliRunner().invoke(app, ["study", str(path), "--out", str(partial), "--plan", "--only", "logreg",
                                      "--protocol", "ravdess-6fold"], env={"COLUMNS": "200"})
    assert "about 10 min for 1 of 1 cell(s)" in result.output, result.output
    messages: list[str] = []
    run_study(config, partial, progress=False, report=False, only=["logreg"], protocols=["ravdess-6fold"],
              log=messages.append)
    assert messages[0].startswith("training time left") and "about 10 min for 1 of the 1 cell(s)" in messages[0]


def _log_epochs(fold_dir, epochs, *, seconds, limit=None):
    fold_dir.mkdir(parents=True, exist_ok=True)
    records = [{"epoch": e, "seconds": seconds} | ({"epoch_limit": limit} if limit else {}) for e in epochs]
    (fold_dir / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def test_time_left_is_estimated_from_the_epochs_a_cell_has_logged(tmp_path):
    from emofuse.study.cells import estimate_seconds_left

    folds = tmp_path / "folds"
    assert estimate_seconds_left(tmp_path, (), {}, ("fold1", "fold2")) is None  # nothing logged yet
    # Before any fold has finished: the fold in progress and the one not started run to the limit.
    _log_epochs(folds / "fold1", range(1, 11), seconds=3.0, limit=50)
    assert estimate_seconds_left(tmp_path, (), {"fold1": 10}, ("fold1", "fold2")) == (40 + 50) * 3.0
    # A finished fold (early-stopped after 30 epochs) sets how long the others run.
    _log_epochs(folds / "fold1", range(1, 31), seconds=3.0, limit=50)
    _log_epochs(folds / "fold2", [1, 2, 3, 3], seconds=5.0, limit=50)  # an epoch logged twice counts once
    left = estimate_seconds_left(tmp_path, ("fold1",), {"fold2": 3}, ("fold2", "fold3"))
    assert left == ((30 - 3) + 30) * 3.0  # at the median epoch time
    # A fold past the finished folds' average still has an epoch to go, never more than its limit.
    _log_epochs(folds / "fold2", range(1, 50), seconds=3.0, limit=50)
    assert estimate_seconds_left(tmp_path, ("fold1",), {"fold2": 49}, ("fold2",)) == 1 * 3.0
    # Logs without the limit (written before they carried it) take the config's; with neither, no guess.
    _log_epochs(folds / "fold1", range(1, 5), seconds=2.0)
    assert estimate_seconds_left(tmp_path, (), {"fold1": 4}, ("fold1",), epoch_limit=10) == 6 * 2.0
    assert estimate_seconds_left(tmp_path, (), {"fold1": 4}, ("fold1",)) is None


def test_a_changed_cell_config_is_an_error_not_a_silent_mix(study, ravdess_dir, fer_csv):
    from emofuse.errors import EmofuseError

    _, out, _ = study
    cfg = _config(ravdess_dir, fer_csv)
    cfg["models"][1]["params"] = {"C": 0.5}
    with pytest.raises(EmofuseError, match="different config"):
        run_study(StudyConfig.from_dict(cfg), out, progress=False)


def test_a_matching_earlier_run_is_reused_and_a_different_one_is_not(ravdess_dir, fer_csv, tmp_path):
    earlier = tmp_path / "runs" / "old"
    run_experiment(ExperimentConfig.from_dict({
        "model": "voice_logreg", "data": {"ravdess": str(ravdess_dir)}, "protocol": "ravdess-random",
        "out": str(earlier / "logreg-random"), "seed": 0}), progress=False)
    run_experiment(ExperimentConfig.from_dict({
        "model": "voice_logreg", "data": {"ravdess": str(ravdess_dir)}, "protocol": "ravdess-random",
        "out": str(earlier / "logreg-random-C2"), "seed": 0, "model_params": {"C": 2.0}}), progress=False)
    cfg = {"name": "reuse", "data": {"ravdess": str(ravdess_dir)}, "protocols": ["ravdess-random"],
           "reuse": [str(earlier)],
           "models": [{"name": "plain", "model": "voice_logreg"}, {"name": "c05", "model": "voice_logreg",
                                                                 "params": {"C": 0.5}}],
           "fusions": [{"name": "m", "strategy": "fusion_max_confidence", "members": ["plain", "c05"]}]}
    out = tmp_path / "study"
    outcome = run_study(StudyConfig.from_dict(cfg), out, progress=False)
    assert outcome.statuses["plain / ravdess-random / seed 0"] == f"reused {earlier / 'logreg-random'}"
    assert outcome.statuses["c05 / ravdess-random / seed 0"] == "trained"
    reused = out / "cells" / "ravdess-random" / "plain" / "seed0"
    stored = json.loads((reused / "config.json").read_text())
    assert stored["reused_from"]["run_dir"] == str((earlier / "logreg-random").resolve())
    assert (reused / "folds" / "random" / "val_predictions.npz").is_file()  # predicted from the saved model
    assert not (earlier / "logreg-random" / "folds" / "random" / "val_predictions.npz").exists()  # source untouched
    assert "(reused run)" in outcome.report_md.read_text()


def test_cli_study_and_its_errors(ravdess_dir, fer_csv, tmp_path):
    import yaml

    cfg = {"name": "cli", "data": {"ravdess": "/nowhere"}, "protocols": ["ravdess-random"],
           "models": [{"name": "plain", "model": "voice_logreg"}]}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(cfg))
    runner = CliRunner()
    result = runner.invoke(app, ["study", str(path), "--out", str(tmp_path / "o"), "--data",
                                 f"ravdess={ravdess_dir}", "-q"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o" / "report.html").is_file()
    assert f"emofuse study {path} --out {tmp_path / 'o'} --data ravdess={ravdess_dir}" in (
        tmp_path / "o" / "report.md").read_text()
    # Again with the progress bar: every cell is finished, and the bar's console says so.
    result = runner.invoke(app, ["study", str(path), "--out", str(tmp_path / "o"), "--data", f"ravdess={ravdess_dir}"])
    assert result.exit_code == 0, result.output
    assert "plain / ravdess-random / seed 0: done before" in result.output
    cfg["models"][0]["model"] = "voice_whisper_huge9"
    path.write_text(yaml.safe_dump(cfg))
    result = runner.invoke(app, ["study", str(path), "--out", str(tmp_path / "o2"), "-q"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "unknown model 'voice_whisper_huge9'" in result.stderr


def test_a_worker_job_rebuilds_the_config_and_runs_its_cell(ravdess_dir, tmp_path):
    """What --workers N runs in each process: the config travels as a dict and the cell is finished there."""
    from emofuse.study.cells import ModelJob, plan_cells, run_model_job

    config = StudyConfig.from_dict({"name": "w", "data": {"ravdess": str(ravdess_dir)}, "protocols": ["ravdess-random"],
                                    "models": [{"name": "plain", "model": "voice_logreg", "params": {"max_iter": 200}}]})
    (cell,), _ = plan_cells(config, tmp_path)
    done = run_model_job(ModelJob(config.to_dict(), "plain", cell, want_val=True, threads=1))
    assert done.cell == cell and done.status == "trained"
    assert (cell.dir / "folds" / "random" / "val_predictions.npz").is_file()


def test_workers_split_a_cell_fold_by_fold_and_get_what_one_process_gets(ravdess_dir, tmp_path):
    """With --workers, a cell with several folds left is one job per fold (so a six-fold cell keeps
    every worker busy); the cell is summarised when its last fold is in, and equals a serial run."""
    from emofuse.study.cells import folds_to_split, plan_cells

    config = StudyConfig.from_dict({
        "name": "w", "data": {"ravdess": str(ravdess_dir)}, "protocols": ["ravdess-6fold"],
        "models": [{"name": "plain", "model": "voice_logreg", "params": {"max_iter": 200},
                    "folds": {"ravdess-6fold": ["fold1", "fold2", "fold3"]}},
                   {"name": "c01", "model": "voice_logreg", "params": {"C": 0.01, "max_iter": 200},
                    "folds": {"ravdess-6fold": ["fold1", "fold2", "fold3"]}},
                   {"name": "leaky", "model": "voice_logreg", "params": {"max_iter": 200},
                    "protocols": ["ravdess-random"]}],
        "fusions": [{"name": "w", "strategy": "fusion_weighted", "members": ["plain", "c01"]}]})
    (cell, _c01, leaky), _ = plan_cells(config, tmp_path / "parallel")
    plain = config.models[0]
    assert folds_to_split(config, plain, cell, want_val=True) == ["fold1", "fold2", "fold3"]
    assert folds_to_split(config, config.models[2], leaky, want_val=False) == []  # one fold: the cell is the job

    parallel = run_study(config, tmp_path / "parallel", workers=2, progress=False, report=False)
    serial = run_study(config, tmp_path / "serial", workers=1, progress=False, report=False)
    assert parallel.statuses == serial.statuses == {
        "plain / ravdess-6fold / seed 0": "trained", "c01 / ravdess-6fold / seed 0": "trained",
        "leaky / ravdess-random / seed 0": "trained", "w / ravdess-6fold / seed 0": "fused"}
    for run in (tmp_path / "parallel", tmp_path / "serial"):
        assert (run / "cells" / "ravdess-6fold" / "plain" / "seed0" / "folds" / "fold3" / "val_predictions.npz").is_file()
    rows = [{(r["entry"], r["protocol"]): r["ua_mean"] for r in json.loads((run / "study.json").read_text())["rows"]}
            for run in (tmp_path / "parallel", tmp_path / "serial")]
    assert rows[0] == pytest.approx(rows[1])
    assert folds_to_split(config, plain, cell, want_val=True) == []  # finished
    again = run_study(config, tmp_path / "parallel", workers=2, progress=False, report=False)
    assert set(again.statuses.values()) == {"done before"}

    # Interrupted with one fold left, that fold is the cell's own job; with two left, two jobs.
    shutil.rmtree(cell.dir / "folds" / "fold3")
    (cell.dir / "results.json").unlink()
    assert folds_to_split(config, plain, cell, want_val=True) == []
    resumed = run_study(config, tmp_path / "parallel", workers=2, progress=False, report=False)
    assert resumed.statuses["plain / ravdess-6fold / seed 0"] == "trained"
    for name in ("fold3", "fold2"):
        shutil.rmtree(cell.dir / "folds" / name)
    (cell.dir / "results.json").unlink()
    assert folds_to_split(config, plain, cell, want_val=True) == ["fold2", "fold3"]


def test_a_failing_job_stops_the_study_at_once_with_its_error(tmp_path):
    """A job that fails is reported when it fails; the jobs still queued never start."""
    from emofuse.errors import EmofuseError

    (tmp_path / "empty").mkdir()
    config = StudyConfig.from_dict({
        "name": "w", "data": {"ravdess": str(tmp_path / "empty")}, "protocols": ["ravdess-6fold"],
        "models": [{"name": "plain", "model": "voice_logreg"}]})
    said: list[str] = []
    with pytest.raises(EmofuseError) as failure:
        run_study(config, tmp_path / "out", workers=2, progress=False, log=said.append)
    assert said[0] == f"stopping: {failure.value}"
    assert not (tmp_path / "out" / "cells" / "ravdess-6fold" / "plain" / "seed0" / "results.json").exists()


def test_only_runs_the_named_entries_and_the_whole_config_finishes_the_study(ravdess_dir, fer_csv, tmp_path):
    """``--only``: one machine runs some entries (and the fusions of only those), a second run of the
    whole config into the same folder keeps them and does the rest."""
    cfg = _config(ravdess_dir, fer_csv)
    cfg["models"][0]["protocols"] = ["ravdess-6fold"]
    del cfg["models"][0]["references"]
    config = StudyConfig.from_dict(cfg)
    out = tmp_path / "split"
    first = run_study(config, out, progress=False, only=["logreg", "logreg_c01"])
    assert first.statuses == {"logreg / ravdess-6fold / seed 0": "trained", "logreg_c01 / ravdess-6fold / seed 0": "trained",
                              "mean / ravdess-6fold / seed 0": "fused", "weighted / ravdess-6fold / seed 0": "fused",
                              "stack / ravdess-6fold / seed 0": "fused"}
    assert not (out / "cells" / "fer2013-official").exists() and not (out / "paired").exists()
    rows = {(r["entry"], r["protocol"]) for r in json.loads((out / "study.json").read_text())["rows"]}
    assert ("face", "fer2013-official") not in rows and ("mean", "ravdess-6fold") in rows
    # A member outside --only: its fusions wait for the whole run.
    partial = run_study(config, tmp_path / "one", progress=False, report=False, only=["logreg"])
    assert set(partial.statuses) == {"logreg / ravdess-6fold / seed 0"}

    rest = run_study(config, out, progress=False)
    assert rest.statuses["logreg / ravdess-6fold / seed 0"] == "done before"
    assert rest.statuses["mean / ravdess-6fold / seed 0"] == "done before"
    assert rest.statuses["face / fer2013-official / seed 0"] == "trained"
    assert (out / "paired" / "paired.json").is_file()

    with pytest.raises(StudyError, match="names no model entry of synthetic: nope"):
        run_study(config, tmp_path / "bad", progress=False, only=["logreg", "nope"])
    assert not (tmp_path / "bad").exists()
    result = CliRunner().invoke(app, ["study", "x.yaml", "--help"])
    assert "--only" in result.output


def test_a_model_fitted_on_its_validation_clips_is_fused_on_held_out_predictions_only(ravdess_dir, tmp_path):
    """A run of a model that refits with its validation clips is reused for fusion only when it kept
    held-out validation predictions; a finished cell without them is an error, not a silent in-sample fit."""
    from emofuse.study.cells import find_reusable_run, has_heldout_val_predictions

    earlier = tmp_path / "runs" / "old"
    run_experiment(ExperimentConfig.from_dict({
        "model": "voice_logreg", "data": {"ravdess": str(ravdess_dir)}, "protocol": "ravdess-random",
        "out": str(earlier / "run"), "seed": 0, "model_params": {"max_iter": 200}}),
        progress=False, save_val_predictions=True)
    experiment = json.loads((earlier / "run" / "config.json").read_text())["experiment"]
    assert not has_heldout_val_predictions(earlier / "run")  # voice_logreg does not fit on validation data
    assert find_reusable_run([earlier], experiment) == earlier / "run"
    assert find_reusable_run([earlier], experiment, need_heldout_val=True) is None
    val = earlier / "run" / "folds" / "random" / "val_predictions.npz"
    with np.load(val) as data:
        arrays = {k: data[k] for k in data.files}
    np.savez(val, **arrays, heldout=np.array(True))
    assert has_heldout_val_predictions(earlier / "run")
    assert find_reusable_run([earlier], experiment, need_heldout_val=True) == earlier / "run"


def test_a_whisper_head_refitted_with_its_validation_clips_is_fused_on_its_held_out_predictions(ravdess_dir, tmp_path):
    """voice_whisper_tiny (real tiny.en states) refits with its validation clips: the study stores the
    validation probabilities of its head fitted before that refit, marked held-out, and fuses on those."""
    from emofuse.models import load_model

    cfg = {"name": "heldout", "data": {"ravdess": str(ravdess_dir)}, "protocols": ["ravdess-random"],
           "models": [{"name": "whisper", "model": "voice_whisper_tiny", "params": {"C": 0.1}},
                      {"name": "plain", "model": "voice_logreg", "params": {"max_iter": 200}}],
           "fusions": [{"name": "w", "strategy": "fusion_weighted", "members": ["whisper", "plain"]}]}
    out = tmp_path / "study"
    outcome = run_study(StudyConfig.from_dict(cfg), out, progress=False, report=False)
    assert outcome.statuses["w / ravdess-random / seed 0"] == "fused"
    fold = out / "cells" / "ravdess-random" / "whisper" / "seed0" / "folds" / "random"
    with np.load(fold / "val_predictions.npz") as data:
        assert "heldout" in data.files
        stored, paths = data["probs"], [str(p) for p in data["paths"]]
    in_sample = load_model(fold / "model").predict_proba(paths)
    assert stored.shape == in_sample.shape and not np.allclose(stored, in_sample, atol=1e-4)
    # A finished cell whose validation predictions were not kept held-out (an older run) is refused.
    with np.load(fold / "val_predictions.npz") as data:
        arrays = {k: data[k] for k in data.files if k != "heldout"}
    np.savez(fold / "val_predictions.npz", **arrays)
    with pytest.raises(StudyError, match="not held-out ones"):
        run_study(StudyConfig.from_dict(cfg), out, progress=False, report=False)


def test_protocol_runs_the_cells_of_that_protocol_only(ravdess_dir, fer_csv, tmp_path):
    """``--protocol``: the cells and fusions of the named protocols; the rest of the grid waits."""
    config = StudyConfig.from_dict(_config(ravdess_dir, fer_csv))
    out = tmp_path / "split"
    first = run_study(config, out, progress=False, report=False, protocols=["ravdess-random"])
    assert first.statuses == {"logreg / ravdess-random / seed 0": "trained"}
    assert not (out / "cells" / "ravdess-6fold").exists() and not (out / "paired").exists()
    rest = run_study(config, out, progress=False, report=False)
    assert rest.statuses["logreg / ravdess-random / seed 0"] == "done before"
    assert rest.statuses["mean / ravdess-6fold / seed 0"] == "fused"

    with pytest.raises(StudyError, match="names no protocol of this study: meld-official"):
        run_study(config, tmp_path / "bad", progress=False, protocols=["meld-official"])
    assert not (tmp_path / "bad").exists()
    assert "--protocol" in CliRunner().invoke(app, ["study", "x.yaml", "--help"]).output


def test_fusion_is_fitted_with_speaker_groups_only_where_test_speakers_are_new():
    from emofuse.study.fusion_cells import fit_groups

    paths = np.array(["r/Actor_04/03-01-01-01-01-01-04.flac", "r/Actor_17/03-01-05-02-01-02-17.wav"])
    assert fit_groups({"name": "ravdess-6fold", "speaker_independent": True}, paths) == ["04", "17"]
    assert fit_groups({"name": "ravdess-random", "speaker_independent": False}, paths) is None
    with pytest.raises(StudyError, match="does not say its speaker"):
        fit_groups({"name": "ravdess-6fold", "speaker_independent": True}, np.array(["clip.wav"]))
