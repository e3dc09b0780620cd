"""MELD and CARER loaders: both MELD encodings, official splits, bad rows named."""

from __future__ import annotations

import pytest

from emofuse.data import get_protocol, load_dataset
from emofuse.errors import DataError

HEADER = "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime"


def _meld(root, *, cp1252: bool):
    root.mkdir()
    rows = {"train": [("I can\u2019t believe it!", "joy"), ("Go away.", "anger"), ("Okay.", "neutral")],
            "dev": [("Really?", "surprise")], "test": [("Oh no\u2026", "sadness"), ("Ew.", "disgust")]}
    for split, items in rows.items():
        lines = [HEADER]
        for i, (text, emotion) in enumerate(items):
            if cp1252:  # the 2018 files: cp1252 punctuation stored as C1 control characters
                text = text.replace("\u2019", "\x92").replace("\u2026", "\x85")
            lines.append(f'{i + 1},"{text}",Ross,{emotion},neutral,0,{i},1,1,"00:00:01,000","00:00:02,000"')
        newline = "\n" if cp1252 else "\r\n"
        (root / f"{split}_sent_emo.csv").write_text(newline.join(lines) + newline, encoding="utf-8", newline="")
    return root


def test_meld_both_encodings_read_to_the_same_text(tmp_path):
    new = load_dataset("meld", _meld(tmp_path / "new", cp1252=False))
    old = load_dataset("meld", _meld(tmp_path / "old", cp1252=True))
    assert new.texts == old.texts
    assert new.texts[0] == "I can\u2019t believe it!" and new.texts[-2] == "Oh no\u2026"
    assert [s.label for s in new.samples] == ["happy", "angry", "neutral", "surprise", "sad", "disgust"]
    assert new.split_counts() == {"train": 3, "dev": 1, "test": 2}
    (fold,) = get_protocol("meld-official").folds(new)
    assert [new.texts[i] for i in fold.val] == ["Really?"] and len(fold.test) == 2
    assert new.subset(fold.test).texts == ["Oh no\u2026", "Ew."]


def test_carer_and_its_bad_lines(tmp_path):
    root = tmp_path / "carer"
    root.mkdir()
    (root / "train.txt").write_text("i feel so loved;love\ni am furious;anger\n")
    (root / "val.txt").write_text("what a surprise;surprise\n")
    (root / "test.txt").write_text("i feel scared;fear\nno label here\ni am bored;boredom\n")
    with pytest.raises(DataError, match=r"test\.txt#1"):
        load_dataset("carer", root)
    dataset = load_dataset("carer", root, skip_bad=True)
    assert [s.label for s in dataset.samples] == ["love", "angry", "surprise", "fear"]
    assert [b.path.rsplit("/", 1)[-1] for b in dataset.bad_files] == ["test.txt#1", "test.txt#2"]
    with pytest.raises(DataError, match="no CARER files"):
        load_dataset("carer", tmp_path)


def test_real_meld_and_carer(real_data):
    meld = load_dataset("meld", real_data / "meld-text")
    assert meld.split_counts() == {"train": 9989, "dev": 1109, "test": 2610}
    assert meld.texts == load_dataset("meld", real_data / "meld-text" / "original-2018-encoding").texts
    carer = load_dataset("carer", real_data / "emotion-nlp")
    assert carer.split_counts() == {"train": 16000, "val": 2000, "test": 2000}
    assert carer.label_counts()["happy"] == 6761


def test_summary_and_verify_of_text_datasets(tmp_path):
    import hashlib

    from emofuse.data.inspect import summarize, verify

    root = _meld(tmp_path / "m", cp1252=False)
    (root / "dev_sent_emo.csv").write_text((root / "train_sent_emo.csv").read_text(encoding="utf-8"),
                                           encoding="utf-8")  # dev now repeats train's three utterances
    dataset = load_dataset("meld", root)
    summary = summarize(dataset)
    assert summary["modality"] == "text" and summary["duplicates"]["groups"] == 3
    digest = hashlib.sha256((root / "test_sent_emo.csv").read_bytes()).hexdigest()
    (root / "SHA256SUMS").write_text(f"{digest}  test_sent_emo.csv\n{'0' * 64}  train_sent_emo.csv\n"
                                     f"{'1' * 64}  gone.csv\n")
    report = verify(load_dataset("meld", root))
    assert report.checksums_checked == 2 and report.decoded == len(dataset)
    assert [b.problem.split(":")[0] for b in report.bad] == ["sha256 mismatch"]
    assert report.missing == [str((root / "gone.csv").resolve())] and not report.ok
