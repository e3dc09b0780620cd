from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from emofuse.inference import Predictor
from emofuse.inference.batch import expand_paths, predict_files
from emofuse.inference.writers import CsvWriter, rows, write_jsonl
from tests._predictors import voiced, write_wav


@pytest.fixture()
def folder(tmp_path: Path, media: dict[str, Path]) -> Path:
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    for i, code in enumerate(["01", "03", "05", "08"]):
        write_wav(root / "sub" / f"clip{i}.wav", voiced(code, 0.8, seed=i))
    for name in ("face", "blank", "text_as_wav", "truncated", "text", "unknown", "video"):
        shutil.copy(media[name], root / media[name].name)
    (root / ".hidden.wav").write_bytes(b"")
    return root


def test_folder_is_walked_in_order_and_bad_files_do_not_stop_it(tiny_predictor: Predictor, folder: Path) -> None:
    results = list(predict_files(tiny_predictor, [folder], batch_size=3))
    names = [Path(r.path).relative_to(folder).as_posix() for r in results]
    assert names == sorted(p.relative_to(folder).as_posix() for p in expand_paths([folder]))
    assert ".hidden.wav" not in names
    by_name = {n: r for n, r in zip(names, results, strict=True)}
    assert by_name["notes.wav"].status == "unreadable" and "text" in by_name["notes.wav"].problem
    assert by_name["truncated.wav"].status == "unreadable" and "truncated" in by_name["truncated.wav"].problem
    assert by_name["data.xyz"].status == "unreadable" and "unsupported file type" in by_name["data.xyz"].problem
    assert by_name["blank.jpg"].prediction is not None
    assert by_name["blank.jpg"].prediction.modalities["face"].status == "no_face"
    assert by_name["face.png"].kind == "image" and by_name["hello.txt"].kind == "text"
    assert by_name["talk.mp4"].kind == "video" and by_name["talk.mp4"].video is not None
    for i in range(4):
        assert by_name[f"sub/clip{i}.wav"].prediction.modalities["voice"].status == "ok"  # type: ignore[union-attr]


def test_batched_voice_equals_one_by_one(tiny_predictor: Predictor, folder: Path) -> None:
    clips = sorted((folder / "sub").glob("*.wav"))
    batched = [r.prediction.modalities["voice"].probabilities  # type: ignore[union-attr]
               for r in predict_files(tiny_predictor, clips, batch_size=4)]
    single = [tiny_predictor.predict_audio(p).modalities["voice"].probabilities for p in clips]
    np.testing.assert_allclose(batched, single, atol=1e-6)  # float32 sums in another order


def test_glob_patterns_are_expanded(tmp_path: Path) -> None:
    for name in ("b.wav", "a.wav", "sub/c.wav", "x.txt"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert expand_paths([tmp_path / "*.wav"]) == [tmp_path / "a.wav", tmp_path / "b.wav"]
    assert expand_paths([str(tmp_path / "**" / "*.wav")]) == [tmp_path / n for n in ("a.wav", "b.wav", "sub/c.wav")]
    assert expand_paths([tmp_path / "s*"]) == [tmp_path / "sub" / "c.wav"]  # a matched folder is walked
    assert expand_paths([tmp_path / "*.flac"]) == [tmp_path / "*.flac"]  # matches nothing: reported missing


def test_missing_path_is_reported(tiny_predictor: Predictor, tmp_path: Path) -> None:
    [result] = predict_files(tiny_predictor, [tmp_path / "nope.wav"])
    assert result.status == "unreadable" and result.problem == "no such file"


def test_json_lines_and_csv_rows(tiny_predictor: Predictor, folder: Path) -> None:
    results = list(predict_files(tiny_predictor, [folder]))
    out = io.StringIO()
    list(write_jsonl(results, out))
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    video = next(r for r in results if r.kind == "video")
    assert len(lines) == len(results) - 1 + len(video.video.windows)  # type: ignore[union-attr]
    windows = [line for line in lines if line["kind"] == "video"]
    assert [w["start_s"] for w in windows] == [0.0, 1.0, 2.0]
    for line in lines:
        assert set(line) >= {"path", "kind", "status", "voice", "face", "words", "fused"}
        if line["fused"]["status"] == "ok":
            assert sum(line["fused"]["probabilities"].values()) == pytest.approx(1.0)

    buffer = io.StringIO()
    writer = CsvWriter(buffer, tiny_predictor.label_sets())
    for r in results:
        writer.write(r)
    import csv

    table = list(csv.DictReader(io.StringIO(buffer.getvalue())))
    assert len(table) == len(lines)
    assert "voice_p_calm" in table[0] and "face_p_disgust" in table[0] and "fused_p_neutral" in table[0]
    tone_row = next(row for row in table if row["path"].endswith("clip1.wav"))
    assert tone_row["voice_status"] == "ok" and tone_row["face_status"] == "absent"
    assert float(tone_row["voice_confidence"]) == pytest.approx(max(
        float(tone_row[f"voice_p_{label}"]) for label in tiny_predictor.label_sets()["voice"]), abs=1e-4)
    bad_row = next(row for row in table if row["path"].endswith("notes.wav"))
    assert bad_row["status"] == "unreadable" and bad_row["problem"]
    assert len(list(rows(results[0]))) == 1


def test_kind_of_containers_is_probed(tmp_path: Path, media: dict[str, Path]) -> None:
    from emofuse.inference.media import media_kind

    assert media_kind(media["video"]) == "video"
    # An audio-only webm (a browser voice note) is audio.
    import av
    import numpy as np

    note = tmp_path / "note.webm"
    with av.open(str(note), "w") as container:
        stream = container.add_stream("libopus", rate=48_000)
        stream.layout = "mono"
        pcm = (np.sin(np.arange(48_000) / 10) * 8000).astype(np.int16)
        for start in range(0, len(pcm), 960):
            frame = av.AudioFrame.from_ndarray(pcm[None, start : start + 960], format="s16", layout="mono")
            frame.sample_rate = 48_000
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    assert media_kind(note) == "audio"
    assert media_kind(tmp_path / "x.jpeg") == "image" and media_kind(tmp_path / "x.bin") == "unknown"
