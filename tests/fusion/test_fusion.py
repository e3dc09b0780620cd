"""Fusion strategies: the arithmetic, the missing-modality path, label alignment, and the registry contract."""

from __future__ import annotations

import numpy as np
import pytest

from emofuse.fusion import (
    FusionError,
    FusionInput,
    NoModalityError,
    align_members,
    apply_temperature,
    combine,
    fit_temperature,
    fuse,
)
from emofuse.fusion._models import simplex_grid
from emofuse.labels import BASIC7, FER7, RAVDESS8, align_probabilities
from emofuse.models import MODELS, create_model, load_model

FUSION_MODELS = sorted(n for n, s in MODELS.items() if s.modality == "fusion")


def _noisy_member(y: np.ndarray, labels: tuple[str, ...], truth: tuple[str, ...], *, strength: float,
                  rng: np.random.Generator) -> np.ndarray:
    """(n, len(labels)) softmax of unit Gaussian noise plus ``strength`` on the true class's column:
    a member whose confidence goes with its correctness, as a trained classifier's does."""
    logits = rng.normal(0, 1, (len(y), len(labels)))
    logits[np.arange(len(y)), [labels.index(truth[t]) for t in y]] += strength
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def voice_face():
    """Voice (RAVDESS8) and face (FER7) members on the same samples, truth in BASIC7; face is better."""
    rng = np.random.default_rng(0)
    y = np.tile(np.arange(len(BASIC7)), 60)
    voice = _noisy_member(y, RAVDESS8, BASIC7, strength=1.5, rng=rng)
    face = _noisy_member(y, FER7, BASIC7, strength=2.0, rng=rng)
    X = FusionInput({"voice": voice, "face": face}, {"voice": RAVDESS8, "face": FER7})
    return X, [BASIC7[i] for i in y], y


def test_mean_of_two_members_by_hand():
    labels = {"a": ("happy", "sad"), "b": ("happy", "sad")}
    result = fuse({"a": np.array([0.8, 0.2]), "b": np.array([0.4, 0.6])}, labels)
    np.testing.assert_allclose(result.probabilities, [0.6, 0.4])
    assert result.label == "happy" and result.used_modalities == ("a", "b")
    product = fuse({"a": np.array([0.8, 0.2]), "b": np.array([0.4, 0.6])}, labels, strategy="product")
    geo = np.sqrt([0.8 * 0.4, 0.2 * 0.6])
    np.testing.assert_allclose(product.probabilities, geo / geo.sum())
    mx = fuse({"a": np.array([0.8, 0.2]), "b": np.array([0.4, 0.6])}, labels, strategy="max_confidence")
    np.testing.assert_allclose(mx.probabilities, [0.8, 0.2])
    weighted = fuse({"a": np.array([0.8, 0.2]), "b": np.array([0.4, 0.6])}, labels, strategy="weighted",
                    weights={"a": 0.25, "b": 0.75})
    np.testing.assert_allclose(weighted.probabilities, [0.5, 0.5])


def test_label_sets_are_aligned_through_the_taxonomy():
    voice = np.zeros(8)
    voice[RAVDESS8.index("calm")] = 1.0  # all mass on calm, which the face label set lacks
    face = np.full(7, 1 / 7)
    result = fuse({"voice": voice, "face": face}, {"voice": RAVDESS8, "face": FER7})
    assert result.labels == BASIC7
    expected = (align_probabilities(voice, RAVDESS8, BASIC7) + align_probabilities(face, FER7, BASIC7)) / 2
    np.testing.assert_allclose(result.probabilities, expected)
    assert result.label == "neutral"  # calm folded into neutral


def test_a_member_without_a_class_is_left_out_of_that_class_only():
    # A text model on CARER6 has no neutral and no disgust; love folds into happy.
    text = np.array([0.1, 0.5, 0.2, 0.1, 0.05, 0.05])  # sad, happy, love, angry, fear, surprise
    face = np.full(7, 1 / 7)
    result = fuse({"text": text, "face": face}, {"text": ("sad", "happy", "love", "angry", "fear", "surprise"),
                                                 "face": FER7})
    aligned_face = align_probabilities(face, FER7, BASIC7)
    raw = np.empty(7)
    for k, label in enumerate(BASIC7):
        # neutral and disgust: only the face has an opinion; the rest: the average of both
        t = {"sad": 0.1, "happy": 0.7, "angry": 0.1, "fear": 0.05, "surprise": 0.05}.get(label)
        raw[k] = aligned_face[k] if t is None else (aligned_face[k] + t) / 2
    np.testing.assert_allclose(result.probabilities, raw / raw.sum())


