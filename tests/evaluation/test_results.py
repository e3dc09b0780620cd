import json

import numpy as np
import pytest

from emofuse.evaluation.metrics import compute_metrics, summarize_folds
from emofuse.evaluation.results import (
    REQUIRED_FIELDS,
    FoldResult,
    ResultRecord,
    ResultsFormatError,
    read_results,
    write_results,
)

LABELS = ("neutral", "happy", "sad")


def _record(model="m1", ua_shift=0):
    y_true = np.array([0, 1, 2, 0, 1, 2])
    y_pred = np.array([0, 1, 2, 0, 2, 2 - ua_shift])
    m = compute_metrics(y_true, y_pred=y_pred, labels=LABELS)
    summary = summarize_folds([m], pooled_true=y_true, pooled_pred=y_pred, n_resamples=50)
    return ResultRecord.from_summary(dataset="ravdess", protocol="ravdess-6fold", model=model, summary=summary,
                                     folds=[FoldResult.from_metrics("fold1", m)], labels=LABELS, device="cpu",
                                     train_seconds=1.5, commit="abc123")


def test_round_trip_has_every_required_field(tmp_path):
    path = tmp_path / "results.json"
    write_results(path, [_record()])
    raw = json.loads(path.read_text())
    assert isinstance(raw, list) and set(REQUIRED_FIELDS) <= set(raw[0])
    (back,) = read_results(path)
    assert back == _record()
    assert back.folds[0].n_test == 6


def test_merge_replaces_the_same_key_and_keeps_others(tmp_path):
    path = tmp_path / "results.json"
    write_results(path, [_record("a"), _record("b")])
    write_results(path, [_record("a", ua_shift=1)])
    records = {r.model: r for r in read_results(path)}
    assert set(records) == {"a", "b"}
    assert records["a"].ua_mean < records["b"].ua_mean


def test_reader_refuses_malformed_files(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps([{"dataset": "ravdess", "model": "x"}]))
    with pytest.raises(ResultsFormatError, match="protocol"):
        read_results(path)
    path.write_text(json.dumps({"not": "a list"}))
    with pytest.raises(ResultsFormatError, match="list"):
        read_results(path)
    good = _record().to_dict() | {"surprise_field": 1}
    path.write_text(json.dumps([good]))
    with pytest.raises(ResultsFormatError, match="surprise_field"):
        read_results(path)


def test_failed_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "results.json"
    write_results(path, [_record("a")])
    before = path.read_text()
    bad = _record("b")
    object.__setattr__(bad, "notes", object())  # not JSON-serialisable
    with pytest.raises(TypeError):
        write_results(path, [bad])
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
