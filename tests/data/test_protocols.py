import dataclasses
from pathlib import Path

import numpy as np
import pytest

from emofuse.data import PROTOCOLS, get_protocol, load_fer2013, load_ravdess
from emofuse.data.protocols import EMOBOX_RAVDESS_FOLDS, Fold, ProtocolError, check_speaker_independent


def _actors(dataset, positions):
    return sorted({int(dataset.samples[i].speaker) for i in positions})


def test_ravdess_6fold_matches_emobox_and_validates_on_training_actors(ravdess_dir):
    dataset = load_ravdess(ravdess_dir)
    protocol = get_protocol("ravdess-6fold")
    folds = protocol.folds(dataset)
    # The names are known before the data is read (a study plans its jobs fold by fold from them).
    assert [f.name for f in folds] == list(protocol.fold_names) == [f"fold{k}" for k in range(1, 7)]
    tested = []
    for k, fold in enumerate(folds, start=1):
        assert _actors(dataset, fold.test) == sorted(EMOBOX_RAVDESS_FOLDS[k])
        assert _actors(dataset, fold.val) == sorted(EMOBOX_RAVDESS_FOLDS[k % 6 + 1])
        assert len(_actors(dataset, fold.train)) == 16
        assert len(fold.train) + len(fold.val) + len(fold.test) == len(dataset)
        tested.extend(fold.test.tolist())
    assert sorted(tested) == list(range(len(dataset)))  # every clip is tested exactly once


def test_actor_split(ravdess_dir):
    dataset = load_ravdess(ravdess_dir)
    (fold,) = get_protocol("ravdess-actor-split").folds(dataset)
    assert _actors(dataset, fold.test) == [21, 22, 23, 24]
    assert _actors(dataset, fold.val) == [17, 18, 19, 20]
    assert _actors(dataset, fold.train) == list(range(1, 17))


def test_random_split_is_stratified_deterministic_and_flagged_leaky(ravdess_dir):
    dataset = load_ravdess(ravdess_dir)
    protocol = get_protocol("ravdess-random")
    assert protocol.leaky and not protocol.speaker_independent
    (a,), (b,) = protocol.folds(dataset), protocol.folds(dataset)
    np.testing.assert_array_equal(a.test, b.test)
    assert len(a.test) == pytest.approx(0.2 * len(dataset), abs=1)
    y = dataset.label_indices()
    assert np.bincount(y[a.test], minlength=8).min() >= 4  # every emotion in test
    assert set(a.train) | set(a.val) | set(a.test) == set(range(len(dataset)))
    assert not set(a.train) & set(a.test)


def test_fer2013_official(fer_csv, fer_folders):
    for source in (fer_csv, fer_folders):
        dataset = load_fer2013(source)
        (fold,) = get_protocol("fer2013-official").folds(dataset)
        assert {dataset.samples[i].split for i in fold.train} == {"Training"}
        assert {dataset.samples[i].split for i in fold.val} == {"PublicTest"}
        assert {dataset.samples[i].split for i in fold.test} == {"PrivateTest"}


def test_fer2013_without_usage_prefixes_is_refused(fer_folders, tmp_path):
    import shutil

    root = tmp_path / "fer"
    shutil.copytree(fer_folders, root)
    for path in (root / "test").rglob("*.jpg"):
        path.rename(path.with_name(path.name.split("_")[1]))
    with pytest.raises(ProtocolError, match="PublicTest"):
        get_protocol("fer2013-official").folds(load_fer2013(root))


def test_speaker_overlap_is_caught(ravdess_dir):
    dataset = load_ravdess(ravdess_dir)
    leaky = Fold("bad", train=np.array([0, 1]), val=np.array([20]), test=np.array([2]))  # actor 01 in train and test
    with pytest.raises(ProtocolError, match="01"):
        check_speaker_independent(dataset, leaky)


def test_fold_names_are_the_names_of_the_folds_made(ravdess_dir, fer_csv):
    ravdess, fer = load_ravdess(ravdess_dir), load_fer2013(fer_csv)
    for name in ("ravdess-actor-split", "ravdess-random", "fer2013-official"):
        protocol = get_protocol(name)
        made = protocol.folds(ravdess if protocol.dataset == "ravdess" else fer)
        assert tuple(f.name for f in made) == protocol.fold_names
    drifted = dataclasses.replace(get_protocol("ravdess-actor-split"), fold_names=("fold1",))
    with pytest.raises(ProtocolError, match=r"made folds \['actor-split'\], not its \['fold1'\]"):
        drifted.folds(ravdess)


def test_protocol_refuses_wrong_dataset_or_missing_actors(ravdess_dir, fer_csv):
    with pytest.raises(ProtocolError, match="is for ravdess"):
        get_protocol("ravdess-6fold").folds(load_fer2013(fer_csv))
    dataset = load_ravdess(ravdess_dir)
    few = dataset.subset([i for i, s in enumerate(dataset.samples) if int(s.speaker) not in EMOBOX_RAVDESS_FOLDS[1]])
    with pytest.raises(ProtocolError, match="empty"):
        get_protocol("ravdess-6fold").folds(few)
    with pytest.raises(ProtocolError, match="unknown protocol"):
        get_protocol("nope")


def test_every_protocol_is_documented():
    from emofuse.data import DATASETS

    docs = (Path(__file__).resolve().parents[2] / "docs" / "protocols.md").read_text(encoding="utf-8")
    for protocol in PROTOCOLS.values():
        assert protocol.description
        assert protocol.dataset in DATASETS
        assert f"## `{protocol.name}`" in docs


def test_real_ravdess_6fold_has_240_test_clips_per_fold(real_data):
    dataset = load_ravdess(real_data / "ravdess-speech-16k", check_audio=False)
    for fold in get_protocol("ravdess-6fold").folds(dataset):
        assert len(fold.test) == 240 and len(fold.val) == 240 and len(fold.train) == 960
    (split,) = get_protocol("ravdess-actor-split").folds(dataset)
    assert len(split.test) == 240
