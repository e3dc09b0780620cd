import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emofuse.data import load_dataset, load_ravdess, parse_ravdess_name
from emofuse.data.synthetic import make_ravdess
from emofuse.errors import DataError


def test_parse_all_seven_codes():
    codes = parse_ravdess_name("Actor_12/03-01-06-02-02-01-12.wav")
    assert codes.modality == "audio-only"
    assert codes.vocal_channel == "speech"
    assert codes.emotion == "fear"
    assert codes.intensity == "strong"
    assert codes.statement == "Dogs are sitting by the door"
    assert codes.repetition == 1
    assert codes.actor == 12
    assert codes.gender == "female"
    assert parse_ravdess_name("03-02-05-01-01-02-07.flac").gender == "male"
    assert parse_ravdess_name("03-02-05-01-01-02-07.flac").vocal_channel == "song"


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("hello.wav", "does not follow the RAVDESS pattern"),
        ("03-01-06-01-02-01.wav", "does not follow"),
        ("03-01-09-01-02-01-12.wav", "emotion 09"),
        ("03-01-01-02-01-01-01.wav", "no strong neutral"),
        ("03-02-07-01-01-01-01.wav", "song file"),
        ("03-01-05-01-01-01-25.wav", "actor 25"),
        ("04-01-05-01-01-01-02.wav", "modality 04"),
    ],
)
def test_invalid_names_say_what_is_wrong(name, problem):
    with pytest.raises(ValueError, match=problem):
        parse_ravdess_name(name)


def test_load_synthetic_ravdess(ravdess_dir):
    dataset = load_ravdess(ravdess_dir)
    assert len(dataset) == 24 * 15
    assert dataset.speakers() == [f"{a:02d}" for a in range(1, 25)]
    assert dataset.label_counts()["neutral"] == 24 and dataset.label_counts()["calm"] == 48
    sample = dataset.samples[0]
    assert sample.meta["sample_rate_hz"] == 16_000 and sample.meta["gender"] == "male"
    assert dataset.split_counts() == {}
    assert dataset.label_indices().max() == 7


def test_official_layout_48k_and_song_files(tmp_path):
    # Official archive: 48 kHz WAV in Actor_XX/, song files (vocal channel 02) alongside.
    make_ravdess(tmp_path, actors=[1, 2], emotions=["03", "05"], sample_rate_hz=48_000, seconds=0.2)
    song = tmp_path / "Actor_02" / "03-02-03-01-01-01-02.wav"
    sf.write(song, np.zeros(4800, np.float32), 48_000)
    dataset = load_ravdess(tmp_path)
    assert {s.meta["sample_rate_hz"] for s in dataset} == {48_000}
    channels = [s.meta["vocal_channel"] for s in dataset]
    assert channels.count("song") == 1 and channels.count("speech") == 8


def _bad_copy(ravdess_dir: Path, tmp_path: Path) -> Path:
    root = tmp_path / "bad"
    shutil.copytree(ravdess_dir / "Actor_01", root / "Actor_01")
    actor = root / "Actor_01"
    wav = actor / "03-01-03-01-01-01-01.wav"
    data = wav.read_bytes()
    wav.write_bytes(data[: len(data) // 2])  # truncated
    (actor / "03-01-04-01-01-01-01.wav").write_text("this is not audio\n")  # text named .wav
    (actor / "03-01-05-01-01-01-01.wav").write_bytes(b"")  # empty
    shutil.copy(actor / "03-01-06-01-01-01-01.wav", actor / "my-recording.wav")  # breaks the pattern
    shutil.copy(actor / "03-01-06-01-01-01-01.wav", actor / "03-01-06-01-01-01-02.wav")  # actor 02 in Actor_01
    return root


def test_bad_files_stop_loading_with_the_file_named(ravdess_dir, tmp_path):
    root = _bad_copy(ravdess_dir, tmp_path)
    with pytest.raises(DataError) as info:
        load_ravdess(root)
    assert info.value.path.startswith(str(root))
    assert info.value.problem


def test_skip_bad_lists_every_bad_file(ravdess_dir, tmp_path):
    root = _bad_copy(ravdess_dir, tmp_path)
    dataset = load_ravdess(root, skip_bad=True)
    problems = {Path(b.path).name: b.problem for b in dataset.bad_files}
    assert "truncated" in problems["03-01-03-01-01-01-01.wav"]
    assert "text" in problems["03-01-04-01-01-01-01.wav"]
    assert "empty" in problems["03-01-05-01-01-01-01.wav"]
    assert "RAVDESS pattern" in problems["my-recording.wav"]
    assert "Actor_01" in problems["03-01-06-01-01-01-02.wav"]
    assert len(dataset) + len(dataset.bad_files) == 15 + 2  # nothing silently dropped


def test_missing_or_empty_folder(tmp_path):
    with pytest.raises(DataError, match="no such"):
        load_ravdess(tmp_path / "nope")
    with pytest.raises(DataError, match="no RAVDESS audio"):
        load_ravdess(tmp_path)


def test_real_ravdess_counts(real_data):
    dataset = load_dataset("ravdess", real_data / "ravdess-speech-16k", progress=False)
    assert len(dataset) == 1440
    assert len(dataset.speakers()) == 24
    assert dataset.label_counts() == {"neutral": 96, **{k: 192 for k in
                                      ("calm", "happy", "sad", "angry", "fear", "disgust", "surprise")}}
    assert not dataset.bad_files
    assert {s.meta["sample_rate_hz"] for s in dataset} == {16_000}