@pytest.mark.parametrize("strategy", ["mean", "max_confidence", "product"])
def test_missing_member_renormalises_over_the_present(strategy):
    voice = np.array([0.1, 0.0, 0.6, 0.1, 0.05, 0.05, 0.05, 0.05])
    result = fuse({"voice": voice, "face": None}, {"voice": RAVDESS8, "face": FER7}, strategy=strategy)
    assert result.used_modalities == ("voice",) and result.used.tolist() == [True, False]
    as_json = result.to_dict()
    assert as_json["used_modalities"] == ["voice"] and set(as_json["probabilities"]) == set(BASIC7)
    assert result.probabilities.sum() == pytest.approx(1.0)
    expected = align_probabilities(voice, RAVDESS8, BASIC7)
    if strategy == "product":
        expected = np.clip(expected, 1e-12, None) / np.clip(expected, 1e-12, None).sum()
    np.testing.assert_allclose(result.probabilities, expected, atol=1e-9)
    with pytest.raises(NoModalityError):
        fuse({"voice": None, "face": None}, {"voice": RAVDESS8, "face": FER7}, strategy=strategy)


def test_batch_with_nan_rows_reports_who_was_used():
    a = np.array([[0.9, 0.1], [0.2, 0.8], [np.nan, np.nan]])
    b = np.array([[np.nan, np.nan], [0.4, 0.6], [0.3, 0.7]])
    result = fuse({"a": a, "b": b}, {"a": ("happy", "sad"), "b": ("happy", "sad")})
    np.testing.assert_allclose(result.probabilities, [[0.9, 0.1], [0.3, 0.7], [0.3, 0.7]])
    assert result.used.tolist() == [[True, False], [True, True], [False, True]]
    assert result.to_dict()["used_modalities"] == [["a"], ["a", "b"], ["b"]]
    # A row with nobody present becomes uniform in a batch (it is not an error there).
    nobody = fuse({"a": np.full((1, 2), np.nan), "b": np.array([[0.5, 0.5]])}, {"a": ("happy", "sad"),
                                                                               "b": ("happy", "sad")},
                  strategy="max_confidence")
    np.testing.assert_allclose(nobody.probabilities, [[0.5, 0.5]])
    aligned = align_members({"a": np.full((2, 2), np.nan)}, {"a": ("happy", "sad")}, ("happy", "sad"))
    np.testing.assert_allclose(combine(aligned, "mean"), np.full((2, 2), 0.5))


def test_bad_inputs_are_clear_errors():
    labels = {"a": ("happy", "sad")}
    with pytest.raises(FusionError, match="unknown fusion strategy"):
        fuse({"a": np.array([0.5, 0.5])}, labels, strategy="median")
    with pytest.raises(FusionError, match="fitted"):
        fuse({"a": np.array([0.5, 0.5])}, labels, strategy="stacking")
    with pytest.raises(FusionError, match="needs weights"):
        fuse({"a": np.array([0.5, 0.5])}, labels, strategy="weighted")
    with pytest.raises(FusionError, match="do not match"):
        fuse({"a": np.array([0.2, 0.3, 0.5])}, labels)
    with pytest.raises(FusionError, match="no label set"):
        fuse({"a": np.array([0.5, 0.5]), "b": np.array([0.5, 0.5])}, labels)
    with pytest.raises(FusionError, match="unknown member"):
        fuse({"a": np.array([0.5, 0.5])}, labels, strategy="weighted", weights={"z": 1.0})
    with pytest.raises(FusionError, match="non-negative"):
        fuse({"a": np.array([0.5, 0.5])}, labels, strategy="weighted", weights={"a": -1.0})


def test_temperature_scaling_recovers_an_overconfident_member():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 2000)
    labels = ("neutral", "happy", "sad", "angry")
    calibrated = _noisy_member(y, labels, labels, strength=1.5, rng=rng)
    overconfident = apply_temperature(calibrated, 0.25)  # four times sharper
    t = fit_temperature(overconfident, y, source=labels, target=labels)
    t_calibrated = fit_temperature(calibrated, y, source=labels, target=labels)
    assert 2.5 < t / t_calibrated < 6  # it undoes most of the sharpening
    np.testing.assert_allclose(apply_temperature(calibrated, 1.0), calibrated, atol=1e-9)
    assert fit_temperature(np.full((1, 4), 0.25), y[:1], source=labels, target=labels) == 1.0


