"""The shipped models in onnxruntime, and the runtime through `emofuse export onnx`, `emofuse predict
--runtime onnx` and `emofuse serve --runtime onnx`: the same probabilities as torch, to 1e-4.

Each shipped model is exported once per test session into the session's private cache (the
autouse fixture of tests/conftest.py points EMOFUSE_CACHE_DIR at a temporary folder).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from emofuse.cli import app
from emofuse.export.runtime import cached_export_path, cached_onnx_model
from emofuse.models import load_model
from emofuse.models.shipped import shipped_model_dir
from tests._predictors import media, voiced, write_wav

__all__ = ["media"]

pytest.importorskip("onnxruntime")
TOL = 1e-4


def _shipped(name: str) -> Path:
    folder = shipped_model_dir(name)
    if folder is None:
        pytest.skip(f"the shipped {name} model is not installed")
    return folder


@pytest.fixture(scope="module")
def shipped_pairs() -> Iterator[dict[str, tuple[Any, Any]]]:
    """(torch model, onnx model) of each shipped model, loaded lazily."""
    cache: dict[str, tuple[Any, Any]] = {}

    def get(name: str) -> tuple[Any, Any]:
        if name not in cache:
            folder = _shipped(name)
            cache[name] = (load_model(folder), cached_onnx_model(folder, threads=1))
        return cache[name]

    yield get  # type: ignore[misc]


def test_shipped_voice_on_speechlike_audio(shipped_pairs: Any) -> None:
    torch_model, onnx_model = shipped_pairs("voice")
    clips = [voiced(code, seconds, seed) for code, seconds, seed in (("01", 0.6, 0), ("05", 1.7, 1), ("03", 3.1, 2))]
    for batch in (clips[:1], clips):  # one clip alone (no padding), then three lengths padded together
        np.testing.assert_allclose(onnx_model.predict_proba(batch), torch_model.predict_proba(batch), rtol=0, atol=TOL)


def test_shipped_voice_on_real_speech(shipped_pairs: Any, real_data: Path) -> None:
    clips = sorted((real_data / "ravdess-speech-16k" / "Actor_01").glob("*.flac"))[:3]
    torch_model, onnx_model = shipped_pairs("voice")
    np.testing.assert_allclose(onnx_model.predict_proba(clips), torch_model.predict_proba(clips), rtol=0, atol=TOL)


def test_shipped_face_on_real_fer2013_faces(shipped_pairs: Any, real_data: Path) -> None:
    images = [sorted((real_data / "fer2013" / "test" / label).glob("*.jpg"))[0] for label in ("happy", "sad", "fear")]
    torch_model, onnx_model = shipped_pairs("face")
    for batch in (images[:1], images):
        expected = torch_model.predict_proba(batch)
        np.testing.assert_allclose(onnx_model.predict_proba(batch), expected, rtol=0, atol=TOL)


def test_shipped_text_on_sentences(shipped_pairs: Any) -> None:
    torch_model, onnx_model = shipped_pairs("text")
    texts = ["What a wonderful day, I am so happy!", "no", "I can't believe you did that to me, get out of here."]
    for batch in (texts[:1], texts):
        np.testing.assert_allclose(onnx_model.predict_proba(batch), torch_model.predict_proba(batch), rtol=0, atol=TOL)


def test_cli_export_onnx(tmp_path: Path) -> None:
    _shipped("face")
    out = tmp_path / "face.onnx"
    result = CliRunner().invoke(app, ["export", "onnx", "face", "--out", str(out)])
    assert result.exit_code == 0, result.output
    sidecar = json.loads((tmp_path / "face.onnx.json").read_text())
    assert sidecar["model"] == "face_effnet" and sidecar["kind"] == "face_crops"
    assert sidecar["inputs"] == [{"name": "faces", "dtype": "uint8", "shape": ["batch", 48, 48], "min": {}}]
    assert sidecar["check"]["max_abs_diff"] <= TOL
    assert "max abs difference" in result.output

    bad = CliRunner().invoke(app, ["export", "onnx", str(tmp_path / "nowhere"), "--out", str(out)])
    assert bad.exit_code == 1 and "no such file or folder" in bad.output
    wrong = CliRunner().invoke(app, ["export", "onnx", "face", "--out", str(tmp_path / "face.pt")])
    assert wrong.exit_code == 2 and ".onnx" in wrong.output


def _predict_json(paths: list[Path], *args: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(app, ["predict", *map(str, paths), "--json", "--no-words", "--quiet", *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_cli_predict_runtime_onnx_matches_torch(media: dict[str, Path], tmp_path: Path) -> None:
    _shipped("voice"), _shipped("face")
    clip = write_wav(tmp_path / "long.wav", voiced("05", 2.5, 3))
    paths = [media["voice"], clip, media["face"]]
    torch_rows = _predict_json(paths)
    onnx_rows = _predict_json(paths, "--runtime", "onnx", "--onnx-threads", "1")
    assert cached_export_path(_shipped("voice")).is_file()  # exported into the cache on first use
    for t, o, modality in zip(torch_rows, onnx_rows, ("voice", "voice", "face"), strict=True):
        assert t[modality]["status"] == o[modality]["status"] == "ok"
        assert t[modality]["label"] == o[modality]["label"]
        p, q = t[modality]["probabilities"], o[modality]["probabilities"]
        assert p.keys() == q.keys()
        assert max(abs(p[k] - q[k]) for k in p) <= TOL

    # an exported file can be named directly
    face_onnx = cached_export_path(_shipped("face"))
    direct = _predict_json([media["face"]], "--runtime", "onnx", "--face-model", str(face_onnx))
    # A bare .onnx file has no card, so no calibration: the shipped route applies the card's temperature.
    from emofuse.inference.calibration import Calibration

    calibration = Calibration.from_card(json.loads((_shipped("face") / "card.json").read_text()))
    raw = direct[0]["face"]["probabilities"]
    shipped = onnx_rows[2]["face"]["probabilities"]
    calibrated = calibration.apply(np.array([list(raw.values())]))[0]
    np.testing.assert_allclose(calibrated, list(shipped.values()), atol=1e-6)


def test_serve_with_the_onnx_runtime(media: dict[str, Path]) -> None:
    from fastapi.testclient import TestClient

    from emofuse.inference import Predictor
    from emofuse.serving.app import create_app
    from emofuse.serving.settings import ServeSettings

    _shipped("voice"), _shipped("face")
    settings = ServeSettings(runtime="onnx", words=False, warm_up=False)
    with TestClient(create_app(settings=settings)) as client:
        assert type(client.app.state.predictor.voice).__name__ == "OnnxModel"  # type: ignore[attr-defined]
        body = client.post("/v1/predict/audio", files={"file": ("voice.wav", media["voice"].read_bytes())}).json()
    voice = body["modalities"]["voice"]
    expected = Predictor.from_shipped(words=False).predict_audio(media["voice"]).modalities["voice"]
    assert voice["status"] == "ok" and voice["label"] == expected.label
    assert max(abs(voice["probabilities"][k] - p) for k, p in zip(expected.labels, expected.probabilities,
                                                                  strict=True)) <= TOL
