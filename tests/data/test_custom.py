import json
import shutil

import pytest

from emofuse.data import load_dataset, load_folder, load_manifest
from emofuse.data.synthetic import make_ravdess
from emofuse.errors import DataError
from emofuse.labels import UnknownLabelError


@pytest.fixture
def wavs(tmp_path):
    """A few WAV tones to arrange into user layouts."""
    return make_ravdess(tmp_path / "src", actors=[1, 2], emotions=["03", "04"], seconds=0.2)


def test_folder_of_label_folders_maps_synonyms(wavs, tmp_path):
    root = tmp_path / "mine"
    for i, path in enumerate(wavs):
        label = "Happiness" if "-03-" in path.name else "sadness"
        (root / label).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, root / label / f"clip{i}.wav")
    dataset = load_folder(root)
    assert dataset.modality == "audio"
    assert dataset.labels == ("happy", "sad")
    assert dataset.label_counts() == {"happy": 4, "sad": 4}
    assert load_dataset("custom", root).labels == ("happy", "sad")


def test_unknown_labels_are_all_listed(wavs, tmp_path):
    root = tmp_path / "mine"
    for label in ("happy", "bored", "sleepy"):
        (root / label).mkdir(parents=True)
        shutil.copy(wavs[0], root / label / "a.wav")
    with pytest.raises(UnknownLabelError) as info:
        load_folder(root)
    assert info.value.unknown == ["bored", "sleepy"]
    assert "Accepted" in str(info.value)


def test_images_folder_and_mixed_modalities(fer_folders, wavs, tmp_path):
    dataset = load_folder(fer_folders / "train")
    assert dataset.modality == "image" and len(dataset) == 42
    mixed = tmp_path / "mixed"
    shutil.copytree(fer_folders / "test", mixed)
    shutil.copy(wavs[0], mixed / "happy" / "x.wav")
    with pytest.raises(DataError, match="mixes audio and image"):
        load_folder(mixed)


def test_csv_manifest_with_speakers(wavs, tmp_path):
    manifest = tmp_path / "src" / "manifest.csv"
    lines = ["path,label,speaker,split"]
    for path in wavs:
        label = "joy" if "-03-" in path.name else "sad"
        lines.append(f"{path.relative_to(manifest.parent)},{label},{path.parent.name},train")
    manifest.write_text("\n".join(lines) + "\n")
    dataset = load_manifest(manifest)
    assert len(dataset) == 8
    assert dataset.speakers() == ["Actor_01", "Actor_02"]
    assert dataset.split_counts() == {"train": 8}
    assert dataset.label_counts() == {"happy": 4, "sad": 4}
    assert load_dataset("custom", manifest).name == "manifest"


def test_jsonl_manifest_reports_missing_and_bad_files(wavs, tmp_path):
    manifest = tmp_path / "m.jsonl"
    rows = [{"path": str(wavs[0]), "label": "happy", "speaker": "s1"},
            {"path": str(tmp_path / "gone.wav"), "label": "happy", "speaker": "s1"},
            {"path": str(wavs[1]), "label": "anger", "speaker": "s2"}]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match=r"gone\.wav"):
        load_manifest(manifest)
    dataset = load_manifest(manifest, skip_bad=True)
    assert len(dataset) == 2
    assert [b.path for b in dataset.bad_files] == [str(tmp_path / "gone.wav")]
    assert "file not found" in dataset.bad_files[0].problem and "line 2" in dataset.bad_files[0].problem


def test_manifest_errors(tmp_path):
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"path": "a.wav", "label": "happy"}\n{oops\n')
    with pytest.raises(DataError, match="line 2"):
        load_manifest(bad_json)
    no_label = tmp_path / "m.csv"
    no_label.write_text("path,emotion\na.wav,happy\n")
    with pytest.raises(DataError, match="lacks column"):
        load_manifest(no_label)