def test_simplex_grid_has_every_vertex_and_sums_to_one():
    for m in (1, 2, 3, 5, 9):
        grid = simplex_grid(m, max_points=500)
        assert 1 <= len(grid) <= 500
        np.testing.assert_allclose([w.sum() for w in grid], 1.0)
        vertices = {tuple(np.eye(m)[j]) for j in range(m)}
        assert vertices <= {tuple(w) for w in grid}


@pytest.mark.parametrize("name", FUSION_MODELS)
def test_missing_modalities_never_fail(name, voice_face, tmp_path):
    """Face gone for half the samples, voice for a quarter: every sample still gets a distribution,
    after save / load too (the rest of the contract: tests/models/test_contract.py)."""
    X, y, _ = voice_face
    model = create_model(name).fit(X, y, labels=BASIC7)
    model.save(tmp_path / "model")
    loaded = load_model(tmp_path / "model")
    n = len(X)
    no_face = np.arange(n) % 2 == 0
    no_voice = np.arange(n) % 4 == 1
    partial = X.without("face", no_face).without("voice", no_voice)
    probs = loaded.predict_proba(partial)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    one = loaded.fuse({"voice": X.probabilities["voice"][0], "face": None})
    assert one.used_modalities == ("voice",) and one.probabilities.shape == (7,)


@pytest.mark.parametrize("name", ["fusion_mean", "fusion_weighted", "fusion_product", "fusion_stacking"])
def test_fusion_beats_each_member_when_members_are_independent(name, voice_face):
    X, y, y_idx = voice_face
    fit_rows, test_rows = np.arange(len(y)) % 2 == 0, np.arange(len(y)) % 2 == 1
    model = create_model(name).fit(X.take(np.flatnonzero(fit_rows)), [y[i] for i in np.flatnonzero(fit_rows)],
                                   labels=BASIC7)
    test = X.take(np.flatnonzero(test_rows))
    fused_acc = (model.predict_proba(test).argmax(axis=1) == y_idx[test_rows]).mean()
    for member, labels in (("voice", RAVDESS8), ("face", FER7)):
        alone = align_probabilities(test.probabilities[member], labels, BASIC7).argmax(axis=1)
        assert fused_acc > (alone == y_idx[test_rows]).mean(), member
    if name == "fusion_stacking":
        assert model.fallback_ == -1  # the stacker beat both members on held-out fit data


def test_stacking_falls_back_to_a_member_the_stacker_cannot_beat(tmp_path):
    rng = np.random.default_rng(5)
    labels = ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised", "calm")
    y = np.tile(np.arange(8), 25)  # 200 samples: few for 2 * 9 stacker features and 8 classes
    good = _noisy_member(y, labels, labels, strength=3.0, rng=rng)
    X = FusionInput({"noise": rng.dirichlet(np.ones(8), len(y)), "good": good}, {"noise": labels, "good": labels})
    model = create_model("fusion_stacking").fit(X, [labels[i] for i in y], labels=labels)
    assert model.fallback_ == 1
    probs = model.predict_proba(X)
    np.testing.assert_array_equal(probs.argmax(axis=1), good.argmax(axis=1))  # temperature keeps the argmax
    partial = X.without("good", np.arange(len(y)) < 10)  # where "good" is missing, the members present answer
    np.testing.assert_allclose(model.predict_proba(partial)[10:], probs[10:])
    assert np.isfinite(model.predict_proba(partial)[:10]).all()
    model.save(tmp_path / "m")
    assert load_model(tmp_path / "m").fallback_ == 1
    never = create_model("fusion_stacking", fallback=False).fit(X, [labels[i] for i in y], labels=labels)
    assert never.fallback_ == -1


def test_weighted_fit_picks_the_good_member_over_noise():
    rng = np.random.default_rng(3)
    y = np.tile(np.arange(4), 100)
    labels = ("neutral", "happy", "sad", "angry")
    good = _noisy_member(y, labels, labels, strength=2.5, rng=rng)
    noise = rng.dirichlet(np.ones(4), len(y))
    X = FusionInput({"good": good, "noise": noise}, {"good": labels, "noise": labels})
    model = create_model("fusion_weighted").fit(X, [labels[i] for i in y], labels=labels)
    assert model.weights_[0] >= 0.7
    with pytest.raises(FusionError, match="fitted on members"):
        model.predict_proba(FusionInput({"good": good, "other": noise}, {"good": labels, "other": labels}))
    with pytest.raises(FusionError, match="label set"):
        model.predict_proba(FusionInput({"good": good[:, :3]}, {"good": labels[:3]}))


def test_a_fusion_model_fed_raw_inputs_is_a_clear_error(ravdess_dir, tmp_path):
    from typer.testing import CliRunner

    from emofuse.cli import app

    with pytest.raises(FusionError, match="FusionInput"):
        create_model("fusion_stacking").fit(["a.wav"], ["happy"], labels=BASIC7)
    result = CliRunner().invoke(app, ["train", "fusion_mean", "--data", f"ravdess={ravdess_dir}", "--protocol",
                                      "ravdess-random", "--out", str(tmp_path / "o"), "-q"])
    assert result.exit_code == 1 and "Traceback" not in result.output and "emofuse study" in result.stderr


def _flipper(y: np.ndarray, n_classes: int, wins: np.ndarray, losses: np.ndarray):
    """A member ``a`` right on all but ``wins``, and a member ``b`` that is confident only on ``wins``
    (the right class) and ``losses`` (a wrong one) and uniform elsewhere: any mix that lets ``b`` speak
    gains ``len(wins)`` samples over ``a`` and loses ``len(losses)``."""
    n = len(y)
    a = np.full((n, n_classes), 0.5 / (n_classes - 1))
    a[np.arange(n), y] = 0.5
    wrong = (y + 1) % n_classes
    a[wins] = 0.5 / (n_classes - 1)
    a[wins, wrong[wins]] = 0.5
    b = np.full((n, n_classes), 1.0 / n_classes)
    b[wins] = 0.02 / (n_classes - 1)
    b[wins, y[wins]] = 0.98
    b[losses] = 0.02 / (n_classes - 1)
    b[losses, wrong[losses]] = 0.98
    return a, b


def test_a_mix_must_beat_the_best_member_by_a_standard_error_to_be_kept():
    """The one-standard-error rule of UA-fitted weights: a gain of 2 samples out of 240 made of 10
    wins and 8 losses is noise, and the weighted fusion keeps the best member; 30 wins and no loss is not."""
    from emofuse.evaluation.metrics import beats_by_se

    labels = ("neutral", "happy", "sad", "angry")
    y = np.tile(np.arange(4), 60)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    a, b = _flipper(y, 4, wins=order[:10], losses=order[10:18])
    X = FusionInput({"a": a, "b": b}, {"a": labels, "b": labels})
    names = [labels[i] for i in y]
    plain = create_model("fusion_weighted", temperature=False, objective="ua", select_se=0).fit(X, names, labels=labels)
    assert plain.weights_[1] > 0  # the plain maximum lets b speak: +2 samples on the fit data
    careful = create_model("fusion_weighted", temperature=False, objective="ua").fit(X, names, labels=labels)
    np.testing.assert_array_equal(careful.weights_, [1.0, 0.0])
    assert create_model("fusion_weighted").get_params()["select_se"] == 1.0
    assert create_model("fusion_weighted").get_params()["objective"] == "nll"
    mixed, alone = combine(plain._align(X), "weighted", weights=plain.weights_), a
    assert not beats_by_se(y, mixed, alone, 4, 1.0) and beats_by_se(y, mixed, alone, 4, 0.0)

    a2, b2 = _flipper(y, 4, wins=order[:30], losses=order[:0])
    X2 = FusionInput({"a": a2, "b": b2}, {"a": labels, "b": labels})
    kept = create_model("fusion_weighted", temperature=False, objective="ua").fit(X2, names, labels=labels)
    assert kept.weights_[1] > 0
    with pytest.raises(FusionError, match="select_se"):
        create_model("fusion_weighted", select_se=-1).fit(X2, names, labels=labels)


def test_with_speaker_groups_the_bootstrap_resamples_speakers():
    """Gaining 45 clips of one speaker and losing 30 of another is a win by clip-level standard
    errors, but not by speaker-level ones: the cluster bootstrap does not call it a win."""
    from emofuse.evaluation.metrics import beats_by_se

    y = np.tile(np.arange(4), 60)
    speakers = np.repeat(np.arange(4), 60)
    gains, losses = np.flatnonzero(speakers == 0)[:45], np.flatnonzero(speakers == 1)[:30]
    reference = np.eye(4)[(y + 1) % 4]  # wrong but on speaker 1's first 30 clips
    reference[losses] = np.eye(4)[y[losses]]
    candidate = reference.copy()
    candidate[gains] = np.eye(4)[y[gains]]
    candidate[losses] = np.eye(4)[(y[losses] + 1) % 4]
    assert beats_by_se(y, candidate, reference, 4, 1.0)
    assert not beats_by_se(y, candidate, reference, 4, 1.0, groups=speakers)


def _speaker_quirk_members(n_speakers: int = 4, per_speaker: int = 80, seed: int = 0):
    """Member ``a`` is right 60 % of the time; member ``b`` says nothing about the emotion except,
    through a small bump at class ``speaker + 1``, who is speaking; each speaker mostly expresses
    one emotion (class ``speaker``). A stacker can learn each validation speaker's habit from ``b``,
    which says nothing about a new speaker."""
    rng = np.random.default_rng(seed)
    speakers = np.repeat(np.arange(n_speakers), per_speaker)
    y = np.where(rng.random(len(speakers)) < 0.8, speakers % 4, rng.integers(0, 4, len(speakers)))
    said = np.where(rng.random(len(y)) < 0.6, y, rng.integers(0, 4, len(y)))
    a = np.full((len(y), 4), 0.1)
    a[np.arange(len(y)), said] = 0.7
    b = np.full((len(y), 4), 0.24)
    b[np.arange(len(y)), (speakers + 1) % 4] = 0.28
    return y, speakers, a, b


def test_a_stacker_is_judged_on_held_out_speakers_when_given_groups():
    labels = ("neutral", "happy", "sad", "angry")
    y, speakers, a, b = _speaker_quirk_members()
    X = FusionInput({"a": a, "b": b}, {"a": labels, "b": labels})
    names = [labels[i] for i in y]
    by_clip = create_model("fusion_stacking", temperature=False).fit(X, names, labels=labels)
    assert by_clip.fallback_ == -1  # folds of clips: the speakers' habits look learnt
    by_speaker = create_model("fusion_stacking", temperature=False).fit(X, names, labels=labels,
                                                                        groups=[f"actor{s}" for s in speakers])
    assert by_speaker.fallback_ == 0  # held-out speakers: nothing beats member a
    np.testing.assert_allclose(by_speaker.predict_proba(X), a)
    with pytest.raises(FusionError, match="one group"):
        create_model("fusion_stacking").fit(X, names, labels=labels, groups=speakers[:-1])
    with pytest.raises(FusionError, match="one group"):
        create_model("fusion_weighted").fit(X, names, labels=labels, groups=speakers[1:])


def test_cross_validation_folds_hold_out_whole_groups():
    from emofuse.fusion.stacking import _cv_folds

    groups = np.repeat(np.arange(8), 5)
    folds = _cv_folds(len(groups), groups)
    assert len(np.unique(folds)) == 5
    for g in range(8):
        assert len(np.unique(folds[groups == g])) == 1
    np.testing.assert_array_equal(_cv_folds(40, groups), folds)  # fixed: the same data give the same folds
    assert len(np.unique(_cv_folds(40, np.repeat(np.arange(3), [10, 10, 20])))) == 3
    assert len(np.unique(_cv_folds(40, None))) == 3 and len(np.unique(_cv_folds(40, np.zeros(40, int)))) == 3


def test_a_weighting_that_leans_on_a_missing_member_fuses_the_members_present():
    """Weights (1, 0) with the first member missing: the second member answers, not a uniform guess."""
    labels = ("neutral", "happy", "sad", "angry")
    a, b = np.array([[0.7, 0.1, 0.1, 0.1]] * 2), np.array([[0.1, 0.1, 0.2, 0.6]] * 2)
    X = FusionInput({"a": a, "b": b}, {"a": labels, "b": labels}).without("a", np.array([True, False]))
    aligned = align_members(X.probabilities, X.labels, labels)
    fused = combine(aligned, "weighted", weights=[1.0, 0.0])
    np.testing.assert_allclose(fused, [b[0], a[1]])
    np.testing.assert_allclose(combine(aligned, "product", weights=[1.0, 0.0])[0], b[0])


def test_a_stacking_checkpoint_of_an_earlier_version_falls_back_to_its_member(tmp_path):
    """Before the weighted fallback, checkpoints named one fallback member (or -1 for the stacker)."""
    import json

    labels = ("neutral", "happy", "sad", "angry")
    y, _, a, b = _speaker_quirk_members()
    X = FusionInput({"a": a, "b": b}, {"a": labels, "b": labels})
    model = create_model("fusion_stacking", temperature=False).fit(X, [labels[i] for i in y], labels=labels)
    model.save(tmp_path / "m")
    meta_path = tmp_path / "m" / "model.json"
    meta = json.loads(meta_path.read_text())
    assert meta.pop("stacker_kept") is True
    for member, expected in ((-1, model.predict_proba(X)), (1, b)):
        meta_path.write_text(json.dumps({**meta, "fallback_member": member}))
        old = load_model(tmp_path / "m")
        assert old.fallback_ == member
        np.testing.assert_allclose(old.predict_proba(X), expected)
